//! `NativePool`: one core pool behind the JS client. Every call that can wait returns a promise and
//! runs on a worker thread; `stats()`, `breakerState()` and `metricsText()` only read counters
//! (under the pool's bookkeeping lock, which is never held during I/O), so they are synchronous.
//!
//! The core pool is created on first use, on a worker (its warm-up opens `min_idle` connections),
//! so creating a client never touches the network on the main thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;
use redpool::{AcquireOptions, CallOptions, CloseReason, Config, ErrorKind, Holder, Pool};

use crate::config::{self, NativeOptions};
use crate::conn::NativeConnection;
use crate::convert::{self, JsArgs, Replies, Reply};
use crate::errors;
use crate::events::{self, EventSink};
use crate::stats::{HealthReport, PoolStats};
use crate::task;

/// How long a blocking command with timeout 0 ("forever") may wait for its reply.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

enum Slot {
    Unopened,
    Open(Pool),
    Closed,
}

struct Inner {
    config: Config,
    /// Held only for look-ups and swaps, never while connecting: the main thread reads it
    /// (`stats()`, `metricsText()`, `breakerState()`).
    slot: Mutex<Slot>,
    /// Serializes opening the pool (held during warm-up, by workers only).
    opening: Mutex<()>,
    sink: Mutex<Option<Arc<EventSink>>>,
}

impl Inner {
    /// The pool if it is open; `None` before it is.
    fn current(&self) -> redpool::Result<Option<Pool>> {
        match &*self.slot.lock() {
            Slot::Open(pool) => Ok(Some(pool.clone())),
            Slot::Closed => Err(closed()),
            Slot::Unopened => Ok(None),
        }
    }

    /// The core pool, created on first use (call on a worker: warm-up connects). A client closed
    /// while its pool was being opened closes that pool.
    fn pool(&self) -> redpool::Result<Pool> {
        if let Some(pool) = self.current()? {
            return Ok(pool);
        }
        let _opening = self.opening.lock();
        if let Some(pool) = self.current()? {
            return Ok(pool);
        }
        let pool = Pool::new(self.config.clone())?;
        if let Some(sink) = self.sink.lock().clone() {
            let server = pool.metrics().server;
            pool.subscribe(move |event| events::forward(&sink, &server, event));
            // JS turns leak events into process warnings (node/lib/redis.js).
            pool.warn_leaks_elsewhere();
        }
        let mut slot = self.slot.lock();
        if let Slot::Closed = *slot {
            drop(slot);
            pool.close(Duration::ZERO);
            return Err(closed());
        }
        *slot = Slot::Open(pool.clone());
        Ok(pool)
    }
}

fn closed() -> redpool::Error {
    redpool::Error::new(
        ErrorKind::Closed,
        "the client was closed (quit() or disconnect() was called)",
    )
}

/// A call's overall deadline, counted from now (the main thread), so time spent queued counts.
fn deadline(timeout_ms: Option<f64>) -> Option<Instant> {
    timeout_ms
        .filter(|ms| ms.is_finite() && *ms > 0.0)
        .map(|ms| Instant::now() + Duration::from_secs_f64(ms / 1000.0))
}

/// The reply timeout of a blocking command that blocks up to `block_ms` (0 or none: forever).
pub fn blocking_timeout(block_ms: Option<f64>, socket_timeout: Duration) -> Duration {
    match block_ms.filter(|ms| ms.is_finite() && *ms > 0.0) {
        Some(ms) => Duration::from_secs_f64(ms / 1000.0).min(FOREVER) + socket_timeout,
        None => FOREVER,
    }
}

/// Who checks a connection out, as JS describes itself (for leak reports).
#[napi(object)]
pub struct CheckoutHolder {
    /// `main` or `worker <threadId>`.
    pub thread: String,
    /// The JS stack where the connection was checked out.
    pub stack: String,
}

/// A pool of connections to one Redis server, created from validated settings.
#[napi]
pub struct NativePool {
    inner: Arc<Inner>,
}

#[napi]
impl NativePool {
    /// Validates the settings (throws `ERR_INVALID_ARGUMENT`); opens nothing yet. `onEvent`
    /// receives the pool's events.
    #[napi(constructor)]
    pub fn new(env: Env, options: NativeOptions, on_event: Option<EventSink>) -> Result<Self> {
        let config = errors::check(&env, config::build(options))?;
        Ok(NativePool {
            inner: Arc::new(Inner {
                config,
                slot: Mutex::new(Slot::Unopened),
                opening: Mutex::new(()),
                sink: Mutex::new(on_event.map(Arc::new)),
            }),
        })
    }

    /// The server address and settings, with the password replaced.
    #[napi(getter)]
    pub fn redacted_url(&self) -> String {
        self.inner.config.redacted_url()
    }

