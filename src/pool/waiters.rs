//! The queue of callers waiting for a connection: first come, first served, with an optional high
//! priority that goes ahead of every normal waiter (but behind earlier high-priority ones).
//!
//! Waiters are served in queue order. A free slot (to open a connection) is always *granted* to
//! the head under the pool lock. A returned connection is granted to the head too once the head
//! has waited [`FAIR_HANDOFF_AFTER`]; before that it goes back to the idle set and the head is
//! *nudged* (woken to look), so a caller arriving meanwhile may take it first. That bounded
//! barging is what keeps a pool with more busy threads than connections from collapsing into a
//! convoy where every checkout costs a wake-up and a context switch (parking_lot's eventual
//! fairness does the same for its mutex); nobody waits more than the window beyond a strict FIFO.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::sync::Condvar;

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

impl Priority {
    /// Every priority with the name the Python and Node bindings take for it (`priority="high"`,
    /// `{ priority: 'high' }`); C uses the `redpool_priority` enum instead.
    pub const NAMES: [(&'static str, Priority); 2] =
        [("normal", Priority::Normal), ("high", Priority::High)];

    /// The priority named `name` (one of [`Priority::NAMES`], in lower case), or an
    /// invalid-argument error naming `priority`, the value and the names that exist.
    pub fn parse(name: &str) -> crate::error::Result<Priority> {
        Priority::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, priority)| *priority)
            .ok_or_else(|| {
                let names: Vec<&str> = Priority::NAMES.iter().map(|(known, _)| *known).collect();
                Error::invalid(
                    "priority",
                    format!("{name:?}"),
                    &format!("must be {}", names.join(" or ")),
                )
            })
    }
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

/// How long the head of the queue may be passed by newcomers taking returned connections; after
/// that, returned connections are granted to it directly.
pub(crate) const FAIR_HANDOFF_AFTER: Duration = Duration::from_millis(1);

struct Waiter {
    wake: Arc<Condvar>,
    grant: Option<Grant>,
    queued_at: Instant,
}

/// Waiters in service order plus the grants handed to them and not yet picked up.
#[derive(Default)]
pub(crate) struct WaitQueue {
    next_ticket: u64,
    order: VecDeque<u64>,
    high_priority_queued: usize,
    waiters: HashMap<u64, Waiter>,
    /// The waiter woken to look at the idle set, until it looked (at most one at a time).
    nudged: Option<u64>,
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

