//! The pool's shared state and its mechanics: leasing and returning connections, the wait queue,
//! the pool-wide reconnect gate, fork handling, close, and the periodic maintenance pass.
//!
//! One mutex guards [`State`]; it is held only for bookkeeping, never during I/O, and events are
//! emitted only after it is released.

use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::sync::{Condvar, HeldLock, Mutex, MutexGuard};

use super::Conn;
use super::waiters::{Grant, Priority, WaitQueue};
use crate::breaker::{Breaker, Permit, Transition};
use crate::clock::SystemClock;
use crate::config::{Config, ReuseOrder};
use crate::connection::{Connection, Connector};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Event, Events};
use crate::fork::{self, ForkGuarded};
use crate::health::HealthMemory;
use crate::interrupt;
use crate::leak::LeakTracker;
use crate::metrics::{CloseReason, Counters, PoolStats};
use crate::retry::Backoff;

/// A connection returned less than this long ago is handed out again without the
/// `recv(MSG_PEEK)` liveness look (a system call that costs more than the rest of a checkout).
/// Like HikariCP's `aliveBypassWindowMs`, but much shorter: only hot connections skip it. If the
/// server closed one in that window, its next command fails as a connection error before any
/// reply, which is retried only under the usual rules, so no write is ever applied twice; the
/// same can happen anyway between the look and the write.
const VALIDATION_BYPASS: Duration = Duration::from_millis(1);

/// Hashes connection ids (already unique integers) as themselves: the map of checked-out
/// descriptors is touched on every checkout and return.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id;
    }
}

type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

pub(crate) struct Shared {
    /// This pool itself, for restarting its maintenance thread after fork.
    me: Weak<Shared>,
    pub(super) config: Arc<Config>,
    connector: Connector,
    state: Mutex<State>,
    /// Set once by `close()`; read without the lock by checked-out connections.
    closed: AtomicBool,
    /// Notified whenever a connection is closed while the pool is closing.
    drained: Condvar,
    pub(super) counters: Counters,
    pub(super) events: Events,
    breaker: Breaker,
    pub(super) health: Mutex<HealthMemory>,
    /// Live checkouts, when leak detection is on.
    leaks: Option<LeakTracker>,
    /// Set by a binding that writes leak warnings to its own logger (see `Pool::warn_leaks_elsewhere`).
    pub(super) leak_warnings_elsewhere: AtomicBool,
}

struct State {
    /// The cap on open sockets (starts at `max_connections`; changed by `resize`).
    max_connections: usize,
    /// Connections kept open while unused (starts at `min_idle`; changed by `resize`).
    min_idle: usize,
    idle: VecDeque<Conn>,
    /// Sockets open or being opened: idle + checked out + connecting.
    open: usize,
    connecting: usize,
    waiters: WaitQueue,
    /// Descriptors of checked-out connections, so `close()` can shut them down after its grace.
    in_use_fds: IdMap<RawFd>,
    /// The connection the pool's own health check holds, if any: checked out (in `in_use_fds`),
    /// but not by a caller, so not in `in_use()`. Set under the lock that checks it out, cleared
    /// under the one that takes it back.
    held_by_pool: Option<u64>,
    /// Connections with a smaller id were open at the last `disconnect()`: they are closed when
    /// returned instead of being reused.
    disconnected_below: u64,
    reconnect: ReconnectGate,
    fork_generation: u64,
    /// The maintenance thread of this process (its fork generation and handle), if one runs.
    maintainer: Option<(u64, Option<Thread>)>,
}

/// Pool-wide backoff of connect attempts after failures: while the server is unreachable, one
/// attempt per backoff step is made, however many callers want a connection; the others fail at
/// once with the last connect error.
#[derive(Default)]
struct ReconnectGate {
    failures: u32,
    next_attempt_at: Option<Instant>,
    attempt_in_flight: bool,
    last_delay: Duration,
    last_error: Option<String>,
    /// The kind of the last failure (an authentication failure stays one while backing off).
    last_kind: Option<ErrorKind>,
}

impl ReconnectGate {
    /// Connecting works: the next attempt may come at once.
    fn open(&mut self) {
        self.failures = 0;
        self.next_attempt_at = None;
    }

    /// A connect failed with `err`: the next attempt waits for the next step of `backoff`.
    fn back_off(&mut self, backoff: &Backoff, err: &Error) {
        let delay = backoff.delay(self.failures, self.last_delay);
        self.failures = self.failures.saturating_add(1);
        self.last_delay = delay;
        self.next_attempt_at = Some(Instant::now() + delay);
        self.last_error = Some(err.message().to_string());
        self.last_kind = Some(err.kind());
    }
}

/// What makes a new connection count as opened (see `Shared::connect_in_slot`).
#[derive(Clone, Copy)]
enum Verify {
    /// Connected and set up: a caller's request follows at once and tells the rest.
    Connect,
    /// Also answers a PING (`Connection::answers_ping`): for a connection kept idle for
    /// `min_idle`, so a server that accepts and then refuses or drops connections (at
    /// `maxclients`, a balancer with no backend) fails the connect and backs the gate off,
    /// instead of the refills reconnecting every maintenance period.
    Ping,
}

