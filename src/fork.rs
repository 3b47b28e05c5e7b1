//! Fork safety without a `getpid` call per command.
//!
//! `pthread_atfork` handlers keep a process-wide *fork generation*: the child increments it, and
//! every pool compares its own generation with it (one relaxed atomic load) before handing out a
//! connection. A pool that finds itself in a new generation forgets the parent's sockets without
//! sending a byte on them (closing the child's copy of a descriptor does not disturb the parent)
//! and opens its own.
//!
//! Around the fork, the handlers also hold every registered lock (each pool's subscriber list,
//! state, health memory, breaker and leak tracker; the registry), so a child never inherits a lock
//! that some other parent thread held at the moment of `fork()`. Subscriber lists are taken first,
//! for every item, then everything else: an event is delivered under its subscriber list's read
//! lock, and a subscriber may take any other lock (but nothing is ever held while an event is
//! delivered, so the reverse order cannot happen).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};

use parking_lot::{Mutex, RwLock};

static GENERATION: AtomicU64 = AtomicU64::new(0);
/// True while the child's after-fork handler runs (see [`release_mutex`]).
static IN_CHILD_HANDLER: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();
static GUARDED: Mutex<Vec<Weak<dyn ForkGuarded>>> = Mutex::new(Vec::new());
static HELD: Mutex<Vec<Arc<dyn ForkGuarded>>> = Mutex::new(Vec::new());

/// Something whose lock must be held across `fork()` so the child gets it unlocked and consistent.
pub(crate) trait ForkGuarded: Send + Sync {
    /// Takes the locks that may be held while other locks are taken (subscriber lists, under
    /// which events are delivered); called for every item before any [`Self::lock_for_fork`].
    fn lock_subscribers_for_fork(&self) {}
    /// Releases what `lock_subscribers_for_fork` took.
    ///
    /// # Safety
    /// Only after a matching `lock_subscribers_for_fork` in the same fork.
    unsafe fn unlock_subscribers_after_fork(&self) {}
    /// Takes the lock (called in the parent just before fork).
    fn lock_for_fork(&self);
    /// Releases the lock taken by `lock_for_fork` (called in parent and child just after fork).
    ///
    /// # Safety
    /// Only after a matching `lock_for_fork` in the same fork.
    unsafe fn unlock_after_fork(&self);
}

/// Releases a mutex that `lock_for_fork` locked (forgetting its guard). In the child, the threads
/// that were queued on it in the parent do not exist: they are first removed from parking_lot's
/// queue for the mutex, since unlocking (now or ever after) could otherwise hand the mutex to one
/// of them (parking_lot's fair hand-off) and it would stay locked for good.
///
/// # Safety
/// Only from `unlock_after_fork`, on a mutex this fork's `lock_for_fork` locked.
pub(crate) unsafe fn release_mutex<T: ?Sized>(mutex: &Mutex<T>) {
    if IN_CHILD_HANDLER.load(Ordering::Relaxed) {
        // SAFETY: only the raw lock's address is taken (parking_lot's key for it).
        forget_queued_threads(std::ptr::from_ref(unsafe { mutex.raw() }).addr());
    }
    // SAFETY: per the caller's contract, the lock is held and its guard forgotten.
    unsafe { mutex.force_unlock() };
}

/// [`release_mutex`] for a read-write lock held for writing.
///
/// # Safety
/// As for [`release_mutex`], on a lock `lock_for_fork` write-locked.
pub(crate) unsafe fn release_rwlock<T: ?Sized>(lock: &RwLock<T>) {
    if IN_CHILD_HANDLER.load(Ordering::Relaxed) {
        // parking_lot queues a read-write lock's threads under its address, and a writer waiting
        // for the last readers under the address plus one.
        // SAFETY: only the raw lock's address is taken (parking_lot's key for it).
        let key = std::ptr::from_ref(unsafe { lock.raw() }).addr();
        forget_queued_threads(key);
        forget_queued_threads(key + 1);
    }
    // SAFETY: per the caller's contract, the write lock is held and its guard forgotten.
    unsafe { lock.force_unlock_write() };
}

/// Empties parking_lot's queue of threads parked on `key` (in a forked child: threads of the
/// parent). Waking them is harmless: they do not exist here.
fn forget_queued_threads(key: usize) {
    // SAFETY: `key` is the address of a lock this process owns; unparking only wakes (here,
    // vanished) threads and runs no code of theirs.
    unsafe { parking_lot_core::unpark_all(key, parking_lot_core::DEFAULT_UNPARK_TOKEN) };
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
        item.lock_subscribers_for_fork();
    }
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
    for item in &held {
        // SAFETY: `prepare` locked exactly these items' subscriber lists.
        unsafe { item.unlock_subscribers_after_fork() };
    }
    // SAFETY: `prepare` forgot the guard of this lock; this thread (the forking one, or the only
    // thread of the child) is the one that took it.
    unsafe { release_mutex(&GUARDED) };
    drop(held);
}

extern "C" fn after_in_parent() {
    release_all();
}

extern "C" fn after_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    IN_CHILD_HANDLER.store(true, Ordering::Relaxed);
    release_all();
    IN_CHILD_HANDLER.store(false, Ordering::Relaxed);
}
