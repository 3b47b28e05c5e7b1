//! Pool events delivered to a C callback.

use std::ffi::{CString, c_char, c_void};

use super::pool::{borrow, redpool_pool};
use super::stats::{redpool_breaker_state, redpool_health_status};
use super::{boundary, write_out};
use crate::breaker::BreakerState;
use crate::events::Event;

/// What happened.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum redpool_event_type {
    /// The circuit breaker changed state: `breaker_from` → `breaker_to`.
    REDPOOL_EVENT_BREAKER_STATE_CHANGED = 1,
    /// The health status changed: `health_from` → `health_to`.
    REDPOOL_EVENT_HEALTH_CHANGED = 2,
    /// A connection was opened: `connection_id`.
    REDPOOL_EVENT_CONNECTION_CREATED = 3,
    /// A connection was closed: `connection_id`, `close_reason`.
    REDPOOL_EVENT_CONNECTION_CLOSED = 4,
    /// Callers started queueing for a connection: `max_connections`.
    REDPOOL_EVENT_POOL_EXHAUSTED = 5,
    /// A caller gave up waiting: `waited_us`, `waiting`.
    REDPOOL_EVENT_ACQUIRE_TIMED_OUT = 6,
    /// A connection has been checked out longer than `leak_detection_threshold`:
    /// `connection_id`, `held_us`, `holder_thread`, `holder_stack`.
    REDPOOL_EVENT_LEAK_SUSPECTED = 7,
}

/// An event. Valid only during the callback; copy what you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct redpool_event {
    /// What happened; the other fields that apply are named in `redpool_event_type`.
    pub r#type: redpool_event_type,
    /// Breaker state before.
    pub breaker_from: redpool_breaker_state,
    /// Breaker state after.
    pub breaker_to: redpool_breaker_state,
    /// Health before (`REDPOOL_HEALTH_UNKNOWN` for the first check).
    pub health_from: redpool_health_status,
    /// Health after.
    pub health_to: redpool_health_status,
    /// The connection concerned.
    pub connection_id: u64,
    /// Why it was closed: a static string such as "idle_timeout" (NULL for other events).
    pub close_reason: *const c_char,
    /// The pool's cap.
    pub max_connections: u64,
    /// How long the caller waited, in microseconds.
    pub waited_us: u64,
    /// Callers still waiting.
    pub waiting: u64,
    /// How long the connection has been held, in microseconds.
    pub held_us: u64,
    /// The holder's thread (NUL-terminated; NULL for other events).
    pub holder_thread: *const c_char,
    /// Where the holder acquired the connection: a stack trace (NUL-terminated; NULL for other
    /// events).
    pub holder_stack: *const c_char,
}

/// An event callback. Called on library-owned or caller threads, never with a pool lock held; it
/// must be thread-safe and must not block for long. `userdata` is passed back unchanged. It may call
/// any redpool function, including `redpool_pool_subscribe`, `redpool_pool_unsubscribe` (see
/// there) and `redpool_pool_free` on the last handle of the pool that raised the event (the call
/// that raised it still returns normally).
pub type redpool_event_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const redpool_event)>;

