//! Pool events delivered to a C callback.

use std::cell::Cell;
use std::ffi::{CString, c_char, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};

use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex};

use super::pool::{borrow, redpool_pool};
use super::stats::{redpool_breaker_state, redpool_health_status};
use super::{boundary, write_out};
use crate::breaker::BreakerState;
use crate::events::Event;
use crate::fork::{self, ForkGuarded};
use crate::pool::Pool;

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

// ----- subscriptions ---------------------------------------------------------------------------
//
// C subscriptions are kept here rather than in the core's subscriber list, so a callback may
// subscribe and unsubscribe (the core holds its list locked while it delivers an event, and
// changing it from inside a delivery would deadlock). Each pool gets one core subscriber, the
// dispatcher, which calls the C callbacks subscribed to that pool, one at a time, under no lock:
// a subscription's calls in progress are counted, so unsubscribing can wait for them to end.

/// The C subscriptions of every pool, under one lock: held only for bookkeeping (never during a
/// callback), and across `fork()`.
static SUBSCRIPTIONS: Mutex<Subscriptions> = Mutex::new(Subscriptions {
    next_id: 0,
    pools: Vec::new(),
});
/// Notified when a call of an unsubscribed callback ends.
static CALL_ENDED: Condvar = Condvar::new();

thread_local! {
    /// How many event callbacks this thread is running (nested ones included).
    static IN_CALLBACK: Cell<usize> = const { Cell::new(0) };
}

struct Subscriptions {
    next_id: u64,
    pools: Vec<PoolSubscriptions>,
}

/// The subscriptions of one pool, found by its handle value.
struct PoolSubscriptions {
    handle: usize,
    /// Alive as long as the pool's dispatcher is (so as long as the pool): a handle value reused
    /// by a later pool does not find the subscriptions of a gone one.
    dispatcher: Weak<()>,
    subscriptions: Vec<Subscription>,
}

struct Subscription {
    id: u64,
    callback: unsafe extern "C" fn(*mut c_void, *const redpool_event),
    userdata: usize,
    /// False once unsubscribed: never called again.
    active: bool,
    /// Calls running now (on any thread).
    running: usize,
}

impl Subscriptions {
    fn pool(&mut self, handle: usize) -> Option<&mut PoolSubscriptions> {
        self.pools
            .iter_mut()
            .find(|p| p.handle == handle && p.dispatcher.strong_count() > 0)
    }

    /// The subscription `id` of the pool with `handle` (active or not).
    fn find(&mut self, handle: usize, id: u64) -> Option<&mut Subscription> {
        self.pool(handle)?
            .subscriptions
            .iter_mut()
            .find(|s| s.id == id)
    }

    /// Forgets subscription `id` once it is unsubscribed and none of its calls runs.
    fn remove_if_done(&mut self, handle: usize, id: u64) {
        if let Some(pool) = self.pool(handle) {
            pool.subscriptions
                .retain(|s| s.id != id || s.active || s.running > 0);
        }
    }
}

/// Makes sure the pool behind `handle` has its dispatcher (one core subscriber for all its C
/// subscriptions).
fn ensure_dispatcher(pool: &Pool, handle: usize) {
    if SUBSCRIPTIONS.lock().pool(handle).is_some() {
        return;
    }
    install_fork_hook();
    // Subscribing to the core takes its subscriber list for writing, which a delivery holds for
    // reading while it takes SUBSCRIPTIONS: never hold SUBSCRIPTIONS here. (No C callback of this
    // pool can be running on this thread: it has no dispatcher yet.)
    let dispatcher = Arc::new(());
    let registered = Arc::downgrade(&dispatcher);
    let core_id = pool.subscribe(move |event| deliver(handle, &dispatcher, event));
    let lost_race = {
        let mut subscriptions = SUBSCRIPTIONS.lock();
        if subscriptions.pool(handle).is_some() {
            true
        } else {
            subscriptions
                .pools
                .retain(|p| p.dispatcher.strong_count() > 0);
            subscriptions.pools.push(PoolSubscriptions {
                handle,
                dispatcher: registered,
                subscriptions: Vec::new(),
            });
            false
        }
    };
    if lost_race {
        // Another thread registered one first; ours delivers nothing (see `deliver`).
        pool.unsubscribe(core_id);
    }
}

