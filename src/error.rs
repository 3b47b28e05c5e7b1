//! The one error taxonomy of redpool.
//!
//! Every failure in the core is an [`Error`] with an [`ErrorKind`]. The kinds map 1:1 to the C status
//! codes, the Python exception classes and the Node error codes, so a caller in any language can
//! branch on the same categories. Messages are written for people: they name what failed and why,
//! and never contain a password or token.

use std::fmt;
use std::io;

/// What went wrong, as a stable category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server could not be reached, or the connection broke (refused, reset, closed by peer).
    Connection,
    /// Connecting, reading or writing took longer than the configured timeout.
    Timeout,
    /// No connection became free within `acquire_timeout` (or at once, for `try_acquire`).
    PoolExhausted,
    /// The circuit breaker is open: the call failed fast without touching the network.
    CircuitOpen,
    /// The server refused the credentials (AUTH / HELLO failed, or NOAUTH / WRONGPASS). An ACL
    /// refusal of one command (`NOPERM`) is a `Response`.
    Auth,
    /// The server answered with an error reply (`-ERR ...`, `WRONGTYPE ...`, `EXECABORT ...`).
    Response,
    /// The bytes from the server were not valid RESP.
    Protocol,
    /// A setting or argument was invalid; the message names it, its value and the rule.
    InvalidArgument,
    /// The pool was closed; no new work is accepted.
    Closed,
}

impl ErrorKind {
    /// A short stable name, used for stats keys and logs (`"connection"`, `"timeout"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connection => "connection",
            ErrorKind::Timeout => "timeout",
            ErrorKind::PoolExhausted => "pool_exhausted",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::Auth => "auth",
            ErrorKind::Response => "response",
            ErrorKind::Protocol => "protocol",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Closed => "closed",
        }
    }

    /// Every kind, in a fixed order (used to index per-kind counters).
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Connection,
        ErrorKind::Timeout,
        ErrorKind::PoolExhausted,
        ErrorKind::CircuitOpen,
        ErrorKind::Auth,
        ErrorKind::Response,
        ErrorKind::Protocol,
        ErrorKind::InvalidArgument,
        ErrorKind::Closed,
    ];

    /// True when the same call may succeed if made again later, unchanged: the server or the
    /// link failed (`Connection`, `Timeout`, `Protocol`), or the pool is busy (`PoolExhausted`)
    /// or failing fast (`CircuitOpen`). Server error replies, refused credentials, bad arguments
    /// and a closed pool are not: trying again gives the same answer. The one classifier behind
    /// the core's retries, `redpool_status_is_retryable` and the bindings' `transient` flag.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Connection
                | ErrorKind::Timeout
                | ErrorKind::Protocol
                | ErrorKind::PoolExhausted
                | ErrorKind::CircuitOpen
        )
    }

    /// Position of this kind in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        ErrorKind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A redpool error: a kind, a human message and, for server replies, the error code.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    server_code: Option<String>,
    /// The request (or part of it) was written before the failure: it may have been applied.
    sent: bool,
    /// When trying again makes sense at the earliest (the pool-wide reconnect backoff).
    retry_after: Option<std::time::Duration>,
    /// The caller's thread asked the call to stop (see [`crate::interrupt`]).
    interrupted: bool,
    /// An EXECABORT's commands that the server rejected while queueing (see
    /// [`Error::rejected_commands`]); empty for every other error (an empty box allocates nothing).
    rejected: Box<[(usize, Error)]>,
}