    /// Opens the pool if needed and PINGs the server (the ready check).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn connect<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let inner = self.inner.clone();
        task::promise(env, move || {
            inner.pool()?.execute(&redpool::cmd("PING"))?;
            Ok(())
        })
    }

    /// Sends `commands` as one pipeline on one pooled connection; resolves to one reply per
    /// command, server errors in place.
    #[napi(ts_return_type = "Promise<unknown[]>")]
    pub fn pipeline<'env>(
        &self,
        env: &'env Env,
        commands: Vec<JsArgs>,
        buffers: Vec<bool>,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        let cmds = convert::commands(&commands).map_err(|f| f.into_napi(env))?;
        let options = CallOptions {
            deadline: deadline(timeout_ms),
            ..CallOptions::default()
        };
        let inner = self.inner.clone();
        task::promise(env, move || {
            let values = inner.pool()?.pipeline_with(&cmds, options)?;
            Ok(Replies { values, buffers })
        })
    }

    /// Runs `commands` in MULTI/EXEC; resolves to the replies, or `null` if a WATCHed key changed.
    #[napi(ts_return_type = "Promise<unknown[] | null>")]
    pub fn transaction<'env>(
        &self,
        env: &'env Env,
        commands: Vec<JsArgs>,
        buffers: Vec<bool>,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        let cmds = convert::commands(&commands).map_err(|f| f.into_napi(env))?;
        let options = CallOptions {
            deadline: deadline(timeout_ms),
            ..CallOptions::default()
        };
        let inner = self.inner.clone();
        task::promise(env, move || {
            let outcome = inner.pool()?.transaction_with(&cmds, options)?;
            Ok(outcome.map(|values| Replies { values, buffers }))
        })
    }

    /// Runs one blocking command (BLPOP, XREAD BLOCK, WAIT, ...) whose reply may take `blockMs`
    /// (0 or omitted: no limit) plus the socket timeout. A server error rejects (`ERR_REPLY`).
    #[napi(ts_return_type = "Promise<unknown>")]
    pub fn blocking<'env>(
        &self,
        env: &'env Env,
        command: JsArgs,
        buffers: bool,
        block_ms: Option<f64>,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        let cmd = convert::command(&command).map_err(|f| f.into_napi(env))?;
        let options = CallOptions {
            deadline: deadline(timeout_ms),
            reply_timeout: Some(blocking_timeout(
                block_ms,
                self.inner.config.socket_timeout(),
            )),
            ..CallOptions::default()
        };
        let inner = self.inner.clone();
        task::promise(env, move || {
            let value = inner.pool()?.execute_with(&cmd, options)?;
            Ok(Reply { value, buffers })
        })
    }

    /// Checks out a connection of its own (for WATCH sessions). With leak detection on, `holder`
    /// (the JS thread and stack) is what a leak report names instead of the worker thread.
    #[napi(ts_return_type = "Promise<NativeConnection>")]
    pub fn acquire<'env>(
        &self,
        env: &'env Env,
        holder: Option<CheckoutHolder>,
    ) -> Result<Object<'env>> {
        let inner = self.inner.clone();
        task::promise(env, move || {
            let pool = inner.pool()?;
            let conn = match holder {
                Some(CheckoutHolder { thread, stack }) => {
                    pool.acquire_for(AcquireOptions::default(), Holder { thread, stack })?
                }
                None => pool.acquire()?,
            };
            Ok(NativeConnection::new(conn, inner.config.socket_timeout()))
        })
    }

    /// Gauges and totals; zeros before the first command.
    #[napi]
    pub fn stats(&self) -> PoolStats {
        match &*self.inner.slot.lock() {
            Slot::Open(pool) => pool.stats().into(),
            _ => redpool::PoolStats {
                max_connections: self.inner.config.max_connections(),
                min_idle: self.inner.config.min_idle(),
                connections_closed: CloseReason::ALL.iter().map(|r| (*r, 0)).collect(),
                errors: ErrorKind::ALL.iter().map(|k| (*k, 0)).collect(),
                ..redpool::PoolStats::default()
            }
            .into(),
        }
    }

    /// True when `leak_detection_threshold` is set (JS then captures stacks for its checkouts).
    #[napi(getter)]
    pub fn leak_detection(&self) -> bool {
        self.inner.config.leak_detection_threshold().is_some()
    }

    /// This pool's metrics in the Prometheus text format; before the pool is opened, the families'
    /// HELP and TYPE lines with no samples. Reads counters only (no I/O).
    #[napi]
    pub fn metrics_text(&self) -> String {
        match &*self.inner.slot.lock() {
            Slot::Open(pool) => pool.metrics_text(),
            _ => redpool::metrics::prometheus::render(&[]),
        }
    }

    /// Changes `maxConnections` and `minIdle` under load (the core's rules; `ERR_INVALID_ARGUMENT`
    /// otherwise). Runs on a worker: it opens the pool if needed, and closes idle surplus sockets.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn resize<'env>(
        &self,
        env: &'env Env,
        max_connections: u32,
        min_idle: u32,
    ) -> Result<Object<'env>> {
        let inner = self.inner.clone();
        task::promise(env, move || {
            inner
                .pool()?
                .resize(max_connections as usize, min_idle as usize)?;
            Ok(())
        })
    }

    /// `closed`, `open` or `half_open`.
    #[napi]
    pub fn breaker_state(&self) -> String {
        match &*self.inner.slot.lock() {
            Slot::Open(pool) => pool.breaker_state().as_str().into(),
            _ => redpool::BreakerState::Closed.as_str().into(),
        }
    }

    /// PINGs and reads INFO; never rejects for server trouble (it is in the report).
    #[napi(ts_return_type = "Promise<HealthReport>")]
    pub fn health<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        let inner = self.inner.clone();
        task::promise(env, move || Ok(HealthReport::from(inner.pool()?.health())))
    }

    /// Closes the pool: waits up to `graceMs` for checked-out connections, then shuts them down.
    /// Later calls fail with `ERR_POOL_CLOSED`. Safe to call more than once.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env, grace_ms: f64) -> Result<Object<'env>> {
        let grace = Duration::from_secs_f64(grace_ms.max(0.0).min(3600e3) / 1000.0);
        let inner = self.inner.clone();
        task::promise(env, move || {
            let previous = std::mem::replace(&mut *inner.slot.lock(), Slot::Closed);
            if let Slot::Open(pool) = previous {
                pool.close(grace);
            }
            inner.sink.lock().take();
            Ok(())
        })
    }
}
