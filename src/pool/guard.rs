//! [`PooledConnection`]: a checked-out connection for multi-command sessions (WATCH/MULTI/EXEC,
//! blocking commands). Dropping it returns the connection to the pool, which reuses it only if it
//! is clean; [`PooledConnection::discard`] closes it instead.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use redis::{Cmd, Value};

use super::Shared;
use crate::breaker::Permit;
use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::fork;

/// A connection checked out of a [`super::Pool`]. Use it from one thread at a time; it may move
/// between threads. Returned to the pool on drop.
pub struct PooledConnection {
    shared: Arc<Shared>,
    conn: Option<Connection>,
    /// The breaker permit of the checkout, reported with the first command's outcome.
    permit: Option<Permit>,
}

impl PooledConnection {
    pub(super) fn new(shared: Arc<Shared>, conn: Connection, permit: Permit) -> Self {
        PooledConnection {
            shared,
            conn: Some(conn),
            permit: Some(permit),
        }
    }

    /// Runs one command. A server error reply becomes an error of kind [`ErrorKind::Response`]
    /// (the connection stays usable); any other failure makes the connection unusable, and it is
    /// closed when returned.
    pub fn execute(&mut self, cmd: &Cmd) -> Result<Value> {
        self.run(1, |conn| conn.request(cmd).and_then(reply_or_error))
    }

    /// Runs one command whose reply may take up to `timeout` instead of `socket_timeout`
    /// (blocking commands such as BLPOP, BRPOP, XREAD BLOCK, WAIT).
    pub fn execute_with_timeout(&mut self, cmd: &Cmd, timeout: Duration) -> Result<Value> {
        if timeout.is_zero() {
            return Err(Error::invalid("timeout", "0", "must be greater than zero"));
        }
        let default = self.shared.config().socket_timeout();
        self.run(1, |conn| {
            conn.set_read_timeout(Some(timeout), default)?;
            let reply = conn.request(cmd);
            conn.set_read_timeout(None, default)?;
            reply.and_then(reply_or_error)
        })
    }

    /// Sends `cmds` in one write and reads one reply per command. Server errors stay in place as
    /// `Value::ServerError`; an I/O error fails the whole pipeline.
    pub fn pipeline(&mut self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        self.run(cmds.len(), |conn| conn.request_pipeline(cmds))
    }

    /// Runs `cmds` between MULTI and EXEC in one round trip. Returns `Ok(None)` when a WATCHed key
    /// changed (EXEC aborted), otherwise one reply per command (a command's runtime error is a
    /// `Value::ServerError` in its place). A command rejected while queueing fails the whole
    /// transaction with a Response error naming it.
    pub fn transaction(&mut self, cmds: &[Cmd]) -> Result<Option<Vec<Value>>> {
        self.run(cmds.len() + 2, |conn| conn.request_transaction(cmds))
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

    fn run<T>(
        &mut self,
        commands: usize,
        f: impl FnOnce(&mut Connection) -> Result<T>,
    ) -> Result<T> {
        let result = match self.conn.as_mut() {
            Some(conn) if conn.fork_generation != fork::generation() => Err(Error::new(
                ErrorKind::Connection,
                "this connection was checked out before fork() and belongs to the parent process; \
                 acquire a new one in the child",
            )),
            Some(conn) => {
                self.shared.counters().commands(commands);
                f(conn)
            }
            None => Err(self.shared.closed_error()),
        };
        if let Err(err) = &result {
            self.shared.counters().error(err.kind());
        }
        let permit = self.permit.take().unwrap_or_default();
        self.shared.record(permit, &result);
        result
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
        if let Some(conn) = self.conn.take() {
            self.shared.checkin(conn);
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

fn reply_or_error(value: Value) -> Result<Value> {
    match value {
        Value::ServerError(err) => Err(Error::from_server_reply(err.code(), err.details())),
        other => Ok(other),
    }
}
