//! The addon's own worker threads, where every call that can wait (network, pool, close) runs.
//!
//! Not libuv's thread pool: it has 4 threads shared with `fs`, `dns.lookup` and `zlib`, and a few
//! calls waiting on a hung server would stall all file I/O of the process. Threads are started on
//! demand, up to [`MAX_THREADS`] (tokio's blocking-pool default), and end after [`IDLE_EXIT`]
//! without work. They are plain OS threads: they never keep Node's event loop alive.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Upper bound on worker threads; jobs beyond it queue until a thread is free.
const MAX_THREADS: usize = 512;
/// A worker with nothing to do for this long ends.
const IDLE_EXIT: Duration = Duration::from_secs(10);
/// Calls only wait on sockets and locks; they need little stack.
const STACK_SIZE: usize = 1 << 20;

type Job = Box<dyn FnOnce() + Send + 'static>;

struct State {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    queue: VecDeque::new(),
    threads: 0,
    idle: 0,
});
static WORK: Condvar = Condvar::new();

/// Runs `job` on a worker thread. Never blocks the caller. A job that panics is caught (callers
/// catch their own panics to report them; this only keeps the worker alive).
pub fn spawn(job: impl FnOnce() + Send + 'static) {
    let mut state = STATE.lock();
    state.queue.push_back(Box::new(job));
    // Every queued job needs a waiting thread of its own, or a new one.
    if state.queue.len() <= state.idle {
        WORK.notify_one();
        return;
    }
    if state.threads < MAX_THREADS {
        let started = std::thread::Builder::new()
            .name("redpool-node".into())
            .stack_size(STACK_SIZE)
            .spawn(work);
        // If the system refuses a thread, the job stays queued for the running ones (or the next
        // spawn that succeeds).
        if started.is_ok() {
            state.threads += 1;
        }
    }
}

fn work() {
    let mut state = STATE.lock();
    loop {
        if let Some(job) = state.queue.pop_front() {
            drop(state);
            let _ = catch_unwind(AssertUnwindSafe(job));
            state = STATE.lock();
            continue;
        }
        state.idle += 1;
        let timed_out = WORK.wait_for(&mut state, IDLE_EXIT).timed_out();
        state.idle -= 1;
        if timed_out && state.queue.is_empty() {
            state.threads -= 1;
            return;
        }
    }
}
