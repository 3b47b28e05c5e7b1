//! Calls that do not wait, for asyncio: `Pool.submit_*` hands a call to the core's worker threads
//! ([`redpool::workers`]) and returns at once; the call runs there without the GIL (a job owns
//! its inputs and never touches a Python object), and its result waits in the `Completions`
//! queue of the caller's event loop. The queue signals a file descriptor (an eventfd on Linux, a
//! pipe elsewhere) only when it goes from empty to non-empty; the loop watches that descriptor
//! (`loop.add_reader`) and `drain()` turns every waiting result into a Python value at once, on
//! the loop's thread.
//!
//! A result nobody drains (the loop was closed, or the awaiting task cancelled) is dropped with
//! the queue or ignored by the Python layer; the call itself always ran to completion, so its
//! connection went back to the pool only after its reply was read whole.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyOSError;
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use redpool::Value;

use crate::errors;
use crate::pool::pipeline_replies;
use crate::reply::{self, Decode};

/// What a finished call produced, still without any Python object.
pub enum Outcome {
    /// One command's reply.
    One(redpool::Result<Value>),
    /// A pipeline's replies; those at the indexes in the `Vec<usize>` are never decoded.
    Pipeline(redpool::Result<Vec<Value>>, Vec<usize>),
    /// A transaction's replies; `None` when a WATCHed key changed.
    Transaction(redpool::Result<Option<Vec<Value>>>),
    /// The call panicked (a bug), with the panic's message.
    Panicked(String),
}

/// One finished call: its caller's token, its outcome and how to decode it.
struct Done {
    token: u64,
    outcome: Outcome,
    decode: Option<Decode>,
}

/// The finished calls of one event loop, and the descriptor that tells the loop about them.
struct Queue {
    done: Mutex<Vec<Done>>,
    wakeup: wakeup::Wakeup,
}

impl Queue {
    /// Adds finished calls; signals the loop only when the queue was empty (a non-empty queue
    /// was signalled already and is not drained yet).
    fn push(&self, done: impl IntoIterator<Item = Done>) {
        let was_empty = {
            let mut queue = self.done.lock().unwrap_or_else(PoisonError::into_inner);
            let was_empty = queue.is_empty();
            queue.extend(done);
            was_empty
        };
        if was_empty {
            self.wakeup.signal();
        }
    }
}

/// The most commands one batch takes: a longer run of one loop iteration's commands for one
/// pool is split into several batches, on as many connections.
const MAX_BATCH: usize = 512;

/// After this long without a flush, the next command asks for one again (the flush the first
/// command asked for was never scheduled, e.g. a KeyboardInterrupt came in between; an extra
/// flush finds nothing to send).
const STALE_BATCH: Duration = Duration::from_millis(50);

/// The batches waiting for the next flush.
#[derive(Default)]
struct Pending {
    batches: Vec<Batch>,
    /// When the first of them was started.
    since: Option<Instant>,
}

/// The commands of one pool gathered since the last flush, and who awaits each reply.
struct Batch {
    pool: redpool::Pool,
    cmds: Vec<redpool::Cmd>,
    /// The token and decoding of each command, in the same order.
    callers: Vec<(u64, Option<Decode>)>,
}

/// The completion queue of one event loop: watch `fileno()` for reading, then `drain()`.
#[pyclass(frozen, module = "redpool._native")]
pub struct Completions {
    queue: Arc<Queue>,
    /// The batches not flushed yet (used from the loop's thread only).
    pending: Mutex<Pending>,
    /// The process that made it: a forked child never reads the parent's descriptor (it would
    /// take the parent's signal).
    pid: u32,
}

