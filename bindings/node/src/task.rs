//! Promise-returning calls: the work runs on a [`crate::workers`] thread, the JS value is built on
//! the main thread when the promise settles.
//!
//! Each pending promise holds a ref'd threadsafe function (napi-rs's `JsDeferred`), so a command in
//! flight keeps the process alive and an idle client holds nothing that does.

use napi::bindgen_prelude::*;

use crate::errors::{self, Failure};
use crate::workers;

type Resolver<T> = Box<dyn FnOnce(Env) -> Result<T> + Send>;

/// Starts `work` on a worker thread and returns a promise of its result. A panic in `work` rejects
/// the promise with `ERR_INTERNAL` instead of aborting Node.
pub fn promise<'env, T, F>(env: &'env Env, work: F) -> Result<Object<'env>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce() -> std::result::Result<T, Failure> + Send + 'static,
{
    let (deferred, promise) = env.create_deferred::<T, Resolver<T>>()?;
    workers::spawn(move || {
        let outcome = errors::catch(work);
        deferred.resolve(Box::new(move |env| match outcome {
            Ok(value) => Ok(value),
            Err(failure) => Err(failure.into_napi(&env)),
        }));
    });
    Ok(promise)
}
