//! The synchronous connection pool.
//!
//! One mutex guards the pool state (idle connections, counts, the wait queue); it is held only for
//! bookkeeping, never during I/O. Connections are opened lazily up to `max_connections` (a hard
//! cap that counts sockets still connecting), `min_idle` are opened at start, and waiters are
//! served strictly in order (see [`waiters`]).
//!
//! The safe-reuse invariant: a connection goes back to the idle set only if it is known clean (see
//! [`crate::connection`]); otherwise it is closed and its slot freed.

mod guard;
mod waiters;

use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use redis::{Cmd, Value};

pub use guard::PooledConnection;
pub use waiters::Priority;
use waiters::{Grant, WaitQueue};

use crate::config::{Config, ReuseOrder};
use crate::connection::{Connection, Connector};
use crate::error::{Error, ErrorKind, Result};
use crate::fork::{self, ForkGuarded};
use crate::metrics::{CloseReason, Counters, PoolStats};

/// Options of one acquire.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcquireOptions {
    /// How long to wait for a connection; `None` uses the pool's `acquire_timeout`. Zero never
    /// waits (like [`Pool::try_acquire`]).
    pub timeout: Option<Duration>,
    /// Queue position while waiting.
    pub priority: Priority,
}

/// A pool of connections to one Redis server. Cheap to clone (all clones share the pool) and safe
/// to use from any number of threads.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    config: Arc<Config>,
    connector: Connector,
    state: Mutex<State>,
    /// Set once by `close()`; read without the lock by checked-out connections.
    closed: AtomicBool,
    /// Notified whenever a connection is closed while the pool is closing.
    drained: Condvar,
    counters: Counters,
}

struct State {
    idle: VecDeque<Connection>,
    /// Sockets open or being opened: idle + checked out + connecting.
    open: usize,
    connecting: usize,
    waiters: WaitQueue,
    /// Descriptors of checked-out connections, so `close()` can shut them down after its grace.
    in_use_fds: HashMap<u64, RawFd>,
    last_connect_error: Option<String>,
    fork_generation: u64,
}

impl State {
    /// Connections checked out by callers (open minus idle minus connecting).
    fn in_use(&self) -> usize {
        self.open
            .saturating_sub(self.idle.len())
            .saturating_sub(self.connecting)
    }
}

/// How a caller got hold of a connection, before validation.
enum Lease {
    /// An idle connection that may need a check before use.
    Idle(Connection),
    /// A slot to open a new connection in.
    Slot,
}

