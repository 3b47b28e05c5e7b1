//! Which commands a retry may send again after the first attempt was written: an allowlist of
//! commands that leave the same data and give the same reply when applied twice, and of the
//! options under which that holds. Anything not on it (unknown commands and options included) is
//! never resent once a byte of it left.

use super::{NAME_BUFFER, folded_name};

/// Commands that may safely run twice: reads, plus writes that set an absolute state. Sorted,
/// upper case (binary searched). Those with options are checked further by [`options_allow_resend`].
///
/// Deliberately absent: counters and list/stream/set mutations (INCR, LPUSH, SADD, XADD, ...),
/// anything relative to the current state or time (EXPIRE, GETEX, GETDEL, RPOPLPUSH, SPOP), and
/// scripts (EVAL, FCALL: their effects are unknown).
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

/// The options of `SET key value [...]` under which a second application changes nothing: an
/// absolute expiry. `GET`, `NX`, `XX`, `KEEPTTL` and any option Redis may add later are not here.
const SET_RESENDABLE_OPTIONS: [&str; 4] = ["EX", "PX", "EXAT", "PXAT"];

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
    options_allow_resend(upper, args)
}

/// For the commands of [`IDEMPOTENT`] whose options can make a second application differ: true
/// only when every option is on the command's allowlist.
fn options_allow_resend<'a>(upper_name: &str, mut args: impl Iterator<Item = &'a [u8]>) -> bool {
    match upper_name {
        // SET key value [EX s | PX ms | EXAT ts | PXAT ts]: each option is a word and its value.
        "SET" => {
            let mut options = args.skip(2);
            while let Some(option) = options.next() {
                let allowed = SET_RESENDABLE_OPTIONS
                    .iter()
                    .any(|word| option.eq_ignore_ascii_case(word.as_bytes()));
                if !allowed || options.next().is_none() {
                    return false;
                }
            }
            true
        }
        // EXPIREAT / PEXPIREAT key timestamp: with NX, XX, GT or LT the second call answers 0.
        "EXPIREAT" | "PEXPIREAT" => args.nth(2).is_none(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str]) -> bool {
        is_idempotent(args.iter().map(|a| a.as_bytes()))
    }

    #[test]
    fn the_table_is_sorted() {
        let mut sorted = IDEMPOTENT.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, IDEMPOTENT, "the table must stay sorted");
        assert!(IDEMPOTENT.iter().all(|c| c.len() <= NAME_BUFFER));
    }

    #[test]
    fn reads_and_absolute_writes_may_be_resent() {
        for args in [
            &["get", "k"][..],
            &["SET", "k", "v"],
            &["SET", "k", "v", "EX", "10"],
            &["set", "k", "v", "px", "10"],
            &["SET", "k", "v", "EXAT", "1700000000"],
            &["SET", "k", "v", "PXAT", "1700000000000"],
            &["HGETALL", "h"],
            &["EXPIREAT", "k", "1700000000"],
            &["PEXPIREAT", "k", "1700000000000"],
        ] {
            assert!(check(args), "{args:?}");
        }
    }

    #[test]
    fn anything_else_is_never_resent() {
        for args in [
            &["INCR", "k"][..],
            &["LPUSH", "l", "x"],
            &["SET", "k", "v", "GET"],
            &["SET", "k", "v", "keepttl"],
            &["SET", "k", "v", "NX"],
            &["SET", "k", "v", "XX", "EX", "10"],
            &["SET", "k", "v", "EX", "10", "NX"],
            &["SET", "k", "v", "EX"],
            &["SET", "k", "v", "IFEQ", "old"],
            &["EXPIREAT", "k", "1700000000", "NX"],
            &["EXPIREAT", "k", "1700000000", "GT"],
            &["PEXPIREAT", "k", "1700000000000", "XX"],
            &["EXPIRE", "k", "10"],
            &["RPOPLPUSH", "a", "b"],
            &["EVAL", "return 1", "0"],
            &["XADD", "s", "*", "f", "v"],
            &["AVERYLONGCOMMANDNAMETHATDOESNOTEXIST"],
            &["FROBNICATE"],
        ] {
            assert!(!check(args), "{args:?}");
        }
        assert!(!is_idempotent(std::iter::empty()));
    }
}
