//! The background maintenance thread: one per process, shared by every pool.
//!
//! It holds only weak references, so it never keeps a pool alive; it drops pools that were closed
//! or released and exits when none is left (it never keeps the process alive either: Rust does not
//! wait for it at exit). After `fork()` it does not exist in the child; the first pool used there
//! starts a new one.

use std::sync::{Arc, Weak};
use std::time::Duration;

use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex};

use crate::fork::{self, ForkGuarded};
use crate::pool::shared::Shared;

/// Shortest and longest pause between maintenance passes.
const MIN_PERIOD: Duration = Duration::from_millis(10);
const MAX_PERIOD: Duration = Duration::from_secs(1);

struct Maintainer {
    inner: Mutex<Inner>,
    wake: Condvar,
}

#[derive(Default)]
struct Inner {
    pools: Vec<Weak<Shared>>,
    /// The fork generation of the running thread, if one runs in this process.
    running_in: Option<u64>,
}

impl ForkGuarded for Maintainer {
    fn lock_for_fork(&self) {
        std::mem::forget(self.inner.lock());
    }

    unsafe fn unlock_after_fork(&self) {
        // SAFETY: `lock_for_fork` locked it and forgot the guard, in this same fork.
        unsafe { self.inner.force_unlock() };
    }
}

static MAINTAINER: Lazy<Arc<Maintainer>> = Lazy::new(|| {
    let maintainer = Arc::new(Maintainer {
        inner: Mutex::new(Inner::default()),
        wake: Condvar::new(),
    });
    let guarded: Arc<dyn ForkGuarded> = maintainer.clone();
    fork::guard(Arc::downgrade(&guarded));
    maintainer
});

/// Puts `pool` under maintenance and makes sure the thread runs.
pub(crate) fn register(pool: &Arc<Shared>) {
    let mut inner = MAINTAINER.inner.lock();
    inner.pools.push(Arc::downgrade(pool));
    start_if_needed(&mut inner);
}

/// Starts the thread if this process has none (after fork). Call without any pool lock held.
pub(crate) fn ensure_running() {
    let mut inner = MAINTAINER.inner.lock();
    start_if_needed(&mut inner);
}

/// Wakes the thread so it notices a closed pool at once.
pub(crate) fn wake() {
    MAINTAINER.wake.notify_all();
}

fn start_if_needed(inner: &mut Inner) {
    let generation = fork::generation();
    if inner.running_in == Some(generation) || inner.pools.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("redpool-maintenance".into())
        .spawn(move || run(generation));
    if spawned.is_ok() {
        inner.running_in = Some(generation);
    }
}

fn run(generation: u64) {
    loop {
        let (pools, period) = {
            let mut inner = MAINTAINER.inner.lock();
            inner
                .pools
                .retain(|weak| weak.upgrade().is_some_and(|pool| !pool.is_closed()));
            let pools: Vec<Arc<Shared>> = inner.pools.iter().filter_map(Weak::upgrade).collect();
            if pools.is_empty() || fork::generation() != generation {
                if inner.running_in == Some(generation) {
                    inner.running_in = None;
                }
                return;
            }
            let period = pools
                .iter()
                .map(|p| period_for(p))
                .min()
                .unwrap_or(MAX_PERIOD);
            (pools, period)
        };
        for pool in &pools {
            pool.maintain();
        }
        drop(pools);
        let mut inner = MAINTAINER.inner.lock();
        MAINTAINER.wake.wait_for(&mut inner, period);
    }
}

/// A quarter of the shortest time-based setting of the pool, within [10 ms, 1 s].
fn period_for(pool: &Shared) -> Duration {
    let config = pool.config();
    [
        config.idle_timeout(),
        config.max_lifetime(),
        config.health_check_interval(),
    ]
    .into_iter()
    .flatten()
    .map(|d| d / 4)
    .min()
    .unwrap_or(MAX_PERIOD)
    .clamp(MIN_PERIOD, MAX_PERIOD)
}
