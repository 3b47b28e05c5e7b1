//! The fixed table of command names that bounds the `command` label of metrics.

use super::{NAME_BUFFER, folded_name};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