/// How a caller got hold of a connection, before validation.
enum Lease {
    /// An idle connection that may need a check before use.
    Idle(Conn),
    /// A slot to open a new connection in.
    Slot,
}

/// A lease, and whether the caller had to queue for it.
struct Leased {
    lease: Lease,
    queued: bool,
}

impl Leased {
    /// Got without queueing.
    fn at_once(lease: Lease) -> Result<Leased> {
        Ok(Leased {
            lease,
            queued: false,
        })
    }

    /// Got after queueing.
    fn after_queueing(lease: Lease) -> Result<Leased> {
        Ok(Leased {
            lease,
            queued: true,
        })
    }
}

/// Who a checkout is for: a caller, or the pool itself (its background health check, which is
/// not in the callers' `in_use`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Borrower {
    Caller,
    Pool,
}

/// A connection ready for use, and whether a new one was opened for it.
struct Ready {
    conn: Conn,
    opened: bool,
}

impl State {
    /// Connections checked out by callers (open minus idle minus connecting, minus the one the
    /// pool's own health check may hold).
    fn in_use(&self) -> usize {
        let pool_own = self
            .held_by_pool
            .is_some_and(|id| self.in_use_fds.contains_key(&id));
        self.open
            .saturating_sub(self.idle.len())
            .saturating_sub(self.connecting)
            .saturating_sub(usize::from(pool_own))
    }
}

impl Shared {
    /// A pool in its `Arc` (checks the TLS settings and prepares the handshake first).
    pub(super) fn create(config: Arc<Config>) -> Result<Arc<Shared>> {
        let connector = Connector::new(config.clone())?;
        Ok(Arc::new_cyclic(|me| {
            Shared::new(config, connector, me.clone())
        }))
    }

