//! Leak detection: who holds a connection, since when, and which checkouts have been held past
//! `leak_detection_threshold` (HikariCP's `leakDetectionThreshold`).
//!
//! Off by default, and then free: the pool has no tracker and nothing is captured. When on, each
//! explicit checkout (one-shot calls return their connection themselves and are not tracked)
//! registers its holder (thread, and where it was acquired: a native stack captured
//! unresolved, or a description given by a binding, such as a Python or JS stack); the maintenance
//! pass reports each checkout held too long once. Time spent inside a blocking command with its
//! own timeout (BLPOP 30, XREAD BLOCK ...) is not held against the caller: the clock restarts when
//! the command ends.

use std::backtrace::Backtrace;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sync::{HeldLock, Mutex};

/// Who holds a connection, as given by a binding (its own language's thread and stack).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    /// The holder's thread (name or id).
    pub thread: String,
    /// Where the connection was acquired (a stack trace, most recent call first or last as the
    /// language prints it).
    pub stack: String,
}

/// A checkout held longer than the threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakReport {
    /// The connection's process-unique id.
    pub connection_id: u64,
    /// How long it has been held (blocking commands excluded).
    pub held_for: Duration,
    /// Who holds it.
    pub holder: Holder,
}

/// Where a checkout was made: resolved to text only when it is reported.
enum Site {
    Given(Holder),
    Native {
        thread: String,
        stack: Arc<Backtrace>,
    },
}

struct Lease {
    connection_id: u64,
    /// The checkout, or the end of the last blocking command.
    since: Instant,
    /// Inside a blocking command that may legitimately last until then.
    blocking_until: Option<Instant>,
    site: Site,
    reported: bool,
}

/// The live checkouts of one pool (present only when leak detection is on).
pub(crate) struct LeakTracker {
    threshold: Duration,
    leases: Mutex<HashMap<u64, Lease>>,
    next_id: AtomicU64,
}

