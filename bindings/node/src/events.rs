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
    /// `acquireTimeout`.
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
}

/// The JS callback events go to: called with one `PoolEvent`, unref'd, errors not passed in.
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
        }
    }

    /// The JS shape of a core event; `None` for kinds this binding does not know yet.
    pub fn from_core(event: &Event) -> Option<Self> {
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
            _ => return None,
        })
    }
}

/// Queues `event` for JS; never blocks (a full or closing queue drops it).
pub fn forward(sink: &EventSink, event: &Event) {
    if let Some(event) = PoolEvent::from_core(event) {
        sink.call(event, ThreadsafeFunctionCallMode::NonBlocking);
    }
}
