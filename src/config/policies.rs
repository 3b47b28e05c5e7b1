//! The resilience policies a pool is configured with, as plain values: retry with backoff and the
//! circuit breaker. Their behaviour lives with them (`crate::retry`, `crate::breaker`); these are
//! here so the configuration needs nothing above it.

use std::time::Duration;

/// How much randomness is mixed into each backoff delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Jitter {
    /// Uniform in `[0, d]` (default; spreads clients best).
    Full,
    /// `d/2` plus uniform in `[0, d/2]` (keeps a minimum spacing).
    Equal,
    /// Uniform in `[base, 3 × previous delay]`, capped (AWS "decorrelated jitter").
    Decorrelated,
    /// Exactly `d`.
    None,
}

impl Jitter {
    /// Parses `full`, `equal`, `decorrelated` or `none`.
    pub fn parse(text: &str) -> Option<Jitter> {
        match text.to_ascii_lowercase().as_str() {
            "full" => Some(Jitter::Full),
            "equal" => Some(Jitter::Equal),
            "decorrelated" => Some(Jitter::Decorrelated),
            "none" => Some(Jitter::None),
            _ => None,
        }
    }
}

/// Exponential backoff settings: the `n`-th delay is `min(cap, base × 2^n)`, jittered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backoff {
    /// First delay before jitter.
    pub base: Duration,
    /// Largest delay.
    pub cap: Duration,
    /// Randomness mixed in.
    pub jitter: Jitter,
}

/// Retry settings of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryConfig {
    /// Retries after the first attempt (default 3; 0 disables retrying).
    pub retries: u32,
    /// Backoff between attempts (default base 10 ms, cap 1 s, full jitter).
    pub backoff: Backoff,
    /// Also retry non-idempotent commands whose reply was lost (default false: they may have
    /// been applied, and a retry would apply them twice).
    pub retry_non_idempotent: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            retries: 3,
            backoff: Backoff {
                base: Duration::from_millis(10),
                cap: Duration::from_secs(1),
                jitter: Jitter::Full,
            },
            retry_non_idempotent: false,
        }
    }
}

/// The breaker's settings (all have defaults; see the README's table).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BreakerConfig {
    /// False turns the breaker off: every call passes.
    pub enabled: bool,
    /// Consecutive failures that open the circuit (default 5).
    pub failure_threshold: u32,
    /// Failure rate in percent over `window` that opens the circuit; 0 disables (default).
    pub failure_rate_percent: u32,
    /// Sliding window for the failure rate (default 10 s).
    pub window: Duration,
    /// Calls needed in the window before the rate counts (default 20).
    pub min_calls: u32,
    /// How long the circuit stays open before a probe (default 30 s).
    pub recovery_timeout: Duration,
    /// Concurrent probes allowed while half-open (default 1).
    pub half_open_probes: u32,
    /// Successful probes that close the circuit (default 1).
    pub success_threshold: u32,
    /// A probe that has not reported back after this long no longer blocks others (default 10 s).
    pub probe_timeout: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            failure_threshold: 5,
            failure_rate_percent: 0,
            window: Duration::from_secs(10),
            min_calls: 20,
            recovery_timeout: Duration::from_secs(30),
            half_open_probes: 1,
            success_threshold: 1,
            probe_timeout: Duration::from_secs(10),
        }
    }
}
