//! Every pool of the process (shared or not), weakly held, oldest first: what
//! [`crate::registry::metrics_text`] and the metrics endpoint render, so a service gets the
//! metrics of all its pools with no code of its own.

use std::sync::Arc;

use once_cell::sync::Lazy;

use super::{Pool, WeakPool};
use crate::fork::{self, ForkGuarded};
use crate::sync::{HeldLock, Mutex};

struct Live(Mutex<Vec<WeakPool>>);

impl ForkGuarded for Live {
    fn lock_for_fork(&self, held: &mut Vec<HeldLock>) {
        // SAFETY: the list is a static's.
        held.push(unsafe { self.0.hold_across_fork() });
    }
}

static LIVE: Lazy<Arc<Live>> = Lazy::new(|| {
    let live = Arc::new(Live(Mutex::new(Vec::new())));
    let guarded: Arc<dyn ForkGuarded> = live.clone();
    fork::guard(Arc::downgrade(&guarded));
    live
});

/// Adds a new pool to the list (dead and closed ones are pruned on the way).
pub(super) fn track(pool: &Pool) {
    let mut live = LIVE.0.lock();
    live.retain(|weak| weak.upgrade().is_some_and(|p| !p.is_closed()));
    live.push(pool.downgrade());
}

/// Every open pool of the process, oldest first.
pub fn all_pools() -> Vec<Pool> {
    let live = LIVE.0.lock();
    live.iter()
        .filter_map(WeakPool::upgrade)
        .filter(|p| !p.is_closed())
        .collect()
}
