//! `redpool_pool`: pool lifecycle, the process-wide shared pools, one-shot commands, pipelines,
//! transactions, close and free.

use std::ffi::c_char;
use std::mem::ManuallyDrop;
use std::time::Duration;

use super::args::redpool_cmd;
use super::config::redpool_config;
use super::reply::redpool_reply;
use super::request::{self, check_out};
use super::{boundary, non_null, utf8, write_out};
use crate::config::Config;
use crate::error::Result;
use crate::pool::Pool;

/// A connection pool. Thread-safe: every `redpool_pool_*` function except `redpool_pool_free` may
/// be called concurrently from any number of threads on the same pool. Each handle obtained from a
/// `redpool_pool_new*` / `redpool_pool_shared*` call is released with one `redpool_pool_free`.
pub struct redpool_pool {
    _private: [u8; 0],
}

/// Hands a pool to C as one counted reference.
pub(crate) fn into_handle(pool: Pool) -> *mut redpool_pool {
    pool.into_raw().cast_mut().cast()
}

/// The pool behind a handle, as a counted reference of its own for the duration of a call: the
/// call keeps the pool alive even if the handle is freed meanwhile (an event callback may free
/// the last handle of the pool whose call raised the event).
///
/// # Safety
/// `pool` is NULL or a live handle (live when the call starts).
pub(crate) unsafe fn borrow(pool: *const redpool_pool) -> Result<Pool> {
    // SAFETY: per the caller's promise.
    let _: &redpool_pool = unsafe { non_null(pool, "pool") }?;
    // SAFETY: a live handle is a counted reference made by `into_handle`; ManuallyDrop leaves
    // the handle's own count unchanged, and the clone takes one more for this call.
    let handle = ManuallyDrop::new(unsafe { Pool::from_raw(pool.cast()) });
    Ok(Pool::clone(&handle))
}

/// Creates a dedicated pool with `config` (validated now) and opens its `min_idle` connections.
/// A server that is down is not an error here; calls report it. `config` is only read.
///
/// # Safety
/// `config` is NULL or a live config; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_new(
    config: *const redpool_config,
    out: *mut *mut redpool_pool,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let config = unsafe { non_null(config, "config") }?.builder.build()?;
        // SAFETY: per this function's contract.
        unsafe { hand_out(out, || crate::registry::dedicated(config)) }
    })
}

/// Creates a dedicated pool from a URL (see `redpool_config_from_url`).
///
/// # Safety
/// `url` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_from_url(
    url: *const c_char,
    out: *mut *mut redpool_pool,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let url = unsafe { utf8(url, "url") }?;
        // SAFETY: per this function's contract.
        unsafe { hand_out(out, || crate::registry::dedicated(Config::from_url(url)?)) }
    })
}

/// The process-wide pool for `url`: every call with the same normalized settings, from any thread,
/// gets the same pool (and the same handle value). Each successful call must still be paired with
/// one `redpool_pool_free`.
///
/// # Safety
/// `url` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_shared(
    url: *const c_char,
    out: *mut *mut redpool_pool,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let url = unsafe { utf8(url, "url") }?;
        // SAFETY: per this function's contract.
        unsafe { hand_out(out, || crate::registry::shared(url)) }
    })
}

/// The process-wide pool for `config` (see `redpool_pool_shared`).
///
/// # Safety
/// `config` is NULL or a live config; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_shared_config(
    config: *const redpool_config,
    out: *mut *mut redpool_pool,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let config = unsafe { non_null(config, "config") }?.builder.build()?;
        // SAFETY: per this function's contract.
        unsafe { hand_out(out, || crate::registry::shared_with(config)) }
    })
}

/// The process-wide pool configured from the environment (see `redpool_config_from_env`).
///
/// # Safety
/// `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_shared_default(
    out: *mut *mut redpool_pool,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        unsafe { hand_out(out, crate::registry::shared_default) }
    })
}

/// Runs one command (`argc` arguments, binary safe when `argvlen` is given, NUL-terminated
/// strings when `argvlen` is NULL) on a pooled connection, with the pool's breaker and safe
/// retries. On success `*reply` owns the reply (free it with `redpool_reply_free`); a server
/// error reply is a reply of type `REDPOOL_REPLY_ERROR` with status OK.
///
/// # Safety
/// `pool` is NULL or a live handle; `argv` / `argvlen` as for hiredis's `redisCommandArgv`;
/// `reply` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_command(
    pool: *const redpool_pool,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
    reply: *mut *mut redpool_reply,
) -> super::redpool_status {
    // SAFETY: per this function's contract.
    unsafe { pool_command(pool, None, argc, argv, argvlen, reply) }
}

