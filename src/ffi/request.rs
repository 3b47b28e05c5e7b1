//! Requests from C, the same for a pool (one-shot calls with breaker and retries) and for a
//! checked-out connection: one command, a pipeline, or a MULTI/EXEC transaction, each delivered as
//! one reply tree.

use std::ffi::c_char;
use std::time::{Duration, Instant};

use redis::{Cmd, Value};

use super::args::{self, redpool_cmd};
use super::reply::{self, redpool_reply};
use super::write_out;
use crate::command::blocking::call_reply_timeout;
use crate::error::{ErrorKind, Result};
use crate::pool::{CallOptions, Pool, PooledConnection};

/// Something that runs requests: a pool or a checked-out connection.
pub(crate) trait Target {
    /// One command; `reply_timeout` replaces `socket_timeout` for blocking commands, and on a
    /// pool it is the whole call's deadline too (waiting for a connection, retries, the reply).
    fn single(&mut self, cmd: &Cmd, reply_timeout: Option<Duration>) -> Result<Value>;
    /// A pipeline.
    fn pipeline(&mut self, cmds: &[Cmd]) -> Result<Vec<Value>>;
    /// A MULTI/EXEC transaction (None: aborted by WATCH).
    fn transaction(&mut self, cmds: &[Cmd]) -> Result<Option<Vec<Value>>>;
    /// The pool's `socket_timeout` (the slack of a blocking command's reply timeout).
    fn socket_timeout(&self) -> Duration;
}

impl Target for Pool {
    fn single(&mut self, cmd: &Cmd, reply_timeout: Option<Duration>) -> Result<Value> {
        let options = CallOptions {
            deadline: reply_timeout.and_then(|timeout| Instant::now().checked_add(timeout)),
            reply_timeout,
            ..CallOptions::default()
        };
        self.execute_with(cmd, options)
    }
    fn pipeline(&mut self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        Pool::pipeline(self, cmds)
    }
    fn transaction(&mut self, cmds: &[Cmd]) -> Result<Option<Vec<Value>>> {
        Pool::transaction(self, cmds)
    }
    fn socket_timeout(&self) -> Duration {
        self.config().socket_timeout()
    }
}

impl Target for PooledConnection {
    fn single(&mut self, cmd: &Cmd, reply_timeout: Option<Duration>) -> Result<Value> {
        match reply_timeout {
            Some(timeout) => self.execute_with_timeout(cmd, timeout),
            None => self.execute(cmd),
        }
    }
    fn pipeline(&mut self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        PooledConnection::pipeline(self, cmds)
    }
    fn transaction(&mut self, cmds: &[Cmd]) -> Result<Option<Vec<Value>>> {
        PooledConnection::transaction(self, cmds)
    }
    fn socket_timeout(&self) -> Duration {
        PooledConnection::socket_timeout(self)
    }
}

/// Runs one command from `argc / argv / argvlen` and writes its reply (a server error becomes an
/// ERROR reply, not a failure). Without a `reply_timeout`, a blocking command gets the core's
/// `blocking_reply_timeout` (its block time plus `socket_timeout`; 0 blocks forever), as in
/// Python and Node.
///
/// # Safety
/// As for `args::with_command`; `reply` is NULL or valid for a write.
pub(crate) unsafe fn single(
    target: &mut impl Target,
    reply_timeout: Option<Duration>,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
    reply: *mut *mut redpool_reply,
) -> Result<()> {
    // SAFETY: per the caller's contract. The arguments are checked first, then the output.
    let result = unsafe {
        args::with_command(argc, argv, argvlen, |cmd| {
            check_out(reply, "reply")?;
            let reply_timeout = call_reply_timeout(cmd, reply_timeout, target.socket_timeout())?;
            Ok(target.single(cmd, reply_timeout))
        })
    }??;
    // SAFETY: per the caller's contract.
    unsafe { deliver(result, reply) }
}

/// Runs a pipeline and writes an ARRAY reply with one element per command.
///
/// # Safety
/// As for `args::with_commands`; `reply` is NULL or valid for a write.
pub(crate) unsafe fn pipeline(
    target: &mut impl Target,
    count: usize,
    cmds: *const redpool_cmd,
    reply: *mut *mut redpool_reply,
) -> Result<()> {
    // SAFETY: per the caller's contract. The commands are checked first, then the output.
    let replies = unsafe {
        args::with_commands(count, cmds, |cmds| {
            check_out(reply, "reply").and_then(|()| target.pipeline(cmds))
        })
    }??;
    // SAFETY: per the caller's contract.
    unsafe { write_out(reply, "reply", reply::from_value(Value::Array(replies))) }
}

/// Runs a transaction and writes an ARRAY reply, NIL (WATCH conflict) or ERROR (EXECABORT).
///
/// # Safety
/// As for `args::with_commands`; `reply` is NULL or valid for a write.
pub(crate) unsafe fn transaction(
    target: &mut impl Target,
    count: usize,
    cmds: *const redpool_cmd,
    reply: *mut *mut redpool_reply,
) -> Result<()> {
    // SAFETY: per the caller's contract. The commands are checked first, then the output.
    let result = unsafe {
        args::with_commands(count, cmds, |cmds| {
            check_out(reply, "reply").map(|()| target.transaction(cmds))
        })
    }??
    .map(|outcome| outcome.map_or(Value::Nil, Value::Array));
    // SAFETY: per the caller's contract.
    unsafe { deliver(result, reply) }
}

/// Fails early (before any network work) when the output pointer `what` is NULL.
pub(crate) fn check_out<T>(out: *mut T, what: &str) -> Result<()> {
    if out.is_null() {
        return Err(super::null(what));
    }
    Ok(())
}

/// Writes a result as a reply: server errors become ERROR replies; other errors are returned.
///
/// # Safety
/// `reply` is valid for a write.
unsafe fn deliver(result: Result<Value>, reply: *mut *mut redpool_reply) -> Result<()> {
    let tree = match result {
        Ok(value) => reply::from_value(value),
        Err(err) if err.kind() == ErrorKind::Response => reply::from_server_error(&err),
        Err(err) => return Err(err),
    };
    // SAFETY: per the caller's contract.
    unsafe { write_out(reply, "reply", tree) }
}
