//! The circuit breaker of a pool: closed → open → half-open → closed.
//!
//! - **Closed:** calls pass. It opens after `failure_threshold` consecutive failures, or (opt-in)
//!   when the failure rate over the last `window` passes `failure_rate` with at least `min_calls`.
//! - **Open:** calls fail at once with [`ErrorKind::CircuitOpen`], saying when the next probe is
//!   due; no socket is touched. After `recovery_timeout` the next call becomes a probe.
//! - **Half-open:** at most `half_open_probes` calls at a time go through. `success_threshold`
//!   successes close the circuit; one failure reopens it. A probe that never reports back (its
//!   thread died, or it hangs) cannot keep the breaker stuck: its permit expires after
//!   `probe_timeout` and another probe may go.
//!
//! Only failures that say the server is unhealthy count (connection errors, timeouts, protocol
//! errors): error replies, authentication errors and our own pool exhaustion do not.
//!
//! The closed path costs one atomic load per call and one more per success after failures; all
//! transitions happen under a small mutex and report the change so the caller can emit the
//! event after unlocking.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::sync::{HeldLock, Mutex};

pub use crate::config::policies::BreakerConfig;

use crate::clock::Clock;
use crate::error::{Error, ErrorKind};

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls fail fast.
    Open,
    /// A limited number of probe calls pass.
    HalfOpen,
}

impl BreakerState {
    /// `"closed"`, `"open"` or `"half_open"`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    fn from_u8(v: u8) -> BreakerState {
        match v {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// How a call ended, from the breaker's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered (a reply, including an error reply).
    Success,
    /// The server looked unhealthy (connect/I/O error, timeout, protocol error).
    Failure,
    /// Says nothing about the server (pool exhausted, closed, bad argument): not counted.
    Ignored,
}

impl Outcome {
    /// Classifies a call's result.
    pub fn of<T>(result: &Result<T, Error>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            // The caller stopped the call: nothing is known of the server.
            Err(err) if err.is_interrupted() => Outcome::Ignored,
            Err(err) => match err.kind() {
                ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::Protocol => {
                    Outcome::Failure
                }
                ErrorKind::Response | ErrorKind::Auth => Outcome::Success,
                _ => Outcome::Ignored,
            },
        }
    }
}

/// A state change, to be reported after the breaker's lock is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
}

/// Permission for one call; report its outcome with [`Breaker::record`]. The default permit is
/// an ordinary (non-probe) one, for further commands on an already checked-out connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permit {
    /// For a half-open probe: when it was let through (identifies its slot).
    probe: Option<Instant>,
}

struct Inner {
    opened_at: Instant,
    probes_in_flight: Vec<Instant>,
    probe_successes: u32,
    /// (time, failed) of recent calls, for the failure-rate rule.
    window: VecDeque<(Instant, bool)>,
    /// What the last failed call failed with, for the open circuit's message.
    last_failure: Option<String>,
}

