//! Python listeners of a pool's events, and the `redpool` logger's records.
//!
//! The core delivers events under no lock, on the thread where they happen (a caller's, a helper
//! thread, or the pool's maintenance thread); a Python listener then waits for the GIL. Removing
//! a core subscriber waits for its calls in progress on other threads, which may be waiting for
//! the GIL, so this binding never does that while holding the GIL: each core pool gets exactly
//! one core subscriber, [`Listeners`], subscribed once when its first handle is opened, and the
//! Python listeners live in a dict of that object guarded by the GIL alone. Adding or removing a
//! listener therefore waits for nothing but the GIL, from any thread and from inside a listener
//! (itself included).
//!
//! Delivery works from a snapshot of the listeners taken under the GIL: a listener added during
//! an event is called from the next event on; one removed before its turn (by an earlier
//! listener of the same event, or by another thread) is skipped, and once
//! `remove_event_listener` returns no new call of it starts (one already running may finish).
//!
//! A listener attaches to the interpreter for the call only, and nothing is called once the
//! interpreter is shutting down. Exceptions raised by a listener are reported through
//! `sys.unraisablehook`; they never reach the pool.
//!
//! Fork: nothing here is a lock that a thread could hold at `fork()`. The dicts are guarded by
//! the GIL, and [`SHARED`] is locked only by a thread holding the GIL, for a few instructions that
//! cannot release it; Python forks holding the GIL, so no other thread holds [`SHARED`] then. A
//! delivery waiting for the GIL holds no lock of the core, so it does not stop the fork; in the
//! parent it goes on once the forking thread lets the GIL go.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use redpool::{Event, Pool};

use crate::report;

/// The Python side of one core pool's events: its listeners and its `redpool` logger records.
pub struct Listeners {
    /// The pool's URL without the password (every event dict's `"pool"`).
    url: String,
    /// `id → callback`, in registration order. Read and changed only while attached to the
    /// interpreter: single dict operations under the GIL are its only synchronization.
    callbacks: Py<PyDict>,
    /// How many callbacks there are: read without the GIL to skip attaching for an event no one
    /// listens to (a stale value only delays that shortcut).
    registered: AtomicUsize,
    next_id: AtomicU64,
    /// `redpool._events.log_event`: receives the events [`report::is_logged`] selects.
    logger: Py<PyAny>,
    /// False until these are the pool's listeners (a shared pool's handles opened at the same
    /// moment by two threads each build one; only the one published in [`SHARED`] delivers).
    active: AtomicBool,
}

impl Listeners {
    fn new(py: Python<'_>, pool: &Pool) -> PyResult<Listeners> {
        Ok(Listeners {
            url: pool.config().redacted_url(),
            callbacks: PyDict::new(py).unbind(),
            registered: AtomicUsize::new(0),
            next_id: AtomicU64::new(0),
            logger: logger(py)?.clone().unbind(),
            active: AtomicBool::new(false),
        })
    }

    /// Adds `callback`; returns its id for [`Listeners::remove`].
    pub fn add(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<u64> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let callbacks = self.callbacks.bind(py);
        callbacks.set_item(id, callback)?;
        self.registered.store(callbacks.len(), Ordering::Relaxed);
        Ok(id)
    }

    /// Removes a listener; false when the id is unknown (or already removed).
    pub fn remove(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        let callbacks = self.callbacks.bind(py);
        // Kept until the end: the callback's last reference may run arbitrary code when dropped.
        let Some(_callback) = callbacks.get_item(id)? else {
            return Ok(false);
        };
        callbacks.del_item(id)?;
        self.registered.store(callbacks.len(), Ordering::Relaxed);
        Ok(true)
    }

