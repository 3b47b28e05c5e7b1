//! The Python classes: `Pool` (a handle on a core pool: shared through the core's registry, or
//! dedicated) and `Connection` (a checked-out connection, for WATCH/MULTI/EXEC sessions).
//!
//! Every method that can wait (network, waiting for a connection, closing) converts its inputs
//! into Rust values first, then runs without the GIL through [`blocking::run`], touching no
//! Python object; replies are converted back after re-attaching.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use redpool::{AcquireOptions, CallOptions, Error, ErrorKind, Holder, PooledConnection, Priority};

use crate::blocking;
use crate::codec::Commands;
use crate::completions::{Completions, Outcome};
use crate::config::{self, Address};
use crate::errors::IntoPyResult;
use crate::events;
use crate::reply::{self, Decode};
use crate::report;

/// An optional timeout in seconds from Python: finite and positive, or an error naming it.
fn seconds(py: Python<'_>, name: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    let Some(secs) = value else { return Ok(None) };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(Error::invalid(
            name,
            secs,
            "must be a positive number of seconds",
        ))
        .or_raise(py);
    }
    Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|_| Error::invalid(name, secs, "is too large"))
        .or_raise(py)
}

/// An acquire's `timeout` in seconds from Python: None (the pool's `acquire_timeout`), or finite
/// and >= 0, zero never waiting (the core bounds it to 365 days).
fn acquire_timeout(py: Python<'_>, value: Option<f64>) -> PyResult<Option<Duration>> {
    let Some(secs) = value else { return Ok(None) };
    if !secs.is_finite() || secs < 0.0 {
        return Err(Error::invalid(
            "timeout",
            secs,
            "must be a number of seconds >= 0 (0: never wait)",
        ))
        .or_raise(py);
    }
    Duration::try_from_secs_f64(secs)
        .map(Some)
        .map_err(|_| Error::invalid("timeout", secs, "is too large"))
        .or_raise(py)
}

/// A pool of connections to one Redis server, safe to share between threads.
#[pyclass(frozen, module = "redpool._native")]
pub struct Pool {
    inner: redpool::Pool,
    shared: bool,
    /// The pool's Python listeners (shared by every handle of a shared pool).
    listeners: Arc<events::Listeners>,
}

impl Pool {
    /// One command from Python and its call options: `timeout` (seconds) is the reply timeout
    /// and the call's deadline; without it a blocking command gets the core's
    /// `blocking_reply_timeout`.
    fn one_shot(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<(redpool::Cmd, CallOptions)> {
        let cmd = reply::command(args)?;
        let timeout = seconds(py, "timeout", timeout)?;
        let options = self.inner.one_shot_options(&cmd, timeout).or_raise(py)?;
        Ok((cmd, options))
    }

    fn open(py: Python<'_>, config: redpool::Config, shared: bool) -> PyResult<Pool> {
        // Creation opens `min_idle` connections: it may wait on the network.
        let inner = blocking::run(py, move || {
            if shared {
                redpool::shared_with(config)
            } else {
                redpool::registry::dedicated(config)
            }
        })?
        .or_raise(py)?;
        let listeners = events::for_pool(py, &inner, shared)?;
        Ok(Pool {
            inner,
            shared,
            listeners,
        })
    }
}

#[pymethods]
impl Pool {
    /// A pool for `url` (or `unix_socket_path`, or the core's default address), with `settings`
    /// applied in order as `(knob, value, written_as)` triples (`host` and `port` are knobs too;
    /// `written_as` is the argument's name in the caller's code, which errors name).
    /// `shared=True` uses the process-wide registry (one pool per distinct configuration);
    /// `False` creates a dedicated pool.
    #[new]
    #[pyo3(signature = (url=None, *, unix_socket_path=None, tls=false, settings=Vec::new(), shared=true))]
    fn new(
        py: Python<'_>,
        url: Option<String>,
        unix_socket_path: Option<String>,
        tls: bool,
        settings: Vec<(String, String, String)>,
        shared: bool,
    ) -> PyResult<Pool> {
        let address = Address {
            unix_socket_path,
            tls,
        };
        let config = config::build(url.as_deref(), address, &settings).or_raise(py)?;
        Pool::open(py, config, shared)
    }

