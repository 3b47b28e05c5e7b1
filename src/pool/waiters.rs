//! The queue of callers waiting for a connection: first come, first served, with an optional high
//! priority that goes ahead of every normal waiter (but behind earlier high-priority ones).
//!
//! Whatever frees up (a returned connection, or a free slot to open one) is *granted* to the head
//! of the queue directly, under the pool lock, so a newcomer can never barge past a waiter.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Condvar;

use super::Conn;

/// Queue position of an acquire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// First come, first served (default).
    #[default]
    Normal,
    /// Served before every normal waiter, in arrival order among high-priority waiters.
    High,
}

/// What a waiter is handed.
pub(crate) enum Grant {
    /// A clean connection, already counted as in use.
    Connection(Conn),
    /// Permission to open a new connection; the slot is already counted as open and connecting.
    Slot,
    /// The pool was closed while waiting.
    Closed,
}

struct Waiter {
    wake: Arc<Condvar>,
    grant: Option<Grant>,
}

/// Waiters in service order plus the grants handed to them and not yet picked up.
#[derive(Default)]
pub(crate) struct WaitQueue {
    next_ticket: u64,
    order: VecDeque<u64>,
    high_priority_queued: usize,
    waiters: HashMap<u64, Waiter>,
}

/// A waiter's place in the queue.
pub(crate) struct Ticket {
    pub id: u64,
    pub wake: Arc<Condvar>,
    priority: Priority,
}

impl WaitQueue {
    /// Number of callers still waiting for a grant.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Queues a new waiter and returns its ticket.
    pub fn enqueue(&mut self, priority: Priority) -> Ticket {
        self.next_ticket += 1;
        let id = self.next_ticket;
        match priority {
            Priority::High => {
                self.order.insert(self.high_priority_queued, id);
                self.high_priority_queued += 1;
            }
            Priority::Normal => self.order.push_back(id),
        }
        let wake = Arc::new(Condvar::new());
        self.waiters.insert(
            id,
            Waiter {
                wake: wake.clone(),
                grant: None,
            },
        );
        Ticket { id, wake, priority }
    }

    /// Hands `grant` to the first waiter and wakes it; gives the grant back if nobody waits.
    pub fn grant_next(&mut self, grant: Grant) -> Option<Grant> {
        let Some(id) = self.order.pop_front() else {
            return Some(grant);
        };
        self.high_priority_queued = self.high_priority_queued.saturating_sub(1);
        if let Some(waiter) = self.waiters.get_mut(&id) {
            waiter.grant = Some(grant);
            waiter.wake.notify_one();
        }
        None
    }

    /// Takes the grant for `ticket`, if one arrived; the ticket is then finished.
    pub fn take_grant(&mut self, ticket: &Ticket) -> Option<Grant> {
        let grant = self.waiters.get_mut(&ticket.id)?.grant.take()?;
        self.waiters.remove(&ticket.id);
        Some(grant)
    }

    /// Withdraws a waiter that gave up (timeout) and had no grant.
    pub fn withdraw(&mut self, ticket: &Ticket) {
        self.waiters.remove(&ticket.id);
        if let Some(pos) = self.order.iter().position(|id| *id == ticket.id) {
            self.order.remove(pos);
            if ticket.priority == Priority::High {
                self.high_priority_queued = self.high_priority_queued.saturating_sub(1);
            }
        }
    }

    /// Grants `Closed` to every waiter (pool closing).
    pub fn close_all(&mut self) {
        while self.grant_next(Grant::Closed).is_none() {}
    }

    /// Forgets every waiter without waking anyone (after fork, the parent's waiters do not exist).
    pub fn forget_all(&mut self) {
        self.order.clear();
        self.waiters.clear();
        self.high_priority_queued = 0;
    }
}
