//! Event subscribers are called under no lock: a subscriber may subscribe, unsubscribe (itself
//! included) and fork from inside its call; once `unsubscribe` returns from outside a call, no
//! call of that subscriber is running or will start.

mod support;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redpool::{Event, Pool, cmd};
use support::{RedisServer, with_timeout};

const LIMIT: Duration = Duration::from_secs(60);

/// A dedicated pool whose every new connection raises `ConnectionCreated`.
fn pool(server: &RedisServer) -> Pool {
    Pool::from_url(&format!("{}/0?max_connections=4", server.url())).unwrap()
}

/// Raises one `ConnectionCreated` and one `ConnectionClosed` event.
fn raise_events(pool: &Pool) {
    let conn = pool.acquire().unwrap();
    conn.discard();
}

#[test]
fn a_subscriber_unsubscribes_itself_and_subscribes_another_from_inside_its_call() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server);
        let calls = Arc::new(AtomicUsize::new(0));
        let added = Arc::new(AtomicUsize::new(0));
        let own_id = Arc::new(Mutex::new(None::<u64>));
        let id = {
            let (pool2, calls, added, own_id) =
                (pool.clone(), calls.clone(), added.clone(), own_id.clone());
            pool.subscribe(move |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                let added = added.clone();
                pool2.subscribe(move |_| {
                    added.fetch_add(1, Ordering::SeqCst);
                });
                let me = own_id
                    .lock()
                    .unwrap()
                    .expect("id recorded before the first event");
                assert!(pool2.unsubscribe(me), "the first call removes it");
            })
        };
        *own_id.lock().unwrap() = Some(id);
        raise_events(&pool);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "called once, then gone");
        // The subscriber it added gets the later event of the same acquire/discard, and more.
        raise_events(&pool);
        assert!(added.load(Ordering::SeqCst) >= 2);
        assert!(!pool.unsubscribe(id), "already removed");
    });
}

#[test]
fn unsubscribe_waits_for_the_calls_running_on_other_threads() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server);
        let inside = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let id = {
            let (inside, finished) = (inside.clone(), finished.clone());
            pool.subscribe(move |event| {
                if matches!(event, Event::ConnectionCreated { .. }) {
                    inside.store(true, Ordering::SeqCst);
                    thread::sleep(Duration::from_millis(300));
                    finished.store(true, Ordering::SeqCst);
                }
            })
        };
        let raiser = {
            let pool = pool.clone();
            thread::spawn(move || raise_events(&pool))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !inside.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the event never came");
            thread::sleep(Duration::from_millis(1));
        }
        assert!(pool.unsubscribe(id));
        assert!(
            finished.load(Ordering::SeqCst),
            "unsubscribe returned while the call was still running"
        );
        raiser.join().unwrap();
    });
}

#[test]
fn a_subscriber_may_fork_and_the_child_works() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server);
        let forked = Arc::new(AtomicBool::new(false));
        let child_status = Arc::new(AtomicI32::new(-2));
        let id = {
            let (pool2, forked, child_status) =
                (pool.clone(), forked.clone(), child_status.clone());
            pool.subscribe(move |event| {
                // Once: the child's own new connection raises the event again, in the child.
                if !matches!(event, Event::ConnectionCreated { .. })
                    || forked.swap(true, Ordering::SeqCst)
                {
                    return;
                }
                // SAFETY: the child only runs a command and `_exit`s.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    let ok = pool2.execute(cmd("ECHO").arg("child")).is_ok();
                    // SAFETY: ends the child at once.
                    unsafe { libc::_exit(if ok { 0 } else { 1 }) };
                }
                let mut raw = 0;
                // SAFETY: our own child; the command it runs is bounded by the pool's timeouts.
                unsafe { libc::waitpid(pid, &mut raw, 0) };
                let status = if libc::WIFEXITED(raw) {
                    libc::WEXITSTATUS(raw)
                } else {
                    -1
                };
                child_status.store(status, Ordering::SeqCst);
            })
        };
        raise_events(&pool);
        assert_eq!(child_status.load(Ordering::SeqCst), 0);
        assert!(pool.unsubscribe(id));
        pool.execute(&cmd("PING")).unwrap();
    });
}
