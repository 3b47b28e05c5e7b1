//! Plain snapshot structs for C: pool stats and the health report. Each starts with its own size,
//! set by the caller, so fields can be appended in later versions without breaking old programs.

use std::ffi::c_char;

use super::pool::{borrow, redpool_pool};
use super::{boundary, null};
use crate::breaker::BreakerState;
use crate::error::{Error, ErrorKind};
use crate::health::HealthStatus;
use crate::metrics::{CloseReason, PoolStats};

/// Circuit breaker states.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum redpool_breaker_state {
    /// Calls pass.
    REDPOOL_BREAKER_CLOSED = 0,
    /// Calls fail fast.
    REDPOOL_BREAKER_OPEN = 1,
    /// A limited number of probe calls pass.
    REDPOOL_BREAKER_HALF_OPEN = 2,
}

impl From<BreakerState> for redpool_breaker_state {
    fn from(state: BreakerState) -> Self {
        match state {
            BreakerState::Closed => redpool_breaker_state::REDPOOL_BREAKER_CLOSED,
            BreakerState::Open => redpool_breaker_state::REDPOOL_BREAKER_OPEN,
            BreakerState::HalfOpen => redpool_breaker_state::REDPOOL_BREAKER_HALF_OPEN,
        }
    }
}

/// Health statuses.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum redpool_health_status {
    /// Answers fast, breaker closed, no recent failures.
    REDPOOL_HEALTH_HEALTHY = 0,
    /// Answers, but slowly or after recent failures.
    REDPOOL_HEALTH_DEGRADED = 1,
    /// Does not answer, answers very slowly, or the breaker is open.
    REDPOOL_HEALTH_UNHEALTHY = 2,
    /// No check was made yet (only in events).
    REDPOOL_HEALTH_UNKNOWN = 3,
}

impl From<Option<HealthStatus>> for redpool_health_status {
    fn from(status: Option<HealthStatus>) -> Self {
        match status {
            Some(HealthStatus::Healthy) => redpool_health_status::REDPOOL_HEALTH_HEALTHY,
            Some(HealthStatus::Degraded) => redpool_health_status::REDPOOL_HEALTH_DEGRADED,
            Some(HealthStatus::Unhealthy) => redpool_health_status::REDPOOL_HEALTH_UNHEALTHY,
            None => redpool_health_status::REDPOOL_HEALTH_UNKNOWN,
        }
    }
}

