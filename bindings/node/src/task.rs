//! Promise-returning calls: the work runs on a [`redpool::workers`] thread, the JS value is built on
//! the JS thread when the promise settles.
//!
//! Settling goes through one completion queue per JS thread (the main thread, or a worker_threads
//! thread: one Node environment each), not one threadsafe function per promise: a worker pushes
//! its outcome and, only when the queue goes from empty to non-empty, calls the queue's one
//! threadsafe function (one `uv_async_send`, an eventfd write). The JS thread then settles every
//! queued promise in one callback, so a burst of completions costs one loop wake-up, and their
//! continuations (with the auto-pipeliner's next batch) run in one microtask checkpoint.
//!
//! The threadsafe function is ref'd while its thread has a promise pending and unref'd otherwise,
//! so a command in flight keeps the process alive and an idle client holds nothing that does.
//! When the environment tears down, the queue is closed (an env cleanup hook, and the function's
//! finalizer, whichever runs first): outcomes arriving later are dropped on their worker and the
//! threadsafe function is never called again.
//!
//! Panics: a panic in the work (on the worker) or in building the JS value (on the JS thread,
//! inside Node's callback, where unwinding would abort the process) rejects the promise with
//! `ERR_INTERNAL` instead.

use std::cell::RefCell;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::{check_status, sys};
use parking_lot::Mutex;
use redpool::workers;

use crate::errors::{self, Failure};

/// Builds a settled promise's JS value (or its error) on the JS thread.
type Finish = Box<dyn FnOnce(sys::napi_env) -> Result<sys::napi_value> + Send>;

/// A promise whose work is done, waiting for its JS thread.
struct Settle {
    deferred: Deferred,
    finish: Finish,
}

/// A promise's `napi_deferred`: moved by a worker, only ever used on its JS thread.
struct Deferred(sys::napi_deferred);

// SAFETY: only Node-API calls on the JS thread that created it read the pointer; other threads
// only move it.
unsafe impl Send for Deferred {}

struct Queued {
    settles: Vec<Settle>,
    /// The threadsafe function is set and not closed; never true again once false.
    open: bool,
    tsfn: sys::napi_threadsafe_function,
}

/// The completion queue of one JS thread, shared with the workers running its calls.
struct Queue {
    queued: Mutex<Queued>,
}

// SAFETY: a threadsafe function may be called from any thread; `open`, checked under the lock
// held across the call, guarantees it has not been released or finalized.
unsafe impl Send for Queue {}
unsafe impl Sync for Queue {}

impl Queue {
    /// Queues a settled promise (any thread); wakes the JS thread if the queue was empty.
    fn push(&self, settle: Settle) {
        let mut queued = self.queued.lock();
        if !queued.open {
            return;
        }
        queued.settles.push(settle);
        if queued.settles.len() == 1 {
            // Non-blocking: the function's own queue is unbounded. Its status can only say the
            // environment is closing, which closes this queue too.
            unsafe {
                sys::napi_call_threadsafe_function(
                    queued.tsfn,
                    ptr::null_mut(),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                )
            };
        }
    }

    /// Closes the queue: its settles are dropped, its function never called again. Returns the
    /// function if it was still open.
    fn close(&self) -> Option<sys::napi_threadsafe_function> {
        let mut queued = self.queued.lock();
        let was_open = std::mem::replace(&mut queued.open, false);
        let _dropped = std::mem::take(&mut queued.settles);
        was_open.then_some(queued.tsfn)
    }
}

/// This JS thread's queue and how many of its promises are pending.
struct Local {
    env: sys::napi_env,
    queue: Arc<Queue>,
    pending: usize,
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// This JS thread's queue (created on first use), counting one more pending promise: the first
/// one refs the threadsafe function.
fn enlist(env: &Env) -> Result<Arc<Queue>> {
    LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        let current = match &mut *local {
            Some(current) if current.env == env.raw() => current,
            _ => local.insert(Local {
                env: env.raw(),
                queue: open(env)?,
                pending: 0,
            }),
        };
        let tsfn = current.queue.queued.lock().tsfn;
        if current.pending == 0 {
            check_status!(unsafe { sys::napi_ref_threadsafe_function(current.env, tsfn) })?;
        }
        current.pending += 1;
        Ok(current.queue.clone())
    })
}

/// Counts `settled` promises of `env`'s thread as no longer pending; the last one unrefs the
/// threadsafe function.
fn discharge(env: sys::napi_env, settled: usize) {
    LOCAL.with(|local| {
        let Ok(mut local) = local.try_borrow_mut() else {
            return;
        };
        if let Some(current) = local.as_mut().filter(|current| current.env == env) {
            current.pending = current.pending.saturating_sub(settled);
            if current.pending == 0 {
                let tsfn = current.queue.queued.lock().tsfn;
                unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
            }
        }
    });
}

