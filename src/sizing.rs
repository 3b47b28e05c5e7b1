//! Sizing advice: utilization, wait statistics and a suggested `max_connections` from the arrival
//! rate of checkouts and how long each is held (Little's law: connections in use L = λ · W), as
//! the pool-size calculators users write by hand do, but from observed numbers.

use std::time::{Duration, Instant};

/// Pool utilization to aim for: the suggestion leaves headroom for bursts above the mean.
pub(crate) const TARGET_UTILIZATION: f64 = 0.7;
/// Extra margin on top of the target utilization.
pub(crate) const SAFETY_MARGIN: f64 = 1.2;

/// Cumulative counters at one instant; two samples make a window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub at: Instant,
    /// Successful checkouts.
    pub acquires: u64,
    /// Checkouts returned, and their total held time.
    pub returns: u64,
    pub held_total: Duration,
    /// Total time waited for a connection.
    pub waited_total: Duration,
    pub timeouts: u64,
}

impl Sample {
    /// Nothing counted yet, at `at` (a new pool).
    pub fn empty(at: Instant) -> Sample {
        Sample {
            at,
            acquires: 0,
            returns: 0,
            held_total: Duration::ZERO,
            waited_total: Duration::ZERO,
            timeouts: 0,
        }
    }
}

/// What the last window says about the pool's size (part of the health report).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SizingAdvice {
    /// The observed window (since the previous health check, or since the pool was created).
    pub window: Duration,
    /// Connections in use now divided by `max_connections`.
    pub utilization: f64,
    /// Mean connections in use over the window (λ · W).
    pub mean_in_use: f64,
    /// Checkouts per second over the window (λ).
    pub arrival_rate: f64,
    /// Mean time a checkout was held (W).
    pub mean_hold_time: Duration,
    /// Mean wait for a connection over the window.
    pub mean_wait: Duration,
    /// Acquires that timed out in the window.
    pub acquire_timeouts: u64,
    /// The current `max_connections`.
    pub max_connections: usize,
    /// `ceil(λ · W / TARGET_UTILIZATION · SAFETY_MARGIN)`, at least `min_idle` and 1; when acquires
    /// timed out in the window (demand was cut off, so λ is underestimated) at least 25 % above the
    /// current cap.
    pub suggested_max_connections: usize,
}

fn mean(total: Duration, count: u64) -> Duration {
    if count == 0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(total.as_secs_f64() / count as f64)
    }
}

/// Advice from the window between `before` and `now`.
pub(crate) fn advise(
    before: &Sample,
    now: &Sample,
    in_use: usize,
    max_connections: usize,
    min_idle: usize,
) -> SizingAdvice {
    let window = now.at.saturating_duration_since(before.at);
    let seconds = window.as_secs_f64();
    let acquires = now.acquires.saturating_sub(before.acquires);
    let returns = now.returns.saturating_sub(before.returns);
    let arrival_rate = if seconds > 0.0 {
        acquires as f64 / seconds
    } else {
        0.0
    };
    let mean_hold_time = mean(now.held_total.saturating_sub(before.held_total), returns);
    let mean_wait = mean(
        now.waited_total.saturating_sub(before.waited_total),
        acquires,
    );
    let acquire_timeouts = now.timeouts.saturating_sub(before.timeouts);
    let mean_in_use = arrival_rate * mean_hold_time.as_secs_f64();
    let mut suggested = (mean_in_use / TARGET_UTILIZATION * SAFETY_MARGIN).ceil() as usize;
    if acquire_timeouts > 0 {
        suggested = suggested.max(max_connections + max_connections.div_ceil(4));
    }
    SizingAdvice {
        window,
        utilization: in_use as f64 / max_connections.max(1) as f64,
        mean_in_use,
        arrival_rate,
        mean_hold_time,
        mean_wait,
        acquire_timeouts,
        max_connections,
        suggested_max_connections: suggested.max(min_idle).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, acquires: u64, held_ms: u64, timeouts: u64) -> Sample {
        Sample {
            acquires,
            returns: acquires,
            held_total: Duration::from_millis(held_ms),
            timeouts,
            ..Sample::empty(at)
        }
    }

    #[test]
    fn littles_law_with_headroom() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(10);
        // 500 checkouts/s held 20 ms each: 10 in use on average -> 10 / 0.7 * 1.2 = 17.1 -> 18.
        let advice = advise(
            &sample(t0, 0, 0, 0),
            &sample(t1, 5000, 100_000, 0),
            8,
            50,
            0,
        );
        assert!((advice.arrival_rate - 500.0).abs() < 1e-9);
        assert_eq!(advice.mean_hold_time, Duration::from_millis(20));
        assert!((advice.mean_in_use - 10.0).abs() < 1e-9);
        assert_eq!(advice.suggested_max_connections, 18);
        assert!((advice.utilization - 0.16).abs() < 1e-9);
    }

    #[test]
    fn idle_pool_suggests_min_idle_and_timeouts_push_above_the_cap() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let idle = advise(&sample(t0, 0, 0, 0), &sample(t1, 0, 0, 0), 0, 10, 3);
        assert_eq!(idle.suggested_max_connections, 3);
        let starved = advise(&sample(t0, 0, 0, 0), &sample(t1, 100, 1000, 4), 10, 10, 0);
        assert_eq!(starved.acquire_timeouts, 4);
        assert!(starved.suggested_max_connections >= 13);
    }
}