    /// The pool configured from the environment (`REDIS_URL`, or `REDIS_HOST`, `REDIS_PORT`,
    /// ..., and any knob as `REDIS_<KNOB>`).
    #[staticmethod]
    #[pyo3(signature = (shared=true))]
    fn from_env(py: Python<'_>, shared: bool) -> PyResult<Pool> {
        let config = redpool::Config::from_env().or_raise(py)?;
        Pool::open(py, config, shared)
    }

    /// Runs one command (a sequence of `bytes`); `timeout` replaces `socket_timeout` for the
    /// reply and is the whole call's deadline (waiting for a connection and retries end by it
    /// too). Without one, a blocking command (BLPOP, XREAD BLOCK, ...) gets the core's
    /// `blocking_reply_timeout` from its arguments. Server error replies are raised.
    #[pyo3(signature = (args, decode=None, timeout=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyAny>,
        decode: Option<(String, String)>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (cmd, options) = self.one_shot(py, args, timeout)?;
        let decode = Decode::new(decode)?;
        let value = blocking::run(py, || self.inner.execute_with(&cmd, options))?.or_raise(py)?;
        reply::to_python(py, value, decode.as_ref())
    }

    /// As `execute`, without waiting: the call runs on a worker thread and its result goes to
    /// `completions` under `token` (see `Completions.drain`). Argument errors raise here.
    /// Without `timeout`, an ordinary command joins the queue's next batch (auto-pipelining, see
    /// `Completions.flush`); True means it is the first one since the last flush, and the caller
    /// must have `completions.flush()` called soon (at the end of the event loop's iteration).
    #[pyo3(signature = (completions, token, args, decode=None, timeout=None))]
    fn submit_execute<'py>(
        &self,
        py: Python<'py>,
        completions: &Completions,
        token: u64,
        args: &Bound<'py, PyAny>,
        decode: Option<(String, String)>,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let (cmd, options) = self.one_shot(py, args, timeout)?;
        let decode = Decode::new(decode)?;
        if options.reply_timeout.is_none() {
            return Ok(completions.enqueue(&self.inner, token, cmd, decode));
        }
        let pool = self.inner.clone();
        completions.submit(token, decode, move || {
            Outcome::One(pool.execute_with(&cmd, options))
        });
        Ok(false)
    }

    /// As `pipeline`, without waiting (see `submit_execute`).
    #[pyo3(signature = (completions, token, commands, decode=None))]
    fn submit_pipeline(
        &self,
        completions: &Completions,
        token: u64,
        commands: &Commands,
        decode: Option<(String, String)>,
    ) -> PyResult<()> {
        let (cmds, raw) = (commands.cmds.clone(), commands.raw.clone());
        let decode = Decode::new(decode)?;
        let pool = self.inner.clone();
        completions.submit(token, decode, move || {
            Outcome::Pipeline(pool.pipeline(&cmds), raw)
        });
        Ok(())
    }

    /// As `transaction`, without waiting (see `submit_execute`).
    #[pyo3(signature = (completions, token, commands, decode=None))]
    fn submit_transaction(
        &self,
        completions: &Completions,
        token: u64,
        commands: &Commands,
        decode: Option<(String, String)>,
    ) -> PyResult<()> {
        let cmds = commands.cmds.clone();
        let decode = Decode::new(decode)?;
        let pool = self.inner.clone();
        completions.submit(token, decode, move || {
            Outcome::Transaction(pool.transaction(&cmds))
        });
        Ok(())
    }

    /// Sends `commands` (encoded by `Codec.pack`) in one round trip; one reply per command,
    /// server errors in place as exception instances. The replies of the commands marked
    /// `NEVER_DECODE` are never decoded.
    #[pyo3(signature = (commands, decode=None))]
    fn pipeline<'py>(
        &self,
        py: Python<'py>,
        commands: &Commands,
        decode: Option<(String, String)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let decode = Decode::new(decode)?;
        let values = blocking::run(py, || self.inner.pipeline(&commands.cmds))?.or_raise(py)?;
        pipeline_replies(py, values, decode.as_ref(), &commands.raw)
    }

    /// Runs `commands` (encoded by `Codec.pack`) in MULTI/EXEC in one round trip; None when a
    /// WATCHed key changed.
    #[pyo3(signature = (commands, decode=None))]
    fn transaction<'py>(
        &self,
        py: Python<'py>,
        commands: &Commands,
        decode: Option<(String, String)>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let decode = Decode::new(decode)?;
        let values = blocking::run(py, || self.inner.transaction(&commands.cmds))?.or_raise(py)?;
        values
            .map(|v| reply::list(py, v, decode.as_ref()))
            .transpose()
    }

    /// Checks out a connection, waiting up to `timeout` seconds (default: `acquire_timeout`; 0:
    /// never wait, `PoolTimeoutError` at once when none is free). `priority` is one of the core's
    /// names (`"normal"`, `"high"`: served before every normal waiter). `holder` is
    /// `(thread, stack)`: who takes it, named in leak reports instead of the native thread and
    /// stack (only used when leak detection is on).
    #[pyo3(signature = (timeout=None, holder=None, priority="normal"))]
    fn acquire(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        holder: Option<(String, String)>,
        priority: &str,
    ) -> PyResult<Connection> {
        let options = AcquireOptions {
            timeout: acquire_timeout(py, timeout)?,
            priority: Priority::parse(priority).or_raise(py)?,
        };
        let conn = blocking::run(py, || match holder {
            Some((thread, stack)) => self.inner.acquire_for(options, Holder { thread, stack }),
            None => self.inner.acquire_with(options),
        })?
        .or_raise(py)?;
        Ok(Connection {
            slot: Mutex::new(Some(conn)),
            caller: AtomicUsize::new(0),
            pid: std::process::id(),
            socket_timeout: self.inner.config().socket_timeout(),
        })
    }

    /// Gauges and counters (see the README for the keys).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        report::stats(py, &self.inner.stats())
    }

    /// PINGs the server and reports `healthy`, `degraded` or `unhealthy` with the reasons.
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let report = blocking::run(py, || self.inner.health())?;
        report::health(py, &report)
    }

    /// This pool's metrics in the Prometheus text format (names in the README).
    fn metrics_text(&self, py: Python<'_>) -> String {
        let pool = self.inner.clone();
        // Reads counters and takes the pool's lock briefly: no network.
        py.detach(move || pool.metrics_text())
    }

    /// Changes `max_connections` and `min_idle` at run time (None: the current `min_idle`,
    /// lowered to `max_connections` when above it). Safe under load: no call fails because of it.
    #[pyo3(signature = (max_connections, min_idle=None))]
    fn resize(&self, py: Python<'_>, max_connections: i64, min_idle: Option<i64>) -> PyResult<()> {
        let max_connections = count("max_connections", max_connections).or_raise(py)?;
        let min_idle = min_idle
            .map(|n| count("min_idle", n))
            .transpose()
            .or_raise(py)?;
        blocking::run(py, || self.inner.resize(max_connections, min_idle))?.or_raise(py)
    }

    /// Closes every connection (idle ones now, checked-out ones when returned); the pool stays
    /// open, as redis-py's `ConnectionPool.disconnect()`.
    fn disconnect(&self, py: Python<'_>) -> PyResult<()> {
        blocking::run(py, || self.inner.disconnect())?.or_raise(py)
    }

    /// `"closed"`, `"open"` or `"half_open"`.
    fn breaker_state(&self) -> &'static str {
        self.inner.breaker_state().as_str()
    }

    /// Calls `callback(event: dict)` for every event of the pool; returns an id for
    /// `unsubscribe`. Waits for nothing but the GIL: callable from any thread and from inside a
    /// listener (see `events.rs`).
    fn subscribe(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<u64> {
        self.listeners.add(py, callback)
    }

    /// Removes a subscriber; False when the id is unknown. Also from inside a listener (itself
    /// included).
    fn unsubscribe(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        self.listeners.remove(py, id)
    }

    /// Closes the pool (see `redpool::Pool::close`): waits up to `grace` seconds for
    /// checked-out connections.
    #[pyo3(signature = (grace=5.0))]
    fn close(&self, py: Python<'_>, grace: f64) -> PyResult<()> {
        let grace = if grace == 0.0 {
            Duration::ZERO
        } else {
            seconds(py, "grace", Some(grace))?.unwrap_or_default()
        };
        blocking::run(py, || self.inner.close(grace))
    }

    /// True when both handles share one pool.
    fn same_pool(&self, other: &Pool) -> bool {
        self.inner.same_pool(&other.inner)
    }

    /// True once the pool was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// True for a pool of the process-wide registry.
    #[getter]
    fn shared(&self) -> bool {
        self.shared
    }

    /// The server as a URL without the password.
    #[getter]
    fn url(&self) -> String {
        self.inner.config().redacted_url()
    }

    /// The protocol connections speak (2 or 3), however it was set (argument, URL, environment).
    #[getter]
    fn protocol(&self) -> u8 {
        self.inner.config().protocol()
    }

    /// The current `max_connections` (the configured one until `resize`).
    #[getter]
    fn max_connections(&self) -> usize {
        self.inner.stats().max_connections
    }

    /// `leak_detection_threshold` in seconds, or None when leak detection is off.
    #[getter]
    fn leak_detection_threshold(&self) -> Option<f64> {
        self.inner
            .config()
            .leak_detection_threshold()
            .map(|d| d.as_secs_f64())
    }

    /// The pool's name in metrics (the `pool` label).
    #[getter]
    fn name(&self) -> String {
        self.inner.config().pool_name().to_string()
    }

    /// The configured `socket_timeout`, in seconds.
    #[getter]
    fn socket_timeout(&self) -> f64 {
        self.inner.config().socket_timeout().as_secs_f64()
    }

    fn __repr__(&self) -> String {
        let kind = if self.shared { "shared" } else { "dedicated" };
        format!("<redpool._native.Pool {} {kind}>", self.url())
    }
}

