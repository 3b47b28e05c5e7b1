//! [`PooledConnection`]: a checked-out connection for multi-command sessions (WATCH/MULTI/EXEC,
//! blocking commands). Dropping it returns the connection to the pool, which reuses it only if it
//! is clean; [`PooledConnection::discard`] closes it instead.

use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Cmd, Value};

use super::{Conn, Shared, Tracking};
use crate::breaker::Permit;
use crate::command::{command_index, command_name_bytes};
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::fork;
use crate::metrics::Timed;

/// A connection checked out of a [`super::Pool`]. Use it from one thread at a time; it may move
/// between threads. Returned to the pool on drop.
pub struct PooledConnection {
    shared: Arc<Shared>,
    /// Taken by `Drop` (always: so the field itself needs no drop glue on the return path,
    /// which measured as a call per checkout once `Connection` grew).
    conn: ManuallyDrop<Option<Conn>>,
    /// The breaker permit of the checkout, reported with the first command's outcome.
    permit: Option<Permit>,
    /// False when a one-shot call checked this connection out: the call tells the breaker how
    /// it ended, once, however many attempts its retries made.
    reports_to_breaker: bool,
    /// When it was checked out (for the use-time histogram).
    checked_out_at: Instant,
    /// Its lease in the pool's leak tracker, when leak detection is on.
    lease: Option<u64>,
    /// The deadline of the one-shot call this checkout serves, if the caller gave one: every
    /// exchange ends by it (see [`PooledConnection::exchange_deadline`]).
    call_deadline: Option<Instant>,
    /// False for the pool's own checkout ([`Tracking::Maintenance`]): its hold time, commands
    /// and errors stay out of the statistics.
    counted: bool,
}