    fn new(config: Arc<Config>, connector: Connector, me: Weak<Shared>) -> Shared {
        Shared {
            me,
            state: Mutex::new(State {
                max_connections: config.max_connections(),
                min_idle: config.min_idle(),
                idle: VecDeque::with_capacity(config.max_connections().min(1024)),
                open: 0,
                connecting: 0,
                waiters: WaitQueue::default(),
                in_use_fds: IdMap::default(),
                held_by_pool: None,
                disconnected_below: 0,
                reconnect: ReconnectGate::default(),
                fork_generation: fork::generation(),
                maintainer: None,
            }),
            breaker: Breaker::new(config.breaker().clone(), &SystemClock),
            leaks: config.leak_detection_threshold().map(LeakTracker::new),
            leak_warnings_elsewhere: AtomicBool::new(false),
            config,
            connector,
            closed: AtomicBool::new(false),
            drained: Condvar::new(),
            counters: Counters::default(),
            events: Events::default(),
            health: Mutex::new(HealthMemory {
                last_sample: Some(crate::sizing::Sample::empty(Instant::now())),
                ..HealthMemory::default()
            }),
        }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(super) fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The leak tracker, when leak detection is on.
    pub(crate) fn leaks(&self) -> Option<&LeakTracker> {
        self.leaks.as_ref()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The server as `host:port`, for messages.
    pub(super) fn server(&self) -> &str {
        self.connector.server()
    }

    // ----- circuit breaker -------------------------------------------------------------------

    /// Asks the breaker for permission to make a call; a refusal is counted as an error.
    pub(crate) fn permit(&self) -> Result<Permit> {
        self.ask_breaker()
            .inspect_err(|err| self.counters.error(err.kind()))
    }

    /// Asks the breaker for permission without counting a refusal (the pool's own checks).
    pub(crate) fn ask_breaker(&self) -> Result<Permit> {
        let (permit, transition) = self.breaker.permit(&SystemClock, self.server());
        self.report(transition);
        permit
    }

    /// Tells the breaker how a call ended.
    pub(crate) fn record<T>(&self, permit: Permit, result: &Result<T>) {
        let outcome = crate::breaker::Outcome::of(result);
        if let (crate::breaker::Outcome::Failure, Err(err)) = (outcome, result) {
            self.breaker.remember_failure(err.message());
        }
        let transition = self.breaker.record(&SystemClock, permit, outcome);
        self.report(transition);
    }

    /// Gives back a permit that was not used for any call.
    pub(crate) fn release_permit(&self, permit: Permit) {
        let outcome = crate::breaker::Outcome::Ignored;
        let transition = self.breaker.record(&SystemClock, permit, outcome);
        self.report(transition);
    }

    fn report(&self, transition: Option<Transition>) {
        if let Some(t) = transition {
            self.counters.breaker_moved(t.to);
            self.events.emit(|| Event::BreakerStateChanged {
                from: t.from,
                to: t.to,
            });
        }
    }

    /// Locks the state; in a forked child, first forgets the parent's connections (closing the
    /// child's copies with the lock released).
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut state = self.state.lock();
        if let Some(inherited) = self.forget_parent_after_fork(&mut state) {
            drop(state);
            self.closed_connections(inherited, CloseReason::Forked);
            if let Some(me) = self.me.upgrade() {
                super::maintenance::ensure_running(&me);
            }
            state = self.state.lock();
        }
        state
    }

    /// Marks the maintenance thread of this process as started; false if one already runs.
    pub(crate) fn claim_maintenance(&self, generation: u64) -> bool {
        let mut state = self.state.lock();
        if state
            .maintainer
            .as_ref()
            .is_some_and(|(g, _)| *g == generation)
            || self.is_closed()
        {
            return false;
        }
        state.maintainer = Some((generation, None));
        true
    }

    /// Records the started maintenance thread, so `close()` and drop can wake it.
    pub(crate) fn maintenance_started(&self, generation: u64, thread: Thread) {
        let mut state = self.state.lock();
        if let Some((g, slot)) = state.maintainer.as_mut() {
            if *g == generation {
                *slot = Some(thread);
            }
        }
    }

    /// Marks the maintenance thread of `generation` as gone.
    pub(crate) fn release_maintenance(&self, generation: u64) {
        let mut state = self.state.lock();
        if state
            .maintainer
            .as_ref()
            .is_some_and(|(g, _)| *g == generation)
        {
            state.maintainer = None;
        }
    }

    fn wake_maintenance(state: &State) {
        if let Some((_, Some(thread))) = &state.maintainer {
            thread.unpark();
        }
    }

    // ----- checkout --------------------------------------------------------------------------

    /// Checks out a connection: an idle one (validated) or a new one, waiting in the queue up to
    /// `timeout` when the pool is at its cap. Returns it with the instant it was handed over.
    /// Clock reads are a large share of a checkout's cost: an idle connection handed over at once
    /// (nothing waited for, nothing opened) reuses the first read as the hand-over instant.
    ///
    /// `limit` is the deadline of the call the connection is for, if it has one: opening a
    /// connection or checking an idle one ends by then too.
    pub(crate) fn checkout(
        &self,
        priority: Priority,
        timeout: Duration,
        limit: Option<Instant>,
    ) -> Result<(Conn, Instant)> {
        let started = Instant::now();
        let result = self.lease(priority, started, timeout).and_then(|leased| {
            let ready = self.ready(leased.lease, started, limit, Borrower::Caller)?;
            // (A slot always opens a connection: not opened means an idle one, as it was.)
            Ok((ready.conn, !leased.queued && !ready.opened))
        });
        match result {
            Ok((conn, at_once)) => {
                let now = if at_once { started } else { Instant::now() };
                self.counters
                    .acquired(now.saturating_duration_since(started));
                Ok((conn, now))
            }
            Err(err) => {
                self.counters.error(err.kind());
                Err(err)
            }
        }
    }

    /// A connection for the pool's own use (the background health check): an idle one or a new
    /// one, only if nobody waits and one is free now; None otherwise. Not counted as an acquire,
    /// an acquire timeout or an error: the pool's statistics describe its callers' load alone.
    pub(crate) fn checkout_if_free(&self) -> Option<Result<(Conn, Instant)>> {
        let started = Instant::now();
        let lease = {
            let mut state = self.lock();
            if self.closed.load(Ordering::Relaxed) || !state.waiters.is_empty() {
                return None;
            }
            let lease = self.lease_now(&mut state)?;
            if let Lease::Idle(conn) = &lease {
                state.held_by_pool = Some(conn.id);
            }
            lease
        };
        Some(
            self.ready(lease, started, None, Borrower::Pool)
                .map(|ready| (ready.conn, Instant::now())),
        )
    }

    /// Gets an idle connection or a slot, waiting in the queue when the pool is at its cap; true
    /// when it had to queue.
    fn lease(&self, priority: Priority, started: Instant, timeout: Duration) -> Result<Leased> {
        let mut state = self.lock();
        if self.closed.load(Ordering::Relaxed) {
            return Err(self.closed_error());
        }
        // With nobody queued: an idle connection or a new slot. With waiters queued: only an idle
        // connection, and only while the head has not waited FAIR_HANDOFF_AFTER (see `waiters`).
        if state.waiters.is_empty() {
            if let Some(lease) = self.lease_now(&mut state) {
                return Leased::at_once(lease);
            }
        } else if !state.waiters.head_is_due(started) {
            if let Some(conn) = self.take_idle(&mut state) {
                return Leased::at_once(Lease::Idle(conn));
            }
        }
        if timeout.is_zero() {
            self.counters.acquire_timed_out(Duration::ZERO);
            return Err(self.exhausted_error(&state, Duration::ZERO));
        }
        let deadline = started + timeout;
        let ticket = state.waiters.enqueue(priority, started);
        if state.waiters.len() == 1 {
            let max_connections = state.max_connections;
            drop(state);
            self.events
                .emit(|| Event::PoolExhausted { max_connections });
            state = self.state.lock();
        }
        // Every way out of this loop, and every sleep, passes a pending nudge on to the head (see
        // `pass_nudge`), so an idle connection never waits while the head sleeps.
        let mut stopped = None;
        loop {
            if let Some(grant) = state.waiters.take_grant(&ticket) {
                Shared::pass_nudge(&mut state);
                if let Some(err) = stopped {
                    // Granted while the check ran: the caller stops all the same.
                    self.give_back(state, grant);
                    return Err(err);
                }
                return match grant {
                    Grant::Connection(conn) => Leased::after_queueing(Lease::Idle(conn)),
                    Grant::Slot => Leased::after_queueing(Lease::Slot),
                    Grant::Closed => Err(self.closed_error()),
                };
            }
            if let Some(err) = stopped {
                state.waiters.withdraw(&ticket);
                Shared::pass_nudge(&mut state);
                return Err(err);
            }
            if state.waiters.is_head(&ticket) {
                if let Some(conn) = self.take_idle(&mut state) {
                    state.waiters.withdraw(&ticket);
                    Shared::pass_nudge(&mut state);
                    return Leased::after_queueing(Lease::Idle(conn));
                }
            }
            state.waiters.looked(&ticket);
            if Instant::now() >= deadline {
                state.waiters.withdraw(&ticket);
                Shared::pass_nudge(&mut state);
                let waited = started.elapsed();
                self.counters.acquire_timed_out(waited);
                let err = self.exhausted_error(&state, waited);
                let waiting = state.waiters.len();
                drop(state);
                self.events
                    .emit(|| Event::AcquireTimedOut { waited, waiting });
                return Err(err);
            }
            Shared::pass_nudge(&mut state);
            // A grant that arrives while the check runs is given back above.
            let (relocked, checked) = self.wait_or_check(&ticket.wake, state, deadline);
            state = relocked;
            stopped = checked.err();
        }
    }

    /// Waits on `condvar` until it is notified or `deadline` comes; on a thread armed by
    /// [`crate::interrupt`], at most one slice, at whose end it asks the thread's check: its stop
    /// as `Err`. The check is asked with the lock released: it may wait for the GIL, which a
    /// thread waiting for this lock may hold.
    fn wait_or_check<'a>(
        &'a self,
        condvar: &Condvar,
        state: MutexGuard<'a, State>,
        deadline: Instant,
    ) -> (MutexGuard<'a, State>, Result<()>) {
        let (state, paused) = condvar.wait_until(state, interrupt::pause_at(deadline));
        if !(paused && interrupt::armed()) {
            return (state, Ok(()));
        }
        drop(state);
        let checked = interrupt::check();
        (self.state.lock(), checked)
    }

