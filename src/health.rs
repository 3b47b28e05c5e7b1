//! The health report: status (healthy / degraded / unhealthy) from ping latency, the breaker,
//! consecutive failures and the server's rejected connections, with selected `INFO` fields and
//! the pool stats. The I/O is done by `Pool::health`; this module holds the types and the rules.

use std::time::{Duration, Instant};

use crate::breaker::BreakerState;
use crate::config::HealthThresholds;
use crate::metrics::PoolStats;
use crate::sizing::{Sample, SizingAdvice};

/// Overall health, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HealthStatus {
    /// Answers fast, breaker closed, no recent failures.
    Healthy,
    /// Answers, but slowly, or after recent failures, or while the server rejects connections.
    Degraded,
    /// Does not answer, answers very slowly, or the breaker is open.
    Unhealthy,
}

impl HealthStatus {
    /// `"healthy"`, `"degraded"` or `"unhealthy"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// `INFO` fields included in the report.
pub const INFO_FIELDS: &[&str] = &[
    "redis_version",
    "role",
    "uptime_in_seconds",
    "connected_clients",
    "blocked_clients",
    "maxclients",
    "used_memory_human",
    "maxmemory_human",
    "rejected_connections",
    "evicted_keys",
];

/// The result of `Pool::health()`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// Overall status.
    pub status: HealthStatus,
    /// Why the status is not healthy (empty when healthy).
    pub reasons: Vec<String>,
    /// Round trip of a PING, when it succeeded.
    pub ping_latency: Option<Duration>,
    /// The error of the PING or INFO, when one failed.
    pub error: Option<String>,
    /// The circuit breaker's state.
    pub breaker: BreakerState,
    /// Consecutive failed calls counted by the breaker.
    pub consecutive_failures: u32,
    /// Selected `INFO` fields ([`INFO_FIELDS`]), in that order, when INFO succeeded.
    pub server_info: Vec<(String, String)>,
    /// The pool's stats at the time of the check.
    pub stats: PoolStats,
    /// Utilization, waits and a suggested `max_connections` since the previous check.
    pub sizing: SizingAdvice,
}

impl HealthReport {
    /// The report as one JSON object (for `/health` endpoints and `redpool health --json`).
    /// Durations are in milliseconds; no credentials appear in it.
    pub fn to_json(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let s = &self.stats;
        let z = &self.sizing;
        let info: Vec<String> = self
            .server_info
            .iter()
            .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
            .collect();
        let reasons: Vec<String> = self.reasons.iter().map(|r| json_string(r)).collect();
        format!(
            concat!(
                "{{\"status\":{},\"reasons\":[{}],\"ping_latency_ms\":{},\"error\":{},",
                "\"breaker\":{},\"consecutive_failures\":{},\"server_info\":{{{}}},",
                "\"stats\":{{\"max_connections\":{},\"min_idle\":{},\"open\":{},\"idle\":{},",
                "\"in_use\":{},\"connecting\":{},\"waiting\":{},\"acquires\":{},",
                "\"acquire_timeouts\":{},\"commands\":{},\"connections_created\":{},",
                "\"connections_closed\":{},\"leaks_suspected\":{}}},",
                "\"sizing\":{{\"window_ms\":{},\"utilization\":{},\"mean_in_use\":{},",
                "\"arrival_rate\":{},\"mean_hold_time_ms\":{},\"mean_wait_ms\":{},",
                "\"acquire_timeouts\":{},\"max_connections\":{},",
                "\"suggested_max_connections\":{}}}}}"
            ),
            json_string(self.status.as_str()),
            reasons.join(","),
            self.ping_latency
                .map_or("null".to_string(), |d| json_number(ms(d))),
            self.error
                .as_deref()
                .map_or("null".to_string(), json_string),
            json_string(self.breaker.as_str()),
            self.consecutive_failures,
            info.join(","),
            s.max_connections,
            s.min_idle,
            s.open,
            s.idle,
            s.in_use,
            s.connecting,
            s.waiting,
            s.acquires,
            s.acquire_timeouts,
            s.commands,
            s.connections_created,
            s.closed_total(),
            s.leaks_suspected,
            json_number(ms(z.window)),
            json_number(z.utilization),
            json_number(z.mean_in_use),
            json_number(z.arrival_rate),
            json_number(ms(z.mean_hold_time)),
            json_number(ms(z.mean_wait)),
            z.acquire_timeouts,
            z.max_connections,
            z.suggested_max_connections,
        )
    }
}

/// A JSON string literal.
pub(crate) fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (finite; NaN and infinities become 0).
fn json_number(value: f64) -> String {
    if value.is_finite() {
        format!("{}", (value * 1000.0).round() / 1000.0)
    } else {
        "0".to_string()
    }
}

/// What the previous check saw, to report changes only.
#[derive(Debug, Default)]
pub(crate) struct HealthMemory {
    pub last_status: Option<HealthStatus>,
    pub last_rejected_connections: Option<u64>,
    /// The counters at the previous check (the start of the next sizing window).
    pub last_sample: Option<Sample>,
    /// The latest report and when it was made (read by the `/health` endpoint without I/O).
    pub last_report: Option<(Instant, HealthReport)>,
}

/// What one check observed.
pub(crate) struct Observation {
    pub ping: Result<Duration, String>,
    pub info: Vec<(String, String)>,
    pub breaker: BreakerState,
    pub consecutive_failures: u32,
}

