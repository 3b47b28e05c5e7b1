//! The Node-API addon of redpool: a thin layer over the core crate (conversion, threading, error
//! mapping). The ioredis-compatible client, auto-pipelining and reply shapes live in JS
//! (`node/lib`); pooling, retries, the breaker and health live in the core.
//!
//! Threading: nothing here waits on the main thread. Calls that can wait run on the core's worker
//! threads ([`redpool::workers`], which the Python binding's asyncio calls use too), never on
//! libuv's small shared pool; their results become JS values on the main thread when the promise
//! settles ([`task`]).
//!
//! Node never aborts because of the addon: a panic unwinding into Node would abort the process, so
//! every `#[napi]` function and method is a panic boundary (its body in [`errors::guard`] or
//! [`errors::boundary`], its conversions in napi-rs's `catch_unwind`), work on workers and the
//! building of promised values are caught too ([`task`]), and every JS number is checked before it
//! becomes a Rust number or duration ([`numbers`]).

#![deny(clippy::all)]

mod config;
mod conn;
mod convert;
mod errors;
mod events;
mod numbers;
mod packed;
mod pool;
mod stats;
mod task;

use napi::bindgen_prelude::{Either, Env, Object, Result, ToNapiValue};
use napi::sys;
use napi_derive::napi;

use crate::errors::Failure;

/// The version of the native addon (the Cargo workspace version).
#[napi(catch_unwind)]
pub fn version(env: Env) -> Result<&'static str> {
    errors::guard(&env, || Ok(redpool::VERSION))
}

/// The metrics of every open pool of the process (every client created through this addon) in the
/// Prometheus text format; with no pool open, the families' HELP and TYPE lines only. Reads
/// counters only (no I/O), so it is synchronous.
#[napi(catch_unwind)]
pub fn metrics_text(env: Env) -> Result<String> {
    errors::guard(&env, || Ok(redpool::registry::metrics_text()))
}

/// True when a command's name (any case) alone shows that the command is answered with exactly
/// one reply and leaves the connection as it was (the core's `is_ordinary_name`). The JS client
/// remembers the answer per name and calls [`check_one_shot`] only for the other names.
#[napi(catch_unwind)]
pub fn is_ordinary_name(env: Env, name: String) -> Result<bool> {
    errors::guard(&env, || Ok(redpool::is_ordinary_name(name.as_bytes())))
}

/// The positions (0 is the name) of the words of `command` (`[name, ...args]`, strings or
/// Buffers) that are passwords: the core's one rule (`secret_arguments`), as Python uses it. The
/// JS client hides them in the `command` it attaches to reply errors.
#[napi(catch_unwind)]
pub fn secret_arguments(env: Env, command: convert::JsArgs) -> Result<Vec<u32>> {
    errors::guard(&env, || {
        let words: Vec<&[u8]> = command.iter().map(convert::bytes_of).collect();
        // A JS array holds fewer than 2^32 elements, so every position fits.
        Ok(redpool::secret_arguments(&words)
            .into_iter()
            .map(|i| i as u32)
            .collect())
    })
}

/// Throws what the shared pool would refuse `command` (`[name, ...args]`, strings or Buffers) with
/// as a one-shot call (the core's `check_one_shot`: SELECT, SUBSCRIBE, a lone WATCH, ...):
/// `ERR_INVALID_ARGUMENT` and the core's message. The JS client calls it before a command joins an
/// auto-pipelined batch, so that a refused command fails alone instead of its whole batch.
#[napi(catch_unwind)]
pub fn check_one_shot(env: Env, command: convert::JsArgs) -> Result<()> {
    errors::guard(&env, || {
        redpool::check_one_shot(&convert::command(&command)?)?;
        Ok(())
    })
}

/// True when `command` (`[name, ...args]`) blocks (the core's `blocking_reply_timeout`: BLPOP
/// with a valid block time, XREAD BLOCK, WAIT, ...), so the JS client gives it a connection of
/// its own; throws `ERR_INVALID_ARGUMENT` naming the command for a block time over 365 days.
#[napi(catch_unwind)]
pub fn is_blocking(env: Env, command: convert::JsArgs) -> Result<bool> {
    errors::guard(&env, || {
        let cmd = convert::command(&command)?;
        Ok(redpool::blocking_reply_timeout(&cmd, std::time::Duration::ZERO)?.is_some())
    })
}

/// A value whose conversion to JS panics (see [`panic_for_tests`]).
pub struct PanicsWhenConverted;

impl ToNapiValue for PanicsWhenConverted {
    unsafe fn to_napi_value(_env: sys::napi_env, _val: Self) -> Result<sys::napi_value> {
        panic!("redpool test panic: converting a value to JS");
    }
}

/// Test support, not part of the package's API: panics on purpose at `place`, to prove that a
/// panic in the addon becomes an error with a `.code` instead of aborting Node
/// (node/test/bad-numbers.test.mjs). `sync`: in a synchronous function's body (throws
/// `ERR_INTERNAL`); `worker`: in a promise's work on a worker thread (rejects with
/// `ERR_INTERNAL`); `settle`: while the settled promise's value is built on the main thread
/// (rejects with `ERR_INTERNAL`); `return`: while napi-rs converts a synchronous function's return
/// value (throws napi-rs's `GenericFailure`, which the JS layer reports as `ERR_INTERNAL`).
#[napi(
    js_name = "__panicForTests",
    ts_return_type = "Promise<never>",
    catch_unwind
)]
pub fn panic_for_tests<'env>(
    env: &'env Env,
    place: String,
) -> Result<Either<Object<'env>, PanicsWhenConverted>> {
    errors::boundary(env, || match place.as_str() {
        "sync" => panic!("redpool test panic: a synchronous function"),
        "worker" => task::promise(env, || -> std::result::Result<(), Failure> {
            panic!("redpool test panic: a promise's work")
        })
        .map(Either::A),
        "settle" => task::promise(env, || Ok(PanicsWhenConverted)).map(Either::A),
        "return" => Ok(Either::B(PanicsWhenConverted)),
        _ => Err(Failure::invalid(format!(
            "invalid place = {place:?}: must be sync, worker, settle or return"
        ))
        .into_napi(env)),
    })
}
