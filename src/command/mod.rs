//! What redpool must know about a command before it sends it, in one place: how the server
//! answers it ([`Shape`]: how many replies, or none, or a stream), what it does to the connection
//! ([`Effect`]), and so whether it may run on a shared pooled connection or inside MULTI/EXEC.
//!
//! [`facts`] is the only table of commands with special replies or session effects; the reply
//! accounting of a connection ([`session`]), the pool's refusals, and through them C, Python and
//! Node, all rely on it. Every command it does not name is answered with exactly one reply and
//! leaves the connection as it was.
//!
//! Also here: the retry allowlist ([`idempotent`]), the metrics' command names ([`names`]) and
//! which words of a command are passwords, for messages that show it ([`secrets`]).

pub(crate) mod blocking;
pub(crate) mod idempotent;
pub(crate) mod names;
pub(crate) mod secrets;
pub(crate) mod session;

use redis::Cmd;

use crate::error::{Error, ErrorKind, Result};

pub(crate) use idempotent::is_idempotent;
pub(crate) use names::{KNOWN_COMMANDS, OTHER_COMMAND, command_index};

/// How the server answers a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Exactly one reply (almost every command).
    One,
    /// The SUBSCRIBE family: one confirmation per name given (`names`); an UNSUBSCRIBE with no name
    /// sends one per current subscription of its family, and one when there is none.
    Confirmations {
        /// Which subscriptions it counts.
        family: Family,
        /// True for SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE.
        subscribes: bool,
        /// Channels or patterns named.
        names: u32,
    },
    /// `CLIENT REPLY ON|OFF|SKIP`: changes which later commands are answered at all.
    ReplyMode(ReplyMode),
    /// `RESET`: one reply, always (even with replies off), and the connection back to its
    /// defaults: no transaction, no WATCH, no subscription, replies on, not monitoring.
    Reset,
    /// `MONITOR`: one reply, then a stream of frames nobody asked for; no request may follow.
    Stream,
    /// Output that is not RESP replies: `SYNC` and `PSYNC` answer with a raw RDB payload (a
    /// bulk length without the closing CRLF) and then the replication stream; `REPLCONF` is the
    /// replica's side of that protocol (`ACK` and `GETACK` get no reply). Never sent.
    Unframed,
}

/// The three kinds of subscription; each UNSUBSCRIBE-like command counts its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// SUBSCRIBE / UNSUBSCRIBE.
    Channels,
    /// PSUBSCRIBE / PUNSUBSCRIBE.
    Patterns,
    /// SSUBSCRIBE / SUNSUBSCRIBE.
    ShardChannels,
}

impl Family {
    /// The word a confirmation of this family starts with (`subscribe`, `punsubscribe`, ...).
    pub(crate) fn confirmation(self, subscribes: bool) -> &'static str {
        match (self, subscribes) {
            (Family::Channels, true) => "subscribe",
            (Family::Channels, false) => "unsubscribe",
            (Family::Patterns, true) => "psubscribe",
            (Family::Patterns, false) => "punsubscribe",
            (Family::ShardChannels, true) => "ssubscribe",
            (Family::ShardChannels, false) => "sunsubscribe",
        }
    }

    /// The word a published message of this family starts with (RESP2 delivers messages as
    /// arrays, indistinguishable from replies but for this word).
    pub(crate) fn message(self) -> &'static str {
        match self {
            Family::Channels => "message",
            Family::Patterns => "pmessage",
            Family::ShardChannels => "smessage",
        }
    }
}

/// The argument of `CLIENT REPLY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReplyMode {
    /// Replies again; answered with `+OK`.
    On,
    /// No reply to anything (itself included) until `CLIENT REPLY ON`.
    Off,
    /// No reply to itself nor to the next command.
    Skip,
}

/// What a command does to the connection it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing that outlives the command.
    None,
    /// `MULTI`: a transaction is open until EXEC or DISCARD is answered.
    Multi,
    /// `EXEC` / `DISCARD`: end the transaction and every WATCH, once answered without error.
    EndTransaction,
    /// `WATCH`: keys are watched until EXEC, DISCARD or UNWATCH is answered.
    Watch,
    /// `UNWATCH`: no key is watched once it is answered `+OK`.
    Unwatch,
    /// `QUIT`: the server closes the connection after replying.
    Closes,
    /// Changes the connection for good (SELECT, AUTH, HELLO, CLIENT SETNAME, READONLY,
    /// SUBSCRIBE, MONITOR, CLIENT REPLY, CLIENT TRACKING, RESET, ...). Refused on a shared pooled
    /// connection, where the next caller would inherit it or the effect would be lost; on a
    /// checked-out connection it works and the connection is closed when returned.
    Session {
        /// What to do instead, for the refusal's message.
        instead: &'static str,
    },
}