impl Completions {
    /// Runs `work` on a worker thread and queues its outcome under `token`. Returns at once.
    pub fn submit<F>(&self, token: u64, decode: Option<Decode>, work: F)
    where
        F: FnOnce() -> Outcome + Send + 'static,
    {
        let queue = self.queue.clone();
        redpool::workers::spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(work))
                .unwrap_or_else(|payload| Outcome::Panicked(panic_message(payload.as_ref())));
            queue.push([Done {
                token,
                outcome,
                decode,
            }]);
        });
    }

    /// Adds one ordinary command (no timeout of its own) to the next batch of `pool`; true when
    /// no batch was pending (or none was flushed for [`STALE_BATCH`]), so that the caller
    /// arranges one `flush()`.
    pub fn enqueue(
        &self,
        pool: &redpool::Pool,
        token: u64,
        cmd: redpool::Cmd,
        decode: Option<Decode>,
    ) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let flush = match pending.since {
            Some(since) if !pending.batches.is_empty() => now.duration_since(since) > STALE_BATCH,
            _ => true,
        };
        if flush {
            pending.since = Some(now);
        }
        let open = pending
            .batches
            .iter()
            .position(|batch| batch.pool.same_pool(pool) && batch.cmds.len() < MAX_BATCH);
        let index = open.unwrap_or_else(|| {
            pending.batches.push(Batch {
                pool: pool.clone(),
                cmds: Vec::new(),
                callers: Vec::new(),
            });
            pending.batches.len() - 1
        });
        pending.batches[index].cmds.push(cmd);
        pending.batches[index].callers.push((token, decode));
        flush
    }
}

#[pymethods]
impl Completions {
    /// A new, empty queue with its own descriptor.
    #[new]
    fn new() -> PyResult<Completions> {
        let wakeup = wakeup::Wakeup::new().map_err(|err| PyOSError::new_err(err.to_string()))?;
        Ok(Completions {
            queue: Arc::new(Queue {
                done: Mutex::new(Vec::new()),
                wakeup,
            }),
            pending: Mutex::new(Pending::default()),
            pid: std::process::id(),
        })
    }

    /// The descriptor that becomes readable when calls have finished.
    fn fileno(&self) -> i32 {
        self.queue.wakeup.fd()
    }

    /// Sends every pending batch (see `Pool.submit_execute`), each as one call on a worker
    /// thread: the core's `execute_batch`, one pipeline for the commands of one pool, whose
    /// replies each settle their own caller. Nothing in a forked child (the batches are the
    /// parent's).
    fn flush(&self) {
        let batches = std::mem::take(
            &mut self
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .batches,
        );
        if self.pid != std::process::id() {
            return;
        }
        for Batch {
            pool,
            cmds,
            callers,
        } in batches
        {
            let queue = self.queue.clone();
            redpool::workers::spawn(move || {
                let outcomes: Vec<Outcome> = match catch_unwind(AssertUnwindSafe(|| {
                    pool.execute_batch(&cmds)
                })) {
                    Ok(results) if results.len() == callers.len() => {
                        results.into_iter().map(Outcome::One).collect()
                    }
                    // One result per command is the core's contract; were it broken, every
                    // caller still gets an answer rather than an await that never ends.
                    Ok(_) => panicked(callers.len(), "a batch returned a wrong number of replies"),
                    Err(payload) => panicked(callers.len(), &panic_message(payload.as_ref())),
                };
                let done: Vec<Done> = callers
                    .into_iter()
                    .zip(outcomes)
                    .map(|((token, decode), outcome)| Done {
                        token,
                        outcome,
                        decode,
                    })
                    .collect();
                queue.push(done);
            });
        }
    }

    /// Every finished call, oldest first, as `(token, ok, value)`: `ok` true with the reply (in
    /// the shapes of `Pool.execute`, `pipeline` and `transaction`), false with the exception
    /// instance to raise (never raised here). Empty in a forked child.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        if self.pid != std::process::id() {
            return Ok(list);
        }
        // Cleared before taking: a call finishing after the take signals again.
        self.queue.wakeup.clear();
        let done = std::mem::take(
            &mut *self
                .queue
                .done
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for Done {
            token,
            outcome,
            decode,
        } in done
        {
            let (ok, value) = match to_python(py, outcome, decode.as_ref()) {
                Ok(value) => (true, value),
                Err(err) => (false, err.into_value(py).into_bound(py).into_any()),
            };
            list.append(PyTuple::new(
                py,
                [
                    token.into_pyobject(py)?.into_any(),
                    pyo3::types::PyBool::new(py, ok).to_owned().into_any(),
                    value,
                ],
            )?)?;
        }
        Ok(list)
    }
}

