//! Pool events for subscribers (the bindings turn them into Python callbacks / log records, Node
//! EventEmitter events and C callbacks).
//!
//! Events are delivered synchronously on the thread where they happen, under no lock: the list of
//! subscribers is copied, then each is called in turn. A panicking subscriber is caught and cannot
//! break the pool; a slow one slows only the thread that raised the event, so subscribers should
//! hand work off rather than block. A subscriber may subscribe and unsubscribe (itself included)
//! from inside its call, and may raise events of its own.
//!
//! Once `unsubscribe` returns, the subscriber is not called again. Called outside any subscriber,
//! it also waits for the subscriber's calls still running on other threads. Called from inside a
//! subscriber's call, it does not wait (two subscribers unsubscribing each other on two threads
//! would wait for each other for ever): a call already running elsewhere may still be finishing.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::breaker::BreakerState;
use crate::health::HealthStatus;
use crate::leak::LeakReport;
use crate::metrics::CloseReason;
use crate::sync::{Condvar, HeldLock, Mutex};

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

thread_local! {
    /// How many subscriber calls this thread is running (nested ones included).
    static IN_DELIVERY: Cell<usize> = const { Cell::new(0) };
}

/// True on a thread that is running a subscriber's call (of any pool).
fn in_delivery() -> bool {
    IN_DELIVERY.with(|n| n.get() > 0)
}

/// The subscribers of one pool.
#[derive(Default)]
pub(crate) struct Events {
    table: Mutex<Table>,
    /// Notified when a call of an unsubscribed subscriber ends.
    call_ended: Condvar,
    /// False when nobody is subscribed: an event is then not even built.
    any: AtomicBool,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    subscribers: Vec<Subscriber>,
}

struct Subscriber {
    id: u64,
    listener: Listener,
    /// False once unsubscribed: never called again.
    active: bool,
    /// Calls running now (on any thread).
    running: usize,
}

impl Table {
    fn find(&mut self, id: u64) -> Option<&mut Subscriber> {
        self.subscribers.iter_mut().find(|s| s.id == id)
    }

    /// Forgets subscriber `id` once it is unsubscribed and none of its calls runs.
    fn remove_if_done(&mut self, id: u64) {
        self.subscribers
            .retain(|s| s.id != id || s.active || s.running > 0);
    }
}

impl Events {
    /// Adds a subscriber; returns its id for [`Events::unsubscribe`]. It gets the events raised
    /// after this returns.
    pub fn subscribe(&self, listener: Listener) -> u64 {
        let mut table = self.table.lock();
        table.next_id += 1;
        let id = table.next_id;
        table.subscribers.push(Subscriber {
            id,
            listener,
            active: true,
            running: 0,
        });
        self.any.store(true, Ordering::Release);
        id
    }

    /// Removes a subscriber (see the module documentation for when it waits); false when the id
    /// is unknown or already removed.
    pub fn unsubscribe(&self, id: u64) -> bool {
        let mut table = self.table.lock();
        match table.find(id) {
            Some(s) if s.active => s.active = false,
            _ => return false,
        }
        table.remove_if_done(id);
        self.any.store(
            table.subscribers.iter().any(|s| s.active),
            Ordering::Release,
        );
        if !in_delivery() {
            while table.find(id).is_some() {
                table = self.call_ended.wait(table);
            }
        }
        true
    }

    /// Holds the subscriber list across `fork()` (see [`crate::fork`]).
    ///
    /// # Safety
    /// As for [`Mutex::hold_across_fork`]: the list lives until the fork is over.
    pub(crate) unsafe fn hold_across_fork(&self) -> HeldLock {
        // SAFETY: per this function's contract.
        unsafe { self.table.hold_across_fork() }
    }

    /// In a forked child: the calls that were running ran on the parent's other threads, which do
    /// not exist here (a call on the forking thread itself ends normally and finds nothing to
    /// count down).
    pub(crate) fn forget_deliveries_after_fork(&self) {
        let mut table = self.table.lock();
        for s in &mut table.subscribers {
            s.running = 0;
        }
        table.subscribers.retain(|s| s.active);
    }

    /// Delivers the event built by `event` to every subscriber (built only if there is one).
    /// Must not be called with a pool lock held.
    pub fn emit(&self, event: impl FnOnce() -> Event) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let targets: Vec<u64> = {
            let table = self.table.lock();
            table
                .subscribers
                .iter()
                .filter(|s| s.active)
                .map(|s| s.id)
                .collect()
        };
        if targets.is_empty() {
            return;
        }
        let event = event();
        for id in targets {
            let listener = {
                let mut table = self.table.lock();
                match table.find(id) {
                    // Unsubscribed since the list was read: not called any more.
                    Some(s) if s.active => {
                        s.running += 1;
                        Arc::clone(&s.listener)
                    }
                    _ => continue,
                }
            };
            IN_DELIVERY.with(|n| n.set(n.get() + 1));
            let _ = catch_unwind(AssertUnwindSafe(|| listener(&event)));
            IN_DELIVERY.with(|n| n.set(n.get() - 1));
            let mut table = self.table.lock();
            if let Some(s) = table.find(id) {
                s.running = s.running.saturating_sub(1);
            }
            table.remove_if_done(id);
            drop(table);
            self.call_ended.notify_all();
        }
    }
}
