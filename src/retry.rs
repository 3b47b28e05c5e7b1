//! Retry with exponential backoff, and the rule for when a failed call may be retried at all.
//!
//! The rule (safe by default): a call that never reached the socket (the connection could not be
//! opened, or nothing was written) may always be retried. A call whose request was written but
//! whose reply was lost may have been applied, so it is retried only when every command in it is
//! idempotent (see [`crate::command::is_idempotent`]) or the caller opted in. Only transient
//! failures ([`ErrorKind::is_transient`]) are retried: server error replies are answers, never
//! retried; pool exhaustion and an open circuit, transient as they are, are left to the pool's
//! wait and the breaker.

use std::time::Duration;

use crate::error::{Error, ErrorKind};

pub use crate::config::policies::{Backoff, Jitter, RetryConfig};

impl Backoff {
    /// The delay before attempt `attempt + 1` (attempt counts from 0), given the previous delay
    /// (used by decorrelated jitter).
    pub fn delay(&self, attempt: u32, previous: Duration) -> Duration {
        let exponential = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.cap);
        let random = crate::random::unit();
        match self.jitter {
            Jitter::None => exponential,
            Jitter::Full => exponential.mul_f64(random),
            Jitter::Equal => exponential / 2 + (exponential / 2).mul_f64(random),
            Jitter::Decorrelated => {
                let upper = previous.max(self.base).saturating_mul(3).min(self.cap);
                let span = upper.saturating_sub(self.base);
                (self.base + span.mul_f64(random)).min(self.cap)
            }
        }
    }
}

/// May a call that failed with `err` run again? `idempotent` says whether every command in it
/// may be applied twice.
pub(crate) fn may_retry(err: &Error, idempotent: bool, config: &RetryConfig) -> bool {
    let kind = err.kind();
    // Pool exhaustion and an open circuit are transient too, but they clear on the pool's and
    // the breaker's own clocks (`acquire_timeout`, `breaker_recovery_timeout`): trying again
    // inside the call would only get round them.
    let retried_here =
        kind.is_transient() && !matches!(kind, ErrorKind::PoolExhausted | ErrorKind::CircuitOpen);
    retried_here
        && !err.is_interrupted()
        && (!err.request_sent() || idempotent || config.retry_non_idempotent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let b = Backoff {
            base: Duration::from_millis(10),
            cap: Duration::from_millis(100),
            jitter: Jitter::None,
        };
        let delays: Vec<_> = (0..6)
            .map(|n| b.delay(n, Duration::ZERO).as_millis())
            .collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 100, 100]);
        assert_eq!(b.delay(200, Duration::ZERO), Duration::from_millis(100));
    }

    #[test]
    fn jitter_stays_in_its_range() {
        let base = Duration::from_millis(10);
        let cap = Duration::from_millis(400);
        for _ in 0..1000 {
            let full = Backoff {
                base,
                cap,
                jitter: Jitter::Full,
            }
            .delay(3, Duration::ZERO);
            assert!(full <= Duration::from_millis(80));
            let equal = Backoff {
                base,
                cap,
                jitter: Jitter::Equal,
            }
            .delay(3, Duration::ZERO);
            assert!(equal >= Duration::from_millis(40) && equal <= Duration::from_millis(80));
            let prev = Duration::from_millis(50);
            let dec = Backoff {
                base,
                cap,
                jitter: Jitter::Decorrelated,
            }
            .delay(3, prev);
            assert!(dec >= base && dec <= Duration::from_millis(150), "{dec:?}");
        }
    }

    #[test]
    fn only_unsent_or_idempotent_transient_failures_are_retried() {
        let config = RetryConfig::default();
        let unsent = Error::new(ErrorKind::Connection, "refused");
        let sent = Error::new(ErrorKind::Timeout, "read timed out").sent();
        assert!(may_retry(&unsent, false, &config));
        assert!(!may_retry(&sent, false, &config));
        assert!(may_retry(&sent, true, &config));
        let opted_in = RetryConfig {
            retry_non_idempotent: true,
            ..config
        };
        assert!(may_retry(&sent, false, &opted_in));
        for kind in [
            ErrorKind::Response,
            ErrorKind::PoolExhausted,
            ErrorKind::CircuitOpen,
            ErrorKind::Auth,
        ] {
            assert!(
                !may_retry(&Error::new(kind, "x"), true, &opted_in),
                "{kind}"
            );
        }
    }
}