impl LeakTracker {
    pub fn new(threshold: Duration) -> LeakTracker {
        LeakTracker {
            threshold,
            leases: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Holds the tracker's lock across `fork()` (see [`crate::fork`]).
    ///
    /// # Safety
    /// As for [`Mutex::hold_across_fork`]: the tracker lives until the fork is over.
    pub(crate) unsafe fn hold_across_fork(&self) -> HeldLock {
        // SAFETY: per this function's contract.
        unsafe { self.leases.hold_across_fork() }
    }

    /// Registers a checkout; returns its lease id. Captures the calling thread and stack unless
    /// the binding told who holds it.
    pub fn register(&self, connection_id: u64, holder: Option<Holder>) -> u64 {
        let site = match holder {
            Some(holder) => Site::Given(holder),
            None => Site::Native {
                thread: current_thread(),
                stack: Arc::new(Backtrace::force_capture()),
            },
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.leases.lock().insert(
            id,
            Lease {
                connection_id,
                since: Instant::now(),
                blocking_until: None,
                site,
                reported: false,
            },
        );
        id
    }

    /// A blocking command that may take up to `timeout` starts on lease `id`.
    pub fn blocking_started(&self, id: u64, timeout: Duration) {
        if let Some(lease) = self.leases.lock().get_mut(&id) {
            lease.blocking_until = Some(Instant::now() + timeout);
        }
    }

    /// The blocking command on lease `id` ended: the held time counts again from now.
    pub fn blocking_ended(&self, id: u64) {
        if let Some(lease) = self.leases.lock().get_mut(&id) {
            lease.blocking_until = None;
            lease.since = Instant::now();
        }
    }

    /// The checkout ended.
    pub fn release(&self, id: u64) {
        self.leases.lock().remove(&id);
    }

    /// Checkouts held past the threshold at `now` and not reported before (each reported once).
    /// Stacks are resolved to text after the lock is released.
    pub fn overdue(&self, now: Instant) -> Vec<LeakReport> {
        let found: Vec<(u64, Duration, Holder, Option<Arc<Backtrace>>)> = {
            let mut leases = self.leases.lock();
            leases
                .values_mut()
                .filter(|l| !l.reported)
                .filter_map(|lease| {
                    let held_for = now.saturating_duration_since(lease.since);
                    let excused = lease
                        .blocking_until
                        .is_some_and(|until| now < until + self.threshold);
                    if excused || held_for < self.threshold {
                        return None;
                    }
                    lease.reported = true;
                    Some(match &lease.site {
                        Site::Given(holder) => {
                            (lease.connection_id, held_for, holder.clone(), None)
                        }
                        Site::Native { thread, stack } => (
                            lease.connection_id,
                            held_for,
                            Holder {
                                thread: thread.clone(),
                                stack: String::new(),
                            },
                            Some(stack.clone()),
                        ),
                    })
                })
                .collect()
        };
        found
            .into_iter()
            .map(|(connection_id, held_for, mut holder, stack)| {
                if let Some(stack) = stack {
                    holder.stack = callers_frames(&stack.to_string());
                }
                LeakReport {
                    connection_id,
                    held_for,
                    holder,
                }
            })
            .collect()
    }
}

/// The calling thread as any program can recognise it: its name (`pthread_getname_np`, which C
/// threads and Rust threads alike have) and its OS thread id (`gettid`, what `top -H`, gdb and
/// logs show).
fn current_thread() -> String {
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: the buffer is valid for `name.len()` bytes; the call NUL-terminates what it writes.
    let named =
        unsafe { libc::pthread_getname_np(libc::pthread_self(), name.as_mut_ptr(), name.len()) }
            == 0;
    // SAFETY: NUL-terminated by pthread_getname_np when it succeeded (and zeroed otherwise).
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy();
    let name = if named && !name.is_empty() {
        format!("\"{name}\" ")
    } else {
        String::new()
    };
    #[cfg(target_os = "linux")]
    // SAFETY: gettid takes no arguments and cannot fail.
    let id = format!("tid {}", unsafe { libc::syscall(libc::SYS_gettid) });
    #[cfg(not(target_os = "linux"))]
    let id = format!("{:?}", std::thread::current().id());
    format!("{name}({id})")
}

/// A captured stack without its first frames inside redpool and the standard library (the
/// capture itself, the checkout), so it starts at the code that acquired the connection. The
/// whole text when every frame is ours.
fn callers_frames(stack: &str) -> String {
    const OURS: [&str; 9] = [
        "std::",
        "core::",
        "alloc::",
        "redpool::",
        "<redpool::",
        "<std::",
        "<core::",
        "<alloc::",
        "__rust",
    ];
    let lines: Vec<&str> = stack.lines().collect();
    // A frame starts with its number: "  12: symbol"; "at file:line" lines follow it.
    fn frame_symbol(line: &str) -> Option<&str> {
        let (number, symbol) = line.trim_start().split_once(": ")?;
        number.parse::<usize>().ok().map(|_| symbol)
    }
    let first_foreign = lines.iter().position(|line| {
        frame_symbol(line).is_some_and(|symbol| !OURS.iter().any(|o| symbol.starts_with(o)))
    });
    match first_foreign {
        Some(start) => lines[start..].join("\n"),
        None => stack.to_string(),
    }
}

impl LeakReport {
    /// A one-paragraph warning naming the holder, for logs.
    pub fn warning(&self, server: &str) -> String {
        format!(
            "redpool: connection {} to {server} has been checked out for {:.1}s by thread {} \
             (past leak_detection_threshold): possible leak; acquired at:\n{}",
            self.connection_id,
            self.held_for.as_secs_f64(),
            self.holder.thread,
            self.holder.stack.trim_end(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_once_after_the_threshold_and_forgets_released_leases() {
        let tracker = LeakTracker::new(Duration::from_millis(100));
        let start = Instant::now();
        let id = tracker.register(7, None);
        assert!(tracker.overdue(start).is_empty());
        let later = Instant::now() + Duration::from_millis(150);
        let reports = tracker.overdue(later);
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].connection_id, 7);
        assert!(
            reports[0].holder.thread.contains("(tid "),
            "{:?}",
            reports[0].holder
        );
        assert!(
            !reports[0].holder.stack.contains("LeakTracker::register"),
            "the stack starts below redpool's own frames: {}",
            reports[0].holder.stack
        );
        assert!(tracker.overdue(later).is_empty(), "reported once");
        tracker.release(id);
        assert!(tracker.leases.lock().is_empty());
    }

    #[test]
    fn stacks_start_at_the_callers_frame() {
        let stack = "   0: std::backtrace::Backtrace::create\n             at std/src/backtrace.rs:1\n   1: redpool::leak::LeakTracker::register\n   2: <redpool::pool::Pool as x>::acquire\n   3: app::handler\n             at src/app.rs:10:5\n   4: main";
        assert_eq!(
            callers_frames(stack),
            "   3: app::handler\n             at src/app.rs:10:5\n   4: main"
        );
        let ours = "   0: redpool::x\n   1: std::rt::lang_start";
        assert_eq!(callers_frames(ours), ours, "nothing to keep: all of it");
    }

    #[test]
    fn a_blocking_command_within_its_timeout_is_not_a_leak() {
        let tracker = LeakTracker::new(Duration::from_millis(100));
        let holder = Holder {
            thread: "MainThread".into(),
            stack: "File \"app.py\", line 3".into(),
        };
        let id = tracker.register(1, Some(holder.clone()));
        tracker.blocking_started(id, Duration::from_secs(30));
        let during = Instant::now() + Duration::from_secs(10);
        assert!(tracker.overdue(during).is_empty());
        tracker.blocking_ended(id);
        assert!(tracker.overdue(Instant::now()).is_empty(), "clock restarts");
        let reports = tracker.overdue(Instant::now() + Duration::from_millis(200));
        assert_eq!(reports[0].holder, holder);
        assert!(reports[0].warning("127.0.0.1:6379").contains("app.py"));
    }
}