/// Everything [`facts`] knows about one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    /// How the server answers it.
    pub shape: Shape,
    /// What it does to the connection.
    pub effect: Effect,
}

/// The facts of every command the table does not name: one reply, no effect.
pub(crate) const ORDINARY: Facts = Facts {
    shape: Shape::One,
    effect: Effect::None,
};

/// `$why` and then how to run the command on a checked-out connection, named as each language
/// names it (for the refusals' messages, which every binding passes on as they are).
macro_rules! or_on_a_checkout {
    ($why:literal) => {
        concat!(
            $why,
            "run it on a checked-out connection (acquire() in Rust and C, a watch() session in \
             Python and Node), which is closed when returned"
        )
    };
}

const USE_A_CHECKOUT: &str = or_on_a_checkout!("");
const PUBSUB: &str =
    or_on_a_checkout!("pub/sub needs a dedicated connection, which redpool does not offer yet; ");
const CLUSTER: &str = or_on_a_checkout!("cluster routing is not offered yet; ");

/// The one table of commands whose replies or session effects are not ordinary, by name (any
/// case), subcommand and arguments.
pub(crate) fn facts(cmd: &Cmd) -> Facts {
    facts_of_args(arg_slices(cmd))
}

/// [`facts`] of a command given as its arguments (name first).
fn facts_of_args<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> Facts {
    let name = args.next().unwrap_or_default();
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    let session = |shape, instead| Facts {
        shape,
        effect: Effect::Session { instead },
    };
    let subscription = |family, subscribes, names: usize, instead| {
        let names = u32::try_from(names).unwrap_or(u32::MAX);
        session(
            Shape::Confirmations {
                family,
                subscribes,
                names,
            },
            instead,
        )
    };
    let plain = |effect| Facts {
        shape: Shape::One,
        effect,
    };
    // Dispatch on the length first: most commands match no arm after one comparison.
    match name.len() {
        4 if is("EXEC") => plain(Effect::EndTransaction),
        4 if is("QUIT") => plain(Effect::Closes),
        4 if is("AUTH") => session(
            Shape::One,
            "set the username and password settings of the pool",
        ),
        4 if is("SYNC") => session(Shape::Unframed, "use redis-cli --rdb to take a snapshot"),
        5 if is("MULTI") => plain(Effect::Multi),
        5 if is("WATCH") => plain(Effect::Watch),
        5 if is("HELLO") => session(
            Shape::One,
            or_on_a_checkout!("pooled connections speak the pool's `protocol` (2 unless set to 3); "),
        ),
        5 if is("RESET") => session(
            Shape::Reset,
            or_on_a_checkout!("RESET would undo the pool's AUTH, SELECT and client name; "),
        ),
        5 if is("PSYNC") => session(Shape::Unframed, "use redis-cli --rdb to take a snapshot"),
        6 if is("SELECT") => session(
            Shape::One,
            or_on_a_checkout!(
                "choose the database in the pool's settings (the URL's /N path; db in Python and \
                 Node), or "
            ),
        ),
        6 if is("ASKING") => session(Shape::One, CLUSTER),
        6 if is("CLIENT") => client_facts(args),
        7 if is("DISCARD") => plain(Effect::EndTransaction),
        7 if is("UNWATCH") => plain(Effect::Unwatch),
        7 if is("MONITOR") => session(
            Shape::Stream,
            "MONITOR streams every command the server runs, which redpool cannot read yet; use \
             redis-cli monitor",
        ),
        8 if is("READONLY") => session(Shape::One, CLUSTER),
        8 if is("REPLCONF") => session(
            Shape::Unframed,
            "REPLCONF belongs to the replication protocol between servers",
        ),
        9 if is("SUBSCRIBE") => subscription(Family::Channels, true, args.count(), PUBSUB),
        9 if is("READWRITE") => session(Shape::One, CLUSTER),
        10 if is("PSUBSCRIBE") => subscription(Family::Patterns, true, args.count(), PUBSUB),
        10 if is("SSUBSCRIBE") => subscription(Family::ShardChannels, true, args.count(), PUBSUB),
        11 if is("UNSUBSCRIBE") => subscription(Family::Channels, false, args.count(), PUBSUB),
        12 if is("PUNSUBSCRIBE") => subscription(Family::Patterns, false, args.count(), PUBSUB),
        12 if is("SUNSUBSCRIBE") => {
            subscription(Family::ShardChannels, false, args.count(), PUBSUB)
        }
        _ => ORDINARY,
    }
}