/// The metrics of every open pool of the process in the Prometheus text format.
#[pyfunction]
pub fn metrics_text(py: Python<'_>) -> String {
    py.detach(redpool::registry::metrics_text)
}

/// Pipeline replies as a list, decoding all but the `raw` indexes.
pub fn pipeline_replies<'py>(
    py: Python<'py>,
    values: Vec<redpool::Value>,
    decode: Option<&Decode>,
    raw: &[usize],
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (i, value) in values.into_iter().enumerate() {
        let decode = if raw.contains(&i) { None } else { decode };
        list.append(reply::to_python(py, value, decode)?)?;
    }
    Ok(list)
}

/// A checked-out connection. Use it from one thread at a time. `release()` returns it to the
/// pool (which keeps it only if it is clean: an open WATCH is UNWATCHed); `discard()` closes
/// it. Garbage collection releases it too.
#[pyclass(frozen, module = "redpool._native")]
pub struct Connection {
    /// `None` once released. Locked without the GIL for the length of a call (network I/O
    /// included).
    slot: Mutex<Option<PooledConnection>>,
    /// The thread a call on this connection runs on ([`thread_mark`]), 0 when none: a signal
    /// handler that uses the connection while a call on it waits on the same thread is refused,
    /// where waiting for the slot would wait for itself.
    caller: AtomicUsize,
    /// The process that checked it out. In a forked child the slot may be locked for good (by a
    /// call of a parent thread, which does not exist in the child), so the child never waits
    /// for it.
    pid: u32,
    /// The pool's `socket_timeout`: the slack of a blocking command's reply timeout.
    socket_timeout: Duration,
}

