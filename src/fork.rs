//! Fork safety without a `getpid` call per command.
//!
//! `pthread_atfork` handlers keep a process-wide *fork generation*: the child increments it, and
//! every pool compares its own generation with it (one relaxed atomic load) before handing out a
//! connection. A pool that finds itself in a new generation forgets the parent's sockets without
//! sending a byte on them (closing the child's copy of a descriptor does not disturb the parent)
//! and opens its own.
//!
//! Around the fork, the handlers also hold every registered lock (each pool's subscriber list,
//! state, health memory, breaker and leak tracker; the registry; the metrics endpoint's and the C
//! API's bookkeeping), so a child never inherits a lock that some other parent thread held at the
//! moment of `fork()`. No thread of the core takes one of those locks while holding another of a
//! different item, and none is held while an event is delivered, so taking them item by item
//! cannot deadlock. The locks are [`crate::sync`]'s, whose whole state is in the lock word:
//! released in the child, they are as good as new. Then each item forgets, in the child, what the
//! parent's other threads were doing ([`ForkGuarded::after_fork_in_child`]).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};

use crate::sync::{HeldLock, Mutex};

static GENERATION: AtomicU64 = AtomicU64::new(0);
static INSTALL: Once = Once::new();
static GUARDED: Mutex<Vec<Weak<dyn ForkGuarded>>> = Mutex::new(Vec::new());

/// What `prepare` took for the fork in progress: the items, kept alive while their locks are
/// held, and the locks, in the order they were taken.
#[derive(Default)]
struct Held {
    items: Vec<Arc<dyn ForkGuarded>>,
    locks: Vec<HeldLock>,
}

thread_local! {
    /// Thread-local: the handlers all run on the forking thread, which is also the only thread of
    /// the child.
    static HELD: RefCell<Held> = const {
        RefCell::new(Held {
            items: Vec::new(),
            locks: Vec::new(),
        })
    };
}

/// Something whose locks must be held across `fork()` so the child gets them unlocked and
/// consistent.
pub(crate) trait ForkGuarded: Send + Sync {
    /// Takes the item's locks with [`crate::sync::Mutex::hold_across_fork`] into `held` (in the
    /// parent, just before fork; they are released just after it, in parent and child, while
    /// `fork` keeps the item alive).
    fn lock_for_fork(&self, held: &mut Vec<HeldLock>);
    /// In the child, with the locks released: forgets what the parent's other threads were doing
    /// (they do not exist here).
    fn after_fork_in_child(&self) {}
}

/// The current fork generation: 0 in the original process, +1 in each forked child.
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Registers `item` so its locks are held across every future `fork()`; installs the handlers
/// once.
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
    let items: Vec<Arc<dyn ForkGuarded>> = guarded.iter().filter_map(Weak::upgrade).collect();
    // Held across the fork too: no item can register half way.
    let mut held = vec![HeldLock::new(guarded)];
    for item in &items {
        item.lock_for_fork(&mut held);
    }
    HELD.with(|kept| *kept.borrow_mut() = Held { items, locks: held });
}

/// Drops every kept guard (last taken first) and returns the items they belonged to.
fn release_all() -> Vec<Arc<dyn ForkGuarded>> {
    let Held { items, locks } = HELD.with(|held| std::mem::take(&mut *held.borrow_mut()));
    for lock in locks.into_iter().rev() {
        drop(lock);
    }
    items
}

extern "C" fn after_in_parent() {
    drop(release_all());
}

extern "C" fn after_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
    for item in release_all() {
        item.after_fork_in_child();
    }
}
