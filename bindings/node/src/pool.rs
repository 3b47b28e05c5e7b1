//! `NativePool`: one core pool behind the JS client. Every call that can wait returns a promise and
//! runs on a worker thread; `stats()`, `breakerState()` and `metricsText()` only read counters
//! (under the pool's bookkeeping lock, which is never held during I/O), so they are synchronous.
//!
//! The core pool is created on first use, on a worker (its warm-up opens `min_idle` connections),
//! so creating a client never touches the network on the main thread.
//!
//! Every method is a panic boundary ([`errors::boundary`] or [`errors::guard`] around its body,
//! napi-rs's `catch_unwind` around its argument and return value conversions), and every number
//! it takes arrives as an `f64` checked by [`numbers`]: a bad one is an `ERR_INVALID_ARGUMENT`
//! naming it, never a panic and never another value.

use std::sync::Arc;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use parking_lot::Mutex;
use redpool::{
    AcquireOptions, BLOCK_FOREVER, CallOptions, CloseReason, Config, ErrorKind, Holder, Pool,
    Priority,
};

use crate::config::{self, NativeOptions};
use crate::conn::NativeConnection;
use crate::convert::{self, Commands, JsArgs, Replies, Reply};
use crate::errors::{self, Failure, OrThrow};
use crate::events::{self, EventSink};
use crate::numbers;
use crate::packed;
use crate::stats::{HealthReport, PoolStats};
use crate::task;

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
        let pool = redpool::registry::dedicated(self.config.clone())?;
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

/// A call's `commandTimeout` (milliseconds; none or 0: none).
fn call_timeout(timeout_ms: Option<f64>) -> std::result::Result<Option<Duration>, Failure> {
    let Some(ms) = timeout_ms else {
        return Ok(None);
    };
    Ok(Some(numbers::millis("commandTimeout", ms)?).filter(|t| !t.is_zero()))
}

/// A call's overall deadline (`commandTimeout`), counted from now (the main thread), so time spent
/// queued counts.
fn deadline(timeout_ms: Option<f64>) -> std::result::Result<Option<Instant>, Failure> {
    Ok(call_timeout(timeout_ms)?.map(|t| Instant::now() + t))
}

/// The reply timeout of a blocking command: the core's [`redpool::blocking_reply_timeout`] with
/// the socket timeout as slack, or the socket timeout itself when `cmd` does not block.
pub fn blocking_timeout(
    cmd: &redpool::Cmd,
    socket_timeout: Duration,
) -> std::result::Result<Duration, Failure> {
    Ok(redpool::blocking_reply_timeout(cmd, socket_timeout)?.unwrap_or(socket_timeout))
}

/// Who checks a connection out, as JS describes itself (for leak reports).
#[napi(object)]
pub struct CheckoutHolder {
    /// `main` or `worker <threadId>`.
    pub thread: String,
    /// The JS stack where the connection was checked out.
    pub stack: String,
}

/// Options of one checkout (`client.acquire({ timeout, priority })`).
#[napi(object)]
pub struct CheckoutOptions {
    /// Milliseconds to wait for a connection (none: the pool's `acquireTimeout`; 0: never wait).
    pub timeout: Option<f64>,
    /// One of the core's priority names, `normal` (the default) or `high` (served before every
    /// normal waiter).
    pub priority: Option<String>,
}

