//! Pool events forwarded to JS: the core calls the subscriber on whatever thread the event happens
//! on; it queues the event on a weak (unref'd) threadsafe function, without blocking, and the JS
//! layer emits it on the client. An idle client's subscription never keeps the process alive.

use napi::Status;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use redpool::Event;

/// One pool event, as the JS layer receives it.
#[napi(object)]
pub struct PoolEvent {
    /// `breaker`, `health`, `connectionCreated`, `connectionClosed`, `poolExhausted`,
    /// `acquireTimeout`, `leak`.
    pub kind: String,
    /// Breaker or health state before (`closed`/`open`/`half_open`; `healthy`/`degraded`/`unhealthy`).
    pub from: Option<String>,
    /// Breaker or health state after.
    pub to: Option<String>,
    /// Connection id.
    pub id: Option<i64>,
    /// Why a connection was closed.
    pub reason: Option<String>,
    /// The cap that was reached.
    pub max_connections: Option<u32>,
    /// How long a caller waited before giving up, in milliseconds.
    pub waited_ms: Option<f64>,
    /// Callers still waiting.
    pub waiting: Option<u32>,
    /// How long a suspected leak's connection has been held, in milliseconds.
    pub held_for_ms: Option<f64>,
    /// The holder's thread (`main`, `worker 3`, or a native thread).
    pub thread: Option<String>,
    /// Where the holder checked the connection out (the JS stack for JS checkouts).
    pub stack: Option<String>,
    /// The core's one-paragraph warning text (holder, server, stack; never credentials).
    pub message: Option<String>,
}

/// The JS callback events go to: called with one `PoolEvent`, unref'd, errors not passed in.
/// `#[napi]` makes it a type of native.d.ts (the pool's constructor names it there).
#[napi]
pub type EventSink = ThreadsafeFunction<PoolEvent, (), PoolEvent, Status, false, true>;

fn count(n: usize) -> Option<u32> {
    Some(u32::try_from(n).unwrap_or(u32::MAX))
}

impl PoolEvent {
    fn new(kind: &str) -> Self {
        PoolEvent {
            kind: kind.into(),
            from: None,
            to: None,
            id: None,
            reason: None,
            max_connections: None,
            waited_ms: None,
            waiting: None,
            held_for_ms: None,
            thread: None,
            stack: None,
            message: None,
        }
    }

    /// The JS shape of a core event of the pool connected to `server` (`host:port` or a socket
    /// path); `None` for kinds this binding does not know yet.
    pub fn from_core(event: &Event, server: &str) -> Option<Self> {
        let id = |id: u64| Some(i64::try_from(id).unwrap_or(i64::MAX));
        Some(match event {
            Event::BreakerStateChanged { from, to } => PoolEvent {
                from: Some(from.as_str().into()),
                to: Some(to.as_str().into()),
                ..PoolEvent::new("breaker")
            },
            Event::HealthChanged { from, to } => PoolEvent {
                from: from.map(|s| s.as_str().into()),
                to: Some(to.as_str().into()),
                ..PoolEvent::new("health")
            },
            Event::ConnectionCreated { id: conn } => PoolEvent {
                id: id(*conn),
                ..PoolEvent::new("connectionCreated")
            },
            Event::ConnectionClosed { id: conn, reason } => PoolEvent {
                id: id(*conn),
                reason: Some(reason.as_str().into()),
                ..PoolEvent::new("connectionClosed")
            },
            Event::PoolExhausted { max_connections } => PoolEvent {
                max_connections: count(*max_connections),
                ..PoolEvent::new("poolExhausted")
            },
            Event::AcquireTimedOut { waited, waiting } => PoolEvent {
                waited_ms: Some(waited.as_secs_f64() * 1000.0),
                waiting: count(*waiting),
                ..PoolEvent::new("acquireTimeout")
            },
            Event::LeakSuspected(report) => PoolEvent {
                id: id(report.connection_id),
                held_for_ms: Some(report.held_for.as_secs_f64() * 1000.0),
                thread: Some(report.holder.thread.clone()),
                stack: Some(report.holder.stack.clone()),
                message: Some(report.warning(server)),
                ..PoolEvent::new("leak")
            },
            _ => return None,
        })
    }
}

/// Queues `event` of the pool connected to `server` for JS; never blocks (a full or closing
/// queue drops it).
pub fn forward(sink: &EventSink, server: &str, event: &Event) {
    if let Some(event) = PoolEvent::from_core(event, server) {
        sink.call(event, ThreadsafeFunctionCallMode::NonBlocking);
    }
}
