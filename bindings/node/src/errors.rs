//! Error mapping: every core [`redpool::Error`] becomes a JS `Error` whose `.code` names its kind
//! (`ERR_TIMEOUT`, `ERR_POOL_TIMEOUT`, ...). The JS layer turns `ERR_REPLY` into `ReplyError`.
//!
//! napi-rs can only attach its own `Status` as `.code` when it builds an error, so the error object
//! is built here and handed to napi-rs as a retained JS value (`napi::Error::from(Unknown)`), which
//! it throws or rejects with as is, on the sync and the async path alike.

use std::panic::{AssertUnwindSafe, catch_unwind};

use napi::bindgen_prelude::*;
use redpool::ErrorKind;

/// The stable `.code` of a core error kind.
pub fn code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Connection => "ERR_CONNECTION",
        ErrorKind::Timeout => "ERR_TIMEOUT",
        ErrorKind::PoolExhausted => "ERR_POOL_TIMEOUT",
        ErrorKind::CircuitOpen => "ERR_CIRCUIT_OPEN",
        ErrorKind::Auth => "ERR_AUTH",
        ErrorKind::Response => "ERR_REPLY",
        ErrorKind::Protocol => "ERR_PROTOCOL",
        ErrorKind::InvalidArgument => "ERR_INVALID_ARGUMENT",
        ErrorKind::Closed => "ERR_POOL_CLOSED",
        _ => "ERR_INTERNAL",
    }
}

/// What went wrong in a call, as data that can cross threads.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
    /// The core's [`ErrorKind::is_transient`]: `err.transient` in JS.
    pub transient: bool,
    /// An EXECABORT's commands the server rejected while queueing, with their positions among
    /// the commands sent ([`redpool::Error::rejected_commands`]): `err.rejected` in JS, each an
    /// error with its `.index`, which the JS layer turns into ioredis's `previousErrors`.
    pub rejected: Vec<(usize, Failure)>,
}

impl From<redpool::Error> for Failure {
    fn from(err: redpool::Error) -> Self {
        Failure {
            code: code(err.kind()),
            message: err.message().to_string(),
            transient: err.kind().is_transient(),
            rejected: err
                .rejected_commands()
                .iter()
                .map(|(index, command)| (*index, Failure::from(command.clone())))
                .collect(),
        }
    }
}

impl Failure {
    /// A bug caught at the boundary (a panic), reported instead of aborting Node.
    pub fn panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Failure {
            code: "ERR_INTERNAL",
            message: format!("internal error in redpool (a bug, please report it): {detail}"),
            transient: false,
            rejected: Vec::new(),
        }
    }

    /// A bad argument found by the binding itself.
    pub fn invalid(message: impl Into<String>) -> Self {
        Failure {
            code: "ERR_INVALID_ARGUMENT",
            message: message.into(),
            transient: false,
            rejected: Vec::new(),
        }
    }

    /// The JS error object, as a napi-rs error that throws or rejects with exactly that object.
    pub fn into_napi(self, env: &Env) -> Error {
        match self.build(env) {
            Ok(err) => err,
            Err(err) => err,
        }
    }

    fn build(self, env: &Env) -> Result<Error> {
        Ok(Error::from(self.object(env)?.to_unknown()))
    }

    fn object(self, env: &Env) -> Result<Object<'_>> {
        let mut object = env.create_error(Error::new(Status::GenericFailure, self.message))?;
        object.set_named_property("code", self.code)?;
        object.set_named_property("transient", self.transient)?;
        if !self.rejected.is_empty() {
            let mut rejected = env.create_array(self.rejected.len() as u32)?;
            for (slot, (index, failure)) in self.rejected.into_iter().enumerate() {
                let mut command = failure.object(env)?;
                command.set_named_property("index", index as u32)?;
                rejected.set(slot as u32, command)?;
            }
            object.set_named_property("rejected", rejected)?;
        }
        Ok(object)
    }
}

/// Runs `work`, turning a panic in it into an `ERR_INTERNAL` failure instead of letting it unwind
/// into Node (which would abort the process).
pub fn catch<T>(
    work: impl FnOnce() -> std::result::Result<T, Failure>,
) -> std::result::Result<T, Failure> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|payload| Err(Failure::panic(payload)))
}

/// Runs the work of a synchronous addon function: a failure, or a panic ([`catch`]), becomes the
/// coded JS error the function throws.
pub fn guard<T>(env: &Env, work: impl FnOnce() -> std::result::Result<T, Failure>) -> Result<T> {
    catch(work).map_err(|failure| failure.into_napi(env))
}

/// The panic boundary of an addon function's body when it returns napi-rs results (a promise, a
/// class instance): a panic becomes the `ERR_INTERNAL` error the function throws; errors pass as
/// they are. Every `#[napi]` function also has napi-rs's own `catch_unwind`, for its argument and
/// return value conversions; a panic there throws napi-rs's `GenericFailure`, which the JS layer
/// reports as `ERR_INTERNAL` too (`fromNative` in node/lib/errors.js).
pub fn boundary<T>(env: &Env, work: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|payload| Err(Failure::panic(payload).into_napi(env)))
}

/// A binding or core failure on the main thread, as the JS error to throw: `result.or_throw(env)?`.
pub trait OrThrow<T> {
    fn or_throw(self, env: &Env) -> Result<T>;
}

impl<T> OrThrow<T> for std::result::Result<T, Failure> {
    fn or_throw(self, env: &Env) -> Result<T> {
        self.map_err(|failure| failure.into_napi(env))
    }
}
