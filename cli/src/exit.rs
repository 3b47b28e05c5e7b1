//! Exit codes and the one error type every command returns: a message for stderr and the code.

use std::fmt;

/// Success: healthy, listed, killed, monitored, no leak.
pub const OK: u8 = 0;
/// A finding rather than a failure: `health` saw a degraded server, `leak-test` found a leak.
pub const WARNING: u8 = 1;
/// The server is unhealthy or unreachable, or a command against it failed.
pub const FAILURE: u8 = 2;
/// Bad arguments: an unknown option, a bad URL, a bad duration (sysexits' `EX_USAGE`).
pub const USAGE: u8 = 64;

/// The exit codes as `--help` shows them.
pub const HELP: &str = "\
Exit codes:
  0   success (health: healthy; leak-test: no leak)
  1   health: degraded; leak-test: a leak was found
  2   health: unhealthy or unreachable; any command: the server could not be reached or a
      command failed
  64  bad arguments: unknown option, bad URL, bad duration";

/// Why a command stopped: one line for stderr (never holding a password) and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// The exit code ([`FAILURE`] or [`USAGE`]).
    pub code: u8,
    /// What went wrong, for people.
    pub message: String,
}

impl Failure {
    /// A failure talking to the server (exit code [`FAILURE`]).
    pub fn server(message: impl Into<String>) -> Failure {
        Failure {
            code: FAILURE,
            message: message.into(),
        }
    }

    /// A usage error (exit code [`USAGE`]).
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: USAGE,
            message: message.into(),
        }
    }
}

impl From<redpool::Error> for Failure {
    /// Bad settings (a bad URL or option) are usage errors; everything else is a server failure.
    /// The core's messages name the server as `host:port`, never the password.
    fn from(err: redpool::Error) -> Failure {
        match err.kind() {
            redpool::ErrorKind::InvalidArgument => Failure::usage(err.to_string()),
            _ => Failure::server(err.to_string()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
