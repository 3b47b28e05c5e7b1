//! Time as the resilience code sees it: the real monotonic clock, or a manual one for tests.

use std::time::Instant;

/// A monotonic clock.
pub trait Clock: Send + Sync {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to (unit tests of time-driven state machines).
#[cfg(test)]
pub(crate) struct ManualClock(crate::sync::Mutex<Instant>);

#[cfg(test)]
impl ManualClock {
    pub fn new() -> Self {
        ManualClock(crate::sync::Mutex::new(Instant::now()))
    }

    pub fn advance(&self, by: std::time::Duration) {
        *self.0.lock() += by;
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock()
    }
}