impl CheckoutOptions {
    /// The core's options: the timeout checked by [`numbers::millis`], the priority by
    /// [`Priority::parse`].
    fn to_core(&self) -> std::result::Result<AcquireOptions, Failure> {
        Ok(AcquireOptions {
            timeout: self
                .timeout
                .map(|ms| numbers::millis("timeout", ms))
                .transpose()?,
            priority: self
                .priority
                .as_deref()
                .map(Priority::parse)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// A pool of connections to one Redis server, created from validated settings.
#[napi]
pub struct NativePool {
    inner: Arc<Inner>,
}

impl NativePool {
    /// Sends `cmds` as one pipeline (see `pipeline`).
    fn send_pipeline<'env>(
        &self,
        env: &'env Env,
        cmds: Vec<redpool::Cmd>,
        buffers: Vec<bool>,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        let options = CallOptions {
            deadline: deadline(timeout_ms).or_throw(env)?,
            ..CallOptions::default()
        };
        let inner = self.inner.clone();
        task::promise(env, move || {
            let values = inner.pool()?.pipeline_with(&cmds, options)?;
            Ok(Replies { values, buffers })
        })
    }
}

#[napi]
impl NativePool {
    /// Validates the settings (throws `ERR_INVALID_ARGUMENT`); opens nothing yet. `onEvent`
    /// receives the pool's events.
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, options: NativeOptions, on_event: Option<EventSink>) -> Result<Self> {
        errors::guard(&env, || {
            let config = config::build(options)?;
            Ok(NativePool {
                inner: Arc::new(Inner {
                    config,
                    slot: Mutex::new(Slot::Unopened),
                    opening: Mutex::new(()),
                    sink: Mutex::new(on_event.map(Arc::new)),
                }),
            })
        })
    }

    /// The server address and settings, with the password replaced.
    #[napi(getter, catch_unwind)]
    pub fn redacted_url(&self, env: Env) -> Result<String> {
        errors::guard(&env, || Ok(self.inner.config.redacted_url()))
    }

    /// Opens the pool if needed and PINGs the server (the ready check).
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn connect<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let inner = self.inner.clone();
            task::promise(env, move || {
                inner.pool()?.execute(&redpool::cmd("PING"))?;
                Ok(())
            })
        })
    }

    /// Sends `commands` as one pipeline on one pooled connection; resolves to one reply per
    /// command, server errors in place. `timeoutMs` (`commandTimeout`) bounds the whole call.
    #[napi(ts_return_type = "Promise<unknown[]>", catch_unwind)]
    pub fn pipeline<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Array<JsArgs>")] commands: Commands,
        buffers: Vec<bool>,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let cmds = commands.into_cmds().or_throw(env)?;
            self.send_pipeline(env, cmds, buffers, timeout_ms)
        })
    }

    /// `pipeline` for the auto-pipeliner's batches, packed by node/lib/packed.js: `text`, the
    /// string arguments end to end; `lengths`, per command its argument count, then each
    /// argument's length in UTF-16 code units (2^32 - 1: the next Buffer of `blobs`).
    #[napi(ts_return_type = "Promise<unknown[]>", catch_unwind)]
    pub fn pipeline_packed<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "string")] text: packed::Text,
        #[napi(ts_arg_type = "Uint32Array")] lengths: packed::Lengths,
        blobs: Vec<Buffer>,
        buffers: Vec<bool>,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let cmds = packed::commands(&text, &lengths, &blobs).or_throw(env)?;
            self.send_pipeline(env, cmds, buffers, timeout_ms)
        })
    }

    /// Runs `commands` in MULTI/EXEC; resolves to the replies, or `null` if a WATCHed key changed.
    #[napi(ts_return_type = "Promise<unknown[] | null>", catch_unwind)]
    pub fn transaction<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Array<JsArgs>")] commands: Commands,
        buffers: Vec<bool>,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let cmds = commands.into_cmds().or_throw(env)?;
            let options = CallOptions {
                deadline: deadline(timeout_ms).or_throw(env)?,
                ..CallOptions::default()
            };
            let inner = self.inner.clone();
            task::promise(env, move || {
                let outcome = inner.pool()?.transaction_with(&cmds, options)?;
                Ok(outcome.map(|values| Replies { values, buffers }))
            })
        })
    }

    /// Runs one blocking command (BLPOP, XREAD BLOCK, WAIT, ...): its reply may take its block
    /// time (from its arguments; 0: no limit) plus the socket timeout, and the whole call its
    /// block time plus `timeoutMs` (`commandTimeout`), both by the core's
    /// `blocking_reply_timeout`. A server error rejects (`ERR_REPLY`).
    #[napi(ts_return_type = "Promise<unknown>", catch_unwind)]
    pub fn blocking<'env>(
        &self,
        env: &'env Env,
        command: JsArgs,
        buffers: bool,
        timeout_ms: Option<f64>,
    ) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let cmd = convert::command(&command).or_throw(env)?;
            let reply_timeout =
                blocking_timeout(&cmd, self.inner.config.socket_timeout()).or_throw(env)?;
            // The core ends a reply timeout at the call's deadline, so a blocking call's deadline
            // is its block time plus `commandTimeout`, as its reply timeout; none when it blocks
            // forever.
            let deadline = match call_timeout(timeout_ms).or_throw(env)? {
                Some(timeout) if reply_timeout < BLOCK_FOREVER => {
                    Some(Instant::now() + blocking_timeout(&cmd, timeout).or_throw(env)?)
                }
                _ => None,
            };
            let options = CallOptions {
                deadline,
                reply_timeout: Some(reply_timeout),
                ..CallOptions::default()
            };
            let inner = self.inner.clone();
            task::promise(env, move || {
                let value = inner.pool()?.execute_with(&cmd, options)?;
                Ok(Reply { value, buffers })
            })
        })
    }

    /// Checks out a connection of its own (for WATCH sessions and `client.acquire()`), with
    /// `options` (none: the pool's `acquireTimeout`, normal priority). With leak detection on,
    /// `holder` (the JS thread and stack) is what a leak report names instead of the worker
    /// thread.
    #[napi(ts_return_type = "Promise<NativeConnection>", catch_unwind)]
    pub fn acquire<'env>(
        &self,
        env: &'env Env,
        holder: Option<CheckoutHolder>,
        options: Option<CheckoutOptions>,
    ) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let options = match options {
                Some(options) => options.to_core().or_throw(env)?,
                None => AcquireOptions::default(),
            };
            let inner = self.inner.clone();
            task::promise(env, move || {
                let pool = inner.pool()?;
                let conn = match holder {
                    Some(CheckoutHolder { thread, stack }) => {
                        pool.acquire_for(options, Holder { thread, stack })?
                    }
                    None => pool.acquire_with(options)?,
                };
                Ok(NativeConnection::new(conn, inner.config.socket_timeout()))
            })
        })
    }

    /// Gauges and totals; zeros before the first command.
    #[napi(catch_unwind)]
    pub fn stats(&self, env: Env) -> Result<PoolStats> {
        errors::guard(&env, || {
            Ok(match &*self.inner.slot.lock() {
                Slot::Open(pool) => pool.stats().into(),
                _ => redpool::PoolStats {
                    max_connections: self.inner.config.max_connections(),
                    min_idle: self.inner.config.min_idle(),
                    connections_closed: CloseReason::ALL.iter().map(|r| (*r, 0)).collect(),
                    errors: ErrorKind::ALL.iter().map(|k| (*k, 0)).collect(),
                    ..redpool::PoolStats::default()
                }
                .into(),
            })
        })
    }

    /// True when `leak_detection_threshold` is set (JS then captures stacks for its checkouts).
    #[napi(getter, catch_unwind)]
    pub fn leak_detection(&self, env: Env) -> Result<bool> {
        errors::guard(&env, || {
            Ok(self.inner.config.leak_detection_threshold().is_some())
        })
    }

    /// This pool's metrics in the Prometheus text format; before the pool is opened, the families'
    /// HELP and TYPE lines with no samples. Reads counters only (no I/O).
    #[napi(catch_unwind)]
    pub fn metrics_text(&self, env: Env) -> Result<String> {
        errors::guard(&env, || {
            Ok(match &*self.inner.slot.lock() {
                Slot::Open(pool) => pool.metrics_text(),
                _ => redpool::prometheus::render(&[]),
            })
        })
    }

    /// Changes `maxConnections` and `minIdle` under load (whole numbers; the core's rules, else
    /// `ERR_INVALID_ARGUMENT`; no `minIdle`: the current one, lowered to `maxConnections` if
    /// above it). Runs on a worker: it opens the pool if needed, and closes idle surplus sockets.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn resize<'env>(
        &self,
        env: &'env Env,
        max_connections: f64,
        min_idle: Option<f64>,
    ) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let max = numbers::count("maxConnections", max_connections).or_throw(env)?;
            let min = min_idle
                .map(|n| numbers::count("minIdle", n))
                .transpose()
                .or_throw(env)?;
            let inner = self.inner.clone();
            task::promise(env, move || {
                inner.pool()?.resize(max, min).map_err(|err| {
                    err.naming("max_connections", "maxConnections")
                        .naming("min_idle", "minIdle")
                })?;
                Ok(())
            })
        })
    }

    /// `closed`, `open` or `half_open`.
    #[napi(catch_unwind)]
    pub fn breaker_state(&self, env: Env) -> Result<String> {
        errors::guard(&env, || {
            Ok(match &*self.inner.slot.lock() {
                Slot::Open(pool) => pool.breaker_state().as_str().into(),
                _ => redpool::BreakerState::Closed.as_str().into(),
            })
        })
    }

    /// PINGs and reads INFO; never rejects for server trouble (it is in the report).
    #[napi(ts_return_type = "Promise<HealthReport>", catch_unwind)]
    pub fn health<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let inner = self.inner.clone();
            task::promise(env, move || Ok(HealthReport::from(inner.pool()?.health())))
        })
    }

    /// Whether the server answers now (the core's `Pool::server_answers`: a PING on a connection
    /// of its own, outside the pool and the breaker): the client's recovery check after an
    /// outage, which must not take a connection from its callers. Rejects only when the pool is
    /// closed.
    #[napi(ts_return_type = "Promise<boolean>", catch_unwind)]
    pub fn reachable<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let inner = self.inner.clone();
            task::promise(env, move || Ok(inner.pool()?.server_answers()))
        })
    }

    /// Closes every connection of the pool (the core's `Pool::disconnect`): idle ones now,
    /// checked-out ones when they are returned, so no command is cut. The pool stays open and
    /// connects again on demand. Nothing to close before it has opened; `ERR_POOL_CLOSED` after
    /// `close()`. Runs on a worker: it closes sockets.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn disconnect<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let inner = self.inner.clone();
            task::promise(env, move || {
                if let Some(pool) = inner.current()? {
                    pool.disconnect()?;
                }
                Ok(())
            })
        })
    }

    /// Closes the pool: waits up to `graceMs` (0 to 365 days) for checked-out connections, then
    /// shuts them down. Later calls fail with `ERR_POOL_CLOSED`. Safe to call more than once.
    #[napi(ts_return_type = "Promise<void>", catch_unwind)]
    pub fn close<'env>(&self, env: &'env Env, grace_ms: f64) -> Result<Object<'env>> {
        errors::boundary(env, || {
            let grace = numbers::millis("grace", grace_ms).or_throw(env)?;
            let inner = self.inner.clone();
            task::promise(env, move || {
                let previous = std::mem::replace(&mut *inner.slot.lock(), Slot::Closed);
                if let Slot::Open(pool) = previous {
                    pool.close(grace);
                }
                inner.sink.lock().take();
                Ok(())
            })
        })
    }
}
