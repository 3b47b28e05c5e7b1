//! The core's locks: a mutex and a condition variable whose whole state is in the lock itself, so
//! a forked child inherits nothing but that state.
//!
//! They wrap the standard library's locks, which on Linux are a futex word each and keep no
//! process-wide table. (parking_lot keeps one: a thread parking on any lock holds a bucket lock
//! of its global table for a moment, and a fork at that moment leaves the child a bucket lock
//! held by a thread that does not exist there, so the child hangs on its first contended lock.)
//! [`crate::fork`] holds the locks that matter across `fork()` ([`Mutex::hold_across_fork`]
//! gives it a [`HeldLock`]); releasing a lock in the child only stores its word and, if a parent
//! thread was queued, wakes nobody.
//!
//! A panic while a lock is held does not poison it here: every critical section of the core
//! leaves its data consistent at each step, and the bindings catch panics at their boundaries.

use std::sync::PoisonError;
use std::time::Instant;

pub(crate) use std::sync::MutexGuard;

/// A mutual-exclusion lock (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct Mutex<T: ?Sized>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    /// A new, unlocked mutex.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex(std::sync::Mutex::new(value))
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, waiting as long as it takes.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value, through exclusive access (no locking).
    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T: ?Sized + 'static> Mutex<T> {
    /// Locks for the duration of a `fork()`: the lock is released when the returned guard is
    /// dropped (just after the fork, in the parent and in the child).
    ///
    /// # Safety
    /// The mutex must outlive the returned guard (a static, or part of an item that the caller
    /// keeps alive until it drops the guard).
    pub unsafe fn hold_across_fork(&self) -> HeldLock {
        let guard = self.lock();
        // SAFETY: per this function's contract the mutex outlives the guard.
        let guard: MutexGuard<'static, T> = unsafe { std::mem::transmute(guard) };
        HeldLock::new(guard)
    }
}

/// A lock held across a `fork()`, of any type; dropping it releases the lock.
pub(crate) struct HeldLock {
    _guard: Box<dyn AnyGuard>,
}

/// Any lock guard (dropping it unlocks).
trait AnyGuard {}
impl<T> AnyGuard for T {}

impl HeldLock {
    /// Holds `guard` (of a lock that lives as long as the process, or as the guard's holder
    /// ensures).
    pub fn new<T: ?Sized + 'static>(guard: MutexGuard<'static, T>) -> HeldLock {
        HeldLock {
            _guard: Box::new(guard),
        }
    }
}

/// A condition variable, used with [`Mutex`].
#[derive(Debug, Default)]
pub(crate) struct Condvar(std::sync::Condvar);

impl Condvar {
    /// A new condition variable.
    pub const fn new() -> Condvar {
        Condvar(std::sync::Condvar::new())
    }

    /// Releases `guard`'s lock until notified (or woken spuriously), then locks it again.
    pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// As [`Condvar::wait`], but gives up at `deadline`; the flag is true when it timed out.
    pub fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> (MutexGuard<'a, T>, bool) {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (guard, result) = self
            .0
            .wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        (guard, result.timed_out())
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.0.notify_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.0.notify_all();
    }
}