/// What a caught panic says, for the `PanicException` its callers get.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a redpool call panicked".to_string())
}

/// `count` outcomes of a panicked call.
fn panicked(count: usize, message: &str) -> Vec<Outcome> {
    (0..count)
        .map(|_| Outcome::Panicked(message.to_string()))
        .collect()
}

/// An outcome as its Python value, or the exception to raise.
fn to_python<'py>(
    py: Python<'py>,
    outcome: Outcome,
    decode: Option<&Decode>,
) -> PyResult<Bound<'py, PyAny>> {
    match outcome {
        Outcome::One(reply) => {
            reply::to_python(py, reply.map_err(|e| errors::to_pyerr(py, e))?, decode)
        }
        Outcome::Pipeline(replies, raw) => {
            let replies = replies.map_err(|e| errors::to_pyerr(py, e))?;
            Ok(pipeline_replies(py, replies, decode, &raw)?.into_any())
        }
        Outcome::Transaction(replies) => match replies.map_err(|e| errors::to_pyerr(py, e))? {
            Some(replies) => Ok(reply::list(py, replies, decode)?.into_any()),
            None => Ok(py.None().into_bound(py)),
        },
        Outcome::Panicked(message) => Err(PanicException::new_err(message)),
    }
}

/// The descriptor a queue signals.
mod wakeup {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A non-blocking, close-on-exec eventfd (Linux) or pipe (elsewhere); closed on drop.
    pub struct Wakeup {
        read: OwnedFd,
        #[cfg(not(target_os = "linux"))]
        write: OwnedFd,
    }

    impl Wakeup {
        #[cfg(target_os = "linux")]
        pub fn new() -> io::Result<Wakeup> {
            // SAFETY: eventfd takes no pointers; a descriptor it returns is ours to own.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a new descriptor nothing else owns.
            Ok(Wakeup {
                read: unsafe { OwnedFd::from_raw_fd(fd) },
            })
        }

        #[cfg(not(target_os = "linux"))]
        pub fn new() -> io::Result<Wakeup> {
            let mut fds = [0; 2];
            // SAFETY: `fds` has room for the two descriptors pipe writes.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: both are new descriptors nothing else owns.
            let (read, write) =
                unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            for fd in &fds {
                // SAFETY: plain fcntl calls on descriptors owned above.
                unsafe {
                    libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC);
                    let flags = libc::fcntl(*fd, libc::F_GETFL);
                    libc::fcntl(*fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
                }
            }
            Ok(Wakeup { read, write })
        }

        /// The descriptor to watch for reading.
        pub fn fd(&self) -> i32 {
            self.read.as_raw_fd()
        }

        /// Makes the descriptor readable (a full pipe or counter is readable already).
        pub fn signal(&self) {
            #[cfg(target_os = "linux")]
            let (fd, bytes) = (self.read.as_raw_fd(), 1u64.to_ne_bytes());
            #[cfg(not(target_os = "linux"))]
            let (fd, bytes) = (self.write.as_raw_fd(), [1u8]);
            // SAFETY: writes from a live buffer of the given length.
            unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        }

        /// Makes the descriptor not readable until the next `signal`.
        pub fn clear(&self) {
            let mut buf = [0u8; 64];
            // SAFETY: reads into a live buffer of the given length; non-blocking, so an empty
            // counter or pipe returns EAGAIN at once.
            while unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) }
                == buf.len() as isize
            {}
        }
    }
}
