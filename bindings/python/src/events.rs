//! Python subscribers of a pool's events, and the `redpool` logger's subscription.
//!
//! The core delivers events outside its locks, on the thread where they happen (a caller's, or
//! the pool's maintenance thread). A subscriber attaches to the interpreter for the call only,
//! and does nothing once the interpreter is shutting down. Exceptions raised by a Python
//! callback are reported through `sys.unraisablehook`; they never reach the pool.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use redpool::{Event, Pool};

use crate::report;

/// Calls `callback(event_dict)` for every event of `pool` (only the ones the logger records, see
/// [`report::is_logged`], when `logged_only`); returns the subscription id.
pub fn subscribe(pool: &Pool, callback: Py<PyAny>, logged_only: bool) -> u64 {
    let url = pool.config().redacted_url();
    pool.subscribe(move |event: &Event| {
        if logged_only && !report::is_logged(event) {
            return;
        }
        Python::try_attach(|py| {
            let result = report::event(py, event, &url).and_then(|d| callback.call1(py, (d,)));
            if let Err(err) = result {
                err.write_unraisable(py, Some(callback.bind(py)));
            }
        });
    })
}

/// Pools whose state changes and leak reports already go to the `redpool` logger.
static LOGGED: Mutex<Vec<Pool>> = Mutex::new(Vec::new());

/// Sends `pool`'s state changes (breaker, health) and suspected leaks to
/// `redpool._events.log_event` once per pool, however many handles of a shared pool are created.
/// A dedicated pool is new by definition (and is not kept alive here). The `redpool` logger
/// record replaces the core's stderr leak warning.
pub fn log_events(py: Python<'_>, pool: &Pool, shared: bool) -> PyResult<()> {
    pool.warn_leaks_elsewhere();
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let logger = LOGGER
        .import(py, "redpool._events", "log_event")?
        .clone()
        .unbind();
    if !shared {
        subscribe(pool, logger, true);
        return Ok(());
    }
    let mut logged = LOGGED.lock().unwrap_or_else(|e| e.into_inner());
    logged.retain(|p| !p.is_closed());
    if logged.iter().any(|p| p.same_pool(pool)) {
        return Ok(());
    }
    subscribe(pool, logger, true);
    logged.push(pool.clone());
    Ok(())
}