/// The slot, locked; `None` in a forked child when it was locked at the time of `fork()`.
fn lock_slot(
    slot: &Mutex<Option<PooledConnection>>,
    forked: bool,
) -> Option<MutexGuard<'_, Option<PooledConnection>>> {
    if !forked {
        return Some(slot.lock().unwrap_or_else(PoisonError::into_inner));
    }
    match slot.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl Connection {
    /// True in a child forked since the connection was checked out.
    fn forked(&self) -> bool {
        std::process::id() != self.pid
    }

    /// Refuses a call from a signal handler running inside a call on this connection.
    fn refuse_reentry(&self) -> PyResult<()> {
        if self.caller.load(Ordering::Acquire) == thread_mark() {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "redpool: this connection is busy with a call that a signal handler interrupted \
                 on this thread; use another connection in the handler",
            ));
        }
        Ok(())
    }

    fn call<T, F>(&self, py: Python<'_>, f: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(&mut PooledConnection) -> redpool::Result<T> + Send,
    {
        self.refuse_reentry()?;
        let forked = self.forked();
        blocking::run(py, || {
            let Some(mut conn) = lock_slot(&self.slot, forked) else {
                // What the core answers for any connection checked out before fork().
                return Err(Error::new(
                    ErrorKind::Connection,
                    "this connection was checked out before fork() and belongs to the parent \
                     process; acquire a new one in the child",
                ));
            };
            self.caller.store(thread_mark(), Ordering::Release);
            let result = match conn.as_mut() {
                Some(conn) => f(conn),
                None => Err(Error::released()),
            };
            self.caller.store(0, Ordering::Release);
            result
        })?
        .or_raise(py)
    }

    fn take(&self, py: Python<'_>) -> PyResult<Option<PooledConnection>> {
        self.refuse_reentry()?;
        let forked = self.forked();
        // In a child, a connection a parent thread was using is left alone (the core forgets the
        // parent's sockets in the child).
        blocking::run(py, || {
            lock_slot(&self.slot, forked).and_then(|mut c| c.take())
        })
    }
}

