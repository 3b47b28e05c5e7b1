//! `redpool_conn`: an explicitly checked-out connection, for WATCH / MULTI / EXEC sessions and
//! blocking commands.

use std::ffi::c_char;
use std::time::Duration;

use super::args::redpool_cmd;
use super::pool::{borrow, redpool_pool};
use super::reply::redpool_reply;
use super::request::{self, check_out};
use super::{REDPOOL_TIMEOUT_DEFAULT, boundary, read_sized, write_out};
use crate::error::{Error, Result};
use crate::pool::{AcquireOptions, PooledConnection, Priority};

/// A connection checked out of a pool. May move between threads but must not be used by two at
/// once. Give it back with `redpool_conn_release` (returned to the pool if clean) or
/// `redpool_conn_discard` (closed); both take `redpool_conn **` and set it to NULL, so a second
/// release is a no-op rather than a double free. It keeps its pool alive.
pub struct redpool_conn {
    inner: PooledConnection,
}

/// Queue positions of an acquire (`redpool_acquire_options.priority`).
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum redpool_priority {
    /// First come, first served (the default).
    REDPOOL_PRIORITY_NORMAL = 0,
    /// Served before every normal waiter, in arrival order among high-priority waiters.
    REDPOOL_PRIORITY_HIGH = 1,
}

/// Options of `redpool_pool_acquire_with`. Set `struct_size = sizeof(redpool_acquire_options)`;
/// every other field's zero is its default, so a zeroed struct with `struct_size` set asks for
/// the defaults (as NULL does). The library reads at most `struct_size` bytes, so programs built
/// against an older header keep working when fields are appended.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct redpool_acquire_options {
    /// Set by the caller to `sizeof(redpool_acquire_options)`.
    pub struct_size: usize,
    /// Queue position while waiting: a `redpool_priority` (default `REDPOOL_PRIORITY_NORMAL`).
    /// Any other value fails with `REDPOOL_STATUS_INVALID_ARGUMENT`.
    pub priority: u32,
}

impl redpool_acquire_options {
    /// The defaults (what NULL options mean).
    const DEFAULT: redpool_acquire_options = redpool_acquire_options {
        struct_size: std::mem::size_of::<redpool_acquire_options>(),
        priority: redpool_priority::REDPOOL_PRIORITY_NORMAL as u32,
    };

    /// The core's options for these, waiting up to `timeout_ms`.
    fn to_core(self, timeout_ms: u32) -> Result<AcquireOptions> {
        let priority = match self.priority {
            p if p == redpool_priority::REDPOOL_PRIORITY_NORMAL as u32 => Priority::Normal,
            p if p == redpool_priority::REDPOOL_PRIORITY_HIGH as u32 => Priority::High,
            p => {
                return Err(Error::invalid(
                    "options->priority",
                    p,
                    "must be REDPOOL_PRIORITY_NORMAL (0) or REDPOOL_PRIORITY_HIGH (1)",
                ));
            }
        };
        let timeout = (timeout_ms != REDPOOL_TIMEOUT_DEFAULT)
            .then(|| Duration::from_millis(u64::from(timeout_ms)));
        Ok(AcquireOptions { timeout, priority })
    }
}

/// Checks out a connection, waiting up to `timeout_ms` (`REDPOOL_TIMEOUT_DEFAULT`: the pool's
/// `acquire_timeout`; 0: never wait for another caller's connection, failing at once with
/// `REDPOOL_STATUS_POOL_EXHAUSTED` when none is idle and the pool is at its cap; below the cap a
/// new connection is still opened, within `connect_timeout`). On success `*out` owns the connection. Same as
/// `redpool_pool_acquire_with(pool, timeout_ms, NULL, out)`.
///
/// # Safety
/// `pool` is NULL or a live handle; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_acquire(
    pool: *const redpool_pool,
    timeout_ms: u32,
    out: *mut *mut redpool_conn,
) -> super::redpool_status {
    // SAFETY: per this function's contract (NULL options are allowed).
    unsafe { redpool_pool_acquire_with(pool, timeout_ms, std::ptr::null(), out) }
}

/// Checks out a connection like `redpool_pool_acquire`, with `options` (NULL: the defaults): a
/// `REDPOOL_PRIORITY_HIGH` caller is served before every `REDPOOL_PRIORITY_NORMAL` one waiting.
/// `options` is only read during the call. On success `*out` owns the connection; free it with
/// `redpool_conn_release` or `redpool_conn_discard`.
///
/// # Safety
/// `pool` is NULL or a live handle; `options` is NULL or valid for reads of
/// `options->struct_size` bytes; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_acquire_with(
    pool: *const redpool_pool,
    timeout_ms: u32,
    options: *const redpool_acquire_options,
    out: *mut *mut redpool_conn,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let pool = unsafe { borrow(pool) }?;
        check_out(out, "out")?;
        let options = if options.is_null() {
            redpool_acquire_options::DEFAULT
        } else {
            // SAFETY: per this function's contract.
            unsafe { read_sized(options, redpool_acquire_options::DEFAULT, "options") }?
        };
        let inner = pool.acquire_with(options.to_core(timeout_ms)?)?;
        let handle = Box::into_raw(Box::new(redpool_conn { inner }));
        // SAFETY: per this function's contract.
        unsafe { write_out(out, "out", handle) }
    })
}

