//! The synchronous connection pool: the public [`Pool`] handle, and the resilience loop every
//! one-shot call goes through (circuit breaker, then safe retry with backoff).
//!
//! The mechanics (leasing, waiting, returning, reconnect backoff, fork, close, maintenance) live in
//! [`shared`]; the wait queue in [`waiters`]; checked-out connections in [`guard`].
//!
//! The safe-reuse invariant: a connection goes back to the idle set only if it is known clean (see
//! [`crate::connection`]); otherwise it is closed and its slot freed.

mod guard;
mod health_check;
mod live;
mod maintenance;
pub(crate) mod shared;
mod waiters;

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redis::{Cmd, Value};

pub use guard::PooledConnection;
pub use live::all_pools;
pub use waiters::Priority;

/// A connection as the pool holds it: boxed, so checkout and return move a pointer rather than
/// the whole connection (each move was a `memmove` on the hot path).
type Conn = Box<crate::connection::Connection>;

use crate::breaker::BreakerState;
use crate::command::{self, arg_slices, is_idempotent};
use crate::config::{Config, check_duration};
use crate::error::Result;
use crate::events::{Event, Listener};
use crate::fork;
use crate::leak::Holder;
use crate::metrics::PoolStats;
use crate::prometheus::{self, PoolMetrics};
use crate::retry::may_retry;
use shared::Shared;

/// How a checkout is tracked for leak detection (which is off unless configured).
pub(crate) enum Tracking {
    /// Not tracked: a one-shot call, whose connection redpool itself returns when the call ends
    /// (a slow command is not a leak, and capturing a stack per command would cost too much).
    None,
    /// Tracked with the calling thread and a native stack captured now.
    CallerStack,
    /// Tracked with the holder a binding described (its own language's thread and stack).
    Given(Holder),
    /// The pool's own checkout (the background health check): not tracked, and none of its
    /// hold time, commands or errors is counted in the pool's statistics, which describe the
    /// callers' load alone.
    Maintenance,
}

/// Options of one acquire.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcquireOptions {
    /// How long to wait for a connection; `None` uses the pool's `acquire_timeout`. Zero never
    /// waits (like [`Pool::try_acquire`]).
    pub timeout: Option<Duration>,
    /// Queue position while waiting.
    pub priority: Priority,
}

/// Options of one call (`execute_with`, `pipeline_with`, `transaction_with`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallOptions {
    /// An overall deadline: no retry starts, and no wait for a connection lasts, past it.
    pub deadline: Option<Instant>,
    /// Wait up to this long for the reply instead of `socket_timeout` (blocking commands).
    pub reply_timeout: Option<Duration>,
    /// Retry this call even if it is not idempotent and its reply was lost (it may then be
    /// applied twice). `None` uses the pool's `retry_non_idempotent`.
    pub retry_non_idempotent: Option<bool>,
}

/// How [`Pool::execute_batch`] runs one of its commands.
enum BatchPlan {
    /// Refused as [`Pool::execute`] refuses it: fails alone with this error.
    Refused(crate::Error),
    /// A blocking command (with its own reply timeout) or one the core does not call ordinary:
    /// runs alone.
    Alone,
    /// Shares the batch's pipeline.
    Pipelined,
}

