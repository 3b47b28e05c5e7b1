//! What the pool needs to know about commands by name: which ones change the state of the
//! connection they run on, so that a connection goes back to the idle set only when it is clean.
//!
//! It also holds the idempotency table used by retries, so every command fact lives in one place.

/// How a command changes the server-side state of its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEffect {
    /// Leaves the connection as it was (almost every command).
    None,
    /// `MULTI`: a transaction is open until EXEC or DISCARD.
    BeginTransaction,
    /// `EXEC` / `DISCARD`: ends the transaction and every WATCH.
    EndTransaction,
    /// `WATCH`: keys are watched until EXEC, DISCARD or UNWATCH.
    Watch,
    /// `UNWATCH`: no key is watched any more.
    Unwatch,
    /// Changes the connection for good (SELECT, SUBSCRIBE, MONITOR, HELLO, AUTH, CLIENT REPLY, ...):
    /// the connection must be closed rather than reused.
    Taint,
}

/// Classifies a command by its name (first argument) and, for `CLIENT`, its subcommand.
pub(crate) fn session_effect(name: &[u8], subcommand: Option<&[u8]>) -> SessionEffect {
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    match name.len() {
        4 if is("EXEC") => SessionEffect::EndTransaction,
        4 if is("AUTH") || is("QUIT") => SessionEffect::Taint,
        5 if is("MULTI") => SessionEffect::BeginTransaction,
        5 if is("WATCH") => SessionEffect::Watch,
        5 if is("RESET") || is("HELLO") => SessionEffect::Taint,
        6 if is("SELECT") => SessionEffect::Taint,
        6 if is("CLIENT") => client_subcommand_effect(subcommand.unwrap_or_default()),
        7 if is("DISCARD") => SessionEffect::EndTransaction,
        7 if is("UNWATCH") => SessionEffect::Unwatch,
        7 if is("MONITOR") || is("SWAPDB") => SessionEffect::Taint,
        8 if is("READONLY") => SessionEffect::Taint,
        9 if is("SUBSCRIBE") || is("READWRITE") => SessionEffect::Taint,
        10 if is("PSUBSCRIBE") || is("SSUBSCRIBE") => SessionEffect::Taint,
        _ => SessionEffect::None,
    }
}

fn client_subcommand_effect(sub: &[u8]) -> SessionEffect {
    const STATEFUL: [&str; 7] = [
        "REPLY", "TRACKING", "SETNAME", "NO-EVICT", "NO-TOUCH", "CACHING", "SETINFO",
    ];
    if STATEFUL
        .iter()
        .any(|s| sub.eq_ignore_ascii_case(s.as_bytes()))
    {
        SessionEffect::Taint
    } else {
        SessionEffect::None
    }
}

/// Commands that may safely run twice: applying them again leaves the same data and gives the same
/// reply. Reads, plus writes that set an absolute state. Sorted, upper case (binary searched).
///
/// Deliberately absent: counters and list/stream/set mutations (INCR, LPUSH, SADD, XADD, ...),
/// anything relative to the current state or time (EXPIRE, GETEX, GETDEL, RPOPLPUSH, SPOP),
/// scripts (EVAL, FCALL: their effects are unknown), and SET with GET, KEEPTTL, NX or XX (a second
/// application answers differently: the new value, or nil instead of OK).
const IDEMPOTENT: &[&str] = &[
    "BITCOUNT",
    "BITFIELD_RO",
    "BITPOS",
    "DBSIZE",
    "DUMP",
    "ECHO",
    "EVALSHA_RO",
    "EVAL_RO",
    "EXISTS",
    "EXPIREAT",
    "EXPIRETIME",
    "FCALL_RO",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEORADIUSBYMEMBER_RO",
    "GEORADIUS_RO",
    "GEOSEARCH",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HMSET",
    "HRANDFIELD",
    "HSCAN",
    "HSTRLEN",
    "HVALS",
    "INFO",
    "KEYS",
    "LCS",
    "LINDEX",
    "LLEN",
    "LPOS",
    "LRANGE",
    "MGET",
    "MSET",
    "PEXPIREAT",
    "PEXPIRETIME",
    "PFCOUNT",
    "PING",
    "PSETEX",
    "PTTL",
    "RANDOMKEY",
    "SCAN",
    "SCARD",
    "SDIFF",
    "SET",
    "SETEX",
    "SINTER",
    "SINTERCARD",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "SORT_RO",
    "SRANDMEMBER",
    "SSCAN",
    "STRLEN",
    "SUBSTR",
    "SUNION",
    "TIME",
    "TOUCH",
    "TTL",
    "TYPE",
    "XLEN",
    "XPENDING",
    "XRANGE",
    "XREVRANGE",
    "ZCARD",
    "ZCOUNT",
    "ZDIFF",
    "ZINTER",
    "ZLEXCOUNT",
    "ZMSCORE",
    "ZRANDMEMBER",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYLEX",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
    "ZUNION",
];