/// Creates the queue of `env`'s thread: its threadsafe function (unref'd; it holds one count of
/// the queue, given back by [`finalize`]) and the cleanup hook that closes the queue with the
/// environment (holding a count of its own).
fn open(env: &Env) -> Result<Arc<Queue>> {
    let queue = Arc::new(Queue {
        queued: Mutex::new(Queued {
            settles: Vec::new(),
            open: false,
            tsfn: ptr::null_mut(),
        }),
    });
    let name = env.create_string("redpool completions")?;
    let context = Arc::into_raw(queue.clone()).cast_mut().cast::<c_void>();
    let mut tsfn = ptr::null_mut();
    let created = check_status!(unsafe {
        sys::napi_create_threadsafe_function(
            env.raw(),
            ptr::null_mut(),
            ptr::null_mut(),
            name.raw(),
            0,
            1,
            context,
            Some(finalize),
            context,
            Some(drain),
            &mut tsfn,
        )
    });
    if let Err(err) = created {
        // SAFETY: the function was not created, so the count is still ours.
        drop(unsafe { Arc::from_raw(context.cast::<Queue>()) });
        return Err(err);
    }
    {
        let mut queued = queue.queued.lock();
        queued.tsfn = tsfn;
        queued.open = true;
    }
    let hook = Arc::into_raw(queue.clone()).cast_mut().cast::<c_void>();
    let hooked = check_status!(unsafe {
        sys::napi_add_env_cleanup_hook(env.raw(), Some(teardown), hook)
    });
    let unref = hooked.and_then(|()| {
        check_status!(unsafe { sys::napi_unref_threadsafe_function(env.raw(), tsfn) })
    });
    if let Err(err) = unref {
        // Not usable: closed now (the function is released and finalizes later).
        unsafe { teardown(hook) };
        return Err(err);
    }
    Ok(queue)
}

/// The env cleanup hook: closes the queue and releases its threadsafe function, before Node
/// finalizes threadsafe functions (or after: then the queue is closed already).
unsafe extern "C" fn teardown(hook: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `open` gave this hook one count of the queue.
        let queue = unsafe { Arc::from_raw(hook.cast::<Queue>()) };
        if let Some(tsfn) = queue.close() {
            unsafe {
                sys::napi_release_threadsafe_function(
                    tsfn,
                    sys::ThreadsafeFunctionReleaseMode::abort,
                )
            };
        }
        LOCAL.with(|local| {
            let Ok(mut local) = local.try_borrow_mut() else {
                return;
            };
            if local
                .as_ref()
                .is_some_and(|current| Arc::ptr_eq(&current.queue, &queue))
            {
                *local = None;
            }
        });
    }));
}

/// The threadsafe function's finalizer: closes the queue (if the cleanup hook has not) and gives
/// back the function's count of it.
unsafe extern "C" fn finalize(_env: sys::napi_env, context: *mut c_void, _hint: *mut c_void) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `open` gave the function one count of the queue as its context.
        let queue = unsafe { Arc::from_raw(context.cast::<Queue>()) };
        queue.close();
    }));
}

/// The threadsafe function's callback, on the JS thread: settles every queued promise. Called
/// without an environment when the function closes with calls still queued: the queue is closed
/// then, and nothing is settled.
unsafe extern "C" fn drain(
    env: sys::napi_env,
    _callback: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the function's count of the queue lives until `finalize`, after every call.
        let queue = unsafe { &*context.cast::<Queue>() };
        let settles = std::mem::take(&mut queue.queued.lock().settles);
        let settled = settles.len();
        for settle in settles {
            settle_one(env, settle);
        }
        discharge(env, settled);
    }));
}

/// Resolves a promise with its value, or rejects it with its error; a panic while building the
/// value rejects it with `ERR_INTERNAL`.
fn settle_one(env: sys::napi_env, Settle { deferred, finish }: Settle) {
    let value = catch_unwind(AssertUnwindSafe(|| finish(env)))
        .unwrap_or_else(|payload| Err(Failure::panic(payload).into_napi(&Env::from_raw(env))));
    let rejection = match value {
        Ok(value) => match unsafe { sys::napi_resolve_deferred(env, deferred.0, value) } {
            sys::Status::napi_ok => return,
            status => Error::new(Status::from(status), "could not resolve a promise"),
        },
        Err(err) => err,
    };
    // The retained error object itself (`errors::Failure::into_napi`), or one napi-rs builds.
    let mut reason = unsafe { ToNapiValue::to_napi_value(env, rejection) };
    if reason.is_err() {
        reason = unsafe { ToNapiValue::to_napi_value(env, Error::from_reason("internal error")) };
    }
    if let Ok(reason) = reason {
        unsafe { sys::napi_reject_deferred(env, deferred.0, reason) };
    }
}

/// Starts `work` on a worker thread and returns a promise of its result. A panic in `work` rejects
/// the promise with `ERR_INTERNAL` instead of aborting Node.
pub fn promise<'env, T, F>(env: &'env Env, work: F) -> Result<Object<'env>>
where
    T: ToNapiValue + Send + 'static,
    F: FnOnce() -> std::result::Result<T, Failure> + Send + 'static,
{
    let queue = enlist(env)?;
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    if let Err(err) =
        check_status!(unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) })
    {
        discharge(env.raw(), 1);
        return Err(err);
    }
    let deferred = Deferred(deferred);
    workers::spawn(move || {
        let outcome = errors::catch(work);
        queue.push(Settle {
            deferred,
            finish: Box::new(move |env| match outcome {
                Ok(value) => unsafe { T::to_napi_value(env, value) },
                Err(failure) => Err(failure.into_napi(&Env::from_raw(env))),
            }),
        });
    });
    Ok(Object::from_raw(env.raw(), promise))
}
