//! A fixed-bucket histogram of durations, updated with atomics only (no lock, no allocation).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of command durations: the buckets users already chart (1 ms … 1 s).
pub const COMMAND_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Upper bounds (seconds) of connection wait, create and use times: 100 µs … 10 s.
pub const CONNECTION_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0,
];

/// Most buckets any histogram has (plus one for `+Inf`).
const MAX_BUCKETS: usize = 12;

/// Counts of observations per bucket and their sum. The bucket bounds are given on every call, so
/// one histogram costs only its counters.
pub(crate) struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: [AtomicU64; MAX_BUCKETS],
    sum_nanos: AtomicU64,
}

/// A histogram read at one instant: cumulative counts per bound, then the total and the sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations at or below it)`, in increasing order.
    pub buckets: Vec<(f64, u64)>,
    /// Every observation (the `+Inf` bucket).
    pub count: u64,
    /// Sum of the observations.
    pub sum: Duration,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Adds one observation: two relaxed atomic adds.
    pub fn observe(&self, bounds: &[f64], value: Duration) {
        let seconds = value.as_secs_f64();
        let bucket = bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(bounds.len())
            .min(MAX_BUCKETS - 1);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Reads the histogram with cumulative bucket counts.
    pub fn snapshot(&self, bounds: &[f64]) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = bounds
            .iter()
            .zip(&self.counts)
            .map(|(bound, count)| {
                cumulative += count.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        let rest: u64 = self.counts[bounds.len().min(MAX_BUCKETS)..]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        HistogramSnapshot {
            buckets,
            count: cumulative + rest,
            sum: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inf_counts_everything() {
        let h = Histogram::default();
        for ms in [0, 1, 3, 7, 2000] {
            h.observe(COMMAND_BUCKETS, Duration::from_millis(ms));
        }
        let s = h.snapshot(COMMAND_BUCKETS);
        assert_eq!(
            s.buckets[0],
            (0.001, 2),
            "0 ms and exactly 1 ms are <= 1 ms"
        );
        assert_eq!(s.buckets[1], (0.005, 3));
        assert_eq!(s.buckets[2], (0.01, 4));
        assert_eq!(s.buckets.last(), Some(&(1.0, 4)));
        assert_eq!(s.count, 5);
        assert_eq!(s.sum, Duration::from_millis(2011));
    }

    #[test]
    fn bucket_lists_fit_and_increase() {
        for bounds in [COMMAND_BUCKETS, CONNECTION_BUCKETS] {
            assert!(bounds.len() < MAX_BUCKETS);
            assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