/// `CLIENT <subcommand> ...`: the subcommands that change the connection.
fn client_facts<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> Facts {
    let sub = args.next().unwrap_or_default();
    let is = |word: &str| sub.eq_ignore_ascii_case(word.as_bytes());
    let session = |shape, instead| Facts {
        shape,
        effect: Effect::Session { instead },
    };
    if is("REPLY") {
        // Only `CLIENT REPLY ON|OFF|SKIP` (exactly one argument) changes the mode; any other
        // form is answered with one error.
        let mode = match (args.next(), args.next()) {
            (Some(word), None) if word.eq_ignore_ascii_case(b"ON") => Some(ReplyMode::On),
            (Some(word), None) if word.eq_ignore_ascii_case(b"OFF") => Some(ReplyMode::Off),
            (Some(word), None) if word.eq_ignore_ascii_case(b"SKIP") => Some(ReplyMode::Skip),
            _ => None,
        };
        return session(mode.map_or(Shape::One, Shape::ReplyMode), USE_A_CHECKOUT);
    }
    if is("SETNAME") {
        return session(
            Shape::One,
            or_on_a_checkout!(
                "set the name in the pool's settings (client_name; connectionName in Node), or "
            ),
        );
    }
    if is("TRACKING") || is("CACHING") {
        return session(
            Shape::One,
            or_on_a_checkout!("client-side caching needs a dedicated connection; "),
        );
    }
    if is("NO-EVICT") || is("NO-TOUCH") || is("SETINFO") {
        return session(Shape::One, USE_A_CHECKOUT);
    }
    ORDINARY
}

impl Facts {
    /// True when the command is answered by exactly one frame wherever it runs, so it may be
    /// queued inside MULTI/EXEC (the EXEC reply holds one element per queued command; Redis
    /// writes the SUBSCRIBE family's confirmations and honours CLIENT REPLY OFF inside it, which
    /// breaks that framing).
    pub(crate) fn fits_in_transaction(&self) -> bool {
        matches!(self.shape, Shape::One)
    }
}

/// Why `cmd` may not be sent at all, on any connection (its output is not RESP replies).
pub(crate) fn refuse_unframed(cmd: &Cmd, facts: &Facts) -> Result<()> {
    match (facts.shape, facts.effect) {
        (Shape::Unframed, Effect::Session { instead }) => Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} is not supported: its output is not framed as replies, so nothing could be \
                 read after it; {instead}",
                command_name(cmd)
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks one command for a shared pooled connection: session commands are refused (the next
/// caller would inherit their effect, or it would be lost), and so are commands never sent.
pub(crate) fn refuse_on_shared_pool(cmd: &Cmd) -> Result<Facts> {
    let facts = facts(cmd);
    if facts == ORDINARY {
        return Ok(facts); // almost every command: nothing to refuse
    }
    refuse_unframed(cmd, &facts)?;
    if let Effect::Session { instead } = facts.effect {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "{} cannot run on a shared pooled connection: its effect on the connection would \
                 reach the next caller or be lost; {instead}",
                command_name(cmd)
            ),
        ));
    }
    Ok(facts)
}

/// Checks a command as [`crate::Pool::execute`] does before sending anything: besides what
/// [`refuse_on_shared_pool`] refuses, a lone MULTI or WATCH, since the connection goes back to the
/// pool (and is reset) before anything could follow it. The error is an
/// [`ErrorKind::InvalidArgument`] naming the command and what to use instead.
pub fn check_one_shot(cmd: &Cmd) -> Result<()> {
    let facts = refuse_on_shared_pool(cmd)?;
    let instead = match facts.effect {
        Effect::Multi => "use a transaction (transaction(), multi()) instead",
        Effect::Watch => {
            "WATCH needs MULTI/EXEC on the same connection: use a checked-out connection \
             (acquire() in Rust and C, watch() in Python and Node)"
        }
        _ => return Ok(()),
    };
    Err(Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "{} sent on its own through the pool has no effect: the connection is reset when it \
             goes back; {instead}",
            command_name(cmd)
        ),
    ))
}

/// True when a command's name alone shows that it is answered with exactly one reply and leaves
/// the connection as it was, whatever its arguments: every command but the few this module names
/// (and `CLIENT`, whose subcommands differ). Bindings that batch several callers' commands into
/// one pipeline remember it per name and call [`check_one_shot`] only for the others, so that a
/// refused command fails alone rather than its whole batch.
pub fn is_ordinary_name(name: &[u8]) -> bool {
    !name.eq_ignore_ascii_case(b"CLIENT") && facts_of_args(std::iter::once(name)) == ORDINARY
}