/// A pool of connections to one Redis server. Cheap to clone (all clones share the pool) and safe
/// to use from any number of threads.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// Creates a pool for `config`, opens `min_idle` connections (warm-up) and puts it under
    /// background maintenance. Connection failures during warm-up do not fail creation: they are
    /// recorded (see the acquire-timeout message) and retried by maintenance with backoff.
    pub fn new(config: Config) -> Result<Pool> {
        let shared = Shared::create(Arc::new(config))?;
        let guarded: Arc<dyn fork::ForkGuarded> = shared.clone();
        fork::guard(Arc::downgrade(&guarded));
        shared.refill();
        maintenance::ensure_running(&shared);
        let pool = Pool { shared };
        live::track(&pool);
        Ok(pool)
    }

    /// Creates a pool from a URL (see [`Config::from_url`]).
    pub fn from_url(url: &str) -> Result<Pool> {
        Pool::new(Config::from_url(url)?)
    }

    /// The pool's configuration.
    pub fn config(&self) -> &Config {
        self.shared.config()
    }

    /// Checks out a connection, waiting up to `acquire_timeout` for one. Fails fast with
    /// [`crate::ErrorKind::CircuitOpen`] while the breaker is open.
    pub fn acquire(&self) -> Result<PooledConnection> {
        self.acquire_with(AcquireOptions::default())
    }

    /// Checks out a connection if one is idle or a new one may be opened; never waits for another
    /// caller to return one.
    pub fn try_acquire(&self) -> Result<PooledConnection> {
        self.acquire_with(AcquireOptions {
            timeout: Some(Duration::ZERO),
            priority: Priority::Normal,
        })
    }

    /// Checks out a connection with explicit timeout and priority.
    pub fn acquire_with(&self, options: AcquireOptions) -> Result<PooledConnection> {
        self.checkout(options, Tracking::CallerStack)
    }

    /// Checks out a connection on behalf of `holder`: with leak detection on, a checkout held too
    /// long is reported with this thread and stack instead of the native ones (bindings pass their
    /// language's own). Without leak detection it is [`Pool::acquire_with`].
    pub fn acquire_for(&self, options: AcquireOptions, holder: Holder) -> Result<PooledConnection> {
        self.checkout(options, Tracking::Given(holder))
    }

    fn checkout(&self, options: AcquireOptions, tracking: Tracking) -> Result<PooledConnection> {
        if let Some(timeout) = options.timeout {
            check_duration("acquire timeout", timeout)?;
        }
        let permit = self.shared.permit()?;
        let timeout = options
            .timeout
            .unwrap_or_else(|| self.config().acquire_timeout());
        match self.shared.checkout(options.priority, timeout, None) {
            Ok(conn) => Ok(PooledConnection::new(
                self.shared.clone(),
                conn,
                Some(permit),
                tracking,
            )),
            Err(err) => {
                self.shared.record::<()>(permit, &Err(err.clone()));
                Err(err)
            }
        }
    }

    /// One attempt of a one-shot call: a checkout the call itself reports to the breaker, ending
    /// by the call's deadline if it has one.
    fn checkout_for_call(
        &self,
        timeout: Duration,
        deadline: Option<Instant>,
    ) -> Result<PooledConnection> {
        let conn = self.shared.checkout(Priority::Normal, timeout, deadline)?;
        Ok(PooledConnection::new(
            self.shared.clone(),
            conn,
            None,
            Tracking::None,
        ))
    }

    /// Runs one command on a pooled connection, through the breaker and with safe retries. A server
    /// error reply becomes an error of kind [`crate::ErrorKind::Response`]; the connection stays pooled.
    ///
    /// Commands that change the connection (SELECT, AUTH, HELLO, CLIENT SETNAME, CLIENT REPLY,
    /// CLIENT TRACKING, READONLY, RESET, MONITOR, the SUBSCRIBE family, ...) and a lone MULTI or
    /// WATCH fail with [`crate::ErrorKind::InvalidArgument`] naming the command and what to use
    /// instead: on a shared connection their effect would reach the next caller or be lost. They
    /// work on a checked-out connection ([`Pool::acquire`]).
    pub fn execute(&self, cmd: &Cmd) -> Result<Value> {
        self.execute_with(cmd, CallOptions::default())
    }

    /// Runs one command whose reply may take up to `timeout` (blocking commands such as BLPOP).
    pub fn execute_with_timeout(&self, cmd: &Cmd, timeout: Duration) -> Result<Value> {
        self.execute_with(
            cmd,
            CallOptions {
                reply_timeout: Some(timeout),
                ..CallOptions::default()
            },
        )
    }

    /// Runs one command with explicit call options.
    pub fn execute_with(&self, cmd: &Cmd, options: CallOptions) -> Result<Value> {
        command::check_one_shot(cmd)?;
        // Checked before the call starts: with the timeout as the call's deadline too (as the C
        // API passes it), a zero one would otherwise end the call as a timeout.
        if let Some(timeout) = options.reply_timeout {
            guard::check_reply_timeout(timeout)?;
        }
        let idempotent = || is_idempotent(arg_slices(cmd));
        self.call(idempotent, options, |conn| match options.reply_timeout {
            Some(timeout) => conn.execute_with_timeout(cmd, timeout),
            None => conn.execute(cmd),
        })
    }

    /// The call options of a one-shot `cmd`: `timeout` is the reply timeout and the call's
    /// deadline; without it a blocking command (BLPOP, XREAD BLOCK, ...) gets
    /// [`crate::blocking_reply_timeout`] with the pool's `socket_timeout` as slack, and any other
    /// command the defaults.
    pub fn one_shot_options(&self, cmd: &Cmd, timeout: Option<Duration>) -> Result<CallOptions> {
        let reply_timeout =
            crate::call_reply_timeout(cmd, timeout, self.config().socket_timeout())?;
        Ok(CallOptions {
            deadline: reply_timeout.and_then(|timeout| Instant::now().checked_add(timeout)),
            reply_timeout,
            ..CallOptions::default()
        })
    }

    /// Runs the one-shot commands of independent callers together (auto-pipelining): each gets
    /// the outcome its own [`Pool::execute_with`] with [`Pool::one_shot_options`] would give it,
    /// in order. The commands whose name the core calls ordinary share one pipeline on one
    /// connection: one round trip, their server errors each their own `Response` error. When
    /// that exchange fails after the request was sent, the non-idempotent commands get its error
    /// (they may have been applied) and the idempotent ones are sent again, together, under the
    /// usual retry rule, so a read keeps the retry it has alone. A command [`Pool::execute`]
    /// refuses fails alone; a blocking command, or one the core does not call ordinary (QUIT,
    /// which closes the connection, ...), runs alone after the pipeline, one after the other.
    /// One ordinary command runs as [`Pool::execute`] runs it. Breaker and metrics count the
    /// pipeline as one call, as for [`Pool::pipeline`].
    pub fn execute_batch(&self, cmds: &[Cmd]) -> Vec<Result<Value>> {
        let plans: Vec<BatchPlan> = cmds
            .iter()
            .map(|cmd| {
                match command::check_one_shot(cmd).and_then(|()| self.one_shot_options(cmd, None)) {
                    Err(err) => BatchPlan::Refused(err),
                    Ok(options) if options.reply_timeout.is_some() => BatchPlan::Alone,
                    Ok(_)
                        if !arg_slices(cmd)
                            .next()
                            .is_some_and(command::is_ordinary_name) =>
                    {
                        BatchPlan::Alone
                    }
                    Ok(_) => BatchPlan::Pipelined,
                }
            })
            .collect();
        let mut pipelined = self.pipeline_of_batch(cmds, &plans).into_iter();
        plans
            .into_iter()
            .zip(cmds)
            .map(|(plan, cmd)| match plan {
                BatchPlan::Refused(err) => Err(err),
                // Options taken now: a blocking command's deadline starts when it is sent.
                BatchPlan::Alone => self
                    .one_shot_options(cmd, None)
                    .and_then(|options| self.execute_with(cmd, options)),
                BatchPlan::Pipelined => pipelined.next().unwrap_or_else(|| {
                    Err(crate::Error::new(
                        crate::ErrorKind::Protocol,
                        "a batch's pipeline returned fewer replies than it had commands",
                    ))
                }),
            })
            .collect()
    }

    /// The outcomes of a batch's [`BatchPlan::Pipelined`] commands, in order.
    fn pipeline_of_batch(&self, cmds: &[Cmd], plans: &[BatchPlan]) -> Vec<Result<Value>> {
        let pipelined: Vec<&Cmd> = cmds
            .iter()
            .zip(plans)
            .filter(|(_, plan)| matches!(plan, BatchPlan::Pipelined))
            .map(|(cmd, _)| cmd)
            .collect();
        let replies = match pipelined[..] {
            [] => return Vec::new(),
            [cmd] => return vec![self.execute(cmd)],
            _ if pipelined.len() == cmds.len() => self.pipeline(cmds),
            _ => self.pipeline(
                &pipelined
                    .iter()
                    .map(|cmd| (*cmd).clone())
                    .collect::<Vec<Cmd>>(),
            ),
        };
        match replies {
            Ok(replies) => replies.into_iter().map(guard::reply_or_error).collect(),
            Err(err) => self.after_failed_batch(pipelined, err),
        }
    }

    /// The outcomes of a batch's pipelined commands after their pipeline failed with `err`:
    /// when a lone idempotent command would have been retried but the pipeline was not (it held
    /// others), the idempotent ones are sent again as one pipeline of their own (so a read gets
    /// at most one attempt more than alone); every other command gets `err`.
    fn after_failed_batch(&self, cmds: Vec<&Cmd>, err: crate::Error) -> Vec<Result<Value>> {
        let idempotent: Vec<bool> = cmds
            .iter()
            .map(|cmd| is_idempotent(arg_slices(cmd)))
            .collect();
        // A pipeline of idempotent commands only, or one under `retry_non_idempotent`, was
        // retried by `call` already; with `retries=0` no command is retried, alone or not.
        let retry = self.config().retry();
        let retried_already = idempotent.iter().all(|i| *i) || retry.retry_non_idempotent;
        let reads_would_retry = retry.retries > 0 && may_retry(&err, true, retry);
        if retried_already || !reads_would_retry || !idempotent.contains(&true) {
            return vec![Err(err); cmds.len()];
        }
        let again: Vec<Cmd> = cmds
            .iter()
            .zip(&idempotent)
            .filter(|(_, idempotent)| **idempotent)
            .map(|(cmd, _)| (*cmd).clone())
            .collect();
        let mut retried = match self.pipeline(&again) {
            Ok(replies) => replies.into_iter().map(guard::reply_or_error).collect(),
            Err(again_err) => vec![Err(again_err); again.len()],
        }
        .into_iter();
        idempotent
            .into_iter()
            .map(|idempotent| {
                if idempotent {
                    retried.next().unwrap_or_else(|| Err(err.clone()))
                } else {
                    Err(err.clone())
                }
            })
            .collect()
    }

    /// Sends `cmds` as one pipeline; returns one reply per command (server errors in place, as
    /// `Value::ServerError`). Retried as a whole only under the same rule as single commands
    /// (every command idempotent, or nothing sent).
    pub fn pipeline(&self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        self.pipeline_with(cmds, CallOptions::default())
    }

    /// [`Pool::pipeline`] with explicit call options. Commands that change the connection are
    /// refused as by [`Pool::execute`].
    pub fn pipeline_with(&self, cmds: &[Cmd], options: CallOptions) -> Result<Vec<Value>> {
        for cmd in cmds {
            command::refuse_on_shared_pool(cmd)?;
        }
        let idempotent = || cmds.iter().all(|c| is_idempotent(arg_slices(c)));
        self.call(idempotent, options, |conn| conn.pipeline(cmds))
    }

    /// Runs `cmds` in MULTI/EXEC (see [`PooledConnection::transaction`]).
    pub fn transaction(&self, cmds: &[Cmd]) -> Result<Option<Vec<Value>>> {
        self.transaction_with(cmds, CallOptions::default())
    }

    /// [`Pool::transaction`] with explicit call options.
    pub fn transaction_with(
        &self,
        cmds: &[Cmd],
        options: CallOptions,
    ) -> Result<Option<Vec<Value>>> {
        for cmd in cmds {
            command::refuse_on_shared_pool(cmd)?;
        }
        let idempotent = || cmds.iter().all(|c| is_idempotent(arg_slices(c)));
        self.call(idempotent, options, |conn| conn.transaction(cmds))
    }

    /// The resilience loop: a breaker permit for the call, then attempts (checkout, the
    /// operation) with a retry and backoff after a failure that allows it (see [`crate::retry`]),
    /// then the call's outcome to the breaker, once: a call counts as one failure however many
    /// attempts it made. `idempotent` is asked only when a retry is considered: classifying every
    /// command of a pipeline up front cost more than the rest of its bookkeeping.
    fn call<T>(
        &self,
        idempotent: impl Fn() -> bool,
        options: CallOptions,
        op: impl FnMut(&mut PooledConnection) -> Result<T>,
    ) -> Result<T> {
        let permit = self.shared.permit()?;
        let result = self.attempts(idempotent, options, op);
        self.shared.record(permit, &result);
        result
    }

    /// The attempts of one call (see [`Pool::call`]).
    fn attempts<T>(
        &self,
        idempotent: impl Fn() -> bool,
        options: CallOptions,
        mut op: impl FnMut(&mut PooledConnection) -> Result<T>,
    ) -> Result<T> {
        let retry = self.config().retry();
        let retry_config = crate::retry::RetryConfig {
            retry_non_idempotent: options
                .retry_non_idempotent
                .unwrap_or(retry.retry_non_idempotent),
            ..*retry
        };
        let mut attempt = 0;
        let mut previous_delay = Duration::ZERO;
        loop {
            let acquire_timeout = match options.deadline {
                Some(deadline) => deadline
                    .saturating_duration_since(Instant::now())
                    .min(self.config().acquire_timeout()),
                None => self.config().acquire_timeout(),
            };
            let result = self
                .checkout_for_call(acquire_timeout, options.deadline)
                .and_then(|mut conn| {
                    conn.bounded_by(options.deadline);
                    op(&mut conn)
                });
            let err = match result {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            if attempt >= retry_config.retries || !may_retry(&err, idempotent(), &retry_config) {
                return Err(err);
            }
            // Never earlier than the pool's next connect attempt: retrying sooner fails for sure.
            let delay = retry_config
                .backoff
                .delay(attempt, previous_delay)
                .max(err.retry_after().unwrap_or_default());
            if options
                .deadline
                .is_some_and(|deadline| Instant::now() + delay >= deadline)
            {
                return Err(err);
            }
            crate::interrupt::sleep(delay)?;
            self.shared.counters().retried();
            previous_delay = delay;
            attempt += 1;
        }
    }

    /// A snapshot of gauges and counters.
    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }

    /// The circuit breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.shared.breaker().state()
    }

    /// Everything exported about this pool now (see [`crate::prometheus`]).
    pub fn metrics(&self) -> PoolMetrics {
        let counters = self.shared.counters();
        PoolMetrics {
            pool: self.config().pool_name().to_string(),
            server: self.shared.server().to_string(),
            stats: self.stats(),
            breaker: self.breaker_state(),
            breaker_transitions: counters.breaker_transitions(),
            health: self.shared.health.lock().last_status,
            wait_time: counters
                .wait_time
                .snapshot(crate::metrics::CONNECTION_BUCKETS),
            create_time: counters
                .create_time
                .snapshot(crate::metrics::CONNECTION_BUCKETS),
            use_time: counters
                .use_time
                .snapshot(crate::metrics::CONNECTION_BUCKETS),
            commands: counters.per_command.snapshot(),
        }
    }

    /// This pool's metrics in the Prometheus text format (for every pool in the process, see
    /// [`crate::registry::metrics_text`]).
    pub fn metrics_text(&self) -> String {
        prometheus::render(&[self.metrics()])
    }

    /// Changes `max_connections` and `min_idle` at run time (same rules as in the config;
    /// `min_idle` None keeps the current one, lowered to `max_connections` if above it). Safe
    /// under load: growing serves queued callers at once; shrinking closes idle connections above
    /// the new cap now and busy ones as they are returned (no call fails because of it). The
    /// process registry still finds the pool under its original settings.
    pub fn resize(&self, max_connections: usize, min_idle: Option<usize>) -> Result<()> {
        self.shared.resize(max_connections, min_idle)
    }

    /// Closes every connection of the pool, as redis-py's `ConnectionPool.disconnect()`: idle
    /// ones now, checked-out ones when they are returned (never under a caller). The pool stays
    /// open: later calls open new connections (`min_idle` of them are reopened by maintenance).
    /// Closed connections count as `discarded`. Safe under load and from several threads. An
    /// error of kind `Closed` when the pool is closed.
    pub fn disconnect(&self) -> Result<()> {
        self.shared.disconnect()
    }

    /// Subscribes to the pool's events; returns an id for [`Pool::unsubscribe`]. See
    /// [`crate::events`] for how they are delivered.
    pub fn subscribe(&self, listener: impl Fn(&Event) + Send + Sync + 'static) -> u64 {
        let listener: Listener = Arc::new(listener);
        self.shared.events.subscribe(listener)
    }

    /// Stops the stderr warning for suspected leaks: the caller writes them itself (the Python
    /// and Node bindings send them to their language's logger and warnings). The
    /// [`Event::LeakSuspected`] event and the metrics are unchanged.
    pub fn warn_leaks_elsewhere(&self) {
        self.shared
            .leak_warnings_elsewhere
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Removes a subscriber; false when the id is unknown.
    pub fn unsubscribe(&self, id: u64) -> bool {
        self.shared.events.unsubscribe(id)
    }

    /// True once `close()` was called.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Closes the pool: new acquires fail with [`crate::ErrorKind::Closed`] at once, waiters wake with that
    /// error, idle connections are closed, and checked-out ones are closed when returned. Waits up
    /// to `grace` for them; then shuts down the sockets still checked out, so their callers fail
    /// fast instead of finishing. Safe to call more than once and from several threads. A grace
    /// above 365 days is taken as 365 days.
    pub fn close(&self, grace: Duration) {
        self.shared.close(grace.min(crate::config::MAX_DURATION));
    }

    /// A reference that does not keep the pool alive (for the process-wide list of pools).
    pub(crate) fn downgrade(&self) -> WeakPool {
        WeakPool(Arc::downgrade(&self.shared))
    }

    /// True when both handles share one pool.
    pub fn same_pool(&self, other: &Pool) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// A pool reference that does not keep it alive.
pub(crate) struct WeakPool(Weak<Shared>);

impl WeakPool {
    /// The pool, if it still exists.
    pub(crate) fn upgrade(&self) -> Option<Pool> {
        self.0.upgrade().map(|shared| Pool { shared })
    }
}

#[cfg(feature = "capi")]
impl Pool {
    /// Gives the pool away as one counted raw reference (for the C ABI's handles). Every clone of
    /// a pool gives the same pointer.
    pub(crate) fn into_raw(self) -> *const () {
        Arc::into_raw(self.shared).cast()
    }

    /// Takes back one counted reference made by [`Pool::into_raw`].
    ///
    /// # Safety
    /// `ptr` came from `into_raw` and this reference was not taken back yet.
    pub(crate) unsafe fn from_raw(ptr: *const ()) -> Pool {
        // SAFETY: per the caller's contract, `ptr` is a live `Arc<Shared>` reference.
        Pool {
            shared: unsafe { Arc::from_raw(ptr.cast::<Shared>()) },
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("server", &self.config().redacted_url())
            .field("closed", &self.is_closed())
            .finish()
    }
}
