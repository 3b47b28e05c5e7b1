//! Pool events for subscribers (the bindings turn them into Python callbacks / log records, Node
//! EventEmitter events and C callbacks).
//!
//! Events are delivered synchronously on the thread where they happen, never while a pool lock is
//! held. A panicking subscriber is caught and cannot break the pool; a slow one slows only the
//! thread that raised the event, so subscribers should hand work off rather than block. Once
//! `unsubscribe` returns, the subscriber is not called again; a subscriber must not unsubscribe
//! (itself or another) from inside its own call.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::breaker::BreakerState;
use crate::health::HealthStatus;
use crate::leak::LeakReport;
use crate::metrics::CloseReason;

/// Something that happened in a pool.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The circuit breaker changed state.
    BreakerStateChanged {
        /// State before.
        from: BreakerState,
        /// State after.
        to: BreakerState,
    },
    /// `health()` found a different status than the previous check.
    HealthChanged {
        /// Status before (None for the first check).
        from: Option<HealthStatus>,
        /// Status now.
        to: HealthStatus,
    },
    /// A connection was opened.
    ConnectionCreated {
        /// Process-unique connection id.
        id: u64,
    },
    /// A connection was closed.
    ConnectionClosed {
        /// Process-unique connection id.
        id: u64,
        /// Why.
        reason: CloseReason,
    },
    /// A caller had to queue because every connection is in use (raised once per episode: when
    /// the queue goes from empty to one waiter).
    PoolExhausted {
        /// The cap that was reached.
        max_connections: usize,
    },
    /// A caller gave up waiting for a connection.
    AcquireTimedOut {
        /// How long it waited.
        waited: Duration,
        /// Callers still waiting.
        waiting: usize,
    },
    /// A connection has been checked out longer than `leak_detection_threshold` (reported once
    /// per checkout, by the maintenance thread).
    LeakSuspected(LeakReport),
}

/// A subscriber: any thread-safe function of an event.
pub type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// The subscribers of one pool.
#[derive(Default)]
pub(crate) struct Events {
    listeners: RwLock<Vec<(u64, Listener)>>,
    any: AtomicBool,
    next_id: AtomicU64,
}

impl Events {
    /// Adds a subscriber; returns its id for [`Events::unsubscribe`].
    pub fn subscribe(&self, listener: Listener) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut listeners = self.listeners.write();
        listeners.push((id, listener));
        self.any.store(true, Ordering::Release);
        id
    }

    /// Removes a subscriber; false when the id is unknown.
    pub fn unsubscribe(&self, id: u64) -> bool {
        let mut listeners = self.listeners.write();
        let before = listeners.len();
        listeners.retain(|(i, _)| *i != id);
        self.any.store(!listeners.is_empty(), Ordering::Release);
        listeners.len() != before
    }

    /// Holds the subscriber list across `fork()` (see [`crate::fork`]): waits for deliveries in
    /// progress, and keeps new ones out until [`Events::unlock_after_fork`].
    pub fn lock_for_fork(&self) {
        std::mem::forget(self.listeners.write());
    }

    /// Releases what [`Events::lock_for_fork`] took.
    ///
    /// # Safety
    /// Only after `lock_for_fork` in the same fork.
    pub unsafe fn unlock_after_fork(&self) {
        // SAFETY: per the caller's contract, the write lock is held and its guard forgotten.
        unsafe { crate::fork::release_rwlock(&self.listeners) };
    }

    /// Delivers the event built by `event` to every subscriber (built only if there is one).
    /// Must not be called with a pool lock held.
    pub fn emit(&self, event: impl FnOnce() -> Event) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let event = event();
        // The read lock is held during delivery, so once `unsubscribe` returns no call of that
        // subscriber is still running or about to run. (Recursive: a subscriber may cause events.)
        let listeners = self.listeners.read_recursive();
        for (_, listener) in listeners.iter() {
            let _ = catch_unwind(AssertUnwindSafe(|| listener(&event)));
        }
    }
}