    /// Gives back what a waiter was granted after its caller stopped: a connection is checked
    /// in again (to the next waiter or the idle set), a slot passed on.
    fn give_back(&self, mut state: MutexGuard<'_, State>, grant: Grant) {
        match grant {
            Grant::Connection(conn) => {
                drop(state);
                self.checkin(conn);
            }
            Grant::Slot => {
                state.connecting -= 1;
                self.release_slot(&mut state);
            }
            Grant::Closed => {}
        }
    }

    /// Wakes the head of the queue when idle connections wait and nobody is already looking.
    fn pass_nudge(state: &mut State) {
        if !state.idle.is_empty() {
            state.waiters.nudge_head();
        }
    }

    /// An idle connection, or a new slot when below the cap; `None` when at the cap.
    fn lease_now(&self, state: &mut State) -> Option<Lease> {
        if let Some(conn) = self.take_idle(state) {
            return Some(Lease::Idle(conn));
        }
        if state.open < state.max_connections {
            state.open += 1;
            state.connecting += 1;
            return Some(Lease::Slot);
        }
        None
    }

    /// Takes an idle connection (in the configured reuse order) and counts it as checked out.
    fn take_idle(&self, state: &mut State) -> Option<Conn> {
        let conn = match self.config.reuse_order() {
            ReuseOrder::Lifo => state.idle.pop_back(),
            ReuseOrder::Fifo => state.idle.pop_front(),
        }?;
        state.in_use_fds.insert(conn.id, conn.raw_fd());
        Some(conn)
    }

    /// Turns a lease into a usable connection: checks an idle one (peer closed? expired? PING after
    /// `health_check_interval`) and replaces it in the same slot if needed, or opens a new one.
    /// Both end by `limit` too, if given.
    fn ready(
        &self,
        lease: Lease,
        now: Instant,
        limit: Option<Instant>,
        borrower: Borrower,
    ) -> Result<Ready> {
        if let Lease::Idle(mut conn) = lease {
            let Some(reason) = self.unfit_for_use(&mut conn, now, limit) else {
                return Ok(Ready {
                    conn,
                    opened: false,
                });
            };
            // Keep the slot, close the stale connection, open a fresh one in its place.
            {
                let mut state = self.state.lock();
                state.in_use_fds.remove(&conn.id);
                state.connecting += 1;
            }
            self.closed_connection(conn, reason);
        }
        let conn = self.connect_in_slot(limit, Verify::Connect)?;
        let mut state = self.state.lock();
        if self.closed.load(Ordering::Relaxed) {
            self.release_slot(&mut state);
            drop(state);
            self.closed_connection(conn, CloseReason::PoolClosed);
            return Err(self.closed_error());
        }
        state.in_use_fds.insert(conn.id, conn.raw_fd());
        if borrower == Borrower::Pool {
            state.held_by_pool = Some(conn.id);
        }
        Ok(Ready { conn, opened: true })
    }

