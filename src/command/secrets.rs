//! Which words of a command are secrets (passwords), so that a message showing a command (an
//! annotated error in Python, a reply error's `command` in Node) shows every other word and never
//! a password. One rule for every binding: Python and Node both ask [`secret_arguments`].

/// `CONFIG SET` and `SENTINEL SET` / `SENTINEL CONFIG SET` parameters whose values are secrets.
const SECRET_PARAMETERS: &[&str] = &[
    "requirepass",
    "masterauth",
    "masteruser",
    "tls-key-file-pass",
    "tls-client-key-file-pass",
    "auth-pass",
    "auth-user",
    "sentinel-pass",
    "sentinel-user",
];

/// `ACL SETUSER` rules that carry a password or its hash: `>pass`, `<pass`, `#hash`, `!hash`.
const SECRET_RULE_PREFIXES: &[u8] = b"><#!";

/// The positions (0 is the command's name) of the words of `words` that are passwords:
/// - every argument of `AUTH`;
/// - after an `AUTH` word in any other command, its password (`MIGRATE ... AUTH pass`), or its
///   user name and password in `HELLO` (`HELLO 3 AUTH user pass`); after `AUTH2`, both
///   (`MIGRATE ... AUTH2 user pass`);
/// - the password rules of `ACL SETUSER` (`>pass`, `<pass`, `#hash`, `!hash`);
/// - the value after a password parameter (`requirepass`, `masterauth`, `auth-pass`, ...) in
///   `CONFIG` and `SENTINEL` commands.
///
/// A key or value that happens to read `AUTH` hides the word after it too: a word too many is
/// hidden rather than a password shown.
pub fn secret_arguments<W: AsRef<[u8]>>(words: &[W]) -> Vec<usize> {
    let word = |i: usize| words.get(i).map_or(&b""[..], AsRef::as_ref);
    let is = |i: usize, name: &str| word(i).eq_ignore_ascii_case(name.as_bytes());
    if is(0, "auth") {
        return (1..words.len()).collect();
    }
    let settings = is(0, "config") || is(0, "sentinel");
    let setuser = is(0, "acl") && is(1, "setuser");
    // Every word is looked at, hidden ones too: a hidden word may itself be a keyword (`SETNAME
    // auth AUTH user pass`), and hiding more is the safe side.
    let mut secret = vec![false; words.len()];
    for i in 1..words.len() {
        let hides = if is(i, "auth") {
            if is(0, "hello") { 2 } else { 1 }
        } else if is(i, "auth2") {
            2
        } else if settings && SECRET_PARAMETERS.iter().any(|p| is(i, p)) {
            1
        } else {
            0
        };
        for hidden in secret.iter_mut().skip(i + 1).take(hides) {
            *hidden = true;
        }
        if setuser
            && i > 2
            && word(i)
                .first()
                .is_some_and(|c| SECRET_RULE_PREFIXES.contains(c))
        {
            secret[i] = true;
        }
    }
    (0..words.len()).filter(|&i| secret[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::secret_arguments;

    fn hidden(command: &str) -> Vec<usize> {
        secret_arguments(&command.split(' ').collect::<Vec<_>>())
    }

    #[test]
    fn auth_hides_every_argument() {
        assert_eq!(hidden("AUTH pw"), [1]);
        assert_eq!(hidden("auth user pw"), [1, 2]);
        assert_eq!(hidden("AUTH"), Vec::<usize>::new());
    }

    #[test]
    fn an_auth_word_hides_what_follows() {
        assert_eq!(hidden("HELLO 3 AUTH user pw SETNAME app"), [3, 4]);
        assert_eq!(hidden("MIGRATE h 6379 k 0 100 AUTH pw"), [7]);
        assert_eq!(
            hidden("MIGRATE h 6379 k 0 100 AUTH2 user pw KEYS a"),
            [7, 8]
        );
        assert_eq!(hidden("MIGRATE h 6379 k 0 100 auth"), Vec::<usize>::new());
    }

    #[test]
    fn password_parameters_hide_their_value() {
        assert_eq!(hidden("CONFIG SET maxmemory 10mb requirepass pw"), [5]);
        assert_eq!(hidden("config set MasterAuth pw"), [3]);
        assert_eq!(hidden("SENTINEL SET mymaster auth-pass pw"), [4]);
        assert_eq!(hidden("SENTINEL CONFIG SET sentinel-pass pw"), [4]);
        assert_eq!(hidden("CONFIG GET requirepass"), Vec::<usize>::new());
        assert_eq!(hidden("SET requirepass v"), Vec::<usize>::new());
    }

    #[test]
    fn acl_setuser_hides_password_rules() {
        assert_eq!(
            hidden("ACL SETUSER bob on >pw <old #abc !def ~* +@all"),
            [4, 5, 6, 7]
        );
        assert_eq!(hidden("ACL SETUSER >name on"), Vec::<usize>::new());
        assert_eq!(hidden("ACL DELUSER >x"), Vec::<usize>::new());
    }

    #[test]
    fn a_hidden_word_that_is_a_keyword_still_hides_what_follows_it() {
        assert_eq!(hidden("HELLO 3 SETNAME auth AUTH u pw"), [4, 5, 6]);
        assert_eq!(hidden("CONFIG SET dir auth masterauth pw"), [4, 5]);
        assert_eq!(hidden("SENTINEL SET auth auth-pass pw"), [3, 4]);
        assert_eq!(hidden("MIGRATE h 1 k 0 9 AUTH2 auth pw"), [7, 8]);
    }

    #[test]
    fn other_commands_show_everything() {
        assert_eq!(hidden("GET k"), Vec::<usize>::new());
        assert_eq!(hidden("SET k >v"), Vec::<usize>::new());
        assert!(secret_arguments::<&[u8]>(&[]).is_empty());
    }
}
