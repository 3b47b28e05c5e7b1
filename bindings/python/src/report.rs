//! Snapshots as plain Python dicts: pool stats, the health report and events. Durations are
//! float seconds; names are the core's stable `as_str()` names.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use redpool::sizing::SizingAdvice;
use redpool::{Event, HealthReport, PoolStats};

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// `Pool::stats()` as a dict.
pub fn stats<'py>(py: Python<'py>, s: &PoolStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("max_connections", s.max_connections)?;
    d.set_item("min_idle", s.min_idle)?;
    d.set_item("open", s.open)?;
    d.set_item("idle", s.idle)?;
    d.set_item("in_use", s.in_use)?;
    d.set_item("connecting", s.connecting)?;
    d.set_item("waiting", s.waiting)?;
    d.set_item("connections_created", s.connections_created)?;
    d.set_item("connect_attempts", s.connect_attempts)?;
    d.set_item("connect_failures", s.connect_failures)?;
    d.set_item("retries", s.retries)?;
    let closed = PyDict::new(py);
    for (reason, n) in &s.connections_closed {
        closed.set_item(reason.as_str(), n)?;
    }
    d.set_item("connections_closed", closed)?;
    d.set_item("acquires", s.acquires)?;
    d.set_item("acquire_timeouts", s.acquire_timeouts)?;
    d.set_item("commands", s.commands)?;
    let errors = PyDict::new(py);
    for (kind, n) in &s.errors {
        errors.set_item(kind.as_str(), n)?;
    }
    d.set_item("errors", errors)?;
    d.set_item("wait_time_total", seconds(s.wait_time_total))?;
    d.set_item("wait_time_max", seconds(s.wait_time_max))?;
    d.set_item("leaks_suspected", s.leaks_suspected)?;
    Ok(d)
}

/// `Pool::health()` as a dict.
pub fn health<'py>(py: Python<'py>, r: &HealthReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("status", r.status.as_str())?;
    d.set_item("reasons", &r.reasons)?;
    d.set_item("ping_latency", r.ping_latency.map(seconds))?;
    d.set_item("error", &r.error)?;
    d.set_item("breaker", r.breaker.as_str())?;
    d.set_item("consecutive_failures", r.consecutive_failures)?;
    let info = PyDict::new(py);
    for (k, v) in &r.server_info {
        info.set_item(k, v)?;
    }
    d.set_item("server_info", info)?;
    d.set_item("stats", stats(py, &r.stats)?)?;
    d.set_item("sizing", sizing(py, &r.sizing)?)?;
    Ok(d)
}

/// The health report's sizing advice as a dict (see `redpool::sizing`).
fn sizing<'py>(py: Python<'py>, z: &SizingAdvice) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("window", seconds(z.window))?;
    d.set_item("utilization", z.utilization)?;
    d.set_item("mean_in_use", z.mean_in_use)?;
    d.set_item("arrival_rate", z.arrival_rate)?;
    d.set_item("mean_hold_time", seconds(z.mean_hold_time))?;
    d.set_item("mean_wait", seconds(z.mean_wait))?;
    d.set_item("acquire_timeouts", z.acquire_timeouts)?;
    d.set_item("max_connections", z.max_connections)?;
    d.set_item("suggested_max_connections", z.suggested_max_connections)?;
    Ok(d)
}

/// An event as a dict with a `"type"` key, the `"pool"` (its redacted URL) and the event's
/// fields.
pub fn event<'py>(py: Python<'py>, e: &Event, pool: &str) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("pool", pool)?;
    match e {
        Event::BreakerStateChanged { from, to } => {
            d.set_item("type", "breaker_state_changed")?;
            d.set_item("from", from.as_str())?;
            d.set_item("to", to.as_str())?;
        }
        Event::HealthChanged { from, to } => {
            d.set_item("type", "health_changed")?;
            d.set_item("from", from.map(|s| s.as_str()))?;
            d.set_item("to", to.as_str())?;
        }
        Event::ConnectionCreated { id } => {
            d.set_item("type", "connection_created")?;
            d.set_item("id", id)?;
        }
        Event::ConnectionClosed { id, reason } => {
            d.set_item("type", "connection_closed")?;
            d.set_item("id", id)?;
            d.set_item("reason", reason.as_str())?;
        }
        Event::PoolExhausted { max_connections } => {
            d.set_item("type", "pool_exhausted")?;
            d.set_item("max_connections", max_connections)?;
        }
        Event::AcquireTimedOut { waited, waiting } => {
            d.set_item("type", "acquire_timed_out")?;
            d.set_item("waited", seconds(*waited))?;
            d.set_item("waiting", waiting)?;
        }
        Event::LeakSuspected(report) => {
            d.set_item("type", "leak_suspected")?;
            d.set_item("connection_id", report.connection_id)?;
            d.set_item("held_for", seconds(report.held_for))?;
            d.set_item("thread", &report.holder.thread)?;
            d.set_item("stack", &report.holder.stack)?;
        }
        // `Event` is non-exhaustive: a kind added later still reaches subscribers.
        other => {
            d.set_item("type", "other")?;
            d.set_item("detail", format!("{other:?}"))?;
        }
    }
    Ok(d)
}

/// True for the events logged on the `redpool` logger: state changes and suspected leaks.
pub fn is_logged(e: &Event) -> bool {
    matches!(
        e,
        Event::BreakerStateChanged { .. } | Event::HealthChanged { .. } | Event::LeakSuspected(_)
    )
}
