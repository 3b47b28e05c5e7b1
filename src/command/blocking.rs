//! Blocking commands (BLPOP, XREAD BLOCK, WAIT, ...): where their block time is, and the reply
//! timeout a call of one needs. The one place that knows it: the C API, Python and Node all call
//! [`blocking_reply_timeout`].

use std::time::Duration;

use redis::Cmd;

use super::arg_slices;
use crate::error::{Error, Result};

/// How long a command that blocks forever (block time 0) waits for its reply: 365 days, the
/// longest wait of any redpool call.
pub const BLOCK_FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where a blocking command's block time is.
enum At {
    /// The last argument.
    Last,
    /// The first argument after the name.
    First,
    /// The argument after the word `BLOCK` (none: the command does not block).
    AfterBlock,
}

/// The blocking commands: name, where the block time is, and whether it is in milliseconds
/// (else seconds, fractions allowed).
const BLOCKING: &[(&str, At, bool)] = &[
    ("BLPOP", At::Last, false),
    ("BRPOP", At::Last, false),
    ("BRPOPLPUSH", At::Last, false),
    ("BLMOVE", At::Last, false),
    ("BZPOPMIN", At::Last, false),
    ("BZPOPMAX", At::Last, false),
    ("BLMPOP", At::First, false),
    ("BZMPOP", At::First, false),
    ("XREAD", At::AfterBlock, true),
    ("XREADGROUP", At::AfterBlock, true),
    ("WAIT", At::Last, true),
    ("WAITAOF", At::Last, true),
];

/// The reply timeout of a one-shot call of `cmd`: the caller's `timeout` if it gave one, else
/// [`blocking_reply_timeout`] with the `socket_timeout` as slack (None: the connection's
/// ordinary `socket_timeout` applies).
pub fn call_reply_timeout(
    cmd: &Cmd,
    timeout: Option<Duration>,
    socket_timeout: Duration,
) -> Result<Option<Duration>> {
    match timeout {
        Some(timeout) => Ok(Some(timeout)),
        None => blocking_reply_timeout(cmd, socket_timeout),
    }
}

/// The reply timeout a call of `cmd` needs, or None when `cmd` does not block (it is not a
/// blocking command, XREAD without BLOCK) or its block time is one the server refuses at once
/// (not a number, negative): the ordinary `socket_timeout` applies then, and the server's error
/// reply answers it.
///
/// A block time of 0 blocks forever: [`BLOCK_FOREVER`]. Any other is the block time plus
/// `slack` (the socket timeout, so the server's own "timed out" reply arrives first; or a
/// caller's command timeout, for a call's deadline), at most [`BLOCK_FOREVER`]. A block time
/// over 365 days, which no redpool call waits for, is an `InvalidArgument` naming the command.
pub fn blocking_reply_timeout(cmd: &Cmd, slack: Duration) -> Result<Option<Duration>> {
    let args: Vec<&[u8]> = arg_slices(cmd).collect();
    let Some((name, rest)) = args.split_first() else {
        return Ok(None);
    };
    let Some((name, at, millis)) = BLOCKING
        .iter()
        .find(|(known, _, _)| known.as_bytes().eq_ignore_ascii_case(name))
    else {
        return Ok(None);
    };
    let raw = match at {
        At::Last => rest.last(),
        At::First => rest.first(),
        At::AfterBlock => rest
            .iter()
            .position(|arg| arg.eq_ignore_ascii_case(b"BLOCK"))
            .and_then(|at| rest.get(at + 1)),
    };
    let Some(value) = raw
        .and_then(|raw| std::str::from_utf8(raw).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|value| value.is_finite() && *value >= 0.0)
    else {
        return Ok(None);
    };
    if value == 0.0 {
        return Ok(Some(BLOCK_FOREVER));
    }
    let seconds = if *millis { value / 1000.0 } else { value };
    let block = Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|block| *block <= BLOCK_FOREVER)
        .ok_or_else(|| {
            let unit = if *millis {
                "31536000000 ms"
            } else {
                "31536000 s"
            };
            Error::invalid(
                &format!("{name} timeout"),
                String::from_utf8_lossy(raw.copied().unwrap_or_default()),
                &format!("must be at most 365 days ({unit}); 0 blocks forever"),
            )
        })?;
    Ok(Some(block.saturating_add(slack).min(BLOCK_FOREVER)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cmd;

    const SOCKET: Duration = Duration::from_secs(5);

    fn timeout(words: &[&str]) -> Result<Option<Duration>> {
        let mut c = cmd(words[0]);
        for word in &words[1..] {
            c.arg(*word);
        }
        blocking_reply_timeout(&c, SOCKET)
    }

    #[test]
    fn block_times_by_command() {
        let secs = |s: f64| Ok(Some(Duration::from_secs_f64(s)));
        assert_eq!(timeout(&["BLPOP", "a", "b", "2"]), secs(7.0));
        assert_eq!(timeout(&["blpop", "a", "0.5"]), secs(5.5));
        assert_eq!(timeout(&["BLMPOP", "1", "1", "a", "LEFT"]), secs(6.0));
        assert_eq!(
            timeout(&["XREAD", "BLOCK", "1500", "STREAMS", "s", "$"]),
            secs(6.5)
        );
        assert_eq!(timeout(&["WAIT", "1", "250"]), secs(5.25));
        assert_eq!(timeout(&["XREAD", "STREAMS", "s", "$"]), Ok(None));
        assert_eq!(timeout(&["GET", "1"]), Ok(None));
    }

    #[test]
    fn zero_blocks_forever_and_refused_values_get_the_socket_timeout() {
        assert_eq!(timeout(&["BLPOP", "a", "0"]), Ok(Some(BLOCK_FOREVER)));
        assert_eq!(timeout(&["WAIT", "1", "0"]), Ok(Some(BLOCK_FOREVER)));
        for refused in ["-1", "abc", "nan", "inf", ""] {
            assert_eq!(timeout(&["BLPOP", "a", refused]), Ok(None), "{refused}");
        }
        assert_eq!(timeout(&["BLPOP"]), Ok(None));
    }

    #[test]
    fn more_than_a_year_is_refused_naming_the_command() {
        let err = timeout(&["BLPOP", "a", "1e20"]).unwrap_err();
        assert_eq!(
            err.message(),
            "invalid BLPOP timeout = 1e20: must be at most 365 days (31536000 s); 0 blocks forever"
        );
        assert_eq!(
            timeout(&["BLPOP", "a", "31536000"]),
            Ok(Some(BLOCK_FOREVER))
        );
    }
}