/// A snapshot of a pool. Set `struct_size = sizeof(redpool_stats)` before the call; the library
/// fills at most that many bytes, so programs built against an older header keep working.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct redpool_stats {
    /// Set by the caller to `sizeof(redpool_stats)`.
    pub struct_size: usize,
    /// Configured cap on open sockets.
    pub max_connections: u64,
    /// Configured connections kept open.
    pub min_idle: u64,
    /// Sockets open or being opened.
    pub open: u64,
    /// Open connections waiting in the pool.
    pub idle: u64,
    /// Connections checked out by callers (the pool's own background health check is not one).
    pub in_use: u64,
    /// Connections being opened.
    pub connecting: u64,
    /// Callers waiting for a connection.
    pub waiting: u64,
    /// Connections opened so far.
    pub connections_created: u64,
    /// Connections closed so far, whatever the reason.
    pub connections_closed: u64,
    /// Closed after an error or an interrupted request.
    pub closed_broken: u64,
    /// Closed because the caller discarded them or left state behind.
    pub closed_discarded: u64,
    /// Found closed by the server.
    pub closed_server: u64,
    /// Closed after `idle_timeout`.
    pub closed_idle_timeout: u64,
    /// Retired after `max_lifetime`.
    pub closed_max_lifetime: u64,
    /// Closed after a failed health PING.
    pub closed_health_check: u64,
    /// Closed by `redpool_pool_close`.
    pub closed_pool_closed: u64,
    /// Inherited across `fork()` and dropped unused.
    pub closed_forked: u64,
    /// Connect attempts.
    pub connect_attempts: u64,
    /// Failed connect attempts.
    pub connect_failures: u64,
    /// Successful checkouts.
    pub acquires: u64,
    /// Checkouts that gave up waiting.
    pub acquire_timeouts: u64,
    /// Commands sent.
    pub commands: u64,
    /// Retries made.
    pub retries: u64,
    /// Failed attempts, all kinds.
    pub errors: u64,
    /// Failed attempts: connection errors.
    pub errors_connection: u64,
    /// Failed attempts: timeouts.
    pub errors_timeout: u64,
    /// Failed attempts: pool exhausted.
    pub errors_pool_exhausted: u64,
    /// Failed attempts: circuit open.
    pub errors_circuit_open: u64,
    /// Failed attempts: server error replies.
    pub errors_response: u64,
    /// Total time callers waited for a connection, in microseconds.
    pub wait_time_total_us: u64,
    /// Longest wait for a connection, in microseconds.
    pub wait_time_max_us: u64,
    /// The circuit breaker's state.
    pub breaker_state: redpool_breaker_state,
    /// Closed because `redpool_pool_resize` lowered the cap.
    pub closed_resized: u64,
    /// Checkouts held longer than `leak_detection_threshold`.
    pub leaks_suspected: u64,
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn fill(stats: &PoolStats, breaker: BreakerState) -> redpool_stats {
    let n = |v: usize| v as u64;
    redpool_stats {
        struct_size: std::mem::size_of::<redpool_stats>(),
        max_connections: n(stats.max_connections),
        min_idle: n(stats.min_idle),
        open: n(stats.open),
        idle: n(stats.idle),
        in_use: n(stats.in_use),
        connecting: n(stats.connecting),
        waiting: n(stats.waiting),
        connections_created: stats.connections_created,
        connections_closed: stats.closed_total(),
        closed_broken: stats.closed(CloseReason::Broken),
        closed_discarded: stats.closed(CloseReason::Discarded),
        closed_server: stats.closed(CloseReason::ServerClosed),
        closed_idle_timeout: stats.closed(CloseReason::IdleTimeout),
        closed_max_lifetime: stats.closed(CloseReason::MaxLifetime),
        closed_health_check: stats.closed(CloseReason::HealthCheckFailed),
        closed_pool_closed: stats.closed(CloseReason::PoolClosed),
        closed_forked: stats.closed(CloseReason::Forked),
        connect_attempts: stats.connect_attempts,
        connect_failures: stats.connect_failures,
        acquires: stats.acquires,
        acquire_timeouts: stats.acquire_timeouts,
        commands: stats.commands,
        retries: stats.retries,
        errors: stats.errors.iter().map(|(_, n)| n).sum(),
        errors_connection: stats.errors_of(ErrorKind::Connection),
        errors_timeout: stats.errors_of(ErrorKind::Timeout),
        errors_pool_exhausted: stats.errors_of(ErrorKind::PoolExhausted),
        errors_circuit_open: stats.errors_of(ErrorKind::CircuitOpen),
        errors_response: stats.errors_of(ErrorKind::Response),
        wait_time_total_us: micros(stats.wait_time_total),
        wait_time_max_us: micros(stats.wait_time_max),
        breaker_state: breaker.into(),
        closed_resized: stats.closed(CloseReason::Resized),
        leaks_suspected: stats.leaks_suspected,
    }
}

/// Copies the first `(*out).struct_size` bytes of `value` into `out` (keeping the caller's size).
///
/// # Safety
/// `out` is valid for `(*out).struct_size` bytes.
unsafe fn copy_sized<T: Copy>(out: *mut T, value: T, what: &str) -> crate::error::Result<()> {
    if out.is_null() {
        return Err(null(what));
    }
    // SAFETY: every snapshot struct starts with `struct_size: usize`.
    let size = unsafe { out.cast::<usize>().read() };
    if size < std::mem::size_of::<usize>() {
        return Err(Error::invalid(
            &format!("{what}->struct_size"),
            size,
            "must be set to sizeof the struct",
        ));
    }
    let n = size.min(std::mem::size_of::<T>());
    // SAFETY: the caller's buffer holds `size >= n` bytes; `value` is a plain struct.
    unsafe {
        std::ptr::copy_nonoverlapping((&value as *const T).cast::<u8>(), out.cast::<u8>(), n);
        out.cast::<usize>().write(size);
    }
    Ok(())
}