/// SET options that make a second application answer differently.
const SET_NOT_IDEMPOTENT_WITH: [&str; 4] = ["GET", "KEEPTTL", "NX", "XX"];

/// True when the command `args` (name first) may be applied twice without changing the outcome.
pub(crate) fn is_idempotent<'a>(mut args: impl Iterator<Item = &'a [u8]>) -> bool {
    let Some(name) = args.next() else {
        return false;
    };
    let mut buffer = [0u8; NAME_BUFFER];
    let Some(upper) = folded_name(name, &mut buffer, u8::to_ascii_uppercase) else {
        return false;
    };
    if IDEMPOTENT.binary_search(&upper).is_err() {
        return false;
    }
    if upper == "SET" {
        return !args.any(|arg| {
            SET_NOT_IDEMPOTENT_WITH
                .iter()
                .any(|option| arg.eq_ignore_ascii_case(option.as_bytes()))
        });
    }
    true
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

/// Every top-level command of Redis 7.0 (`COMMAND LIST`), lower case, sorted: the fixed set of
/// `command` label values in metrics, so no caller can create unbounded label sets. Other names
/// are counted together as [`OTHER_COMMAND`].
#[rustfmt::skip]
pub(crate) const KNOWN_COMMANDS: &[&str] = &[
    "acl", "append", "asking", "auth", "bgrewriteaof", "bgsave", "bitcount", "bitfield",
    "bitfield_ro", "bitop", "bitpos", "blmove", "blmpop", "blpop", "brpop", "brpoplpush",
    "bzmpop", "bzpopmax", "bzpopmin", "client", "cluster", "command", "config", "copy", "dbsize",
    "debug", "decr", "decrby", "del", "discard", "dump", "echo", "eval", "eval_ro", "evalsha",
    "evalsha_ro", "exec", "exists", "expire", "expireat", "expiretime", "failover", "fcall",
    "fcall_ro", "flushall", "flushdb", "function", "geoadd", "geodist", "geohash", "geopos",
    "georadius", "georadius_ro", "georadiusbymember", "georadiusbymember_ro", "geosearch",
    "geosearchstore", "get", "getbit", "getdel", "getex", "getrange", "getset", "hdel", "hello",
    "hexists", "hget", "hgetall", "hincrby", "hincrbyfloat", "hkeys", "hlen", "hmget", "hmset",
    "hrandfield", "hscan", "hset", "hsetnx", "hstrlen", "hvals", "incr", "incrby", "incrbyfloat",
    "info", "keys", "lastsave", "latency", "lcs", "lindex", "linsert", "llen", "lmove", "lmpop",
    "lolwut", "lpop", "lpos", "lpush", "lpushx", "lrange", "lrem", "lset", "ltrim", "memory",
    "mget", "migrate", "module", "monitor", "move", "mset", "msetnx", "multi", "object",
    "persist", "pexpire", "pexpireat", "pexpiretime", "pfadd", "pfcount", "pfdebug", "pfmerge",
    "pfselftest", "ping", "psetex", "psubscribe", "psync", "pttl", "publish", "pubsub",
    "punsubscribe", "quit", "randomkey", "readonly", "readwrite", "rename", "renamenx",
    "replconf", "replicaof", "reset", "restore", "restore-asking", "role", "rpop", "rpoplpush",
    "rpush", "rpushx", "sadd", "save", "scan", "scard", "script", "sdiff", "sdiffstore", "select",
    "set", "setbit", "setex", "setnx", "setrange", "shutdown", "sinter", "sintercard",
    "sinterstore", "sismember", "slaveof", "slowlog", "smembers", "smismember", "smove", "sort",
    "sort_ro", "spop", "spublish", "srandmember", "srem", "sscan", "ssubscribe", "strlen",
    "subscribe", "substr", "sunion", "sunionstore", "sunsubscribe", "swapdb", "sync", "time",
    "touch", "ttl", "type", "unlink", "unsubscribe", "unwatch", "wait", "watch", "xack", "xadd",
    "xautoclaim", "xclaim", "xdel", "xgroup", "xinfo", "xlen", "xpending", "xrange", "xread",
    "xreadgroup", "xrevrange", "xsetid", "xtrim", "zadd", "zcard", "zcount", "zdiff",
    "zdiffstore", "zincrby", "zinter", "zintercard", "zinterstore", "zlexcount", "zmpop",
    "zmscore", "zpopmax", "zpopmin", "zrandmember", "zrange", "zrangebylex", "zrangebyscore",
    "zrangestore", "zrank", "zrem", "zremrangebylex", "zremrangebyrank", "zremrangebyscore",
    "zrevrange", "zrevrangebylex", "zrevrangebyscore", "zrevrank", "zscan", "zscore", "zunion",
    "zunionstore",
];

/// The metrics label of commands not in [`KNOWN_COMMANDS`].
pub(crate) const OTHER_COMMAND: &str = "other";

/// The position of a command (by its name, any case) in [`KNOWN_COMMANDS`], or
/// `KNOWN_COMMANDS.len()` for any other name (the [`OTHER_COMMAND`] group).
pub(crate) fn command_index(name: &[u8]) -> usize {
    let mut buffer = [0u8; NAME_BUFFER];
    folded_name(name, &mut buffer, u8::to_ascii_lowercase)
        .and_then(|lower| KNOWN_COMMANDS.binary_search(&lower).ok())
        .unwrap_or(KNOWN_COMMANDS.len())
}

/// The open transaction / watch state of one connection, kept as commands are sent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SessionState {
    /// A MULTI was sent without EXEC or DISCARD.
    pub in_transaction: bool,
    /// A WATCH is active.
    pub watching: bool,
    /// A command changed the connection for good; it must not be reused.
    pub tainted: bool,
}