    /// Why an idle connection must not be handed out, if it must not.
    fn unfit_for_use(
        &self,
        conn: &mut Connection,
        now: Instant,
        limit: Option<Instant>,
    ) -> Option<CloseReason> {
        let idle_for = now.saturating_duration_since(conn.last_used);
        if idle_for >= VALIDATION_BYPASS && !conn.is_idle_and_open() {
            Some(CloseReason::ServerClosed)
        } else if conn.retire_at.is_some_and(|at| now >= at) {
            Some(CloseReason::MaxLifetime)
        } else if self.config.idle_timeout().is_some_and(|t| idle_for >= t) {
            Some(CloseReason::IdleTimeout)
        } else if self
            .config
            .health_check_interval()
            .is_some_and(|t| idle_for >= t)
            && conn
                .ping(limit.map_or(conn.default_deadline(), |l| l.min(conn.default_deadline())))
                .is_err()
        {
            Some(CloseReason::HealthCheckFailed)
        } else {
            None
        }
    }

    /// Opens a connection in a slot already counted as open and connecting, through the reconnect
    /// gate, by `connect_timeout` or `limit` (a caller's deadline), whichever comes first, and
    /// checks it as `verify` says. On failure the slot is released. An attempt cut short by the
    /// caller's deadline says nothing of the server: it does not count toward the reconnect
    /// backoff.
    fn connect_in_slot(&self, limit: Option<Instant>, verify: Verify) -> Result<Conn> {
        let gate = {
            let mut state = self.state.lock();
            self.claim_connect(&mut state)
        };
        if let Err(err) = gate {
            let mut state = self.state.lock();
            state.connecting -= 1;
            self.release_slot(&mut state);
            return Err(err);
        }
        let result = self
            .open_connection(limit)
            .and_then(|mut conn| match verify {
                Verify::Connect => Ok(conn),
                Verify::Ping => match conn.answers_ping() {
                    Ok(()) => Ok(conn),
                    Err(err) => {
                        self.closed_connection(conn, CloseReason::Broken);
                        Err(err)
                    }
                },
            });
        let mut state = self.state.lock();
        state.connecting -= 1;
        let gate = &mut state.reconnect;
        gate.attempt_in_flight = false;
        match result {
            Ok(conn) => {
                gate.open();
                Ok(conn)
            }
            Err(err) if cut_short_by(limit, &err) => {
                if !err.is_interrupted() {
                    self.counters.connect_failed(err.kind());
                }
                self.release_slot(&mut state);
                Err(err)
            }
            Err(err) => {
                gate.back_off(self.config.reconnect_backoff(), &err);
                self.counters.connect_failed(err.kind());
                self.release_slot(&mut state);
                Err(err)
            }
        }
    }

    /// Lets a connect attempt through the reconnect gate, or explains why not.
    fn claim_connect(&self, state: &mut State) -> Result<()> {
        let gate = &mut state.reconnect;
        if gate.failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let due = gate.next_attempt_at.unwrap_or(now);
        if gate.attempt_in_flight || now < due {
            let wait = due.saturating_duration_since(now);
            // The words follow the cause: a wrong password is no unreachable server.
            let (kind, what) = match gate.last_kind {
                Some(ErrorKind::Auth) => (
                    ErrorKind::Auth,
                    format!("authentication to {} keeps failing", self.server()),
                ),
                Some(ErrorKind::Timeout) => (
                    ErrorKind::Timeout,
                    format!("{} does not answer in time", self.server()),
                ),
                _ => (
                    ErrorKind::Connection,
                    format!("{} is unreachable", self.server()),
                ),
            };
            return Err(Error::new(
                kind,
                format!(
                    "{what} ({} failed connect attempts, last: {}); next attempt in {}ms",
                    gate.failures,
                    gate.last_error.as_deref().unwrap_or("unknown"),
                    wait.as_millis()
                ),
            )
            .with_retry_after(wait));
        }
        gate.attempt_in_flight = true;
        Ok(())
    }

    /// Whether the server answers now: connect, handshake and PING on a connection of its own,
    /// by `connect_timeout` and `socket_timeout`, closed at once. Outside the pool (neither
    /// counted in `max_connections` nor the stats) and the breaker, so it takes no connection a
    /// caller waits for. An answer opens the reconnect gate, as a successful connect does.
    pub(super) fn server_answers(&self) -> bool {
        let answered = self
            .connector
            .connect(fork::generation(), None)
            .and_then(|mut conn| conn.answers_ping())
            .is_ok();
        if answered {
            let mut state = self.state.lock();
            if !state.reconnect.attempt_in_flight {
                state.reconnect.open();
            }
        }
        answered
    }

    /// Opens a connection (no pool bookkeeping), stamping its lifetime with jitter.
    fn open_connection(&self, limit: Option<Instant>) -> Result<Conn> {
        self.counters.connect_attempted();
        let started = Instant::now();
        let mut conn = Box::new(self.connector.connect(fork::generation(), limit)?);
        self.counters.connection_created(started.elapsed());
        if let Some(lifetime) = self.config.max_lifetime() {
            // Up to 2.5 % earlier, so connections opened together do not all expire together.
            let jitter = lifetime.mul_f64(0.025 * crate::random::unit());
            conn.retire_at = Some(conn.created_at + lifetime - jitter);
        }
        let id = conn.id;
        self.events.emit(|| Event::ConnectionCreated { id });
        Ok(conn)
    }