/// What one exchange sends, for per-command metrics.
#[derive(Clone, Copy)]
enum Exchange<'a> {
    One(&'a Cmd),
    Pipeline(&'a [Cmd]),
    Transaction(&'a [Cmd]),
}

/// Replies whose outcome per command can be told (an error reply is an error outcome).
trait Replies {
    /// Whether the `i`-th command's reply is not an error.
    fn reply_ok(&self, i: usize) -> bool;
}

impl Replies for Value {
    fn reply_ok(&self, _: usize) -> bool {
        true
    }
}

impl Replies for Vec<Value> {
    fn reply_ok(&self, i: usize) -> bool {
        !matches!(self.get(i), Some(Value::ServerError(_)))
    }
}

impl Replies for Option<Vec<Value>> {
    fn reply_ok(&self, i: usize) -> bool {
        self.as_ref().is_none_or(|replies| replies.reply_ok(i))
    }
}

impl PooledConnection {
    /// A checkout: with the breaker `permit` it was granted (each command's outcome is then told
    /// to the breaker), or with none when a one-shot call judges the outcome as a whole.
    pub(super) fn new(
        shared: Arc<Shared>,
        (conn, checked_out_at): (Conn, Instant),
        permit: Option<Permit>,
        tracking: Tracking,
    ) -> Self {
        let counted = !matches!(tracking, Tracking::Maintenance);
        let lease = shared.leaks().and_then(|tracker| match tracking {
            Tracking::None | Tracking::Maintenance => None,
            Tracking::CallerStack => Some(tracker.register(conn.id, None)),
            Tracking::Given(holder) => Some(tracker.register(conn.id, Some(holder))),
        });
        PooledConnection {
            shared,
            conn: ManuallyDrop::new(Some(conn)),
            reports_to_breaker: permit.is_some(),
            permit,
            checked_out_at,
            lease,
            call_deadline: None,
            counted,
        }
    }

    /// Ends every exchange of this checkout by `deadline` (a one-shot call's own deadline).
    pub(super) fn bounded_by(&mut self, deadline: Option<Instant>) {
        self.call_deadline = deadline;
    }

    /// When an exchange starting now must be done: the call's deadline if it has one (a reply
    /// timeout, if given too, never extends past it), else `reply_timeout` or `socket_timeout`
    /// from now, for the whole exchange: every write and every read of every reply.
    fn exchange_deadline(&self, reply_timeout: Option<Duration>) -> Instant {
        let from_now = reply_timeout.map(|timeout| Instant::now() + timeout);
        match (self.call_deadline, from_now) {
            (Some(call), Some(reply)) => call.min(reply),
            (Some(deadline), None) | (None, Some(deadline)) => deadline,
            (None, None) => Instant::now() + self.shared.config().socket_timeout(),
        }
    }

    /// The pool's `socket_timeout`: how long a reply is awaited unless a call says otherwise
    /// (see [`crate::blocking_reply_timeout`] for blocking commands).
    pub fn socket_timeout(&self) -> Duration {
        self.shared.config().socket_timeout()
    }

    /// Runs one command. A server error reply becomes an error of kind [`ErrorKind::Response`]
    /// (the connection stays usable); any other failure makes the connection unusable, and it is
    /// closed when returned.
    pub fn execute(&mut self, cmd: &Cmd) -> Result<Value> {
        let deadline = self.exchange_deadline(None);
        self.run(Exchange::One(cmd), |conn| {
            conn.request(cmd, deadline).and_then(reply_or_error)
        })
    }

    /// Runs one command whose reply may take up to `timeout` instead of `socket_timeout`
    /// (blocking commands such as BLPOP, BRPOP, XREAD BLOCK, WAIT).
    pub fn execute_with_timeout(&mut self, cmd: &Cmd, timeout: Duration) -> Result<Value> {
        check_reply_timeout(timeout)?;
        if let Some((tracker, lease)) = self.shared.leaks().zip(self.lease) {
            tracker.blocking_started(lease, timeout);
        }
        let deadline = self.exchange_deadline(Some(timeout));
        let result = self.run(Exchange::One(cmd), |conn| {
            conn.request(cmd, deadline).and_then(reply_or_error)
        });
        if let Some((tracker, lease)) = self.shared.leaks().zip(self.lease) {
            tracker.blocking_ended(lease);
        }
        result
    }

    /// Sends `cmds` in one write and reads one reply per command. Server errors stay in place as
    /// `Value::ServerError`; an I/O error fails the whole pipeline.
    pub fn pipeline(&mut self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = self.exchange_deadline(None);
        self.run(Exchange::Pipeline(cmds), |conn| {
            conn.request_pipeline(cmds, deadline)
        })
    }

    /// Runs `cmds` between MULTI and EXEC in one round trip. Returns `Ok(None)` when a WATCHed key
    /// changed (EXEC aborted), otherwise one reply per command (a command's runtime error is a
    /// `Value::ServerError` in its place). A command rejected while queueing fails the whole
    /// transaction with a Response error naming it.
    pub fn transaction(&mut self, cmds: &[Cmd]) -> Result<Option<Vec<Value>>> {
        let deadline = self.exchange_deadline(None);
        self.run(Exchange::Transaction(cmds), |conn| {
            conn.request_transaction(cmds, deadline)
        })
    }

    /// Closes this connection instead of returning it to the pool.
    pub fn discard(mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.mark_discarded();
        }
    }

    /// A process-unique id of the underlying connection (stable while it lives).
    pub fn id(&self) -> u64 {
        self.conn.as_ref().map_or(0, |c| c.id)
    }

    fn run<T: Replies>(
        &mut self,
        exchange: Exchange<'_>,
        f: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        let result = match self.conn.as_mut() {
            Some(conn) if conn.fork_generation != fork::generation() => Err(Error::new(
                ErrorKind::Connection,
                "this connection was checked out before fork() and belongs to the parent process; \
                 acquire a new one in the child",
            )),
            Some(conn) => {
                let started = Instant::now();
                let result = f(conn);
                if self.counted {
                    self.count(exchange, &result, started.elapsed());
                }
                result
            }
            None => Err(self.shared.closed_error()),
        };
        if let (Err(err), true) = (&result, self.counted) {
            self.shared.counters().error(err.kind());
        }
        if self.reports_to_breaker {
            let permit = self.permit.take().unwrap_or_default();
            self.shared.record(permit, &result);
        }
        result
    }

    /// Per-command metrics of one exchange: counts by name and outcome, and its duration. A
    /// batch is counted run by run of the same command name (one table look-up and one add per
    /// run, not per command: pipelines usually repeat one command).
    fn count<T: Replies>(&self, exchange: Exchange<'_>, result: &Result<T>, took: Duration) {
        let counters = self.shared.counters();
        let ok = |i: usize| result.as_ref().is_ok_and(|replies| replies.reply_ok(i));
        let (cmds, timed, framing) = match exchange {
            Exchange::One(cmd) => {
                let index = command_index(command_name_bytes(cmd));
                counters
                    .per_command
                    .count(index, u64::from(ok(0)), u64::from(!ok(0)));
                counters.per_command.time(Timed::Command(index), took);
                counters.commands(1);
                return;
            }
            Exchange::Pipeline(cmds) => (cmds, Timed::Pipeline, 0),
            Exchange::Transaction(cmds) => (cmds, Timed::Transaction, 2),
        };
        let mut start = 0;
        while start < cmds.len() {
            let name = command_name_bytes(&cmds[start]);
            let end = cmds[start..]
                .iter()
                .position(|cmd| !command_name_bytes(cmd).eq_ignore_ascii_case(name))
                .map_or(cmds.len(), |n| start + n);
            let succeeded = (start..end).filter(|&i| ok(i)).count() as u64;
            let failed = (end - start) as u64 - succeeded;
            counters
                .per_command
                .count(command_index(name), succeeded, failed);
            start = end;
        }
        counters.per_command.time(timed, took);
        counters.commands(cmds.len() + framing);
    }
}

impl AsRawFd for PooledConnection {
    /// The socket's descriptor, for inspection (socket options). Do not read, write or close it.
    fn as_raw_fd(&self) -> RawFd {
        self.conn.as_ref().map_or(-1, |c| c.raw_fd())
    }
}

impl Drop for PooledConnection {
    fn drop(&mut self) {
        let now = Instant::now();
        if self.counted {
            self.shared
                .counters()
                .released(now.saturating_duration_since(self.checked_out_at));
        }
        if let Some((tracker, lease)) = self.shared.leaks().zip(self.lease) {
            tracker.release(lease);
        }
        if let Some(conn) = self.conn.take() {
            self.shared.checkin_at(conn, now);
        }
        if let Some(permit) = self.permit.take() {
            self.shared.release_permit(permit);
        }
    }
}

impl std::fmt::Debug for PooledConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledConnection")
            .field("id", &self.id())
            .field("server", &self.shared.config().redacted_url())
            .finish()
    }
}

pub(super) fn reply_or_error(value: Value) -> Result<Value> {
    match value {
        Value::ServerError(err) => Err(Error::from_server_reply(err.code(), err.details())),
        other => Ok(other),
    }
}

/// A blocking command's reply timeout must be above zero (zero would mean "no timeout" to the
/// socket layer) and within the bound of every duration.
pub(super) fn check_reply_timeout(timeout: Duration) -> Result<()> {
    if timeout.is_zero() {
        return Err(Error::invalid("timeout", "0", "must be greater than zero"));
    }
    crate::config::check_duration("timeout", timeout).map(drop)
}
