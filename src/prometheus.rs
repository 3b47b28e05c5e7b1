//! The Prometheus text exposition format (version 0.0.4) of one pool or every pool in the process.
//!
//! Names follow the OpenTelemetry database-client conventions where they exist
//! (`db.client.connection.wait_time` → `redpool_connection_wait_time_seconds`, ...), and
//! redpool's own connection families share the `redpool_connection_` prefix. The one exception:
//! `db.client.connection.count` is `redpool_connections`, since Prometheus reserves the `_count`
//! suffix for histograms and summaries (`promtool check metrics` rejects it on a gauge). Every series carries the labels `pool` (the
//! pool's name, see [`crate::Config::pool_name`]) and `server` (`host:port` or the socket path:
//! never credentials). Label values come from fixed sets (command table, error kinds, close
//! reasons, states), so no caller can grow the number of series without bound.

use std::fmt::Write;

use crate::breaker::BreakerState;
use crate::error::ErrorKind;
use crate::health::HealthStatus;
use crate::metrics::{BREAKER_STATES, CloseReason, CommandSnapshot, HistogramSnapshot, PoolStats};

/// The content type of the text this module writes (for HTTP responses).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Everything exported about one pool, read at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolMetrics {
    /// The `pool` label.
    pub pool: String,
    /// The `server` label: `host:port` or a Unix socket path.
    pub server: String,
    /// Gauges and totals.
    pub stats: PoolStats,
    /// The circuit breaker's state now.
    pub breaker: BreakerState,
    /// Transitions into each breaker state so far.
    pub breaker_transitions: [(BreakerState, u64); 3],
    /// The status of the last health check (`None` before the first one).
    pub health: Option<HealthStatus>,
    /// How long acquires waited for a connection.
    pub wait_time: HistogramSnapshot,
    /// How long opening a connection took.
    pub create_time: HistogramSnapshot,
    /// How long callers held checked-out connections.
    pub use_time: HistogramSnapshot,
    /// Per-command counts and durations (commands never used are left out).
    pub commands: Vec<CommandSnapshot>,
}

/// Label names and values of one series (besides `pool` and `server`).
type Labels = Vec<(&'static str, &'static str)>;

const HEALTH_STATES: [(Option<HealthStatus>, &str); 4] = [
    (Some(HealthStatus::Healthy), "healthy"),
    (Some(HealthStatus::Degraded), "degraded"),
    (Some(HealthStatus::Unhealthy), "unhealthy"),
    (None, "unknown"),
];

/// Families with one series per pool: (type, name, help, value).
#[allow(clippy::type_complexity)]
const SINGLE_VALUED: &[(&str, &str, &str, fn(&PoolMetrics) -> f64)] = &[
    (
        "gauge",
        "redpool_connection_max",
        "The most connections the pool may open (max_connections).",
        |p| p.stats.max_connections as f64,
    ),
    (
        "gauge",
        "redpool_connection_idle_min",
        "Connections the pool keeps open while unused (min_idle).",
        |p| p.stats.min_idle as f64,
    ),
    (
        "gauge",
        "redpool_connection_pending_requests",
        "Callers waiting for a connection.",
        |p| p.stats.waiting as f64,
    ),
    (
        "counter",
        "redpool_connection_timeouts_total",
        "Acquires that gave up waiting for a connection (acquire_timeout).",
        |p| p.stats.acquire_timeouts as f64,
    ),
    (
        "gauge",
        "redpool_connection_connecting",
        "Connections being opened (they count against max_connections).",
        |p| p.stats.connecting as f64,
    ),
    (
        "counter",
        "redpool_connection_opened_total",
        "Connections opened.",
        |p| p.stats.connections_created as f64,
    ),
    (
        "counter",
        "redpool_retries_total",
        "Calls retried after a transient failure.",
        |p| p.stats.retries as f64,
    ),
    (
        "counter",
        "redpool_connection_leaks_suspected_total",
        "Checkouts held longer than leak_detection_threshold.",
        |p| p.stats.leaks_suspected as f64,
    ),
    (
        "counter",
        "redpool_out_of_band_replies_total",
        "Frames that answered no command (RESP3 pushes, published messages), consumed and dropped.",
        |p| p.stats.out_of_band_replies as f64,
    ),
];