    // ----- return ----------------------------------------------------------------------------

    /// Returns a checked-out connection (from a caller, a refill or a keepalive PING). Clean
    /// connections go to the head waiter once it is due, else to the idle set (see `waiters`);
    /// others are closed and their slot passed on.
    pub(crate) fn checkin(&self, conn: Conn) {
        self.checkin_at(conn, Instant::now());
    }

    /// [`Shared::checkin`] with the current instant already read by the caller.
    pub(crate) fn checkin_at(&self, mut conn: Conn, now: Instant) {
        if conn.fork_generation != fork::generation() {
            // A socket from before fork(): not a byte may be sent on it (it is the parent's), and
            // dropping the child's copy does not touch the parent.
            self.closed_connection(conn, CloseReason::Forked);
            return;
        }
        // The guard (see `Connection::is_reusable`), taken once: every return and every hand-off
        // to a waiter passes here.
        let mut reusable = conn.is_reusable();
        if reusable && conn.needs_settling() {
            conn.settle_session();
            reusable = conn.is_reusable();
        }
        self.counters.out_of_band_replies(conn.take_out_of_band());
        let retire = conn.retire_at.is_some_and(|at| now >= at);
        let mut state = self.lock();
        if conn.fork_generation != state.fork_generation {
            // A socket from before fork(): dropping the child's copy does not touch the parent.
            drop(state);
            self.closed_connection(conn, CloseReason::Forked);
            return;
        }
        let reason = if self.closed.load(Ordering::Relaxed) {
            Some(CloseReason::PoolClosed)
        } else if state.open > state.max_connections {
            Some(CloseReason::Resized)
        } else if conn.is_discarded() || conn.id < state.disconnected_below {
            Some(CloseReason::Discarded)
        } else if !reusable {
            Some(CloseReason::Broken)
        } else if retire {
            Some(CloseReason::MaxLifetime)
        } else {
            None
        };
        let (id, fd) = (conn.id, conn.raw_fd());
        if state.held_by_pool == Some(id) {
            state.held_by_pool = None;
        }
        match reason {
            None => {
                conn.last_used = now;
                if state.waiters.head_is_due(now) {
                    // Handed to the head waiter: it stays checked out, under the same descriptor.
                    let handed = state.waiters.hand_to_first(Grant::Connection(conn));
                    debug_assert!(handed.is_ok(), "a due head waits");
                    state.in_use_fds.insert(id, fd);
                } else {
                    // Idle again; a queued head is woken to take it (a newcomer may be first).
                    state.in_use_fds.remove(&id);
                    state.idle.push_back(conn);
                    state.waiters.nudge_head();
                }
            }
            Some(reason) => {
                state.in_use_fds.remove(&id);
                self.release_slot(&mut state);
                drop(state);
                self.closed_connection(conn, reason);
            }
        }
    }

    /// Closes a checked-out connection for `reason` and frees its slot.
    fn close_checked_out(&self, conn: Conn, reason: CloseReason) {
        {
            let mut state = self.state.lock();
            state.in_use_fds.remove(&conn.id);
            self.release_slot(&mut state);
        }
        self.closed_connection(conn, reason);
    }

    /// Frees one open slot: hands it to the first waiter, or lowers the open count (always, while
    /// the pool is above a reduced cap).
    fn release_slot(&self, state: &mut State) {
        if self.closed.load(Ordering::Relaxed)
            || state.open > state.max_connections
            || state.waiters.hand_to_first(Grant::Slot).is_err()
        {
            state.open -= 1;
            if self.closed.load(Ordering::Relaxed) {
                self.drained.notify_all();
            }
        } else {
            state.connecting += 1;
        }
    }

    /// Counts, reports and drops (closes) a connection. Call without the state lock.
    fn closed_connection(&self, conn: Conn, reason: CloseReason) {
        let id = conn.id;
        drop(conn);
        self.counters.connections_closed(reason, 1);
        self.events.emit(|| Event::ConnectionClosed { id, reason });
    }

    fn closed_connections(&self, conns: impl IntoIterator<Item = Conn>, reason: CloseReason) {
        for conn in conns {
            self.closed_connection(conn, reason);
        }
    }

    // ----- fork, close, stats ----------------------------------------------------------------

    /// In a forked child, forgets the parent's connections and waiters (once per fork). Returns
    /// the inherited idle connections, to be dropped (unused) once the lock is released.
    fn forget_parent_after_fork(&self, state: &mut State) -> Option<VecDeque<Conn>> {
        let generation = fork::generation();
        if state.fork_generation == generation {
            return None;
        }
        let inherited = std::mem::take(&mut state.idle);
        state.waiters.forget_all();
        // Descriptors checked out by other parent threads are not ours to close: those threads do
        // not exist here, and the forking thread may still drop its own checkout later.
        state.in_use_fds.clear();
        state.open = 0;
        state.connecting = 0;
        state.reconnect = ReconnectGate::default();
        state.fork_generation = generation;
        Some(inherited)
    }