/// Like `redpool_pool_command`, for blocking commands (BLPOP, XREAD BLOCK, WAIT): waits up to
/// `timeout_ms` for the reply instead of the pool's `socket_timeout`. `timeout_ms` is the whole
/// call's deadline: waiting for a connection and retries end by it too.
///
/// # Safety
/// As for `redpool_pool_command`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_command_timeout(
    pool: *const redpool_pool,
    timeout_ms: u32,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
    reply: *mut *mut redpool_reply,
) -> super::redpool_status {
    let timeout = Some(Duration::from_millis(u64::from(timeout_ms)));
    // SAFETY: per this function's contract.
    unsafe { pool_command(pool, timeout, argc, argv, argvlen, reply) }
}

/// # Safety
/// As for `redpool_pool_command`.
unsafe fn pool_command(
    pool: *const redpool_pool,
    reply_timeout: Option<Duration>,
    argc: usize,
    argv: *const *const c_char,
    argvlen: *const usize,
    reply: *mut *mut redpool_reply,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per the caller's contract.
        let mut pool = unsafe { borrow(pool) }?;
        // SAFETY: per the caller's contract.
        unsafe { request::single(&mut pool, reply_timeout, argc, argv, argvlen, reply) }
    })
}

/// Sends `count` commands as one pipeline on one pooled connection. On success `*reply` is an
/// ARRAY with one reply per command, in order (error replies in place).
///
/// # Safety
/// `pool` is NULL or a live handle; `cmds` is NULL or points to `count` commands; `reply` is NULL
/// or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_pipeline(
    pool: *const redpool_pool,
    count: usize,
    cmds: *const redpool_cmd,
    reply: *mut *mut redpool_reply,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let mut pool = unsafe { borrow(pool) }?;
        // SAFETY: per this function's contract.
        unsafe { request::pipeline(&mut pool, count, cmds, reply) }
    })
}

/// Runs `count` commands in MULTI / EXEC, in one round trip. On success `*reply` is an ARRAY of
/// the commands' replies, NIL when a WATCHed key changed (the transaction did not run), or an
/// ERROR reply (EXECABORT) when the server rejected a command while queueing.
///
/// # Safety
/// As for `redpool_pool_pipeline`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_transaction(
    pool: *const redpool_pool,
    count: usize,
    cmds: *const redpool_cmd,
    reply: *mut *mut redpool_reply,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let mut pool = unsafe { borrow(pool) }?;
        // SAFETY: per this function's contract.
        unsafe { request::transaction(&mut pool, count, cmds, reply) }
    })
}

/// Closes the pool: new calls fail with `REDPOOL_STATUS_CLOSED`, waiting threads wake with it,
/// idle connections close; waits up to `grace_ms` for checked-out connections, then shuts their
/// sockets down. The handle stays valid until `redpool_pool_free`. Safe to call twice.
///
/// # Safety
/// `pool` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_close(
    pool: *const redpool_pool,
    grace_ms: u32,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let pool = unsafe { borrow(pool) }?;
        pool.close(Duration::from_millis(u64::from(grace_ms)));
        Ok(())
    })
}

/// Releases this handle. The pool itself lives on while other handles (including shared ones),
/// checked-out connections or calls still running on it hold it; when the last one goes, its
/// connections are closed. NULL is ignored. Must not race with a call *starting* on this same
/// handle on another thread, but a call already running keeps the pool alive: an event callback
/// may free the last handle of the pool that raised the event (the call that raised it returns
/// normally, and the pool goes when it does).
///
/// # Safety
/// `pool` is NULL or a live handle, not used after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_free(pool: *mut redpool_pool) {
    super::query((), || {
        if !pool.is_null() {
            // SAFETY: a counted reference made by `into_handle`, given back by the caller.
            drop(unsafe { Pool::from_raw(pool.cast_const().cast()) });
        }
    })
}

/// Creates a pool with `make` (after checking `out`, so a NULL output fails before any network
/// work) and hands it to C through `out`.
///
/// # Safety
/// `out` is NULL or valid for a write.
unsafe fn hand_out(out: *mut *mut redpool_pool, make: impl FnOnce() -> Result<Pool>) -> Result<()> {
    check_out(out, "out")?;
    let pool = make()?;
    // SAFETY: per the caller's contract.
    unsafe { write_out(out, "out", into_handle(pool)) }
}