/// Renders `pools` as one exposition: each metric family once (HELP, TYPE), with one series per
/// pool. Two pools with the same name and server get `#2`, `#3`... appended to the later names.
pub fn render(pools: &[PoolMetrics]) -> String {
    let labels = unique_labels(pools);
    let mut out = Exposition {
        out: String::with_capacity(4096 + 2048 * pools.len()),
        pools: pools.iter().zip(labels).collect(),
    };
    out.gauge(
        "redpool_connections",
        "Open connections by state: idle in the pool, or used (checked out).",
        |p| {
            let s = &p.stats;
            vec![
                (vec![("state", "idle")], s.idle as f64),
                (vec![("state", "used")], s.in_use as f64),
            ]
        },
    );
    for (kind, name, help, value) in SINGLE_VALUED {
        out.scalar(name, kind, help, |p| vec![(Vec::new(), value(p))]);
    }
    out.gauge(
        "redpool_breaker_state",
        "Circuit breaker state: 1 for the current state, 0 for the others.",
        |p| {
            BREAKER_STATES
                .iter()
                .map(|s| (vec![("state", s.as_str())], flag(*s == p.breaker)))
                .collect()
        },
    );
    out.gauge(
        "redpool_health_status",
        "Status of the last health check: 1 for the current status (unknown before the first).",
        |p| {
            HEALTH_STATES
                .iter()
                .map(|(s, name)| (vec![("status", *name)], flag(*s == p.health)))
                .collect()
        },
    );
    out.counter(
        "redpool_connection_closed_total",
        "Connections closed, by reason.",
        |p| {
            CloseReason::ALL
                .iter()
                .map(|r| (vec![("reason", r.as_str())], p.stats.closed(*r) as f64))
                .collect()
        },
    );
    out.counter(
        "redpool_connection_errors_total",
        "Failed connect attempts (connect, TLS or handshake) by error kind.",
        |p| by_error_kind(|k| p.stats.connect_errors_of(k)),
    );
    out.counter(
        "redpool_errors_total",
        "Failed calls by error kind (connection, timeout, pool_exhausted, response, ...).",
        |p| by_error_kind(|k| p.stats.errors_of(k)),
    );
    out.counter(
        "redpool_breaker_transitions_total",
        "Circuit breaker transitions, by the state entered.",
        |p| {
            p.breaker_transitions
                .iter()
                .map(|(s, n)| (vec![("to", s.as_str())], *n as f64))
                .collect()
        },
    );
    out.counter(
        "redpool_commands_total",
        "Commands by name and outcome (ok, or error: failed or an error reply).",
        |p| {
            p.commands
                .iter()
                .filter(|c| c.ok + c.errors > 0)
                .flat_map(|c| {
                    [
                        (vec![("command", c.command), ("outcome", "ok")], c.ok as f64),
                        (
                            vec![("command", c.command), ("outcome", "error")],
                            c.errors as f64,
                        ),
                    ]
                })
                .collect()
        },
    );
    out.histogram(
        "redpool_connection_wait_time_seconds",
        "Time callers waited to get a connection.",
        |p| vec![(vec![], &p.wait_time)],
    );
    out.histogram(
        "redpool_connection_create_time_seconds",
        "Time to open a connection (connect, TLS, handshake).",
        |p| vec![(vec![], &p.create_time)],
    );
    out.histogram(
        "redpool_connection_use_time_seconds",
        "Time callers held a connection between checkout and return.",
        |p| vec![(vec![], &p.use_time)],
    );
    out.histogram(
        "redpool_command_duration_seconds",
        "Time from sending a command to its reply; pipelines and transactions as a whole.",
        |p| {
            p.commands
                .iter()
                .filter(|c| c.duration.count > 0)
                .map(|c| (vec![("command", c.command)], &c.duration))
                .collect()
        },
    );
    out.out
}