#[pymethods]
impl Connection {
    /// Runs one command; `timeout` replaces `socket_timeout` for the reply (without one, a
    /// blocking command gets the core's `blocking_reply_timeout`).
    #[pyo3(signature = (args, decode=None, timeout=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyAny>,
        decode: Option<(String, String)>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cmd = reply::command(args)?;
        let decode = Decode::new(decode)?;
        let timeout = seconds(py, "timeout", timeout)?;
        let timeout =
            redpool::call_reply_timeout(&cmd, timeout, self.socket_timeout).or_raise(py)?;
        let value = self.call(py, move |conn| match timeout {
            Some(t) => conn.execute_with_timeout(&cmd, t),
            None => conn.execute(&cmd),
        })?;
        reply::to_python(py, value, decode.as_ref())
    }

    /// Sends `commands` in one round trip (see `Pool.pipeline`).
    #[pyo3(signature = (commands, decode=None))]
    fn pipeline<'py>(
        &self,
        py: Python<'py>,
        commands: &Commands,
        decode: Option<(String, String)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let decode = Decode::new(decode)?;
        let values = self.call(py, |conn| conn.pipeline(&commands.cmds))?;
        pipeline_replies(py, values, decode.as_ref(), &commands.raw)
    }

    /// MULTI/EXEC on this connection; None when a WATCHed key changed.
    #[pyo3(signature = (commands, decode=None))]
    fn transaction<'py>(
        &self,
        py: Python<'py>,
        commands: &Commands,
        decode: Option<(String, String)>,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let decode = Decode::new(decode)?;
        let values = self.call(py, |conn| conn.transaction(&commands.cmds))?;
        values
            .map(|v| reply::list(py, v, decode.as_ref()))
            .transpose()
    }

    /// Returns the connection to the pool. Idempotent.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let conn = self.take(py)?;
        blocking::run(py, move || drop(conn))
    }

    /// Closes the connection instead of returning it. Idempotent.
    fn discard(&self, py: Python<'_>) -> PyResult<()> {
        if let Some(conn) = self.take(py)? {
            blocking::run(py, move || conn.discard())?;
        }
        Ok(())
    }

    /// True once released or discarded.
    #[getter]
    fn released(&self) -> bool {
        match self.slot.try_lock() {
            Ok(conn) => conn.is_none(),
            // A call is running on it.
            Err(_) => false,
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.release(py)
    }
}

/// A value unique to the calling thread while it lives (the address of a thread-local).
fn thread_mark() -> usize {
    thread_local! {
        static MARK: u8 = const { 0 };
    }
    MARK.with(|mark| mark as *const u8 as usize)
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Locked only in a forked child whose parent thread held it at the fork: the parent's
        // socket is then left alone.
        let Ok(mut slot) = self.slot.try_lock() else {
            return;
        };
        if let Some(conn) = slot.take() {
            drop(slot);
            // Returning it may send UNWATCH/DISCARD: not while holding the GIL.
            Python::attach(|py| py.detach(move || drop(conn)));
        }
    }
}

/// A Python int as a count (the core checks the range and names the argument).
fn count(name: &str, n: i64) -> redpool::Result<usize> {
    usize::try_from(n).map_err(|_| redpool::Error::invalid(name, n, "must be a whole number >= 0"))
}
