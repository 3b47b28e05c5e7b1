//! Promise-returning calls: the work runs on a [`redpool::workers`] thread, the JS value is built on
//! the main thread when the promise settles.
//!
//! Each pending promise holds a ref'd threadsafe function (napi-rs's `JsDeferred`), so a command in
//! flight keeps the process alive and an idle client holds nothing that does.
//!
//! Panics: a panic in the work (on the worker) or in building the JS value (on the main thread,
//! inside Node's callback, where unwinding would abort the process) rejects the promise with
//! `ERR_INTERNAL` instead.

use std::panic::{AssertUnwindSafe, catch_unwind};

use napi::bindgen_prelude::*;
use napi::sys;
use redpool::workers;

use crate::errors::{self, Failure};

type Resolver<T> = Box<dyn FnOnce(Env) -> Result<Guarded<T>> + Send>;

/// A result whose conversion to a JS value is a panic boundary.
pub struct Guarded<T>(pub T);

impl<T: ToNapiValue> ToNapiValue for Guarded<T> {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        catch_unwind(AssertUnwindSafe(|| unsafe { T::to_napi_value(env, val.0) }))
            .unwrap_or_else(|payload| Err(Failure::panic(payload).into_napi(&Env::from_raw(env))))
    }
}

/// Starts `work` on a worker thread and returns a promise of its result. A panic in `work` rejects
/// the promise with `ERR_INTERNAL` instead of aborting Node.
pub fn promise<'env, T, F>(env: &'env Env, work: F) -> Result<Object<'env>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce() -> std::result::Result<T, Failure> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<Guarded<T>, Resolver<T>>()?;
    workers::spawn(move || {
        let outcome = errors::catch(work);
        deferred.resolve(Box::new(move |env| match outcome {
            Ok(value) => Ok(Guarded(value)),
            Err(failure) => Err(failure.into_napi(&env)),
        }));
    });
    Ok(promise)
}