impl Pool {
    /// Creates a pool for `config` and opens `min_idle` connections (warm-up). Connection failures
    /// during warm-up do not fail creation: they are recorded and the pool connects lazily.
    pub fn new(config: Config) -> Result<Pool> {
        let config = Arc::new(config);
        let connector = Connector::new(config.clone())?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                idle: VecDeque::with_capacity(config.max_connections().min(1024)),
                open: 0,
                connecting: 0,
                waiters: WaitQueue::default(),
                in_use_fds: HashMap::new(),
                last_connect_error: None,
                fork_generation: fork::generation(),
            }),
            config,
            connector,
            closed: AtomicBool::new(false),
            drained: Condvar::new(),
            counters: Counters::default(),
        });
        let weak: Weak<Shared> = Arc::downgrade(&shared);
        fork::guard(weak);
        let pool = Pool { shared };
        pool.warm_up();
        Ok(pool)
    }

    /// Creates a pool from a URL (see [`Config::from_url`]).
    pub fn from_url(url: &str) -> Result<Pool> {
        Pool::new(Config::from_url(url)?)
    }

    /// The pool's configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Opens connections until `min_idle` are open (stops at the first failure, which is kept for
    /// the acquire-timeout message). Returns how many were opened.
    pub fn warm_up(&self) -> usize {
        let mut opened = 0;
        while let Some(()) = self.shared.reserve_warm_up_slot() {
            match self.shared.open_connection() {
                Ok(conn) => {
                    self.shared.checkin(conn, false);
                    opened += 1;
                }
                Err(err) => {
                    self.shared.abandon_slot(&err);
                    break;
                }
            }
        }
        opened
    }

    /// Checks out a connection, waiting up to `acquire_timeout` for one.
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
        let conn = self.shared.checkout(options)?;
        Ok(PooledConnection::new(self.shared.clone(), conn))
    }

    /// Runs one command on a pooled connection. A server error reply becomes an error of kind
    /// [`ErrorKind::Response`]; the connection stays in the pool.
    pub fn execute(&self, cmd: &Cmd) -> Result<Value> {
        self.acquire()?.execute(cmd)
    }

    /// Runs one command whose reply may take up to `timeout` (blocking commands such as BLPOP).
    pub fn execute_with_timeout(&self, cmd: &Cmd, timeout: Duration) -> Result<Value> {
        self.acquire()?.execute_with_timeout(cmd, timeout)
    }

    /// Sends `cmds` as one pipeline; returns one reply per command (server errors in place, as
    /// `Value::ServerError`).
    pub fn pipeline(&self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        self.acquire()?.pipeline(cmds)
    }

    /// Runs `cmds` in MULTI/EXEC (see [`PooledConnection::transaction`]).
    pub fn transaction(&self, cmds: &[Cmd]) -> Result<Option<Vec<Value>>> {
        self.acquire()?.transaction(cmds)
    }

    /// A snapshot of gauges and counters.
    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }

    /// True once `close()` was called.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Closes the pool: new acquires fail with [`ErrorKind::Closed`] at once, waiters wake with that
    /// error, idle connections are closed, and checked-out ones are closed when returned. Waits up
    /// to `grace` for them; then shuts down the sockets still checked out, so their callers fail
    /// fast instead of finishing. Safe to call more than once and from several threads.
    pub fn close(&self, grace: Duration) {
        self.shared.close(grace);
    }

    /// True when both handles share one pool.
    pub fn same_pool(&self, other: &Pool) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("server", &self.shared.config.redacted_url())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Shared {
    fn checkout(&self, options: AcquireOptions) -> Result<Connection> {
        let started = Instant::now();
        let timeout = options
            .timeout
            .unwrap_or_else(|| self.config.acquire_timeout());
        let lease = match self.lease(options.priority, started, timeout) {
            Ok(lease) => lease,
            Err(err) => {
                self.counters.error(err.kind());
                return Err(err);
            }
        };
        let result = self.ready(lease);
        match &result {
            Ok(_) => self.counters.acquired(started.elapsed()),
            Err(err) => self.counters.error(err.kind()),
        }
        result
    }

    /// Gets an idle connection or a slot, waiting in the queue when the pool is at its cap.
    fn lease(&self, priority: Priority, started: Instant, timeout: Duration) -> Result<Lease> {
        let mut state = self.state.lock();
        self.forget_parent_after_fork(&mut state);
        if self.closed.load(Ordering::Relaxed) {
            return Err(self.closed_error());
        }
        // Nobody may pass a queued waiter: with waiters present, everything freed is granted to them.
        if state.waiters.is_empty() {
            if let Some(lease) = self.lease_now(&mut state) {
                return Ok(lease);
            }
        }
        if timeout.is_zero() {
            self.counters.acquire_timed_out(Duration::ZERO);
            return Err(self.exhausted_error(&state, Duration::ZERO));
        }
        let deadline = started + timeout;
        let ticket = state.waiters.enqueue(priority);
        loop {
            if let Some(grant) = state.waiters.take_grant(&ticket) {
                return match grant {
                    Grant::Connection(conn) => Ok(Lease::Idle(conn)),
                    Grant::Slot => Ok(Lease::Slot),
                    Grant::Closed => Err(self.closed_error()),
                };
            }
            if Instant::now() >= deadline {
                state.waiters.withdraw(&ticket);
                let waited = started.elapsed();
                self.counters.acquire_timed_out(waited);
                return Err(self.exhausted_error(&state, waited));
            }
            ticket.wake.wait_until(&mut state, deadline);
        }
    }

    /// An idle connection, or a new slot when below the cap; `None` when at the cap.
    fn lease_now(&self, state: &mut State) -> Option<Lease> {
        let popped = match self.config.reuse_order() {
            ReuseOrder::Lifo => state.idle.pop_back(),
            ReuseOrder::Fifo => state.idle.pop_front(),
        };
        if let Some(conn) = popped {
            state.in_use_fds.insert(conn.id, conn.raw_fd());
            return Some(Lease::Idle(conn));
        }
        if state.open < self.config.max_connections() {
            state.open += 1;
            state.connecting += 1;
            return Some(Lease::Slot);
        }
        None
    }

    /// Turns a lease into a usable connection: checks an idle one (expiry, health) and replaces it
    /// in the same slot if needed, or opens a new one.
    fn ready(&self, lease: Lease) -> Result<Connection> {
        if let Lease::Idle(mut conn) = lease {
            let now = Instant::now();
            let reason = if !conn.is_idle_and_open() {
                Some(CloseReason::ServerClosed)
            } else if conn.retire_at.is_some_and(|at| now >= at) {
                Some(CloseReason::MaxLifetime)
            } else if self
                .config
                .idle_timeout()
                .is_some_and(|t| now.duration_since(conn.last_used) >= t)
            {
                Some(CloseReason::IdleTimeout)
            } else if self
                .config
                .health_check_interval()
                .is_some_and(|t| now.duration_since(conn.last_used) >= t)
                && conn.ping().is_err()
            {
                Some(CloseReason::HealthCheckFailed)
            } else {
                None
            };
            let Some(reason) = reason else {
                return Ok(conn);
            };
            // Keep the slot, close the stale connection, open a fresh one in its place.
            {
                let mut state = self.state.lock();
                state.in_use_fds.remove(&conn.id);
                state.connecting += 1;
            }
            self.counters.connections_closed(reason, 1);
            drop(conn);
        }
        let conn = self
            .open_connection()
            .inspect_err(|err| self.abandon_slot(err))?;
        let mut state = self.state.lock();
        state.connecting -= 1;
        if self.closed.load(Ordering::Relaxed) {
            self.release_slot(&mut state);
            drop(state);
            self.counters.connections_closed(CloseReason::PoolClosed, 1);
            return Err(self.closed_error());
        }
        state.in_use_fds.insert(conn.id, conn.raw_fd());
        Ok(conn)
    }

    /// Gives back a slot whose connection could not be opened, remembering why.
    fn abandon_slot(&self, err: &Error) {
        let mut state = self.state.lock();
        state.connecting -= 1;
        state.last_connect_error = Some(err.message().to_string());
        self.release_slot(&mut state);
    }

    /// Opens a connection (no pool bookkeeping), stamping its lifetime with jitter.
    fn open_connection(&self) -> Result<Connection> {
        let mut conn = self.connector.connect(fork::generation())?;
        self.counters.connection_created();
        if let Some(lifetime) = self.config.max_lifetime() {
            // Up to 2.5 % earlier, so connections opened together do not all expire together.
            let jitter = lifetime.mul_f64(0.025 * crate::random::unit());
            conn.retire_at = Some(conn.created_at + lifetime - jitter);
        }
        Ok(conn)
    }

    fn reserve_warm_up_slot(&self) -> Option<()> {
        let mut state = self.state.lock();
        let wanted = self.config.min_idle();
        if self.closed.load(Ordering::Relaxed)
            || state.open >= wanted.min(self.config.max_connections())
        {
            return None;
        }
        state.open += 1;
        state.connecting += 1;
        Some(())
    }

    /// Returns a connection from a caller (`in_use` true) or from warm-up. Clean connections go to
    /// the first waiter or the idle set; others are closed and their slot passed on.
    pub(crate) fn checkin(&self, mut conn: Connection, in_use: bool) {
        if conn.is_reusable() && conn.needs_settling() {
            conn.settle_session();
        }
        let retire = conn.retire_at.is_some_and(|at| Instant::now() >= at);
        let mut state = self.state.lock();
        self.forget_parent_after_fork(&mut state);
        if conn.fork_generation != state.fork_generation {
            // A socket from before fork(): dropping the child's copy does not touch the parent.
            drop(state);
            self.counters.connections_closed(CloseReason::Forked, 1);
            return;
        }
        if !in_use {
            state.connecting -= 1;
        }
        let reason = if self.closed.load(Ordering::Relaxed) {
            Some(CloseReason::PoolClosed)
        } else if conn.is_discarded() {
            Some(CloseReason::Discarded)
        } else if !conn.is_reusable() {
            Some(CloseReason::Broken)
        } else if retire {
            Some(CloseReason::MaxLifetime)
        } else {
            None
        };
        let (id, fd) = (conn.id, conn.raw_fd());
        match reason {
            None => {
                conn.last_used = Instant::now();
                match state.waiters.grant_next(Grant::Connection(conn)) {
                    Some(Grant::Connection(conn)) => {
                        state.in_use_fds.remove(&id);
                        state.idle.push_back(conn);
                    }
                    // Handed to a waiter: it stays checked out, under the same descriptor.
                    _ => {
                        state.in_use_fds.insert(id, fd);
                    }
                }
            }
            Some(reason) => {
                state.in_use_fds.remove(&id);
                self.release_slot(&mut state);
                drop(state);
                self.counters.connections_closed(reason, 1);
                drop(conn);
            }
        }
    }

    /// Frees one open slot: hands it to the first waiter, or lowers the open count.
    fn release_slot(&self, state: &mut State) {
        if self.closed.load(Ordering::Relaxed) || state.waiters.grant_next(Grant::Slot).is_some() {
            state.open -= 1;
            if self.closed.load(Ordering::Relaxed) {
                self.drained.notify_all();
            }
        } else {
            state.connecting += 1;
        }
    }

    /// In a forked child, forgets the parent's connections and waiters (once per fork).
    fn forget_parent_after_fork(&self, state: &mut State) {
        let generation = fork::generation();
        if state.fork_generation == generation {
            return;
        }
        let inherited = std::mem::take(&mut state.idle);
        self.counters
            .connections_closed(CloseReason::Forked, inherited.len());
        drop(inherited);
        state.waiters.forget_all();
        // Descriptors checked out by other parent threads are not ours to close: those threads do
        // not exist here, and the forking thread may still drop its own checkout later.
        state.in_use_fds.clear();
        state.open = 0;
        state.connecting = 0;
        state.fork_generation = generation;
    }

    fn close(&self, grace: Duration) {
        let idle = {
            let mut state = self.state.lock();
            self.closed.store(true, Ordering::Release);
            state.waiters.close_all();
            let idle = std::mem::take(&mut state.idle);
            state.open -= idle.len();
            idle
        };
        self.counters
            .connections_closed(CloseReason::PoolClosed, idle.len());
        drop(idle);
        let deadline = Instant::now() + grace;
        let mut state = self.state.lock();
        while state.open > 0 && !self.drained.wait_until(&mut state, deadline).timed_out() {}
        for fd in state.in_use_fds.values() {
            // SAFETY: every descriptor in `in_use_fds` belongs to a live checked-out connection:
            // it is removed under this lock before its connection is dropped. shutdown() only
            // makes the holder's next read or write fail; the holder still closes it.
            unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
        }
    }

    fn stats(&self) -> PoolStats {
        let mut stats = PoolStats {
            max_connections: self.config.max_connections(),
            min_idle: self.config.min_idle(),
            ..PoolStats::default()
        };
        {
            let state = self.state.lock();
            let same_generation = state.fork_generation == fork::generation();
            if same_generation {
                stats.open = state.open;
                stats.idle = state.idle.len();
                stats.connecting = state.connecting;
                stats.in_use = state.in_use();
                stats.waiting = state.waiters.len();
            }
        }
        self.counters.fill(&mut stats);
        stats
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn closed_error(&self) -> Error {
        Error::new(
            ErrorKind::Closed,
            format!("pool for {} is closed", self.connector.server()),
        )
    }

    fn exhausted_error(&self, state: &State, waited: Duration) -> Error {
        let in_use = state.in_use();
        let mut message = format!(
            "no connection to {} available after {:?}: max_connections={}, in use={}, idle={}, connecting={}, waiting={}",
            self.connector.server(),
            waited,
            self.config.max_connections(),
            in_use,
            state.idle.len(),
            state.connecting,
            state.waiters.len(),
        );
        if let Some(last) = &state.last_connect_error {
            message.push_str(&format!("; last connect error: {last}"));
        }
        if waited.is_zero() {
            message.push_str(" (try_acquire does not wait)");
        } else {
            message.push_str(
                "; raise max_connections or acquire_timeout, or look for connections held too long",
            );
        }
        Error::new(ErrorKind::PoolExhausted, message)
    }
}

impl ForkGuarded for Shared {
    fn lock_for_fork(&self) {
        std::mem::forget(self.state.lock());
    }

    unsafe fn unlock_after_fork(&self) {
        // SAFETY: `lock_for_fork` locked it and forgot the guard, in this same fork.
        unsafe { self.state.force_unlock() };
    }
}