/// Fills `out` with a snapshot of the pool's gauges and counters. Set `out->struct_size` first.
///
/// # Safety
/// `pool` is NULL or a live handle; `out` is NULL or valid for `out->struct_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_stats(
    pool: *const redpool_pool,
    out: *mut redpool_stats,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let pool = unsafe { borrow(pool) }?;
        let stats = fill(&pool.stats(), pool.breaker_state());
        // SAFETY: per this function's contract.
        unsafe { copy_sized(out, stats, "out") }
    })
}

/// A health report. Set `struct_size = sizeof(redpool_health)` before the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct redpool_health {
    /// Set by the caller to `sizeof(redpool_health)`.
    pub struct_size: usize,
    /// Overall status.
    pub status: redpool_health_status,
    /// The circuit breaker's state.
    pub breaker_state: redpool_breaker_state,
    /// PING round trip in microseconds, or -1 when the PING failed.
    pub ping_latency_us: i64,
    /// Consecutive failed calls counted by the breaker.
    pub consecutive_failures: u32,
    /// The server's `connected_clients`, or -1 when unknown.
    pub connected_clients: i64,
    /// The server's `rejected_connections`, or -1 when unknown.
    pub rejected_connections: i64,
    /// Why the status is not healthy (reasons joined by "; "), or the PING error; NUL-terminated,
    /// truncated to fit.
    pub summary: [c_char; 256],
    /// Connections in use divided by `max_connections`, now.
    pub utilization: f64,
    /// Checkouts per second since the previous health check.
    pub arrival_rate: f64,
    /// Mean time a checkout was held since the previous check, in microseconds.
    pub mean_hold_time_us: u64,
    /// Mean wait for a connection since the previous check, in microseconds.
    pub mean_wait_us: u64,
    /// A `max_connections` that fits the observed load (Little's law with headroom).
    pub suggested_max_connections: u64,
}

/// Checks the server (PING and INFO on a pooled connection) and fills `out`. Problems are part of
/// the report, not a failure status. Set `out->struct_size` first.
///
/// # Safety
/// `pool` is NULL or a live handle; `out` is NULL or valid for `out->struct_size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_health(
    pool: *const redpool_pool,
    out: *mut redpool_health,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let pool = unsafe { borrow(pool) }?;
        if out.is_null() {
            return Err(null("out"));
        }
        let report = pool.health();
        let info = |name: &str| {
            report
                .server_info
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<i64>().ok())
                .unwrap_or(-1)
        };
        let mut health = redpool_health {
            struct_size: std::mem::size_of::<redpool_health>(),
            status: Some(report.status).into(),
            breaker_state: report.breaker.into(),
            ping_latency_us: report
                .ping_latency
                .map_or(-1, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)),
            consecutive_failures: report.consecutive_failures,
            connected_clients: info("connected_clients"),
            rejected_connections: info("rejected_connections"),
            summary: [0; 256],
            utilization: report.sizing.utilization,
            arrival_rate: report.sizing.arrival_rate,
            mean_hold_time_us: micros(report.sizing.mean_hold_time),
            mean_wait_us: micros(report.sizing.mean_wait),
            suggested_max_connections: report.sizing.suggested_max_connections as u64,
        };
        let summary = report.reasons.join("; ");
        for (slot, byte) in health.summary.iter_mut().zip(summary.bytes().take(255)) {
            *slot = byte as c_char;
        }
        // SAFETY: per this function's contract.
        unsafe { copy_sized(out, health, "out") }
    })
}
