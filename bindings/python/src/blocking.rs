//! Running blocking core calls without the GIL, and keeping Ctrl-C working while they wait.
//!
//! Off the main thread a call simply runs detached from the interpreter, so other Python threads
//! keep going. On the main thread (the only one Python delivers signals to) the call runs on a
//! helper thread while the main thread waits for it in short slices and runs the signal handlers
//! between slices: Ctrl-C raises `KeyboardInterrupt` within [`SLICE`]. The interrupted call is
//! not torn down: it finishes on its helper thread within its own timeouts, and the core then
//! returns its connection to the pool only if the exchange completed (clean), so nothing leaks
//! and no reply can reach another caller.
//!
//! Helper threads are reused (a thread is created only when none is idle) and exit after
//! [`IDLE_EXIT`] without work. Only main-thread calls use them, and every job owns its inputs
//! (`'static`): a job never touches a Python object. Both sides poll for [`SPIN`] before they
//! sleep, which keeps the hand-off cheap: a GET on the main thread measured about 30 µs this way
//! against about 70-130 µs with plain blocking hand-offs (and about 25 µs off the main thread).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// How long the main thread waits between two signal checks.
const SLICE: Duration = Duration::from_millis(50);
/// How long a waiting side polls before it sleeps.
const SPIN: Duration = Duration::from_micros(200);
/// An idle helper thread exits after this long.
const IDLE_EXIT: Duration = Duration::from_secs(30);

/// Work for a helper thread: it runs the call and returns how to hand the result over, so the
/// helper is free again before the caller can have the result (and submit its next call).
type Job = Box<dyn FnOnce() -> Delivery + Send>;
/// Hands a finished call's result to its caller.
type Delivery = Box<dyn FnOnce() + Send>;

/// Runs `job` without the GIL and returns its result; on the main thread, interruptible by
/// signals (see the module documentation).
pub fn run<T, F>(py: Python<'_>, job: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !on_main_thread(py)? {
        return Ok(py.detach(job));
    }
    let (done, mut result) = mpsc::sync_channel(1);
    submit(Box::new(move || {
        let value = job();
        Box::new(move || {
            // The receiver is gone when the caller was interrupted: the result is dropped here.
            let _ = done.send(value);
        })
    }));
    loop {
        // The receiver is moved in and out: `detach` needs a `Send` closure.
        let (received, receiver) = py.detach(move || (receive(&result, SLICE), result));
        result = receiver;
        match received {
            Ok(value) => return Ok(value),
            Err(RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "redpool: a helper thread ended without a result",
                ));
            }
        }
    }
}

/// `recv_timeout`, after polling for [`SPIN`] first: most calls finish within a round trip, and
/// catching the result without sleeping saves the wake-up latency of a blocked thread.
fn receive<T>(channel: &mpsc::Receiver<T>, timeout: Duration) -> Result<T, RecvTimeoutError> {
    let started = Instant::now();
    while started.elapsed() < SPIN {
        match channel.try_recv() {
            Ok(value) => return Ok(value),
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => std::thread::yield_now(),
        }
    }
    channel.recv_timeout(timeout)
}

static MAIN_THREAD: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static CURRENT_THREAD: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn on_main_thread(py: Python<'_>) -> PyResult<bool> {
    let main = MAIN_THREAD
        .import(py, "threading", "main_thread")?
        .call0()?;
    let current = CURRENT_THREAD
        .import(py, "threading", "current_thread")?
        .call0()?;
    Ok(main.is(&current))
}

/// Fills this module's caches at import, so no thread fills them later (see `lib.rs`).
pub fn prepare(py: Python<'_>) -> PyResult<()> {
    MAIN_THREAD.import(py, "threading", "main_thread")?;
    CURRENT_THREAD.import(py, "threading", "current_thread")?;
    Ok(())
}

const IDLE: u8 = 0;
const BUSY: u8 = 1;
const GONE: u8 = 2;

/// A helper thread as seen by the submitting side.
struct Helper {
    jobs: mpsc::Sender<Job>,
    state: Arc<AtomicU8>,
}

/// The helper threads of this process. Only main-thread callers lock it, holding the GIL, for a
/// few instructions that cannot release it; helpers never do. Python forks holding the GIL, so a
/// `fork()` never finds it locked by another thread (and were it so, `try_lock` fails and each
/// job gets a thread of its own instead of a hang).
struct Helpers {
    pid: u32,
    threads: Vec<Helper>,
}

static HELPERS: Mutex<Helpers> = Mutex::new(Helpers {
    pid: 0,
    threads: Vec::new(),
});

fn submit(job: Job) {
    let Ok(mut helpers) = HELPERS.try_lock() else {
        spawn(job, None);
        return;
    };
    let pid = std::process::id();
    if helpers.pid != pid {
        // A fresh process, or a forked child, whose helpers stayed in the parent: their channels
        // are forgotten, not dropped (dropping a sender wakes its receiver through the channel's
        // internal lock, which a parent thread may have held at the time of the fork).
        helpers.pid = pid;
        std::mem::forget(std::mem::take(&mut helpers.threads));
    }
    helpers
        .threads
        .retain(|h| h.state.load(Ordering::Acquire) != GONE);
    let idle = helpers.threads.iter().find(|h| {
        h.state
            .compare_exchange(IDLE, BUSY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    });
    match idle {
        Some(helper) => {
            if let Err(mpsc::SendError(job)) = helper.jobs.send(job) {
                spawn(job, None);
            }
        }
        None => {
            let (jobs, inbox) = mpsc::channel();
            let state = Arc::new(AtomicU8::new(BUSY));
            helpers.threads.push(Helper {
                jobs,
                state: state.clone(),
            });
            spawn(job, Some((inbox, state)));
        }
    }
}

/// Runs `job` on a new thread; with an inbox, the thread then stays to serve further jobs. It
/// marks itself idle after each job and before handing its result over, so a caller's next call
/// always finds it free.
fn spawn(job: Job, inbox: Option<(mpsc::Receiver<Job>, Arc<AtomicU8>)>) {
    let spawned = std::thread::Builder::new()
        .name("redpool-call".into())
        .spawn(move || {
            let deliver = job();
            let Some((inbox, state)) = inbox else {
                deliver();
                return;
            };
            state.store(IDLE, Ordering::Release);
            deliver();
            loop {
                let job = match receive(&inbox, IDLE_EXIT) {
                    Ok(job) => job,
                    Err(_) => match state.compare_exchange(
                        IDLE,
                        GONE,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return,
                        // A submitter claimed this thread just now: its job is on the way.
                        Err(_) => match inbox.recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        },
                    },
                };
                let deliver = job();
                state.store(IDLE, Ordering::Release);
                deliver();
            }
        });
    if let Err(err) = spawned {
        // Cannot happen short of resource exhaustion; the waiting caller then sees a
        // disconnected channel and raises.
        eprintln!("redpool: could not start a helper thread: {err}");
    }
}