impl SessionState {
    /// Updates the state for a command about to be sent.
    pub fn apply(&mut self, effect: SessionEffect) {
        match effect {
            SessionEffect::None => {}
            SessionEffect::BeginTransaction => self.in_transaction = true,
            SessionEffect::EndTransaction => {
                self.in_transaction = false;
                self.watching = false;
            }
            SessionEffect::Watch => self.watching = true,
            SessionEffect::Unwatch => self.watching = false,
            SessionEffect::Taint => self.tainted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_case_insensitively() {
        assert_eq!(
            session_effect(b"multi", None),
            SessionEffect::BeginTransaction
        );
        assert_eq!(session_effect(b"Exec", None), SessionEffect::EndTransaction);
        assert_eq!(session_effect(b"select", None), SessionEffect::Taint);
        assert_eq!(session_effect(b"GET", None), SessionEffect::None);
        assert_eq!(
            session_effect(b"client", Some(b"setname")),
            SessionEffect::Taint
        );
        assert_eq!(
            session_effect(b"CLIENT", Some(b"LIST")),
            SessionEffect::None
        );
        assert_eq!(session_effect(b"CLIENT", None), SessionEffect::None);
    }

    #[test]
    fn idempotency_table() {
        let check = |args: &[&str]| is_idempotent(args.iter().map(|a| a.as_bytes()));
        let mut sorted = IDEMPOTENT.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, IDEMPOTENT, "the table must stay sorted");
        assert!(check(&["get", "k"]));
        assert!(check(&["SET", "k", "v", "EX", "10"]));
        assert!(check(&["HGETALL", "h"]));
        for unsafe_cmd in [
            &["INCR", "k"][..],
            &["LPUSH", "l", "x"],
            &["SET", "k", "v", "GET"],
            &["SET", "k", "v", "keepttl"],
            &["SET", "k", "v", "NX"],
            &["RPOPLPUSH", "a", "b"],
            &["EVAL", "return 1", "0"],
            &["XADD", "s", "*", "f", "v"],
            &["AVERYLONGCOMMANDNAMETHATDOESNOTEXIST"],
        ] {
            assert!(!check(unsafe_cmd), "{unsafe_cmd:?}");
        }
        assert!(!is_idempotent(std::iter::empty()));
    }

    #[test]
    fn command_table_is_sorted_and_groups_unknown_names() {
        let mut sorted = KNOWN_COMMANDS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, KNOWN_COMMANDS, "the table must stay sorted");
        assert!(KNOWN_COMMANDS.iter().all(|c| c.len() <= NAME_BUFFER));
        assert_eq!(KNOWN_COMMANDS[command_index(b"GET")], "get");
        assert_eq!(
            KNOWN_COMMANDS[command_index(b"zRangeByScore")],
            "zrangebyscore"
        );
        let other = KNOWN_COMMANDS.len();
        assert_eq!(command_index(b"NOT-A-COMMAND"), other);
        assert_eq!(command_index(b""), other);
        assert_eq!(command_index(&[0xff, 0xfe]), other);
        assert_eq!(command_index(&[b'x'; 100]), other);
    }

    #[test]
    fn exec_ends_watch_and_transaction() {
        let mut state = SessionState::default();
        state.apply(SessionEffect::Watch);
        state.apply(SessionEffect::BeginTransaction);
        assert!(state.watching && state.in_transaction);
        state.apply(SessionEffect::EndTransaction);
        assert_eq!(state, SessionState::default());
    }
}