/// The dispatcher of the pool behind `handle`: calls each active C subscription in turn.
fn deliver(handle: usize, dispatcher: &Arc<()>, event: &Event) {
    let targets: Vec<u64> = {
        let mut subscriptions = SUBSCRIPTIONS.lock();
        match subscriptions.pool(handle) {
            Some(pool) if std::ptr::eq(pool.dispatcher.as_ptr(), Arc::as_ptr(dispatcher)) => pool
                .subscriptions
                .iter()
                .filter(|s| s.active)
                .map(|s| s.id)
                .collect(),
            _ => return,
        }
    };
    if targets.is_empty() {
        return;
    }
    let mut strings = Vec::new();
    let c = c_event(event, &mut strings);
    for id in targets {
        let call = {
            let mut subscriptions = SUBSCRIPTIONS.lock();
            match subscriptions.find(handle, id) {
                // Unsubscribed since the list was read: not called any more.
                Some(s) if s.active => {
                    s.running += 1;
                    (s.callback, s.userdata)
                }
                _ => continue,
            }
        };
        let (callback, userdata) = call;
        IN_CALLBACK.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller of `redpool_pool_subscribe` promised a thread-safe callback and a
        // userdata valid until unsubscribing, which waits for this call (or, from inside a
        // callback, was documented not to); `c` lives for the duration of the call.
        unsafe { callback(userdata as *mut c_void, &c) };
        IN_CALLBACK.with(|n| n.set(n.get().saturating_sub(1)));
        let mut subscriptions = SUBSCRIPTIONS.lock();
        if let Some(s) = subscriptions.find(handle, id) {
            s.running = s.running.saturating_sub(1);
        }
        subscriptions.remove_if_done(handle, id);
        drop(subscriptions);
        CALL_ENDED.notify_all();
    }
}

/// True on a thread that is running an event callback.
fn in_callback() -> bool {
    IN_CALLBACK.with(|n| n.get() > 0)
}

/// Holds SUBSCRIPTIONS across `fork()`; in the child, forgets the calls in progress (they ran on
/// the parent's other threads, which do not exist there).
struct ForkHook {
    generation: AtomicU64,
}

static FORK_HOOK: Lazy<Arc<ForkHook>> = Lazy::new(|| {
    Arc::new(ForkHook {
        generation: AtomicU64::new(0),
    })
});

fn install_fork_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let hook: Arc<dyn ForkGuarded> = FORK_HOOK.clone();
        fork::guard(Arc::downgrade(&hook));
    });
}

impl ForkGuarded for ForkHook {
    fn lock_for_fork(&self) {
        std::mem::forget(SUBSCRIPTIONS.lock());
        self.generation.store(fork::generation(), Ordering::Relaxed);
    }

    unsafe fn unlock_after_fork(&self) {
        let in_child = fork::generation() != self.generation.load(Ordering::Relaxed);
        if in_child {
            // Parent threads that were waiting in `redpool_pool_unsubscribe` do not exist here:
            // forget them, or a notification would queue them on SUBSCRIPTIONS (and unlocking it
            // could hand it to one of them).
            // SAFETY: only wakes the (vanished) threads parked on the condvar's address.
            unsafe {
                parking_lot_core::unpark_all(
                    std::ptr::from_ref(&CALL_ENDED).addr(),
                    parking_lot_core::DEFAULT_UNPARK_TOKEN,
                )
            };
        }
        // SAFETY: `lock_for_fork` locked it and forgot the guard, in this same fork.
        unsafe { fork::release_mutex(&SUBSCRIPTIONS) };
        if in_child {
            for pool in &mut SUBSCRIPTIONS.lock().pools {
                for s in &mut pool.subscriptions {
                    s.running = 0;
                }
                pool.subscriptions.retain(|s| s.active);
            }
        }
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
        let handle = pool as usize;
        ensure_dispatcher(&borrowed, handle);
        let subscription = {
            let mut subscriptions = SUBSCRIPTIONS.lock();
            subscriptions.next_id += 1;
            let new_id = subscriptions.next_id;
            let Some(pool) = subscriptions.pool(handle) else {
                return Err(crate::Error::new(
                    crate::ErrorKind::Closed,
                    "the pool's event dispatcher is gone",
                ));
            };
            pool.subscriptions.push(Subscription {
                id: new_id,
                callback,
                userdata: userdata as usize,
                active: true,
                running: 0,
            });
            new_id
        };
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
/// never running on two threads at once; otherwise free it after a later
/// `redpool_pool_unsubscribe` from outside a callback, or when the pool is gone.
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
        let _alive = unsafe { borrow(pool) }?;
        let handle = pool as usize;
        let mut subscriptions = SUBSCRIPTIONS.lock();
        match subscriptions.find(handle, id) {
            Some(s) if s.active => s.active = false,
            _ => {
                return Err(crate::Error::invalid(
                    "id",
                    id,
                    "is not a subscription of this pool",
                ));
            }
        }
        subscriptions.remove_if_done(handle, id);
        if !in_callback() {
            while subscriptions.find(handle, id).is_some() {
                CALL_ENDED.wait(&mut subscriptions);
            }
        }
        Ok(())
    })
}
