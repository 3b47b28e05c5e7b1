//! `stats()` and `health()` snapshots (with sizing advice) as plain JS objects (camelCase, times in
//! milliseconds).

use std::collections::HashMap;
use std::time::Duration;

use napi_derive::napi;

/// Gauges and totals of a pool (see the core's `PoolStats`).
#[napi(object)]
pub struct PoolStats {
    pub max_connections: u32,
    pub min_idle: u32,
    /// Sockets open or being opened.
    pub open: u32,
    pub idle: u32,
    pub in_use: u32,
    pub connecting: u32,
    /// Callers waiting for a connection.
    pub waiting: u32,
    pub connections_created: f64,
    pub connect_attempts: f64,
    pub connect_failures: f64,
    pub retries: f64,
    /// Connections closed, by reason (`broken`, `idle_timeout`, ...).
    pub connections_closed: HashMap<String, f64>,
    pub acquires: f64,
    pub acquire_timeouts: f64,
    pub commands: f64,
    /// Failed attempts, by error kind (`connection`, `timeout`, ...).
    pub errors: HashMap<String, f64>,
    pub wait_time_total_ms: f64,
    pub wait_time_max_ms: f64,
    /// Checkouts held longer than `leakDetectionThreshold` so far.
    pub leaks_suspected: f64,
}

/// Sizing advice from the window since the previous health check (see the core's `SizingAdvice`).
#[napi(object)]
pub struct SizingAdvice {
    /// The observed window.
    pub window_ms: f64,
    /// Connections in use now divided by `maxConnections`.
    pub utilization: f64,
    /// Mean connections in use over the window (λ · W).
    pub mean_in_use: f64,
    /// Checkouts per second over the window (λ).
    pub arrival_rate: f64,
    /// Mean time a checkout was held (W).
    pub mean_hold_time_ms: f64,
    /// Mean wait for a connection.
    pub mean_wait_ms: f64,
    /// Acquires that timed out in the window.
    pub acquire_timeouts: f64,
    /// The current `maxConnections`.
    pub max_connections: u32,
    /// A `maxConnections` for the observed load (Little's law with headroom).
    pub suggested_max_connections: u32,
}

/// The result of `health()` (see the core's `HealthReport`).
#[napi(object)]
pub struct HealthReport {
    /// `healthy`, `degraded` or `unhealthy`.
    pub status: String,
    pub reasons: Vec<String>,
    pub ping_latency_ms: Option<f64>,
    pub error: Option<String>,
    /// `closed`, `open` or `half_open`.
    pub breaker: String,
    pub consecutive_failures: u32,
    /// Selected `INFO` fields.
    pub server_info: HashMap<String, String>,
    pub stats: PoolStats,
    /// Utilization, waits and a suggested `maxConnections`.
    pub sizing: SizingAdvice,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl From<redpool::PoolStats> for PoolStats {
    fn from(s: redpool::PoolStats) -> Self {
        PoolStats {
            max_connections: count(s.max_connections),
            min_idle: count(s.min_idle),
            open: count(s.open),
            idle: count(s.idle),
            in_use: count(s.in_use),
            connecting: count(s.connecting),
            waiting: count(s.waiting),
            connections_created: s.connections_created as f64,
            connect_attempts: s.connect_attempts as f64,
            connect_failures: s.connect_failures as f64,
            retries: s.retries as f64,
            connections_closed: s
                .connections_closed
                .iter()
                .map(|(reason, n)| (reason.as_str().to_string(), *n as f64))
                .collect(),
            acquires: s.acquires as f64,
            acquire_timeouts: s.acquire_timeouts as f64,
            commands: s.commands as f64,
            errors: s
                .errors
                .iter()
                .map(|(kind, n)| (kind.as_str().to_string(), *n as f64))
                .collect(),
            wait_time_total_ms: ms(s.wait_time_total),
            wait_time_max_ms: ms(s.wait_time_max),
            leaks_suspected: s.leaks_suspected as f64,
        }
    }
}

impl From<redpool::HealthReport> for HealthReport {
    fn from(r: redpool::HealthReport) -> Self {
        HealthReport {
            status: r.status.as_str().into(),
            reasons: r.reasons,
            ping_latency_ms: r.ping_latency.map(ms),
            error: r.error,
            breaker: r.breaker.as_str().into(),
            consecutive_failures: r.consecutive_failures,
            server_info: r.server_info.into_iter().collect(),
            stats: r.stats.into(),
            sizing: r.sizing.into(),
        }
    }
}

impl From<redpool::sizing::SizingAdvice> for SizingAdvice {
    fn from(z: redpool::sizing::SizingAdvice) -> Self {
        SizingAdvice {
            window_ms: ms(z.window),
            utilization: z.utilization,
            mean_in_use: z.mean_in_use,
            arrival_rate: z.arrival_rate,
            mean_hold_time_ms: ms(z.mean_hold_time),
            mean_wait_ms: ms(z.mean_wait),
            acquire_timeouts: z.acquire_timeouts as f64,
            max_connections: count(z.max_connections),
            suggested_max_connections: count(z.suggested_max_connections),
        }
    }
}