/// The result type of every fallible redpool operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A new error of `kind` with a message for people.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            server_code: None,
            sent: false,
            retry_after: None,
            interrupted: false,
            rejected: Box::default(),
        }
    }

    /// An invalid-argument error that names the field, the offending value and the rule it broke.
    pub fn invalid(field: &str, value: impl fmt::Display, rule: &str) -> Self {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("invalid {field} = {value}: {rule}"),
        )
    }

    /// This error with `field` called `name` instead, if it is an invalid-argument error about
    /// `field` (see [`Error::invalid`]): how a binding's option name replaces the knob's.
    pub fn naming(self, field: &str, name: &str) -> Self {
        let prefix = format!("invalid {field} ");
        match self.message.strip_prefix(&prefix) {
            Some(rest) if self.kind == ErrorKind::InvalidArgument => Error {
                message: format!("invalid {name} {rest}"),
                ..self
            },
            _ => self,
        }
    }

    /// A checked-out connection used after it went back to the pool (or was discarded): the
    /// handle is closed, as a pool is after `close()`, so `Closed` in every language (redis-py
    /// users get a `ConnectionError`, ioredis users a "connection is closed" error). Bindings whose
    /// handles outlive the connection (Python, Node) raise this one; in C the released handle is
    /// NULL (`redpool_conn_release` sets it), so using it is a NULL-argument error there.
    pub fn released() -> Self {
        Error::new(
            ErrorKind::Closed,
            "this connection was already released to the pool (or discarded); acquire a new one",
        )
    }

    /// A reply of a type no binding represents (a RESP3 type the core does not handle, or a
    /// variant redis-rs adds later): a `Protocol` error naming the type, never its contents, the
    /// same in every language (Python and Node raise it; C puts its message in an ERROR reply in
    /// place of the value, as it does for a server error inside an array).
    pub fn unsupported_reply(value: &redis::Value) -> Self {
        let debug = format!("{value:?}");
        let name = debug
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .next()
            .unwrap_or("unknown");
        Error::new(
            ErrorKind::Protocol,
            format!("unsupported reply type {name}: redpool speaks RESP2 and cannot represent it"),
        )
    }

    /// An error for a server error reply such as `WRONGTYPE Operation against a key ...`.
    pub fn from_server_reply(code: &str, detail: Option<&str>) -> Self {
        let kind = match code {
            // NOPERM is a refusal of one command by the ACL, an answer like WRONGTYPE (redis-py's
            // NoPermissionError is a ResponseError; ioredis's a ReplyError): the credentials
            // were accepted. Only refused credentials are Auth.
            "NOAUTH" | "WRONGPASS" => ErrorKind::Auth,
            _ => ErrorKind::Response,
        };
        let message = match detail {
            Some(d) if !d.is_empty() => format!("{code} {d}"),
            _ => code.to_string(),
        };
        Error {
            server_code: Some(code.to_string()),
            sent: true,
            ..Error::new(kind, message)
        }
    }

    /// A call cut short because its thread's check asked it to stop (see [`crate::interrupt`]):
    /// a `Timeout`, as when a caller's deadline passes, that is never retried and says nothing
    /// of the server. A binding raises what its check found instead (Python: the exception a
    /// signal handler raised, such as `KeyboardInterrupt`).
    pub fn interrupted() -> Self {
        Error {
            interrupted: true,
            ..Error::new(
                ErrorKind::Timeout,
                "interrupted: the caller asked the call to stop before it finished",
            )
        }
    }

    /// True for an [`Error::interrupted`] call.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For server error replies, the first word of the reply (`"ERR"`, `"WRONGTYPE"`, ...).
    pub fn server_code(&self) -> Option<&str> {
        self.server_code.as_deref()
    }

    /// True when the failed request had been (at least partly) written to the server, so it may
    /// have been applied even though no reply arrived. Retrying such a request is safe only if it is
    /// idempotent.
    pub fn request_sent(&self) -> bool {
        self.sent
    }

    /// The same error, marked as having happened after the request was written.
    pub(crate) fn sent(mut self) -> Self {
        self.sent = true;
        self
    }

    /// For the EXECABORT of a transaction the server refused while queueing it: each command it
    /// rejected, in order, as its position among the commands sent (0 is the first after MULTI)
    /// and its own error reply (`ERR unknown command ...`). Empty for every other error. Python
    /// raises the first one as redis-py does; Node gives them as `previousErrors`, as ioredis does.
    pub fn rejected_commands(&self) -> &[(usize, Error)] {
        &self.rejected
    }

    /// The same error, with the commands the server rejected while queueing a transaction.
    pub(crate) fn with_rejected_commands(mut self, rejected: Vec<(usize, Error)>) -> Self {
        self.rejected = rejected.into_boxed_slice();
        self
    }

    /// For failures caused by the reconnect backoff: how long until the next connect attempt.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// The same error, saying when trying again makes sense.
    pub(crate) fn with_retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The same error with `explanation` after its message (`"message; explanation"`), so a
    /// server error's code stays its first word.
    pub(crate) fn explained(mut self, explanation: impl fmt::Display) -> Self {
        self.message = format!("{}; {explanation}", self.message);
        self
    }

    /// The same error with `context` put in front of its message (`"context: message"`).
    pub(crate) fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Maps an I/O error on a connection to `server` into the taxonomy.
    pub(crate) fn from_io(err: &io::Error, doing: &str, server: &str) -> Self {
        if is_interrupted_io(err) {
            return Error::interrupted();
        }
        let kind = match err.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorKind::Timeout,
            _ => ErrorKind::Connection,
        };
        let what = match kind {
            ErrorKind::Timeout => "timed out".to_string(),
            _ if err.kind() == io::ErrorKind::UnexpectedEof => {
                "connection closed by the server".to_string()
            }
            _ => err.to_string(),
        };
        Error::new(kind, format!("{doing} {server}: {what}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({}: {})", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

/// The I/O error a socket wait ends with when its thread's check said stop (see
/// [`crate::interrupt`]): not `Interrupted`, which TLS and the core's read loops retry.
/// [`Error::from_io`] turns it into [`Error::interrupted`].
pub(crate) fn interrupted_io() -> io::Error {
    io::Error::other(Stopped)
}

/// True for [`interrupted_io`]'s error.
pub(crate) fn is_interrupted_io(err: &io::Error) -> bool {
    err.get_ref().is_some_and(|inner| inner.is::<Stopped>())
}

/// The payload of [`interrupted_io`].
#[derive(Debug)]
struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupted: the caller asked the call to stop")
    }
}

impl std::error::Error for Stopped {}
