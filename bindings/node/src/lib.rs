//! The Node-API addon of redpool: a thin layer over the core crate (conversion, threading, error
//! mapping). The ioredis-compatible client, auto-pipelining and reply shapes live in JS
//! (`node/lib`); pooling, retries, the breaker and health live in the core.
//!
//! Threading: nothing here waits on the main thread. Calls that can wait run on the addon's own
//! worker threads ([`workers`]), never on libuv's small shared pool; their results become JS values
//! on the main thread when the promise settles ([`task`]).

#![deny(clippy::all)]

mod config;
mod conn;
mod convert;
mod errors;
mod events;
mod pool;
mod stats;
mod task;
mod workers;

use napi_derive::napi;

/// The version of the native addon (the Cargo workspace version).
#[napi]
pub fn version() -> &'static str {
    redpool::VERSION
}

/// The metrics of every open pool of the process (every client created through this addon) in the
/// Prometheus text format; with no pool open, the families' HELP and TYPE lines only. Reads
/// counters only (no I/O), so it is synchronous.
#[napi]
pub fn metrics_text() -> String {
    redpool::registry::metrics_text()
}
