//! Background maintenance: one thread per pool, so a slow or dead server delays no other pool.
//! Each pass evicts, retires, keeps idle connections alive, refills, reports suspected leaks, and
//! runs the periodic health check (`health_report_interval`).
//!
//! The thread holds only a weak reference between passes (it sleeps with `park_timeout`, woken
//! early by `close()` or by the pool's drop), so it never keeps a pool alive: it exits when the
//! pool is closed or gone. It never keeps the process alive either (Rust does not wait for it at
//! exit). After `fork()` it does not exist in the child; the pool starts a new one there the first
//! time it is used.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::shared::Shared;
use crate::fork;

/// Shortest and longest pause between maintenance passes.
const MIN_PERIOD: Duration = Duration::from_millis(10);
const MAX_PERIOD: Duration = Duration::from_secs(1);

/// Starts the maintenance thread of `pool` unless one already runs in this process.
pub(crate) fn ensure_running(pool: &Arc<Shared>) {
    let generation = fork::generation();
    if !pool.claim_maintenance(generation) {
        return;
    }
    let weak = Arc::downgrade(pool);
    let spawned = std::thread::Builder::new()
        .name("redpool-maintain".into())
        .spawn(move || run(weak, generation));
    match spawned {
        Ok(handle) => pool.maintenance_started(generation, handle.thread().clone()),
        Err(_) => pool.release_maintenance(generation),
    }
}

fn run(weak: Weak<Shared>, generation: u64) {
    loop {
        let Some(pool) = weak.upgrade() else {
            return;
        };
        if pool.is_closed() || fork::generation() != generation {
            pool.release_maintenance(generation);
            return;
        }
        pool.maintain();
        super::health_check::check_in_background(&pool);
        let period = period_for(&pool);
        drop(pool);
        std::thread::park_timeout(period);
    }
}

/// A quarter of the shortest time-based setting of the pool (leak detection included), within [10 ms, 1 s].
fn period_for(pool: &Shared) -> Duration {
    let config = pool.config();
    [
        config.idle_timeout(),
        config.max_lifetime(),
        config.health_check_interval(),
        config.health_report_interval(),
        config.leak_detection_threshold(),
    ]
    .into_iter()
    .flatten()
    .map(|d| d / 4)
    .min()
    .unwrap_or(MAX_PERIOD)
    .clamp(MIN_PERIOD, MAX_PERIOD)
}
