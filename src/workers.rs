//! The process's worker threads, where the bindings run calls that can wait (network, pool,
//! close) without blocking their caller: Node's event loop, or a Python asyncio loop. Generic
//! threads and jobs: nothing here knows a binding's types or the pool.
//!
//! Not a runtime's shared pool (libuv's has 4 threads shared with `fs`, `dns.lookup` and `zlib`,
//! and a few calls waiting on a hung server would stall all file I/O of the process). Threads
//! are started on demand, one per queued job until [`MAX_THREADS`] (tokio's blocking-pool
//! default), and end after [`IDLE_EXIT`] without work. They are plain OS threads: they keep no
//! event loop alive.
//!
//! Fork: the queue's lock is held across `fork()` ([`crate::fork`]), and a child starts with no
//! threads and an empty queue (the parent's threads do not exist there; jobs queued in the parent
//! are forgotten, never run or dropped in the child).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use crate::fork::{self, ForkGuarded};
use crate::sync::{Condvar, HeldLock, Mutex};

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
static FORK_HOOK: Once = Once::new();

/// Runs `job` on a worker thread. Never blocks the caller for longer than a short lock. A job
/// that panics is caught (callers catch their own panics to report them; this only keeps the
/// worker alive). A job must own everything it uses (`'static`).
pub fn spawn(job: impl FnOnce() + Send + 'static) {
    FORK_HOOK.call_once(|| {
        let hook: Arc<dyn ForkGuarded> = Arc::new(Workers);
        fork::guard(Arc::downgrade(&hook));
        // Registered for the life of the process.
        std::mem::forget(hook);
    });
    let mut state = STATE.lock();
    state.queue.push_back(Box::new(job));
    // Every queued job needs a waiting thread of its own, or a new one.
    if state.queue.len() <= state.idle {
        drop(state);
        WORK.notify_one();
        return;
    }
    if state.threads < MAX_THREADS {
        let started = std::thread::Builder::new()
            .name("redpool-worker".into())
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
        let (guard, timed_out) = WORK.wait_until(state, Instant::now() + IDLE_EXIT);
        state = guard;
        state.idle -= 1;
        if timed_out && state.queue.is_empty() {
            state.threads -= 1;
            return;
        }
    }
}

/// The fork hook of the worker threads.
struct Workers;

impl ForkGuarded for Workers {
    fn lock_for_fork(&self, held: &mut Vec<HeldLock>) {
        // SAFETY: `STATE` is a static.
        held.push(unsafe { STATE.hold_across_fork() });
    }

    fn after_fork_in_child(&self) {
        let mut state = STATE.lock();
        // The parent's jobs hold the parent's things (results for its callers): forgotten, never
        // run or dropped here.
        std::mem::forget(std::mem::take(&mut state.queue));
        state.threads = 0;
        state.idle = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn runs_every_job_even_after_a_panic() {
        let (done, results) = mpsc::channel();
        spawn(|| panic!("a job that panics"));
        for i in 0..64 {
            let done = done.clone();
            spawn(move || done.send(i).unwrap());
        }
        let mut got: Vec<i32> = (0..64)
            .map(|_| results.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        got.sort();
        assert_eq!(got, (0..64).collect::<Vec<_>>());
    }
}