/// Checks the commands of a pipeline, whose facts are `facts`, in order, starting inside a
/// transaction when `in_transaction`: nothing is sent that is never sent, and a command answered
/// by other than one frame cannot be queued between MULTI and EXEC.
pub(crate) fn refuse_in_pipeline(
    cmds: &[Cmd],
    facts: &[Facts],
    mut in_transaction: bool,
) -> Result<()> {
    for (cmd, facts) in cmds.iter().zip(facts) {
        if *facts == ORDINARY {
            continue;
        }
        refuse_unframed(cmd, facts)?;
        if in_transaction && !facts.fits_in_transaction() {
            return Err(cannot_queue(
                cmd,
                "Redis would answer it inside the EXEC reply with other than one element, which \
                 breaks the reply's framing",
            ));
        }
        match facts.effect {
            Effect::Multi => in_transaction = true,
            Effect::EndTransaction => in_transaction = false,
            _ => {}
        }
    }
    Ok(())
}

/// Checks the commands of a transaction's body (what goes between the MULTI and the EXEC that
/// redpool sends), whose facts are `facts`: as in a pipeline inside MULTI, and no MULTI, EXEC,
/// DISCARD or WATCH of their own, which would end the transaction early or fail it.
pub(crate) fn refuse_in_transaction_body(cmds: &[Cmd], facts: &[Facts]) -> Result<()> {
    refuse_in_pipeline(cmds, facts, true)?;
    for (cmd, facts) in cmds.iter().zip(facts) {
        if matches!(
            facts.effect,
            Effect::Multi | Effect::EndTransaction | Effect::Watch
        ) {
            return Err(cannot_queue(
                cmd,
                "the transaction's own MULTI and EXEC are sent by redpool (WATCH goes before it, \
                 on a checked-out connection)",
            ));
        }
    }
    Ok(())
}

fn cannot_queue(cmd: &Cmd, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!(
            "{} cannot be queued in MULTI/EXEC: {why}",
            command_name(cmd)
        ),
    )
}

/// Longest command name the tables hold (longer names are in none of them).
const NAME_BUFFER: usize = 24;

/// `name` with every ASCII letter mapped by `fold`, in `buffer`; `None` when it does not fit or is
/// not text. No allocation: this runs on every command.
fn folded_name<'b>(
    name: &[u8],
    buffer: &'b mut [u8; NAME_BUFFER],
    fold: fn(&u8) -> u8,
) -> Option<&'b str> {
    let folded = buffer.get_mut(..name.len())?;
    for (to, from) in folded.iter_mut().zip(name) {
        *to = fold(from);
    }
    std::str::from_utf8(folded).ok()
}

fn arg_bytes(arg: redis::Arg<&[u8]>) -> &[u8] {
    match arg {
        redis::Arg::Simple(bytes) => bytes,
        _ => &[],
    }
}

/// The arguments of `cmd` as byte slices (name first).
pub(crate) fn arg_slices(cmd: &Cmd) -> impl Iterator<Item = &[u8]> {
    cmd.args_iter().map(arg_bytes)
}

/// The command's name (its first argument) as bytes.
pub(crate) fn command_name_bytes(cmd: &Cmd) -> &[u8] {
    arg_slices(cmd).next().unwrap_or_default()
}

/// The command's name for messages (first argument, lossily as text, upper case; with its
/// subcommand for container commands such as CLIENT).
pub(crate) fn command_name(cmd: &Cmd) -> String {
    let mut args = arg_slices(cmd);
    let name = String::from_utf8_lossy(args.next().unwrap_or_default()).to_uppercase();
    if name == "CLIENT" {
        if let Some(sub) = args.next() {
            return format!("{name} {}", String::from_utf8_lossy(sub).to_uppercase());
        }
    }
    name
}

