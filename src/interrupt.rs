//! Cutting a blocking call short from its own thread: how Ctrl-C reaches a Python caller.
//!
//! A binding arms the calling thread with a check for the duration of one call
//! ([`while_checking`]). The core asks the check when a signal interrupts a socket read, write or
//! connect on that thread (`EINTR`), and at the end of every [`SLICE`] of a wait: a socket read or
//! write (so a signal handled between two system calls is not missed either, under TLS too), the
//! wait for a connection, a retry's backoff, a connect in progress and a close's grace. When the
//! check says stop, the call ends at once with an error for which [`Error::is_interrupted`] is
//! true:
//! - a connection cut mid-exchange is dropped, never pooled (its exchange did not complete), and
//!   refuses any further request if the caller holds it, so no reply can reach another request;
//! - a connection granted to the call while its check ran is given back;
//! - an interruption is never retried and tells the breaker and the reconnect backoff nothing
//!   about the server;
//! - a close stops waiting for its grace and finishes closing.
//!
//! A thread that is not armed (the core's own workers, C and Node callers) is never interrupted,
//! and an armed call pays nothing until a signal arrives or a wait reaches a slice's end (a
//! socket's timeout is set to a slice once, not per call).

use std::cell::Cell;
use std::io;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// The longest a wait goes on before it asks the check again.
pub const SLICE: Duration = Duration::from_millis(50);

/// A thread's check: true when the call on that thread must stop. Once it said true it must go on
/// saying true until the call ends (the core may ask again on the way out).
pub type Check = fn() -> bool;

thread_local! {
    static CHECK: Cell<Option<Check>> = const { Cell::new(None) };
}

/// Runs `call` with this thread armed with `check` (see the module documentation); the previous
/// check, if any (a call made from inside a check), is back in place afterwards.
pub fn while_checking<T>(check: Check, call: impl FnOnce() -> T) -> T {
    /// Puts the previous check back, also when `call` panics.
    struct Restore(Option<Check>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CHECK.with(|slot| slot.set(self.0));
        }
    }
    let _restore = Restore(CHECK.with(|slot| slot.replace(Some(check))));
    call()
}

/// True when this thread is armed.
pub(crate) fn armed() -> bool {
    CHECK.with(Cell::get).is_some()
}

/// Asks this thread's check, if armed: `Err` (an interruption) when the call must stop.
pub(crate) fn check() -> Result<()> {
    match CHECK.with(Cell::get) {
        Some(stop) if stop() => Err(Error::interrupted()),
        _ => Ok(()),
    }
}

/// Where a wait that should end at `deadline` pauses to ask the check: the end of the next slice
/// when this thread is armed, else `deadline` itself.
pub(crate) fn pause_at(deadline: Instant) -> Instant {
    if armed() {
        deadline.min(Instant::now() + SLICE)
    } else {
        deadline
    }
}

/// [`check`] for I/O code: the stop as [`crate::error::interrupted_io`]'s error.
pub(crate) fn check_io() -> io::Result<()> {
    check().map_err(|_| crate::error::interrupted_io())
}

/// Sleeps for `duration`, asking the check after each slice when armed.
pub(crate) fn sleep(duration: Duration) -> Result<()> {
    let end = Instant::now() + duration;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep(pause_at(end) - now);
        check()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop() -> bool {
        true
    }

    fn go_on() -> bool {
        false
    }

    #[test]
    fn only_an_armed_thread_is_interrupted() {
        assert!(check().is_ok());
        assert!(!armed());
        let err = while_checking(stop, || check().unwrap_err());
        assert!(err.is_interrupted());
        assert!(while_checking(go_on, check).is_ok());
        assert!(!armed(), "the check is removed after the call");
    }

    #[test]
    fn a_nested_call_restores_the_outer_check() {
        while_checking(go_on, || {
            while_checking(stop, || assert!(check().is_err()));
            assert!(check().is_ok());
        });
    }

    #[test]
    fn an_armed_sleep_stops_at_the_first_slice() {
        let started = Instant::now();
        let err = while_checking(stop, || sleep(Duration::from_secs(30)).unwrap_err());
        assert!(err.is_interrupted());
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(sleep(Duration::from_millis(1)).is_ok());
    }
}
