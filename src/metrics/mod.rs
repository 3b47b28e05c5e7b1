//! Pool counters (lock-free atomics on the hot path) and the [`PoolStats`] snapshot (rendered
//! for Prometheus by [`crate::prometheus`]).

mod commands;
mod histogram;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use commands::CommandSnapshot;
pub(crate) use commands::{CommandMetrics, Timed};
use histogram::Histogram;
pub use histogram::{COMMAND_BUCKETS, CONNECTION_BUCKETS, HistogramSnapshot};

use crate::breaker::BreakerState;
use crate::error::ErrorKind;

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// A connection, timeout or protocol error, or a request interrupted half way.
    Broken,
    /// The caller left it in a state that cannot be reset (SELECT, SUBSCRIBE, ...), or discarded it
    /// (one connection, or all of them with `Pool::disconnect`).
    Discarded,
    /// Unused for longer than `idle_timeout`.
    IdleTimeout,
    /// Older than `max_lifetime`.
    MaxLifetime,
    /// Found closed by the server (CLIENT KILL, server timeout, restart) before reuse.
    ServerClosed,
    /// A PING before reuse failed.
    HealthCheckFailed,
    /// The pool was closed.
    PoolClosed,
    /// Inherited from the parent process across `fork()`; the child's copy was dropped unused.
    Forked,
    /// Above a cap lowered by `Pool::resize`.
    Resized,
}

impl CloseReason {
    /// Every reason, in a fixed order (used to index counters).
    pub const ALL: [CloseReason; 9] = [
        CloseReason::Broken,
        CloseReason::Discarded,
        CloseReason::ServerClosed,
        CloseReason::IdleTimeout,
        CloseReason::MaxLifetime,
        CloseReason::HealthCheckFailed,
        CloseReason::PoolClosed,
        CloseReason::Forked,
        CloseReason::Resized,
    ];

    /// A short stable name (`"broken"`, `"idle_timeout"`, ...).
    pub fn as_str(self) -> &'static str {
        self.as_c_str().to_str().unwrap_or_default()
    }

    /// The same name as a static C string (for the C ABI).
    pub fn as_c_str(self) -> &'static std::ffi::CStr {
        match self {
            CloseReason::Broken => c"broken",
            CloseReason::Discarded => c"discarded",
            CloseReason::ServerClosed => c"server_closed",
            CloseReason::IdleTimeout => c"idle_timeout",
            CloseReason::MaxLifetime => c"max_lifetime",
            CloseReason::HealthCheckFailed => c"health_check_failed",
            CloseReason::PoolClosed => c"pool_closed",
            CloseReason::Forked => c"forked",
            CloseReason::Resized => c"resized",
        }
    }

    fn index(self) -> usize {
        CloseReason::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(0)
    }
}

/// Cumulative counters of one pool. Every update is a few relaxed atomic adds: no lock, no
/// allocation.
#[derive(Default)]
pub(crate) struct Counters {
    created: AtomicU64,
    connect_attempts: AtomicU64,
    /// Failed connect attempts by error kind (their sum is `connect_failures`).
    connect_errors: [AtomicU64; ErrorKind::ALL.len()],
    retries: AtomicU64,
    closed: [AtomicU64; CloseReason::ALL.len()],
    acquire_timeouts: AtomicU64,
    commands: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    wait_nanos_max: AtomicU64,
    leaks_suspected: AtomicU64,
    out_of_band_replies: AtomicU64,
    breaker_transitions: [AtomicU64; 3],
    /// How long acquires waited (successful ones; timed-out ones are in `acquire_timeouts`).
    pub wait_time: Histogram,
    /// How long opening a connection took (connect, TLS, handshake), successful ones.
    pub create_time: Histogram,
    /// How long callers held a checked-out connection.
    pub use_time: Histogram,
    /// Per command name and outcome.
    pub per_command: CommandMetrics,
}

impl Counters {
    pub fn connection_created(&self, took: Duration) {
        self.created.fetch_add(1, Ordering::Relaxed);
        self.create_time.observe(CONNECTION_BUCKETS, took);
    }
    pub fn out_of_band_replies(&self, count: u64) {
        if count > 0 {
            self.out_of_band_replies.fetch_add(count, Ordering::Relaxed);
        }
    }
    pub fn connect_attempted(&self) {
        self.connect_attempts.fetch_add(1, Ordering::Relaxed);
    }
    pub fn connect_failed(&self, kind: ErrorKind) {
        self.connect_errors[kind.index()].fetch_add(1, Ordering::Relaxed);
    }
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    pub fn connections_closed(&self, reason: CloseReason, count: usize) {
        self.closed[reason.index()].fetch_add(count as u64, Ordering::Relaxed);
    }
    pub fn acquired(&self, waited: Duration) {
        self.wait_time.observe(CONNECTION_BUCKETS, waited);
        self.note_max_wait(waited);
    }
    pub fn acquire_timed_out(&self, waited: Duration) {
        self.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
        self.note_max_wait(waited);
    }
    pub fn released(&self, held: Duration) {
        self.use_time.observe(CONNECTION_BUCKETS, held);
    }
    pub fn commands(&self, count: usize) {
        self.commands.fetch_add(count as u64, Ordering::Relaxed);
    }
    pub fn error(&self, kind: ErrorKind) {
        self.errors[kind.index()].fetch_add(1, Ordering::Relaxed);
    }
    pub fn leak_suspected(&self) {
        self.leaks_suspected.fetch_add(1, Ordering::Relaxed);
    }
    pub fn breaker_moved(&self, to: BreakerState) {
        self.breaker_transitions[breaker_index(to)].fetch_add(1, Ordering::Relaxed);
    }

