//! Metrics, health as JSON, run-time resizing and the built-in `/metrics` + `/health` endpoint.
//!
//! Text results are NUL-terminated strings allocated by the library: the caller owns them and
//! frees each with `redpool_string_free` (never `free`).

use std::ffi::{CString, c_char};

use super::pool::{borrow, redpool_pool};
use super::{boundary, null, utf8, write_out};
use crate::error::Result;

/// Hands `text` to C through `out` as a library-allocated string.
///
/// # Safety
/// `out` is NULL or valid for a write.
unsafe fn give_string(out: *mut *mut c_char, text: String) -> Result<()> {
    if out.is_null() {
        return Err(null("out"));
    }
    // Metrics and JSON never contain NUL; replace defensively rather than fail.
    let c = CString::new(text.replace('\0', " ")).unwrap_or_default();
    // SAFETY: per the caller's contract.
    unsafe { write_out(out, "out", c.into_raw()) }
}

/// The pool's metrics in the Prometheus text format. On success `*out` is a string the caller
/// owns: free it with `redpool_string_free`.
///
/// # Safety
/// `pool` is NULL or a live handle; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_metrics_text(
    pool: *const redpool_pool,
    out: *mut *mut c_char,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let pool = unsafe { borrow(pool) }?;
        // SAFETY: per this function's contract.
        unsafe { give_string(out, pool.metrics_text()) }
    })
}

/// The metrics of every open pool of the process in the Prometheus text format (each metric
/// family once, one series per pool). On success `*out` is a string the caller owns: free it
/// with `redpool_string_free`.
///
/// # Safety
/// `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_metrics_text(out: *mut *mut c_char) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        unsafe { give_string(out, crate::registry::metrics_text()) }
    })
}

/// Checks the server (like `redpool_pool_health`) and writes the whole report as JSON: status,
/// reasons, ping latency, breaker, server info, stats and sizing advice. On success `*out` is a
/// string the caller owns: free it with `redpool_string_free`.
///
/// # Safety
/// `pool` is NULL or a live handle; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_health_json(
    pool: *const redpool_pool,
    out: *mut *mut c_char,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let pool = unsafe { borrow(pool) }?;
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: per this function's contract.
        unsafe { give_string(out, pool.health().to_json()) }
    })
}

/// Frees a string returned by this library. NULL is ignored.
///
/// # Safety
/// `text` is NULL or a string from this library, not freed before and not used after.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_string_free(text: *mut c_char) {
    super::query((), || {
        if !text.is_null() {
            // SAFETY: made by `CString::into_raw` in `give_string`, given back once.
            drop(unsafe { CString::from_raw(text) });
        }
    })
}

/// Changes `max_connections` and `min_idle` at run time (same rules as the settings). Safe under
/// load: growing serves queued callers at once; shrinking closes idle connections above the new
/// cap now and checked-out ones when they are released.
///
/// # Safety
/// `pool` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_resize(
    pool: *const redpool_pool,
    max_connections: usize,
    min_idle: usize,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let pool = unsafe { borrow(pool) }?;
        pool.resize(max_connections, Some(min_idle))
    })
}

/// Closes every connection of the pool, as redis-py's `ConnectionPool.disconnect()`: idle ones
/// now, checked-out ones when they are released (never under a caller). The pool stays open and
/// opens new connections on demand. Returns `REDPOOL_STATUS_CLOSED` for a closed pool.
///
/// # Safety
/// `pool` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_disconnect(pool: *const redpool_pool) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let pool = unsafe { borrow(pool) }?;
        pool.disconnect()
    })
}

/// Starts the built-in HTTP endpoint on `addr`, a loopback `ip:port` such as `"127.0.0.1:9464"`
/// (port 0: any free port). Off by default; the environment variable `REDPOOL_METRICS_ADDR`
/// starts it with the first pool instead. On success `*port` (if not NULL) receives the port it
/// listens on.
///
/// - `GET /metrics`: every pool of the process, Prometheus text.
/// - `GET /health`: JSON with each pool's latest health report (from the background check every
///   `health_report_interval`, or the latest explicit check) and its age `age_ms`; it opens no
///   connection (a pool with no report yet is checked once). HTTP 503 when a pool is unhealthy.
/// - `GET /health?live=1`: checks every pool now (PING + INFO on one of its connections; one
///   check per pool at a time, shared by concurrent requests).
///
/// Every request must be complete and its answer read within 5 s, else the connection is cut.
/// Requests whose `Host` header is not a loopback name or address (`localhost`, `127.0.0.1`,
/// `[::1]`, with or without a port) get 403, so a web page cannot read the endpoint through DNS
/// rebinding. A forked child does not inherit the endpoint: call this again there to serve one.
///
/// # Safety
/// `addr` is NULL or a NUL-terminated string; `port` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_metrics_serve(
    addr: *const c_char,
    port: *mut u16,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let addr = unsafe { utf8(addr, "addr") }?;
        let bound = crate::exporter::serve(addr)?;
        if !port.is_null() {
            // SAFETY: non-NULL and writable per this function's contract.
            unsafe { write_out(port, "port", bound.port()) }?;
        }
        Ok(())
    })
}

/// Stops the built-in HTTP endpoint; false when it was not running. When it returns, the port is
/// closed; requests being answered finish within their deadline.
#[unsafe(no_mangle)]
pub extern "C" fn redpool_metrics_stop() -> bool {
    super::query(false, crate::exporter::stop)
}
