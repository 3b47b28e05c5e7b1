//! Running blocking core calls without the GIL, and keeping Ctrl-C working while they wait.
//!
//! A call runs on the caller's thread with the GIL released, so other Python threads keep going,
//! and with that thread armed ([`redpool::interrupt`]) with a check that runs Python's signal
//! handlers. Python installs its handlers without `SA_RESTART`, so Ctrl-C interrupts a socket
//! read, write or connect on the main thread at once (`EINTR`); the core's other waits (a
//! connection from a full pool, a retry's backoff, a connect in progress, a close's grace) ask the
//! check every 50 ms. When a handler raises (`KeyboardInterrupt`), the core stops the call, drops
//! a connection cut mid-exchange rather than pooling it (so no reply can reach another caller),
//! and the caller gets the handler's exception. Python runs signal handlers on its main thread
//! only, so elsewhere the check returns at once, without the GIL.

use std::cell::RefCell;

use pyo3::prelude::*;

thread_local! {
    /// The exception a signal handler raised during this thread's current call.
    static RAISED: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Runs `job` without the GIL, interruptible by signals (see the module documentation); the
/// exception a signal handler raised meanwhile, if any, in place of its result.
pub fn run<T, F>(py: Python<'_>, job: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    // Left over only if an earlier call panicked after a handler raised.
    RAISED.with(|raised| raised.borrow_mut().take());
    let value = py.detach(|| redpool::interrupt::while_checking(signal_handler_raised, job));
    match RAISED.with(|raised| raised.borrow_mut().take()) {
        Some(err) => {
            // The result may hold a connection, whose return may do I/O: not with the GIL.
            py.detach(move || drop(value));
            Err(err)
        }
        None => Ok(value),
    }
}

/// The core's check for this thread: runs the pending signal handlers (with the GIL) and keeps
/// the exception one raised; true from then on until the call ends.
fn signal_handler_raised() -> bool {
    if RAISED.with(|raised| raised.borrow().is_some()) {
        return true;
    }
    if !on_first_thread() {
        return false;
    }
    match Python::attach(|py| py.check_signals()) {
        Ok(()) => false,
        Err(err) => {
            RAISED.with(|raised| *raised.borrow_mut() = Some(err));
            true
        }
    }
}

/// True on the process's first thread, Python's main thread (where signal handlers run) but in
/// rare embeddings: its thread id is the process id, also in a child forked from any thread.
/// Checked without the GIL, so threads waiting elsewhere do not compete for it every slice.
#[cfg(target_os = "linux")]
fn on_first_thread() -> bool {
    // SAFETY: neither call has preconditions.
    unsafe { libc::gettid() == libc::getpid() }
}

/// Off Linux the check asks Python, which knows its main thread.
#[cfg(not(target_os = "linux"))]
fn on_first_thread() -> bool {
    true
}