/// # Safety
/// `conn` is NULL or a live connection not used by another thread.
unsafe fn with_conn(
    conn: *mut redpool_conn,
    f: impl FnOnce(&mut PooledConnection) -> Result<()>,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per the caller's contract.
        let conn = unsafe { conn.as_mut() }.ok_or_else(|| super::null("conn"))?;
        f(&mut conn.inner)
    })
}

/// Runs one command on the checked-out connection (no retry: the session's state matters). On
/// success `*reply` owns the reply; server errors are ERROR replies.
///
/// # Safety
/// `conn` is NULL or a live connection; `argv` / `argvlen` as for `redpool_pool_command`;
/// `reply` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_conn_command(
    conn: *mut redpool_conn,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
    reply: *mut *mut redpool_reply,
) -> super::redpool_status {
    // SAFETY: per this function's contract.
    unsafe {
        with_conn(conn, |c| {
            request::single(c, None, argc, argv, argvlen, reply)
        })
    }
}

/// Like `redpool_conn_command`, waiting up to `timeout_ms` for the reply (blocking commands).
///
/// # Safety
/// As for `redpool_conn_command`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_conn_command_timeout(
    conn: *mut redpool_conn,
    timeout_ms: u32,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
    reply: *mut *mut redpool_reply,
) -> super::redpool_status {
    let timeout = Some(Duration::from_millis(u64::from(timeout_ms)));
    // SAFETY: per this function's contract.
    unsafe {
        with_conn(conn, |c| {
            request::single(c, timeout, argc, argv, argvlen, reply)
        })
    }
}

/// Sends `count` commands as one pipeline on this connection; `*reply` is an ARRAY of replies.
///
/// # Safety
/// `conn` is NULL or a live connection; `cmds` is NULL or points to `count` commands; `reply` is
/// NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_conn_pipeline(
    conn: *mut redpool_conn,
    count: usize,
    cmds: *const redpool_cmd,
    reply: *mut *mut redpool_reply,
) -> super::redpool_status {
    // SAFETY: per this function's contract.
    unsafe { with_conn(conn, |c| request::pipeline(c, count, cmds, reply)) }
}

/// Runs `count` commands in MULTI / EXEC on this connection (after a WATCH, for optimistic
/// locking). `*reply` is an ARRAY, NIL when a WATCHed key changed, or an EXECABORT ERROR reply.
///
/// # Safety
/// As for `redpool_conn_pipeline`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_conn_transaction(
    conn: *mut redpool_conn,
    count: usize,
    cmds: *const redpool_cmd,
    reply: *mut *mut redpool_reply,
) -> super::redpool_status {
    // SAFETY: per this function's contract.
    unsafe { with_conn(conn, |c| request::transaction(c, count, cmds, reply)) }
}

/// Returns the connection to its pool (reused only if clean: an unfinished MULTI is discarded, a
/// WATCH undone; a connection left in another state is closed) and sets `*conn` to NULL. NULL or a
/// pointer to NULL is ignored.
///
/// # Safety
/// `conn` is NULL or points to NULL or to a live connection.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_conn_release(conn: *mut *mut redpool_conn) {
    // SAFETY: per this function's contract.
    unsafe { give_back(conn, false) }
}

/// Closes the connection instead of returning it to the pool, and sets `*conn` to NULL. NULL or
/// a pointer to NULL is ignored.
///
/// # Safety
/// As for `redpool_conn_release`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_conn_discard(conn: *mut *mut redpool_conn) {
    // SAFETY: per this function's contract.
    unsafe { give_back(conn, true) }
}

/// # Safety
/// As for `redpool_conn_release`.
unsafe fn give_back(conn: *mut *mut redpool_conn, discard: bool) {
    super::query((), || {
        // SAFETY: per the caller's contract.
        let Some(slot) = (unsafe { conn.as_mut() }) else {
            return;
        };
        let handle = std::mem::replace(slot, std::ptr::null_mut());
        if handle.is_null() {
            return;
        }
        // SAFETY: allocated by `redpool_pool_acquire`, owned by the caller until now.
        let owned = unsafe { Box::from_raw(handle) };
        if discard {
            owned.inner.discard();
        }
    })
}
