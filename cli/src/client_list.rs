//! `CLIENT LIST` parsing, filtering and grouping by client name.

use std::collections::BTreeMap;
use std::time::Duration;

/// One line of `CLIENT LIST`: the fields the tool shows or filters on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// `id`: what `CLIENT KILL ID` takes.
    pub id: u64,
    /// `addr`: the client's `ip:port`.
    pub addr: String,
    /// `name` (set with `CLIENT SETNAME`; empty when unnamed).
    pub name: String,
    /// `age`: seconds since the connection was opened.
    pub age: u64,
    /// `idle`: seconds since its last command.
    pub idle: u64,
    /// `db`: the selected database.
    pub db: i64,
    /// `cmd`: its last command (`NULL` before the first one).
    pub cmd: String,
}

impl ClientInfo {
    /// Parses one `k=v k=v ...` line; `None` for a line without an `id`.
    pub fn parse(line: &str) -> Option<ClientInfo> {
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for kv in line.split_whitespace() {
            if let Some((k, v)) = kv.split_once('=') {
                fields.insert(k, v);
            }
        }
        let text = |k: &str| fields.get(k).copied().unwrap_or_default().to_string();
        let number = |k: &str| fields.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        Some(ClientInfo {
            id: fields.get("id")?.parse().ok()?,
            addr: text("addr"),
            name: text("name"),
            age: number("age"),
            idle: number("idle"),
            db: fields.get("db").and_then(|v| v.parse().ok()).unwrap_or(0),
            cmd: text("cmd"),
        })
    }

    /// The name for display: `(no name)` when unnamed.
    pub fn shown_name(&self) -> &str {
        if self.name.is_empty() {
            "(no name)"
        } else {
            &self.name
        }
    }
}

/// Parses the whole `CLIENT LIST` reply, leaving out `exclude` (the CLI's own connection).
pub fn parse(text: &str, exclude: u64) -> Vec<ClientInfo> {
    text.lines()
        .filter_map(ClientInfo::parse)
        .filter(|c| c.id != exclude)
        .collect()
}

/// Which clients `redpool clients` selects.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exact client name.
    pub name: Option<String>,
    /// Idle for longer than this.
    pub idle_over: Option<Duration>,
}

impl Filter {
    /// Whether `client` passes every filter that is set.
    pub fn matches(&self, client: &ClientInfo) -> bool {
        let name_ok = self.name.as_ref().is_none_or(|n| *n == client.name);
        let idle_ok = self
            .idle_over
            .is_none_or(|limit| Duration::from_secs(client.idle) > limit);
        name_ok && idle_ok
    }
}

/// The clients sharing one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The shared name, `(no name)` for unnamed clients.
    pub name: String,
    /// How many clients.
    pub count: usize,
    /// Idle seconds: least, median (lower middle), most.
    pub idle_min: u64,
    /// See `idle_min`.
    pub idle_median: u64,
    /// See `idle_min`.
    pub idle_max: u64,
    /// Age of the oldest connection, in seconds.
    pub oldest: u64,
    /// The most frequent last command and how many clients ran it last.
    pub top_cmd: (String, usize),
}

/// Groups clients by name, largest group first (then by name).
pub fn group_by_name(clients: &[ClientInfo]) -> Vec<Group> {
    let mut by_name: BTreeMap<&str, Vec<&ClientInfo>> = BTreeMap::new();
    for c in clients {
        by_name.entry(c.shown_name()).or_default().push(c);
    }
    let mut groups: Vec<Group> = by_name
        .into_iter()
        .map(|(name, members)| summarize(name, &members))
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    groups
}

fn summarize(name: &str, members: &[&ClientInfo]) -> Group {
    let mut idle: Vec<u64> = members.iter().map(|c| c.idle).collect();
    idle.sort_unstable();
    let mut cmds: BTreeMap<&str, usize> = BTreeMap::new();
    for c in members {
        *cmds.entry(c.cmd.as_str()).or_default() += 1;
    }
    let top_cmd = cmds
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
        .map_or((String::new(), 0), |(cmd, n)| (cmd.to_string(), n));
    Group {
        name: name.to_string(),
        count: members.len(),
        idle_min: idle.first().copied().unwrap_or(0),
        idle_median: idle.get((idle.len().max(1) - 1) / 2).copied().unwrap_or(0),
        idle_max: idle.last().copied().unwrap_or(0),
        oldest: members.iter().map(|c| c.age).max().unwrap_or(0),
        top_cmd,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "\
id=3 addr=127.0.0.1:50000 laddr=127.0.0.1:6379 fd=8 name=worker age=100 idle=10 flags=N db=0 cmd=get user=default
id=4 addr=127.0.0.1:50001 laddr=127.0.0.1:6379 fd=9 name=worker age=50 idle=2 flags=N db=1 cmd=set user=default
id=5 addr=127.0.0.1:50002 laddr=127.0.0.1:6379 fd=10 name= age=7 idle=7 flags=N db=0 cmd=NULL user=default
id=6 addr=127.0.0.1:50003 laddr=127.0.0.1:6379 fd=11 name=worker age=300 idle=300 flags=N db=0 cmd=get user=default
id=9 addr=127.0.0.1:50004 laddr=127.0.0.1:6379 fd=12 name=redpool-cli age=1 idle=0 flags=N db=0 cmd=client|list user=default
";

    #[test]
    fn parses_and_excludes_the_own_connection() {
        let clients = parse(LIST, 9);
        assert_eq!(clients.len(), 4);
        assert_eq!(
            clients[1],
            ClientInfo {
                id: 4,
                addr: "127.0.0.1:50001".into(),
                name: "worker".into(),
                age: 50,
                idle: 2,
                db: 1,
                cmd: "set".into(),
            }
        );
        assert_eq!(clients[2].shown_name(), "(no name)");
        assert_eq!(ClientInfo::parse("garbage without id"), None);
    }

    #[test]
    fn filters_by_exact_name_and_idle_above() {
        let clients = parse(LIST, 9);
        let ids = |f: &Filter| -> Vec<u64> {
            clients
                .iter()
                .filter(|c| f.matches(c))
                .map(|c| c.id)
                .collect()
        };
        let name = |n: &str| Some(n.to_string());
        assert_eq!(ids(&Filter::default()), vec![3, 4, 5, 6]);
        assert_eq!(
            ids(&Filter {
                name: name("work"),
                idle_over: None
            }),
            Vec::<u64>::new()
        );
        let idle = Some(Duration::from_secs(10));
        assert_eq!(
            ids(&Filter {
                name: name("worker"),
                idle_over: idle
            }),
            vec![6]
        );
        assert_eq!(
            ids(&Filter {
                name: None,
                idle_over: Some(Duration::from_millis(6500))
            }),
            vec![3, 5, 6]
        );
    }

    #[test]
    fn groups_by_name_with_idle_statistics() {
        let groups = group_by_name(&parse(LIST, 9));
        assert_eq!(groups.len(), 2);
        let worker = &groups[0];
        assert_eq!(worker.name, "worker");
        assert_eq!(worker.count, 3);
        assert_eq!(
            (worker.idle_min, worker.idle_median, worker.idle_max),
            (2, 10, 300)
        );
        assert_eq!(worker.oldest, 300);
        assert_eq!(worker.top_cmd, ("get".to_string(), 2));
        assert_eq!(groups[1].name, "(no name)");
        assert_eq!(groups[1].idle_median, 7);
    }
}