    /// The core subscriber: the logger for state changes and leaks, then every listener of the
    /// snapshot still registered when its turn comes.
    fn deliver(&self, event: &Event) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        if !report::is_logged(event) && self.registered.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.call_all(event);
    }

    fn call_all(&self, event: &Event) {
        let logged = report::is_logged(event);
        Python::try_attach(|py| {
            if logged {
                self.call(py, self.logger.bind(py), event);
            }
            let callbacks = self.callbacks.bind(py);
            if callbacks.is_empty() {
                return;
            }
            // A new list: what listeners do to the dict from now on does not change it.
            let snapshot = callbacks.items();
            for item in snapshot.iter() {
                let Ok((id, callback)) = item.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()
                else {
                    continue;
                };
                let current = callbacks.get_item(&id).ok().flatten();
                if current.is_some_and(|c| c.is(&callback)) {
                    self.call(py, &callback, event);
                }
            }
        });
    }

    fn call(&self, py: Python<'_>, callback: &Bound<'_, PyAny>, event: &Event) {
        let result = report::event(py, event, &self.url).and_then(|d| callback.call1((d,)));
        if let Err(err) = result {
            err.write_unraisable(py, Some(callback));
        }
    }
}

/// `redpool._events.log_event`, imported once.
fn logger(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    static LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    LOGGER.import(py, "redpool._events", "log_event")
}

/// Imports what delivering an event needs, so that no thread does it later (an import may
/// release the GIL half way, and a `fork()` at that moment would leave the cache being filled
/// forever in the child).
pub fn prepare(py: Python<'_>) -> PyResult<()> {
    logger(py).map(drop)
}

/// The listeners of every open shared pool: the registry hands the same core pool to every
/// handle of one configuration, and those handles share one set of listeners (and one logger
/// subscription, however many handles are created).
///
/// Locked only while attached to the interpreter, for a look-up or an insertion that cannot
/// release the GIL (nothing is dropped under it). So no thread waits for it holding the GIL while
/// its holder waits for the GIL, and a `fork()`, which Python runs holding the GIL, never finds
/// it held by another thread.
static SHARED: Mutex<Vec<(Pool, Arc<Listeners>)>> = Mutex::new(Vec::new());

/// The listeners of `pool`: for a shared pool the ones its other handles have (created with the
/// first handle), for a dedicated pool new ones. Suspected leaks go to the `redpool` logger
/// instead of the core's stderr warning.
pub fn for_pool(py: Python<'_>, pool: &Pool, shared: bool) -> PyResult<Arc<Listeners>> {
    pool.warn_leaks_elsewhere();
    if shared {
        let found = {
            let entries = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
            find(&entries, pool)
        };
        if let Some(found) = found {
            return Ok(found);
        }
    }
    let listeners = Arc::new(Listeners::new(py, pool)?);
    let dispatcher = listeners.clone();
    let core = pool.clone();
    let id = core.subscribe(move |event: &Event| dispatcher.deliver(event));
    if !shared {
        listeners.active.store(true, Ordering::Release);
        return Ok(listeners);
    }
    let (published, pruned) = {
        let mut entries = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        // Closed pools' entries leave; they are dropped after unlocking (dropping a callback
        // may run Python code, which may release the GIL).
        let (open, pruned): (Vec<_>, Vec<_>) = entries.drain(..).partition(|(p, _)| !p.is_closed());
        *entries = open;
        let published = match find(&entries, pool) {
            // Another thread opened a handle of this pool meanwhile.
            Some(theirs) => theirs,
            None => {
                listeners.active.store(true, Ordering::Release);
                entries.push((pool.clone(), listeners.clone()));
                listeners.clone()
            }
        };
        (published, pruned)
    };
    drop(pruned);
    if !Arc::ptr_eq(&published, &listeners) {
        let core = pool.clone();
        // Without the GIL: unsubscribing waits for deliveries in progress, which may wait for it.
        py.detach(move || core.unsubscribe(id));
    }
    Ok(published)
}

fn find(entries: &[(Pool, Arc<Listeners>)], pool: &Pool) -> Option<Arc<Listeners>> {
    entries
        .iter()
        .find(|(p, _)| p.same_pool(pool) && !p.is_closed())
        .map(|(_, listeners)| listeners.clone())
}