/// A command from its words, for tests.
#[cfg(test)]
pub(crate) fn command_of(words: &[&str]) -> Cmd {
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts_of(words: &[&str]) -> Facts {
        facts(&command_of(words))
    }

    #[test]
    fn ordinary_commands_get_one_reply_and_leave_no_state() {
        for args in [
            &["GET", "k"][..],
            &["CLIENT", "LIST"],
            &["CLIENT"],
            &["SWAPDB", "0", "1"],
        ] {
            assert_eq!(facts_of(args), ORDINARY, "{args:?}");
        }
    }

    #[test]
    fn the_subscribe_family_counts_names_case_insensitively() {
        assert_eq!(
            facts_of(&["unsubscribe", "a", "b"]).shape,
            Shape::Confirmations {
                family: Family::Channels,
                subscribes: false,
                names: 2
            }
        );
        assert_eq!(
            facts_of(&["PUNSUBSCRIBE"]).shape,
            Shape::Confirmations {
                family: Family::Patterns,
                subscribes: false,
                names: 0
            }
        );
        assert!(matches!(
            facts_of(&["SSubscribe", "x"]).effect,
            Effect::Session { .. }
        ));
    }

    #[test]
    fn client_reply_changes_the_mode_only_in_its_exact_form() {
        assert_eq!(
            facts_of(&["CLIENT", "REPLY", "off"]).shape,
            Shape::ReplyMode(ReplyMode::Off)
        );
        assert_eq!(
            facts_of(&["client", "reply", "SKIP"]).shape,
            Shape::ReplyMode(ReplyMode::Skip)
        );
        assert_eq!(
            facts_of(&["CLIENT", "REPLY", "ON"]).shape,
            Shape::ReplyMode(ReplyMode::On)
        );
        assert_eq!(facts_of(&["CLIENT", "REPLY", "OFF", "x"]).shape, Shape::One);
        assert_eq!(facts_of(&["CLIENT", "REPLY"]).shape, Shape::One);
    }

    #[test]
    fn the_pool_refuses_session_commands_and_names_them() {
        for args in [
            &["SELECT", "1"][..],
            &["client", "setname", "x"],
            &["READONLY"],
            &["AUTH", "pw"],
            &["HELLO", "3"],
            &["CLIENT", "REPLY", "OFF"],
            &["CLIENT", "TRACKING", "ON"],
            &["RESET"],
            &["MONITOR"],
            &["SUBSCRIBE", "a"],
            &["UNSUBSCRIBE", "a", "b"],
            &["SYNC"],
            &["PSYNC", "?", "-1"],
            &["REPLCONF", "ACK", "0"],
        ] {
            let err = refuse_on_shared_pool(&command_of(args)).expect_err(args[0]);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            let name = args[0].to_uppercase();
            assert!(err.message().starts_with(&name), "{err:?}");
        }
        assert!(refuse_on_shared_pool(&redis::cmd("GET")).is_ok());
        assert!(refuse_on_shared_pool(&redis::cmd("QUIT")).is_ok());
        assert!(check_one_shot(&redis::cmd("MULTI")).is_err());
        assert!(check_one_shot(redis::cmd("WATCH").arg("k")).is_err());
        assert!(check_one_shot(&redis::cmd("EXEC")).is_ok());
        assert!(is_ordinary_name(b"get") && is_ordinary_name(b"SWAPDB"));
        for special in [
            &b"client"[..],
            b"SELECT",
            b"unsubscribe",
            b"MULTI",
            b"quit",
            b"sync",
        ] {
            assert!(!is_ordinary_name(special), "{special:?}");
        }
    }

    #[test]
    fn transactions_refuse_what_breaks_the_exec_framing() {
        let pipeline = |words: &[&[&str]], in_transaction| {
            let cmds: Vec<Cmd> = words.iter().map(|w| command_of(w)).collect();
            let all: Vec<Facts> = cmds.iter().map(facts).collect();
            refuse_in_pipeline(&cmds, &all, in_transaction)
        };
        let body = |words: &[&[&str]]| {
            let cmds: Vec<Cmd> = words.iter().map(|w| command_of(w)).collect();
            let all: Vec<Facts> = cmds.iter().map(facts).collect();
            refuse_in_transaction_body(&cmds, &all)
        };
        let (sub, get): (&[&str], &[&str]) = (&["SUBSCRIBE", "a"], &["GET", "k"]);
        let (multi, exec): (&[&str], &[&str]) = (&["MULTI"], &["EXEC"]);
        assert!(pipeline(&[get, sub], false).is_ok());
        assert!(pipeline(&[get, sub], true).is_err());
        assert!(pipeline(&[multi, sub, exec], false).is_err());
        assert!(pipeline(&[multi, get, exec, sub], false).is_ok());
        assert!(pipeline(&[&["SYNC"]], false).is_err());
        assert!(body(&[get]).is_ok());
        for bad in [
            sub,
            exec,
            multi,
            &["DISCARD"],
            &["WATCH", "k"],
            &["CLIENT", "REPLY", "OFF"],
        ] {
            assert!(body(&[get, bad]).is_err(), "{bad:?}");
        }
    }
}