    pub(super) fn close(&self, grace: Duration) {
        let idle = {
            // `lock()`: in a forked child, the parent's sockets are forgotten first, so they are
            // never shut down below.
            let mut state = self.lock();
            self.closed.store(true, Ordering::Release);
            state.waiters.close_all();
            let idle = std::mem::take(&mut state.idle);
            state.open -= idle.len();
            Shared::wake_maintenance(&state);
            idle
        };
        self.closed_connections(idle, CloseReason::PoolClosed);
        let deadline = Instant::now() + grace;
        let mut state = self.lock();
        while state.open > 0 && Instant::now() < deadline {
            let (relocked, checked) = self.wait_or_check(&self.drained, state, deadline);
            state = relocked;
            if checked.is_err() {
                break; // the caller stops waiting: the close finishes now
            }
        }
        for fd in state.in_use_fds.values() {
            // SAFETY: every descriptor in `in_use_fds` belongs to a live checked-out connection:
            // it is removed under this lock before its connection is dropped. shutdown() only
            // makes the holder's next read or write fail; the holder still closes it.
            unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
        }
    }

    pub(super) fn stats(&self) -> PoolStats {
        let mut stats = PoolStats::default();
        {
            let state = self.state.lock();
            stats.max_connections = state.max_connections;
            stats.min_idle = state.min_idle;
            if state.fork_generation == fork::generation() {
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

    // ----- maintenance -----------------------------------------------------------------------

    /// One maintenance pass (called by the background thread, and for warm-up): evicts idle
    /// connections past `idle_timeout` down to `min_idle`, retires idle ones past `max_lifetime`,
    /// PINGs idle ones unused for `health_check_interval`, then refills to `min_idle`.
    pub(crate) fn maintain(&self) {
        if self.is_closed() {
            return;
        }
        let now = Instant::now();
        let (expired, to_ping) = {
            let mut state = self.lock();
            let expired = self.take_expired(&mut state, now);
            let to_ping = self.take_for_keepalive(&mut state, now);
            (expired, to_ping)
        };
        for (conn, reason) in expired {
            self.closed_connection(conn, reason);
        }
        for mut conn in to_ping {
            match conn.ping(conn.default_deadline()) {
                Ok(()) => self.checkin(conn),
                Err(_) => self.close_checked_out(conn, CloseReason::HealthCheckFailed),
            }
        }
        self.refill();
        self.report_leaks(now);
    }

    /// Reports checkouts held past `leak_detection_threshold`: written to stderr (so a program
    /// with no code of its own sees them) unless a binding writes them to its own logger, raised
    /// as events, and counted.
    fn report_leaks(&self, now: Instant) {
        let Some(tracker) = &self.leaks else {
            return;
        };
        for report in tracker.overdue(now) {
            if !self.leak_warnings_elsewhere.load(Ordering::Relaxed) {
                eprintln!("{}", report.warning(self.server()));
            }
            // Counted before the event: a subscriber that reads the stats when it hears of the
            // leak already finds it counted.
            self.counters.leak_suspected();
            self.events.emit(|| Event::LeakSuspected(report));
        }
    }

    /// Changes the cap and the number of connections kept open, at run time. Growing grants the
    /// new slots to queued callers at once; shrinking closes idle connections above the new cap
    /// now and checked-out ones when they are returned (never one in use).
    pub(super) fn resize(&self, max_connections: usize, min_idle: Option<usize>) -> Result<()> {
        let surplus = {
            let mut state = self.lock();
            if self.is_closed() {
                return Err(self.closed_error());
            }
            let min_idle = min_idle.unwrap_or(state.min_idle.min(max_connections));
            crate::config::check_pool_size(max_connections, min_idle)?;
            state.max_connections = max_connections;
            state.min_idle = min_idle;
            // New room goes to the queue first (each granted slot is opened by its waiter).
            while state.open < state.max_connections && !state.waiters.is_empty() {
                if state.waiters.hand_to_first(Grant::Slot).is_err() {
                    break;
                }
                state.open += 1;
                state.connecting += 1;
            }
            let excess = state.open.saturating_sub(state.max_connections);
            let surplus: Vec<Conn> = (0..excess.min(state.idle.len()))
                .filter_map(|_| state.idle.pop_front())
                .collect();
            state.open -= surplus.len();
            Shared::wake_maintenance(&state);
            surplus
        };
        self.closed_connections(surplus, CloseReason::Resized);
        Ok(())
    }

    /// Closes the idle connections now and the checked-out ones when they are returned; the pool
    /// stays open and opens new connections on demand. Freed slots go to queued callers first.
    pub(super) fn disconnect(&self) -> Result<()> {
        let idle = {
            let mut state = self.lock();
            if self.is_closed() {
                return Err(self.closed_error());
            }
            state.disconnected_below = crate::connection::next_connection_id();
            let idle = std::mem::take(&mut state.idle);
            for _ in 0..idle.len() {
                self.release_slot(&mut state);
            }
            Shared::wake_maintenance(&state);
            idle
        };
        self.closed_connections(idle, CloseReason::Discarded);
        Ok(())
    }

    /// Removes idle connections the server closed (one non-blocking look each, as on checkout),
    /// past max_lifetime, and past idle_timeout beyond min_idle. Finding the closed ones here,
    /// within a maintenance period, tells an idle application of a server gone (the
    /// `ConnectionClosed` event) and lets `refill` replace them before a caller needs them.
    fn take_expired(&self, state: &mut State, now: Instant) -> Vec<(Conn, CloseReason)> {
        let mut expired = Vec::new();
        // The closed ones first, so that they, not live ones, count against min_idle below.
        let mut open = Vec::with_capacity(state.idle.len());
        let mut closed = Vec::new();
        for mut conn in state.idle.drain(..) {
            let idle_for = now.saturating_duration_since(conn.last_used);
            if idle_for >= VALIDATION_BYPASS && !conn.is_idle_and_open() {
                closed.push(conn);
            } else {
                open.push(conn);
            }
        }
        expired.extend(
            closed
                .into_iter()
                .map(|conn| (conn, CloseReason::ServerClosed)),
        );
        let mut evictable = (state.open - expired.len()).saturating_sub(state.min_idle);
        // Oldest-used first, so the idle_timeout rule spares the most recently used.
        open.sort_by_key(|c| c.last_used);
        let mut kept = VecDeque::with_capacity(open.len());
        for conn in open {
            let idle_for = now.saturating_duration_since(conn.last_used);
            let idle_too_long = self.config.idle_timeout().is_some_and(|t| idle_for >= t);
            if conn.retire_at.is_some_and(|at| now >= at) {
                expired.push((conn, CloseReason::MaxLifetime));
            } else if idle_too_long && evictable > 0 {
                evictable -= 1;
                expired.push((conn, CloseReason::IdleTimeout));
            } else {
                kept.push_back(conn);
            }
        }
        state.open -= expired.len();
        state.idle = kept;
        expired
    }

    /// Checks out the idle connections that have not been used for health_check_interval.
    fn take_for_keepalive(&self, state: &mut State, now: Instant) -> Vec<Conn> {
        let Some(interval) = self.config.health_check_interval() else {
            return Vec::new();
        };
        let (due, kept): (VecDeque<_>, VecDeque<_>) = state
            .idle
            .drain(..)
            .partition(|c| now.duration_since(c.last_used) >= interval);
        state.idle = kept;
        for conn in &due {
            state.in_use_fds.insert(conn.id, conn.raw_fd());
        }
        due.into_iter().collect()
    }

    /// Opens connections until `min_idle` are open, through the reconnect gate; stops at the first
    /// failure. Returns how many were opened.
    pub(super) fn refill(&self) -> usize {
        let mut opened = 0;
        loop {
            {
                let mut state = self.lock();
                if self.is_closed() || state.open >= state.min_idle {
                    return opened;
                }
                state.open += 1;
                state.connecting += 1;
            }
            match self.connect_in_slot(None, Verify::Ping) {
                Ok(conn) => {
                    self.checkin(conn);
                    opened += 1;
                }
                Err(_) => return opened,
            }
        }
    }

    // ----- errors ----------------------------------------------------------------------------

    pub(crate) fn closed_error(&self) -> Error {
        Error::new(
            ErrorKind::Closed,
            format!("pool for {} is closed", self.server()),
        )
    }

    fn exhausted_error(&self, state: &State, waited: Duration) -> Error {
        let mut message = format!(
            "no connection to {} available after {:?}: max_connections={}, in use={}, idle={}, connecting={}, waiting={}",
            self.server(),
            waited,
            state.max_connections,
            state.in_use(),
            state.idle.len(),
            state.connecting,
            state.waiters.len(),
        );
        if let Some(last) = &state.reconnect.last_error {
            message.push_str(&format!("; last connect error: {last}"));
        }
        if waited.is_zero() {
            message.push_str(" (a zero timeout does not wait)");
        } else {
            message.push_str(
                "; raise max_connections or acquire_timeout, or look for connections held too long",
            );
        }
        Error::new(ErrorKind::PoolExhausted, message)
    }
}

impl Drop for Shared {
    /// The last handle is gone: the idle connections close now (dropped with the state), and the
    /// maintenance thread is woken so it ends at once instead of at its next pass.
    fn drop(&mut self) {
        Shared::wake_maintenance(self.state.get_mut());
    }
}

impl ForkGuarded for Shared {
    /// Every lock of the pool (none is taken while holding another, so any order is safe).
    fn lock_for_fork(&self, held: &mut Vec<HeldLock>) {
        // SAFETY: `fork` keeps this pool alive until the fork is over.
        unsafe {
            held.push(self.events.hold_across_fork());
            if let Some(leaks) = &self.leaks {
                held.push(leaks.hold_across_fork());
            }
            held.push(self.health.hold_across_fork());
            held.push(self.breaker.hold_across_fork());
            held.push(self.state.hold_across_fork());
        }
    }

    /// The parent's deliveries in progress are gone (the parent's connections and waiters are
    /// forgotten on the first use of the state, see `forget_parent_after_fork`).
    fn after_fork_in_child(&self) {
        self.events.forget_deliveries_after_fork();
    }
}

/// True when a connect attempt failed because the caller's deadline `limit` came or the caller
/// stopped it (not because of anything the server did).
fn cut_short_by(limit: Option<Instant>, err: &Error) -> bool {
    err.is_interrupted()
        || err.kind() == ErrorKind::Timeout && limit.is_some_and(|limit| Instant::now() >= limit)
}