/// The C view of `event`; strings it points to are kept in `strings` (alive during the callback).
fn c_event(event: &Event, strings: &mut Vec<CString>) -> redpool_event {
    let mut out = redpool_event {
        r#type: redpool_event_type::REDPOOL_EVENT_CONNECTION_CREATED,
        breaker_from: BreakerState::Closed.into(),
        breaker_to: BreakerState::Closed.into(),
        health_from: None.into(),
        health_to: None.into(),
        connection_id: 0,
        close_reason: std::ptr::null(),
        max_connections: 0,
        waited_us: 0,
        waiting: 0,
        held_us: 0,
        holder_thread: std::ptr::null(),
        holder_stack: std::ptr::null(),
    };
    match event {
        Event::BreakerStateChanged { from, to } => {
            out.r#type = redpool_event_type::REDPOOL_EVENT_BREAKER_STATE_CHANGED;
            out.breaker_from = (*from).into();
            out.breaker_to = (*to).into();
        }
        Event::HealthChanged { from, to } => {
            out.r#type = redpool_event_type::REDPOOL_EVENT_HEALTH_CHANGED;
            out.health_from = (*from).into();
            out.health_to = Some(*to).into();
        }
        Event::ConnectionCreated { id } => out.connection_id = *id,
        Event::ConnectionClosed { id, reason } => {
            out.r#type = redpool_event_type::REDPOOL_EVENT_CONNECTION_CLOSED;
            out.connection_id = *id;
            out.close_reason = reason.as_c_str().as_ptr();
        }
        Event::PoolExhausted { max_connections } => {
            out.r#type = redpool_event_type::REDPOOL_EVENT_POOL_EXHAUSTED;
            out.max_connections = *max_connections as u64;
        }
        Event::AcquireTimedOut { waited, waiting } => {
            out.r#type = redpool_event_type::REDPOOL_EVENT_ACQUIRE_TIMED_OUT;
            out.waited_us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
            out.waiting = *waiting as u64;
        }
        Event::LeakSuspected(report) => {
            out.r#type = redpool_event_type::REDPOOL_EVENT_LEAK_SUSPECTED;
            out.connection_id = report.connection_id;
            out.held_us = u64::try_from(report.held_for.as_micros()).unwrap_or(u64::MAX);
            let mut text = |s: &str| {
                let c = CString::new(s.replace('\0', " ")).unwrap_or_default();
                let ptr = c.as_ptr();
                strings.push(c);
                ptr
            };
            out.holder_thread = text(&report.holder.thread);
            out.holder_stack = text(&report.holder.stack);
        }
    }
    out
}

/// A C callback and its userdata, as one core subscriber.
#[derive(Clone, Copy)]
struct CallbackTarget {
    callback: unsafe extern "C" fn(*mut c_void, *const redpool_event),
    /// The caller's pointer, passed back unchanged (kept as an address: the caller promised it is
    /// usable from any thread until it unsubscribes).
    userdata: usize,
}

impl CallbackTarget {
    fn call(self, event: &Event) {
        let mut strings = Vec::new();
        let c = c_event(event, &mut strings);
        // SAFETY: the caller of `redpool_pool_subscribe` promised a thread-safe callback and a
        // userdata valid until unsubscribing, which waits for this call (or, from inside a
        // callback, was documented not to); `c` and its strings live for the duration of the call.
        unsafe { (self.callback)(self.userdata as *mut c_void, &c) };
    }
}

/// Registers `callback` for the pool's events; on success `*id` identifies the subscription for
/// `redpool_pool_unsubscribe`. `userdata` must stay valid until then. The callback gets the
/// events raised after this call returns.
///
/// May be called from inside an event callback (of this pool or another one): it works there as
/// anywhere else.
///
/// # Safety
/// `pool` is NULL or a live handle; `callback` is a thread-safe function; `id` is NULL or valid
/// for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_subscribe(
    pool: *const redpool_pool,
    callback: redpool_event_cb,
    userdata: *mut c_void,
    id: *mut u64,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let borrowed = unsafe { borrow(pool) }?;
        let callback = callback.ok_or_else(|| super::null("callback"))?;
        super::request::check_out(id, "id")?;
        let target = CallbackTarget {
            callback,
            userdata: userdata as usize,
        };
        let subscription = borrowed.subscribe(move |event| target.call(event));
        // SAFETY: per this function's contract.
        unsafe { write_out(id, "id", subscription) }
    })
}

/// Removes a subscription: once it returns, the callback is not called again. An unknown id (or
/// one already removed) gives `REDPOOL_STATUS_INVALID_ARGUMENT`.
///
/// Called outside any event callback, it also waits until the calls of this callback already
/// running on other threads have returned, so its userdata may be freed as soon as it returns.
///
/// Called from inside an event callback (its own, to unsubscribe once, or another one), it works
/// but does not wait (waiting there could deadlock, for instance two callbacks unsubscribing
/// each other on two threads): a call of the removed callback already running on another thread
/// may still be finishing when it returns. Free the userdata there only if your callback is
/// never running on two threads at once; otherwise free it once the pool is freed.
///
/// The subscription belongs to the pool, not to the handle: any handle of the same pool (a
/// shared pool's handles) may remove it.
///
/// # Safety
/// `pool` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_pool_unsubscribe(
    pool: *const redpool_pool,
    id: u64,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let pool = unsafe { borrow(pool) }?;
        if pool.unsubscribe(id) {
            Ok(())
        } else {
            Err(crate::Error::invalid(
                "id",
                id,
                "is not a subscription of this pool",
            ))
        }
    })
}