/// A circuit breaker (one per pool).
pub struct Breaker {
    config: BreakerConfig,
    state: AtomicU8,
    consecutive_failures: AtomicU32,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig, clock: &dyn Clock) -> Breaker {
        Breaker {
            config,
            state: AtomicU8::new(BreakerState::Closed.as_u8()),
            consecutive_failures: AtomicU32::new(0),
            inner: Mutex::new(Inner {
                opened_at: clock.now(),
                probes_in_flight: Vec::new(),
                probe_successes: 0,
                window: VecDeque::new(),
                last_failure: None,
            }),
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Consecutive failures counted so far in the closed state.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    /// Asks to make a call. Fails with a CircuitOpen error naming `server` and when the next probe
    /// is due. May move Open → HalfOpen (returned as a transition).
    pub fn permit(
        &self,
        clock: &dyn Clock,
        server: &str,
    ) -> (Result<Permit, Error>, Option<Transition>) {
        if !self.config.enabled || self.state() == BreakerState::Closed {
            return (Ok(Permit { probe: None }), None);
        }
        let now = clock.now();
        let mut inner = self.inner.lock();
        let mut transition = None;
        if self.state() == BreakerState::Open {
            let due = inner.opened_at + self.config.recovery_timeout;
            if now < due {
                let wait = due - now;
                return (Err(self.open_error(&inner, server, wait)), None);
            }
            transition = self.set_state(BreakerState::HalfOpen);
            inner.probes_in_flight.clear();
            inner.probe_successes = 0;
        }
        match self.state() {
            BreakerState::Closed => (Ok(Permit { probe: None }), transition),
            BreakerState::Open => (
                Err(self.open_error(&inner, server, Duration::ZERO)),
                transition,
            ),
            BreakerState::HalfOpen => {
                let timeout = self.config.probe_timeout;
                inner
                    .probes_in_flight
                    .retain(|started| now.duration_since(*started) < timeout);
                if inner.probes_in_flight.len() < self.config.half_open_probes as usize {
                    inner.probes_in_flight.push(now);
                    (Ok(Permit { probe: Some(now) }), transition)
                } else {
                    let err = Error::new(
                        ErrorKind::CircuitOpen,
                        format!(
                            "circuit breaker for {server} is half-open and its probe is in flight; failing fast"
                        ),
                    );
                    (Err(err), transition)
                }
            }
        }
    }

    /// Holds the breaker's lock across `fork()` (see [`crate::fork`]).
    ///
    /// # Safety
    /// As for [`Mutex::hold_across_fork`]: the breaker lives until the fork is over.
    pub(crate) unsafe fn hold_across_fork(&self) -> HeldLock {
        // SAFETY: per this function's contract.
        unsafe { self.inner.hold_across_fork() }
    }

    /// Remembers why a call failed (before it is recorded), so the open circuit names the cause.
    /// Failures only: the closed path of successful calls takes no lock.
    pub fn remember_failure(&self, why: &str) {
        if self.config.enabled {
            self.inner.lock().last_failure = Some(why.to_string());
        }
    }

    /// Reports how a permitted call ended. Returns the state change it caused, if any.
    pub fn record(
        &self,
        clock: &dyn Clock,
        permit: Permit,
        outcome: Outcome,
    ) -> Option<Transition> {
        if !self.config.enabled || outcome == Outcome::Ignored && permit.probe.is_none() {
            return None;
        }
        let failed = outcome == Outcome::Failure;
        if permit.probe.is_none() && self.config.failure_rate_percent == 0 {
            // The closed fast path: only a counter, and a lock only when the threshold is reached.
            if !failed {
                if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
                    self.consecutive_failures.store(0, Ordering::Relaxed);
                }
                return None;
            }
            let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
            if failures < self.config.failure_threshold {
                return None;
            }
        }
        let now = clock.now();
        let mut inner = self.inner.lock();
        if let Some(started) = permit.probe {
            if let Some(pos) = inner.probes_in_flight.iter().position(|t| *t == started) {
                inner.probes_in_flight.swap_remove(pos);
            }
            if self.state() != BreakerState::HalfOpen || outcome == Outcome::Ignored {
                return None;
            }
            return if failed {
                self.open(&mut inner, now)
            } else {
                inner.probe_successes += 1;
                if inner.probe_successes >= self.config.success_threshold {
                    self.consecutive_failures.store(0, Ordering::Relaxed);
                    inner.window.clear();
                    self.set_state(BreakerState::Closed)
                } else {
                    None
                }
            };
        }
        if self.state() != BreakerState::Closed {
            return None;
        }
        if self.config.failure_rate_percent > 0 {
            if failed {
                self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
            } else {
                self.consecutive_failures.store(0, Ordering::Relaxed);
            }
            inner.window.push_back((now, failed));
            let window = self.config.window;
            while inner
                .window
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > window)
            {
                inner.window.pop_front();
            }
        }
        if self.should_open(&inner) {
            self.open(&mut inner, now)
        } else {
            None
        }
    }

    fn should_open(&self, inner: &Inner) -> bool {
        if self.consecutive_failures.load(Ordering::Relaxed) >= self.config.failure_threshold {
            return true;
        }
        let calls = inner.window.len() as u64;
        if self.config.failure_rate_percent == 0 || calls < u64::from(self.config.min_calls) {
            return false;
        }
        let failures = inner.window.iter().filter(|(_, f)| *f).count() as u64;
        failures * 100 >= calls * u64::from(self.config.failure_rate_percent)
    }

    fn open(&self, inner: &mut Inner, now: Instant) -> Option<Transition> {
        inner.opened_at = now;
        inner.probes_in_flight.clear();
        inner.probe_successes = 0;
        inner.window.clear();
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.set_state(BreakerState::Open)
    }

    fn set_state(&self, to: BreakerState) -> Option<Transition> {
        let from = BreakerState::from_u8(self.state.swap(to.as_u8(), Ordering::AcqRel));
        (from != to).then_some(Transition { from, to })
    }

    fn open_error(&self, inner: &Inner, server: &str, wait: Duration) -> Error {
        let cause = inner
            .last_failure
            .as_deref()
            .map_or(String::new(), |last| format!(" (last: {last})"));
        Error::new(
            ErrorKind::CircuitOpen,
            format!(
                "circuit breaker for {server} is open after repeated failures{cause}; next probe \
                 in {:.1}s",
                wait.as_secs_f64()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn breaker(config: BreakerConfig, clock: &ManualClock) -> Breaker {
        Breaker::new(config, clock)
    }

    fn call(
        b: &Breaker,
        clock: &ManualClock,
        outcome: Outcome,
    ) -> Result<Option<Transition>, Error> {
        let (permit, _) = b.permit(clock, "test:1");
        Ok(b.record(clock, permit?, outcome))
    }

    #[test]
    fn opens_after_consecutive_failures_and_recovers_through_one_probe() {
        let clock = ManualClock::new();
        let b = breaker(BreakerConfig::default(), &clock);
        for _ in 0..4 {
            assert_eq!(call(&b, &clock, Outcome::Failure).unwrap(), None);
        }
        // A success in between resets the count.
        call(&b, &clock, Outcome::Success).unwrap();
        for _ in 0..4 {
            call(&b, &clock, Outcome::Failure).unwrap();
        }
        let t = call(&b, &clock, Outcome::Failure).unwrap();
        assert_eq!(
            t,
            Some(Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open
            })
        );
        let err = call(&b, &clock, Outcome::Success).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CircuitOpen);
        assert!(err.to_string().contains("next probe in 30.0s"), "{err}");
        clock.advance(Duration::from_secs(29));
        assert!(call(&b, &clock, Outcome::Success).is_err());
        clock.advance(Duration::from_secs(1));
        let (permit, t) = b.permit(&clock, "test:1");
        assert_eq!(t.unwrap().to, BreakerState::HalfOpen);
        // Only one probe at a time.
        assert!(b.permit(&clock, "test:1").0.is_err());
        let t = b.record(&clock, permit.unwrap(), Outcome::Success);
        assert_eq!(t.unwrap().to, BreakerState::Closed);
    }

    #[test]
    fn a_failed_probe_reopens_and_a_lost_probe_expires() {
        let clock = ManualClock::new();
        let config = BreakerConfig {
            failure_threshold: 1,
            recovery_timeout: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(2),
            ..BreakerConfig::default()
        };
        let b = breaker(config, &clock);
        call(&b, &clock, Outcome::Failure).unwrap();
        clock.advance(Duration::from_secs(1));
        let t = call(&b, &clock, Outcome::Failure).unwrap();
        assert_eq!(t.unwrap().to, BreakerState::Open);
        clock.advance(Duration::from_secs(1));
        // A probe that never reports back...
        let (lost, _) = b.permit(&clock, "x");
        assert!(lost.is_ok());
        assert!(b.permit(&clock, "x").0.is_err());
        // ...stops blocking others after probe_timeout.
        clock.advance(Duration::from_secs(2));
        let (probe, _) = b.permit(&clock, "x");
        let t = b.record(&clock, probe.unwrap(), Outcome::Success);
        assert_eq!(t.unwrap().to, BreakerState::Closed);
    }

    #[test]
    fn error_replies_and_pool_exhaustion_never_trip_it() {
        let clock = ManualClock::new();
        let b = breaker(BreakerConfig::default(), &clock);
        let reply: Result<(), Error> = Err(Error::from_server_reply("WRONGTYPE", Some("x")));
        let exhausted: Result<(), Error> = Err(Error::new(ErrorKind::PoolExhausted, "x"));
        for _ in 0..100 {
            call(&b, &clock, Outcome::of(&reply)).unwrap();
            call(&b, &clock, Outcome::of(&exhausted)).unwrap();
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn failure_rate_over_the_window() {
        let clock = ManualClock::new();
        let config = BreakerConfig {
            failure_threshold: 1000,
            failure_rate_percent: 50,
            min_calls: 10,
            window: Duration::from_secs(10),
            ..BreakerConfig::default()
        };
        let b = breaker(config, &clock);
        for i in 0..9 {
            let outcome = if i % 2 == 0 {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            assert_eq!(call(&b, &clock, outcome).unwrap(), None, "below min_calls");
        }
        // Old calls leave the window.
        clock.advance(Duration::from_secs(11));
        for _ in 0..9 {
            assert_eq!(call(&b, &clock, Outcome::Success).unwrap(), None);
        }
        for _ in 0..8 {
            call(&b, &clock, Outcome::Failure).unwrap();
        }
        // 8 failures of 17 calls: below 50 %.
        assert_eq!(b.state(), BreakerState::Closed);
        let t = call(&b, &clock, Outcome::Failure).unwrap();
        assert_eq!(t.unwrap().to, BreakerState::Open, "9 of 18 is 50 %");
    }

    #[test]
    fn disabled_breaker_always_permits() {
        let clock = ManualClock::new();
        let b = breaker(
            BreakerConfig {
                enabled: false,
                failure_threshold: 1,
                ..BreakerConfig::default()
            },
            &clock,
        );
        for _ in 0..10 {
            call(&b, &clock, Outcome::Failure).unwrap();
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
