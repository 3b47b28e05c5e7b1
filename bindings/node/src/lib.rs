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

use napi::bindgen_prelude::{Env, Result};
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

/// True when a command's name (any case) alone shows that the command is answered with exactly
/// one reply and leaves the connection as it was (the core's `is_ordinary_name`). The JS client
/// remembers the answer per name and calls [`check_one_shot`] only for the other names.
#[napi]
pub fn is_ordinary_name(env: Env, name: String) -> Result<bool> {
    errors::guard(&env, || Ok(redpool::is_ordinary_name(name.as_bytes())))
}

/// Throws what the shared pool would refuse `command` (`[name, ...args]`, strings or Buffers) with
/// as a one-shot call (the core's `check_one_shot`: SELECT, SUBSCRIBE, a lone WATCH, ...):
/// `ERR_INVALID_ARGUMENT` and the core's message. The JS client calls it before a command joins an
/// auto-pipelined batch, so that a refused command fails alone instead of its whole batch.
#[napi]
pub fn check_one_shot(env: Env, command: convert::JsArgs) -> Result<()> {
    errors::guard(&env, || {
        redpool::check_one_shot(&convert::command(&command)?)?;
        Ok(())
    })
}