    fn note_max_wait(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.wait_nanos_max.fetch_max(nanos, Ordering::Relaxed);
    }

    /// The counters the sizing advice compares between two instants.
    pub fn sizing_sample(&self, at: std::time::Instant) -> crate::sizing::Sample {
        let waits = self.wait_time.snapshot(&[]);
        let uses = self.use_time.snapshot(&[]);
        crate::sizing::Sample {
            at,
            acquires: waits.count,
            returns: uses.count,
            held_total: uses.sum,
            waited_total: waits.sum,
            timeouts: self.acquire_timeouts.load(Ordering::Relaxed),
        }
    }

    /// Transitions into each breaker state so far.
    pub fn breaker_transitions(&self) -> [(BreakerState, u64); 3] {
        BREAKER_STATES.map(|s| {
            (
                s,
                self.breaker_transitions[breaker_index(s)].load(Ordering::Relaxed),
            )
        })
    }

    /// Fills the cumulative part of a snapshot.
    pub fn fill(&self, stats: &mut PoolStats) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        stats.connections_created = load(&self.created);
        stats.connect_attempts = load(&self.connect_attempts);
        stats.connect_errors = by_kind(&self.connect_errors);
        stats.connect_failures = stats.connect_errors.iter().map(|(_, n)| n).sum();
        stats.retries = load(&self.retries);
        stats.connections_closed = CloseReason::ALL
            .iter()
            .map(|r| (*r, load(&self.closed[r.index()])))
            .collect();
        let waits = self.wait_time.snapshot(&[]);
        stats.acquires = waits.count;
        stats.acquire_timeouts = load(&self.acquire_timeouts);
        stats.commands = load(&self.commands);
        stats.errors = by_kind(&self.errors);
        stats.wait_time_total = waits.sum;
        stats.wait_time_max = Duration::from_nanos(load(&self.wait_nanos_max));
        stats.leaks_suspected = load(&self.leaks_suspected);
        stats.out_of_band_replies = load(&self.out_of_band_replies);
    }
}

/// Every breaker state, in a fixed order (used to index counters and to render gauges).
pub(crate) const BREAKER_STATES: [BreakerState; 3] = [
    BreakerState::Closed,
    BreakerState::Open,
    BreakerState::HalfOpen,
];

fn breaker_index(state: BreakerState) -> usize {
    BREAKER_STATES.iter().position(|s| *s == state).unwrap_or(0)
}

/// A point-in-time view of a pool: gauges from its state, totals since it was created.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolStats {
    /// Configured hard cap on open sockets.
    pub max_connections: usize,
    /// Configured number of connections kept open.
    pub min_idle: usize,
    /// Sockets open or being opened (idle + in use + connecting).
    pub open: usize,
    /// Open connections waiting in the pool.
    pub idle: usize,
    /// Connections checked out by callers (the pool's own background health check is not one).
    pub in_use: usize,
    /// Connections being opened right now.
    pub connecting: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
    /// Connections opened since the pool was created.
    pub connections_created: u64,
    /// Connect attempts (each TCP connect + handshake started).
    pub connect_attempts: u64,
    /// Connect attempts that failed.
    pub connect_failures: u64,
    /// Failed connect attempts by error kind (every kind is listed, zeros included).
    pub connect_errors: Vec<(ErrorKind, u64)>,
    /// Calls retried after a transient failure (each retry counts).
    pub retries: u64,
    /// Connections closed, by reason (every reason is listed, zeros included).
    pub connections_closed: Vec<(CloseReason, u64)>,
    /// Successful acquires (including the ones inside `execute`, `pipeline`, `transaction`).
    pub acquires: u64,
    /// Acquires that gave up after `acquire_timeout` (or at once, for `try_acquire`).
    pub acquire_timeouts: u64,
    /// Commands sent (each command of a pipeline or transaction counts).
    pub commands: u64,
    /// Failed attempts by error kind (every kind is listed, zeros included); a retried call counts
    /// each failed attempt.
    pub errors: Vec<(ErrorKind, u64)>,
    /// Total time callers spent waiting for a connection.
    pub wait_time_total: Duration,
    /// Longest single wait for a connection.
    pub wait_time_max: Duration,
    /// Checkouts held past `leak_detection_threshold` (each reported once).
    pub leaks_suspected: u64,
    /// Frames read that answered no command (RESP3 pushes such as client-tracking
    /// invalidations, messages published to a subscribed connection): consumed and dropped, so
    /// replies never shift.
    pub out_of_band_replies: u64,
}

impl PoolStats {
    /// Connections closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        count_of(&self.connections_closed, reason)
    }

    /// Failed connect attempts of `kind`.
    pub fn connect_errors_of(&self, kind: ErrorKind) -> u64 {
        count_of(&self.connect_errors, kind)
    }

    /// Failures of `kind`.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        count_of(&self.errors, kind)
    }

    /// All connections closed, whatever the reason.
    pub fn closed_total(&self) -> u64 {
        self.connections_closed.iter().map(|(_, n)| n).sum()
    }
}

/// Counters indexed by error kind, read as a `(kind, count)` list (every kind, zeros included).
fn by_kind(counters: &[AtomicU64; ErrorKind::ALL.len()]) -> Vec<(ErrorKind, u64)> {
    ErrorKind::ALL
        .iter()
        .map(|k| (*k, counters[k.index()].load(Ordering::Relaxed)))
        .collect()
}

/// The count recorded for `key` in a `(key, count)` list (0 when absent).
fn count_of<K: PartialEq>(counts: &[(K, u64)], key: K) -> u64 {
    counts
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(0, |(_, n)| *n)
}