    /// Queues a new waiter (arrived at `now`) and returns its ticket.
    pub fn enqueue(&mut self, priority: Priority, now: Instant) -> Ticket {
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
                queued_at: now,
            },
        );
        Ticket { id, wake, priority }
    }

    /// True when the head of the queue has waited [`FAIR_HANDOFF_AFTER`] at `now`: returned
    /// connections must then be granted to it, and newcomers queue behind it.
    pub fn head_is_due(&self, now: Instant) -> bool {
        self.order
            .front()
            .and_then(|id| self.waiters.get(id))
            .is_some_and(|w| now.saturating_duration_since(w.queued_at) >= FAIR_HANDOFF_AFTER)
    }

    /// True when `ticket` is the head of the queue (the only waiter that may take an idle
    /// connection).
    pub fn is_head(&self, ticket: &Ticket) -> bool {
        self.order.front() == Some(&ticket.id)
    }

    /// Wakes the head of the queue to look at the idle set, unless a nudged waiter has not looked
    /// yet (it passes the nudge on when it leaves or goes back to sleep: see `lease`).
    pub fn nudge_head(&mut self) {
        if self.nudged.is_some() {
            return;
        }
        if let Some(id) = self.order.front() {
            if let Some(waiter) = self.waiters.get(id) {
                waiter.wake.notify_one();
                self.nudged = Some(*id);
            }
        }
    }

    /// `ticket` looked at the idle set: a later return may nudge again.
    pub fn looked(&mut self, ticket: &Ticket) {
        if self.nudged == Some(ticket.id) {
            self.nudged = None;
        }
    }

    /// Hands `grant` to the first waiter and wakes it; `Err` gives the grant back when nobody
    /// waits.
    pub fn hand_to_first(&mut self, grant: Grant) -> Result<(), Grant> {
        let Some(id) = self.order.pop_front() else {
            return Err(grant);
        };
        if self.nudged == Some(id) {
            self.nudged = None;
        }
        self.high_priority_queued = self.high_priority_queued.saturating_sub(1);
        if let Some(waiter) = self.waiters.get_mut(&id) {
            waiter.grant = Some(grant);
            waiter.wake.notify_one();
        }
        Ok(())
    }

    /// Takes the grant for `ticket`, if one arrived; the ticket is then finished.
    pub fn take_grant(&mut self, ticket: &Ticket) -> Option<Grant> {
        let grant = self.waiters.get_mut(&ticket.id)?.grant.take()?;
        self.waiters.remove(&ticket.id);
        Some(grant)
    }

    /// Withdraws a waiter that gave up (timeout) or took an idle connection, and had no grant.
    pub fn withdraw(&mut self, ticket: &Ticket) {
        self.looked(ticket);
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
        while self.hand_to_first(Grant::Closed).is_ok() {}
    }

    /// Forgets every waiter without waking anyone (after fork, the parent's waiters do not exist).
    pub fn forget_all(&mut self) {
        self.order.clear();
        self.waiters.clear();
        self.high_priority_queued = 0;
        self.nudged = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_due_after_the_fair_handoff_window() {
        let start = Instant::now();
        let mut queue = WaitQueue::default();
        assert!(
            !queue.head_is_due(start + FAIR_HANDOFF_AFTER),
            "no head, nothing due"
        );
        let first = queue.enqueue(Priority::Normal, start);
        let _second = queue.enqueue(Priority::Normal, start + FAIR_HANDOFF_AFTER);
        assert!(queue.is_head(&first));
        assert!(!queue.head_is_due(start + FAIR_HANDOFF_AFTER / 2));
        assert!(queue.head_is_due(start + FAIR_HANDOFF_AFTER));
    }

    #[test]
    fn one_nudge_at_a_time_until_the_nudged_waiter_looked() {
        let now = Instant::now();
        let mut queue = WaitQueue::default();
        let head = queue.enqueue(Priority::Normal, now);
        let next = queue.enqueue(Priority::Normal, now);
        queue.nudge_head();
        assert_eq!(queue.nudged, Some(head.id));
        queue.nudge_head();
        assert_eq!(
            queue.nudged,
            Some(head.id),
            "still the same, not yet looked"
        );
        queue.looked(&next);
        assert_eq!(
            queue.nudged,
            Some(head.id),
            "only the nudged waiter clears it"
        );
        queue.looked(&head);
        assert_eq!(queue.nudged, None);
        queue.nudge_head();
        queue.withdraw(&head);
        assert_eq!(
            queue.nudged, None,
            "a withdrawn waiter takes its nudge along"
        );
        queue.nudge_head();
        assert_eq!(queue.nudged, Some(next.id));
        assert!(queue.hand_to_first(Grant::Slot).is_ok());
        assert_eq!(queue.nudged, None, "a granted waiter takes its nudge along");
        assert!(matches!(queue.take_grant(&next), Some(Grant::Slot)));
        assert!(queue.is_empty());
    }

    #[test]
    fn priorities_by_name() {
        assert_eq!(Priority::parse("normal").unwrap(), Priority::Normal);
        assert_eq!(Priority::parse("high").unwrap(), Priority::High);
        for bad in ["", "HIGH", "urgent", " high"] {
            let err = Priority::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument);
            assert_eq!(
                err.to_string(),
                format!("invalid priority = {bad:?}: must be normal or high")
            );
        }
    }

    #[test]
    fn high_priority_goes_ahead_of_normal_waiters() {
        let now = Instant::now();
        let mut queue = WaitQueue::default();
        let normal = queue.enqueue(Priority::Normal, now);
        let high = queue.enqueue(Priority::High, now);
        assert!(queue.is_head(&high) && !queue.is_head(&normal));
    }
}