/// Applies the rules to an observation; updates `memory` and returns the report and whether the
/// status changed (previous status, for the event).
pub(crate) fn assess(
    observation: Observation,
    thresholds: &HealthThresholds,
    memory: &mut HealthMemory,
    stats: PoolStats,
    sizing: SizingAdvice,
) -> (HealthReport, Option<Option<HealthStatus>>) {
    let mut unhealthy = Vec::new();
    let mut degraded = Vec::new();
    let (latency, error) = match &observation.ping {
        Ok(latency) => (Some(*latency), None),
        Err(err) => (None, Some(err.clone())),
    };
    match (&latency, &error) {
        (_, Some(err)) => unhealthy.push(format!("PING failed: {err}")),
        (Some(l), None) if *l >= thresholds.unhealthy_latency => unhealthy.push(format!(
            "ping latency {l:?} >= {:?}",
            thresholds.unhealthy_latency
        )),
        (Some(l), None) if *l >= thresholds.degraded_latency => degraded.push(format!(
            "ping latency {l:?} >= {:?}",
            thresholds.degraded_latency
        )),
        _ => {}
    }
    match observation.breaker {
        BreakerState::Open => unhealthy.push("circuit breaker open".into()),
        BreakerState::HalfOpen => degraded.push("circuit breaker half-open".into()),
        BreakerState::Closed => {}
    }
    if observation.consecutive_failures > 0 {
        degraded.push(format!(
            "{} consecutive failed calls",
            observation.consecutive_failures
        ));
    }
    let rejected = field(&observation.info, "rejected_connections").and_then(|v| v.parse().ok());
    if let (Some(now), Some(before)) = (rejected, memory.last_rejected_connections) {
        if now > before {
            degraded.push(format!(
                "server rejected {} connections since the last check (maxclients reached?)",
                now - before
            ));
        }
    }
    if rejected.is_some() {
        memory.last_rejected_connections = rejected;
    }
    let status = if !unhealthy.is_empty() {
        HealthStatus::Unhealthy
    } else if !degraded.is_empty() {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    };
    let previous = memory.last_status.replace(status);
    let changed = (previous != Some(status)).then_some(previous);
    unhealthy.extend(degraded);
    let report = HealthReport {
        status,
        reasons: unhealthy,
        ping_latency: latency,
        error,
        breaker: observation.breaker,
        consecutive_failures: observation.consecutive_failures,
        server_info: observation.info,
        stats,
        sizing,
    };
    memory.last_report = Some((Instant::now(), report.clone()));
    (report, changed)
}

/// Picks [`INFO_FIELDS`] out of an `INFO` reply.
pub(crate) fn select_info_fields(info: &str) -> Vec<(String, String)> {
    let all: Vec<(&str, &str)> = info
        .lines()
        .filter_map(|line| line.trim_end().split_once(':'))
        .collect();
    INFO_FIELDS
        .iter()
        .filter_map(|name| {
            all.iter()
                .find(|(k, _)| k == name)
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn field<'a>(info: &'a [(String, String)], name: &str) -> Option<&'a str> {
    info.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe(
        ping: Result<Duration, String>,
        breaker: BreakerState,
        rejected: u64,
    ) -> Observation {
        Observation {
            ping,
            info: vec![("rejected_connections".into(), rejected.to_string())],
            breaker,
            consecutive_failures: 0,
        }
    }

    #[test]
    fn status_rules_and_change_detection() {
        let t = HealthThresholds::default();
        let mut memory = HealthMemory::default();
        let ms = Duration::from_millis;
        let mut check = |o| {
            assess(
                o,
                &t,
                &mut memory,
                PoolStats::default(),
                SizingAdvice::default(),
            )
        };
        let (r, changed) = check(observe(Ok(ms(1)), BreakerState::Closed, 0));
        assert_eq!(r.status, HealthStatus::Healthy);
        assert_eq!(
            changed,
            Some(None),
            "first check reports a change from nothing"
        );
        let (r, changed) = check(observe(Ok(ms(2)), BreakerState::Closed, 0));
        assert_eq!((r.status, changed), (HealthStatus::Healthy, None));
        let (r, changed) = check(observe(Ok(ms(60)), BreakerState::Closed, 0));
        assert_eq!(r.status, HealthStatus::Degraded);
        assert_eq!(changed, Some(Some(HealthStatus::Healthy)));
        let (r, _) = check(observe(Ok(ms(150)), BreakerState::Closed, 0));
        assert_eq!(r.status, HealthStatus::Unhealthy);
        let (r, _) = check(observe(Err("timed out".into()), BreakerState::Closed, 0));
        assert_eq!(r.status, HealthStatus::Unhealthy);
        assert!(r.reasons[0].contains("timed out"));
        let (r, _) = check(observe(Ok(ms(1)), BreakerState::Open, 0));
        assert_eq!(r.status, HealthStatus::Unhealthy);
        let (r, _) = check(observe(Ok(ms(1)), BreakerState::HalfOpen, 0));
        assert_eq!(r.status, HealthStatus::Degraded);
        let (r, _) = check(observe(Ok(ms(1)), BreakerState::Closed, 3));
        assert_eq!(
            r.status,
            HealthStatus::Degraded,
            "rejected connections grew"
        );
        let (r, _) = check(observe(Ok(ms(1)), BreakerState::Closed, 3));
        assert_eq!(r.status, HealthStatus::Healthy);
    }

    #[test]
    fn picks_info_fields() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrole:master\r\n# Clients\r\nconnected_clients:3\r\n";
        let fields = select_info_fields(info);
        assert_eq!(
            fields,
            vec![
                ("redis_version".to_string(), "7.0.15".to_string()),
                ("role".to_string(), "master".to_string()),
                ("connected_clients".to_string(), "3".to_string()),
            ]
        );
    }
}