/// One series per error kind, labelled `kind`.
fn by_error_kind(count: impl Fn(ErrorKind) -> u64) -> Vec<(Labels, f64)> {
    ErrorKind::ALL
        .iter()
        .map(|k| (vec![("kind", k.as_str())], count(*k) as f64))
        .collect()
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// The escaped `pool="...",server="..."` label text of each pool, made unique.
fn unique_labels(pools: &[PoolMetrics]) -> Vec<String> {
    let mut seen: Vec<(&str, &str)> = Vec::with_capacity(pools.len());
    pools
        .iter()
        .map(|p| {
            let twins = seen
                .iter()
                .filter(|(name, server)| *name == p.pool && *server == p.server)
                .count();
            seen.push((&p.pool, &p.server));
            let name = match twins {
                0 => p.pool.clone(),
                n => format!("{}#{}", p.pool, n + 1),
            };
            format!(
                "pool=\"{}\",server=\"{}\"",
                escape(&name),
                escape(&p.server)
            )
        })
        .collect()
}

/// Escapes a label value (backslash, double quote, line feed).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The text being written, and each pool with its label text.
struct Exposition<'a> {
    out: String,
    pools: Vec<(&'a PoolMetrics, String)>,
}

impl<'a> Exposition<'a> {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(out: &mut String, name: &str, base: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(out, "{name}{{{base}");
        for (key, val) in labels {
            let _ = write!(out, ",{key}=\"{}\"", escape(val));
        }
        let _ = writeln!(out, "}} {value}");
    }

    fn scalar(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        samples: impl Fn(&PoolMetrics) -> Vec<(Labels, f64)>,
    ) {
        self.header(name, kind, help);
        for (pool, base) in &self.pools {
            for (labels, value) in samples(pool) {
                Self::sample(&mut self.out, name, base, &labels, value);
            }
        }
    }

    fn gauge(
        &mut self,
        name: &str,
        help: &str,
        samples: impl Fn(&PoolMetrics) -> Vec<(Labels, f64)>,
    ) {
        self.scalar(name, "gauge", help, samples);
    }

    fn counter(
        &mut self,
        name: &str,
        help: &str,
        samples: impl Fn(&PoolMetrics) -> Vec<(Labels, f64)>,
    ) {
        self.scalar(name, "counter", help, samples);
    }

    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        series: impl Fn(&'a PoolMetrics) -> Vec<(Labels, &'a HistogramSnapshot)>,
    ) {
        self.header(name, "histogram", help);
        for (pool, base) in &self.pools {
            for (labels, h) in series(pool) {
                let bucket = format!("{name}_bucket");
                for (bound, count) in &h.buckets {
                    let le = bound.to_string();
                    let mut with_le: Vec<(&str, &str)> = labels.clone();
                    with_le.push(("le", &le));
                    Self::sample(&mut self.out, &bucket, base, &with_le, *count as f64);
                }
                let mut with_inf: Vec<(&str, &str)> = labels.clone();
                with_inf.push(("le", "+Inf"));
                Self::sample(&mut self.out, &bucket, base, &with_inf, h.count as f64);
                let sum = h.sum.as_secs_f64();
                Self::sample(&mut self.out, &format!("{name}_sum"), base, &labels, sum);
                let count = h.count as f64;
                Self::sample(
                    &mut self.out,
                    &format!("{name}_count"),
                    base,
                    &labels,
                    count,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str) -> PoolMetrics {
        PoolMetrics {
            pool: name.into(),
            server: "127.0.0.1:6379".into(),
            stats: PoolStats::default(),
            breaker: BreakerState::Closed,
            breaker_transitions: BREAKER_STATES.map(|s| (s, 0)),
            health: None,
            wait_time: HistogramSnapshot::default(),
            create_time: HistogramSnapshot::default(),
            use_time: HistogramSnapshot::default(),
            commands: Vec::new(),
        }
    }

    #[test]
    fn every_family_appears_once_with_help_and_type() {
        let text = render(&[pool("a"), pool("b")]);
        for family in ["redpool_connections", "redpool_commands_total"] {
            assert_eq!(text.matches(&format!("# TYPE {family} ")).count(), 1);
            assert_eq!(text.matches(&format!("# HELP {family} ")).count(), 1);
        }
        assert!(text.contains("redpool_connection_max{pool=\"a\",server=\"127.0.0.1:6379\"} 0\n"));
        assert!(text.contains(
            "redpool_breaker_state{pool=\"b\",server=\"127.0.0.1:6379\",state=\"closed\"} 1\n"
        ));
        assert!(text.contains(
            "redpool_health_status{pool=\"a\",server=\"127.0.0.1:6379\",status=\"unknown\"} 1\n"
        ));
    }

    #[test]
    fn twins_get_distinct_names_and_values_are_escaped() {
        let text = render(&[pool("x\"y"), pool("x\"y")]);
        assert!(text.contains("pool=\"x\\\"y\","), "{text}");
        assert!(text.contains("pool=\"x\\\"y#2\","), "{text}");
    }

    #[test]
    fn histograms_are_cumulative_with_inf_sum_and_count() {
        let mut p = pool("h");
        p.wait_time = HistogramSnapshot {
            buckets: vec![(0.001, 2), (0.01, 3)],
            count: 4,
            sum: std::time::Duration::from_millis(1500),
        };
        let text = render(&[p]);
        let base = "pool=\"h\",server=\"127.0.0.1:6379\"";
        for line in [
            format!("redpool_connection_wait_time_seconds_bucket{{{base},le=\"0.001\"}} 2"),
            format!("redpool_connection_wait_time_seconds_bucket{{{base},le=\"0.01\"}} 3"),
            format!("redpool_connection_wait_time_seconds_bucket{{{base},le=\"+Inf\"}} 4"),
            format!("redpool_connection_wait_time_seconds_sum{{{base}}} 1.5"),
            format!("redpool_connection_wait_time_seconds_count{{{base}}} 4"),
        ] {
            assert!(
                text.contains(&format!("{line}\n")),
                "missing {line} in\n{text}"
            );
        }
    }
}
