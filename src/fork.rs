//! Fork safety without a `getpid` call per command.
//!
//! `pthread_atfork` handlers keep a process-wide *fork generation*: the child increments it, and
//! every pool compares its own generation with it (one relaxed atomic load) before handing out a
//! connection. A pool that finds itself in a new generation forgets the parent's sockets without
//! sending a byte on them (closing the child's copy of a descriptor does not disturb the parent)
//! and opens its own.
//!
//! Around the fork, the handlers also hold every registered lock (pool states, the registry), so a
//! child never inherits a lock that some other parent thread held at the moment of `fork()`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};

use parking_lot::Mutex;

static GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();
static GUARDED: Mutex<Vec<Weak<dyn ForkGuarded>>> = Mutex::new(Vec::new());
static HELD: Mutex<Vec<Arc<dyn ForkGuarded>>> = Mutex::new(Vec::new());

/// Something whose lock must be held across `fork()` so the child gets it unlocked and consistent.
pub(crate) trait ForkGuarded: Send + Sync {
    /// Takes the lock (called in the parent just before fork).
    fn lock_for_fork(&self);
    /// Releases the lock taken by `lock_for_fork` (called in parent and child just after fork).
    ///
    /// # Safety
    /// Only after a matching `lock_for_fork` in the same fork.
    unsafe fn unlock_after_fork(&self);
}

/// The current fork generation: 0 in the original process, +1 in each forked child.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Registers `item` so its lock is held across every future `fork()`; installs the handlers once.
pub(crate) fn guard(item: Weak<dyn ForkGuarded>) {
    INSTALL.call_once(|| {
        // SAFETY: the handlers are `extern "C"` functions with the expected signature that live for
        // the whole program.
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(after_in_parent), Some(after_in_child));
        }
    });
    let mut guarded = GUARDED.lock();
    guarded.retain(|weak| weak.strong_count() > 0);
    guarded.push(item);
}

extern "C" fn prepare() {
    let guarded = GUARDED.lock();
    let held: Vec<Arc<dyn ForkGuarded>> = guarded.iter().filter_map(Weak::upgrade).collect();
    for item in &held {
        item.lock_for_fork();
    }
    *HELD.lock() = held;
    // Keep GUARDED locked across fork: no new item can register half way.
    std::mem::forget(guarded);
}

fn release_all() {
    let held = std::mem::take(&mut *HELD.lock());
    for item in &held {
        // SAFETY: `prepare` locked exactly these items.
        unsafe { item.unlock_after_fork() };
    }
    // SAFETY: `prepare` forgot the guard of this lock; this thread (the forking one, or the only
    // thread of the child) is the one that took it.
    unsafe { GUARDED.force_unlock() };
    drop(held);
}

extern "C" fn after_in_parent() {
    release_all();
}

extern "C" fn after_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    release_all();
}
