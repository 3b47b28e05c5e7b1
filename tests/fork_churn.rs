//! Fork safety under churn: while other threads subscribe and unsubscribe, run commands, hold and
//! return checkouts (leak tracking), drive a breaker open and half-open, check health and render
//! metrics, the main thread forks 200 times. No lock any of those threads may hold can be
//! inherited held: every child completes a command through the shared pool within 5 s and exits
//! cleanly. Alone in its binary (no other test's threads).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use redpool::{Pool, Value, cmd};
use support::{RedisServer, unused_port, with_timeout};

const FORKS: usize = 200;
/// How long a child may take to answer before it counts as hung.
const CHILD_LIMIT: Duration = Duration::from_secs(5);

/// Forks; the child runs `child` and exits 0 on success, 1 on failure. Returns the child's exit
/// code, or `None` when it did not exit within [`CHILD_LIMIT`] (it is then killed).
fn fork_and_wait(child: impl FnOnce() -> bool) -> Option<i32> {
    // SAFETY: the child runs `child` and `_exit`s without unwinding into the parent's state.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(false);
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let deadline = Instant::now() + CHILD_LIMIT;
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child without blocking.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        }
        if Instant::now() >= deadline {
            // SAFETY: our own child, hung: kill and reap it.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn two_hundred_forks_amid_churn_each_child_completes_a_command() {
    with_timeout(Duration::from_secs(240), || {
        let server = RedisServer::start();
        let url = format!(
            "{}/0?max_connections=4&leak_detection_threshold=1ms&health_report_interval=50ms",
            server.url()
        );
        let pool = redpool::shared(&url).expect("pool");
        // A second pool against nothing, whose breaker keeps opening and probing.
        let dead = Pool::from_url(&format!(
            "redis://127.0.0.1:{}/0?breaker_failure_threshold=1&breaker_recovery_timeout=5ms\
             &retries=0&reconnect_backoff_base=1ms&reconnect_backoff_cap=2ms&connect_timeout=50ms",
            unused_port()
        ))
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut churners = Vec::new();
        for role in 0..5 {
            let (pool, dead, stop) = (pool.clone(), dead.clone(), stop.clone());
            churners.push(thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match role {
                        0 => {
                            let id = pool.subscribe(|_| {});
                            let _ = pool.execute(&cmd("PING"));
                            pool.unsubscribe(id);
                        }
                        1 => {
                            // Held past the leak threshold: tracked, reported, returned.
                            if let Ok(mut conn) = pool.acquire() {
                                let _ = conn.execute(&cmd("PING"));
                                thread::sleep(Duration::from_millis(2));
                            }
                        }
                        2 => {
                            let _ = dead.execute(&cmd("PING"));
                        }
                        3 => {
                            let _ = pool.health();
                            let _ = redpool::registry::metrics_text();
                        }
                        _ => {
                            let _ = pool.pipeline(&[cmd("INCR").arg("churn").clone()]);
                        }
                    }
                }
            }));
        }
        thread::sleep(Duration::from_millis(100));
        let mut failures = Vec::new();
        for round in 0..FORKS {
            let outcome = fork_and_wait(|| {
                let Ok(pool) = redpool::shared(&url) else {
                    return false;
                };
                let id = pool.subscribe(|_| {});
                let answered = pool.execute(cmd("ECHO").arg("child"))
                    == Ok(Value::BulkString(b"child".to_vec()));
                pool.unsubscribe(id);
                answered && !redpool::registry::metrics_text().is_empty()
            });
            if outcome != Some(0) {
                failures.push(format!("fork {round}: {outcome:?}"));
            }
        }
        stop.store(true, Ordering::Relaxed);
        for churner in churners {
            churner.join().expect("a churning thread panicked");
        }
        assert!(
            failures.is_empty(),
            "children that hung (None) or failed: {failures:?}"
        );
        assert_eq!(
            pool.execute(cmd("ECHO").arg("parent")).unwrap(),
            Value::BulkString(b"parent".to_vec())
        );
    });
}
