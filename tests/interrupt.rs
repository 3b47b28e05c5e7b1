//! A call on a thread armed with `redpool::interrupt::while_checking` stops when its check says
//! so: a reply wait cut by a real signal (`EINTR`), and the waits no signal ends (a connection
//! from a full pool, a retry's backoff, a connect to a listener that never answers), each asked
//! once per slice. After each, the pool holds no connection the call used, and the next call
//! gets its own reply. Unarmed threads are never interrupted.

mod support;

use std::cell::{Cell, RefCell};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use redpool::{Error, Pool, PooledConnection, Value, cmd, interrupt};
use support::{RedisServer, ServerOptions, TlsKind, unique_name, with_timeout};

const LIMIT: Duration = Duration::from_secs(60);
/// How long after the call starts its check begins to say stop.
const STOP_AFTER: Duration = Duration::from_millis(300);
/// Waits in these tests last this long when nothing cuts them short.
const LONG: Duration = Duration::from_secs(30);

thread_local! {
    static STOP_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// This thread's check: stop once `STOP_AT` has passed.
fn past_stop_time() -> bool {
    STOP_AT
        .with(Cell::get)
        .is_some_and(|at| Instant::now() >= at)
}

/// Runs `call` armed, with a check that says stop from `STOP_AFTER` on; returns its result and
/// how long it took.
fn armed_call<T>(call: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    STOP_AT.with(|at| at.set(Some(started + STOP_AFTER)));
    let result = interrupt::while_checking(past_stop_time, call);
    STOP_AT.with(|at| at.set(None));
    (result, started.elapsed())
}

fn pool(server: &RedisServer, query: &str) -> Pool {
    let name = unique_name("interrupt");
    Pool::from_url(&format!("{}/0?client_name={name}&{query}", server.url())).expect("pool")
}

fn assert_interrupted(result: redpool::Result<Value>, took: Duration) {
    let err: Error = result.expect_err("the call should have been interrupted");
    assert!(err.is_interrupted(), "{err:?}");
    // Stopped, not waited out: the waits last LONG.
    assert!(took < LONG / 2, "took {took:?}");
}

/// The pool is sound after an interruption: nothing checked out, and the next call gets its own
/// reply.
fn assert_pool_is_sound(pool: &Pool) {
    assert_eq!(pool.stats().in_use, 0);
    assert_eq!(
        pool.execute(cmd("ECHO").arg("after")).unwrap(),
        Value::BulkString(b"after".to_vec())
    );
}

extern "C" fn on_sigusr1(_: libc::c_int) {}

/// Installs a SIGUSR1 handler without `SA_RESTART`, as Python installs its handlers, so a
/// blocking system call on the signalled thread returns `EINTR`.
fn install_sigusr1_handler() {
    // SAFETY: a zeroed sigaction is valid; the handler is async-signal-safe (it does nothing).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
}

#[test]
fn a_signal_cuts_a_reply_wait_short_and_the_connection_is_not_reused() {
    with_timeout(LIMIT, || {
        install_sigusr1_handler();
        let server = RedisServer::start();
        let pool = pool(&server, "max_connections=1");
        let (me, signalled) = mpsc::channel();
        let signaller = thread::spawn(move || {
            let target: libc::pthread_t = signalled.recv().unwrap();
            thread::sleep(STOP_AFTER * 2);
            // SAFETY: the target thread is blocked in the call below until this signal ends it.
            unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
        });
        // SAFETY: pthread_self has no preconditions.
        me.send(unsafe { libc::pthread_self() }).unwrap();
        let secs = LONG.as_secs().to_string();
        let (result, took) = armed_call(|| pool.execute(cmd("BLPOP").arg("never").arg(&secs)));
        signaller.join().unwrap();
        assert_interrupted(result, took);
        let closed: u64 = pool.stats().connections_closed.iter().map(|(_, n)| n).sum();
        assert_eq!(closed, 1, "the connection cut mid-reply is closed");
        assert_pool_is_sound(&pool);
    });
}

#[test]
fn a_reply_wait_is_cut_short_without_a_signal_over_tcp_and_tls() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            tls: Some(TlsKind::Valid),
            ..Default::default()
        });
        let ca = server.ca_file().display().to_string();
        let urls = [
            format!("{}/0", server.url()),
            format!("{}/0?tls_ca_file={ca}", server.tls_url()),
        ];
        for url in urls {
            let pool = Pool::from_url(&url).unwrap();
            pool.execute(&cmd("PING")).unwrap();
            // The check is asked at the end of every slice of the read: no signal needed.
            let secs = LONG.as_secs().to_string();
            let (result, took) = armed_call(|| pool.execute(cmd("BLPOP").arg("never").arg(&secs)));
            assert_interrupted(result, took);
            assert_pool_is_sound(&pool);
        }
    });
}

#[test]
fn a_checked_out_connection_cut_short_refuses_further_requests() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, "");
        let mut conn = pool.acquire().unwrap();
        let secs = LONG.as_secs().to_string();
        let (result, took) = armed_call(|| conn.execute(cmd("BLPOP").arg("never").arg(&secs)));
        assert_interrupted(result, took);
        // The BLPOP's reply may still come: no later request on this connection may read it.
        let err = conn.execute(cmd("ECHO").arg("mine")).unwrap_err();
        assert!(err.to_string().contains("out of step"), "{err}");
        drop(conn);
        assert_pool_is_sound(&pool);
    });
}

#[test]
fn a_wait_for_a_connection_is_cut_short() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, "max_connections=1&acquire_timeout=30s");
        let held = pool.acquire().unwrap();
        let (result, took) = armed_call(|| pool.execute(cmd("GET").arg("k")));
        assert_interrupted(result, took);
        assert_eq!(pool.stats().waiting, 0, "the waiter left the queue");
        drop(held);
        assert_pool_is_sound(&pool);
    });
}

thread_local! {
    static HELD: RefCell<Option<PooledConnection>> = const { RefCell::new(None) };
}

/// A check that returns this thread's held connection to the pool (to the waiting call) and
/// says stop at the same time.
fn return_the_held_connection_and_stop() -> bool {
    HELD.with(|held| drop(held.borrow_mut().take()));
    true
}

#[test]
fn a_connection_granted_while_the_check_runs_is_given_back() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, "max_connections=1&acquire_timeout=30s");
        HELD.with(|held| *held.borrow_mut() = Some(pool.acquire().unwrap()));
        let result = interrupt::while_checking(return_the_held_connection_and_stop, || {
            pool.execute(cmd("INCR").arg("granted"))
        });
        assert!(result.expect_err("stopped").is_interrupted());
        let stats = pool.stats();
        assert_eq!((stats.open, stats.idle, stats.waiting), (1, 1, 0));
        assert!(
            server.raw().cmd_str(&["GET", "granted"]).is_nil(),
            "INCR never ran"
        );
        assert_pool_is_sound(&pool);
    });
}

#[test]
fn a_retry_backoff_is_cut_short() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(
            &server,
            "socket_timeout=100ms&retries=3&retry_backoff_base=30s&retry_backoff_cap=30s\
             &retry_jitter=none",
        );
        pool.execute(&cmd("PING")).unwrap();
        server.stop_process();
        let (result, took) = armed_call(|| pool.execute(cmd("GET").arg("k")));
        server.cont_process();
        assert_interrupted(result, took);
        assert_eq!(pool.stats().retries, 0, "no retry after the interruption");
        assert_pool_is_sound(&pool);
    });
}

#[test]
fn a_connect_that_gets_no_answer_is_cut_short() {
    with_timeout(LIMIT, || {
        // A listener with a backlog of 0, filled by one connection nobody accepts: the kernel
        // drops the next SYN, so a connect to it waits for connect_timeout.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: listen() on a valid, bound socket.
        assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
        let port = listener.local_addr().unwrap().port();
        let _filler = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let pool = Pool::from_url(&format!(
            "redis://127.0.0.1:{port}/0?connect_timeout=30s&retries=0"
        ))
        .unwrap();
        let (result, took) = armed_call(|| pool.execute(&cmd("PING")));
        assert_interrupted(result, took);
        let stats = pool.stats();
        assert_eq!((stats.open, stats.connecting), (0, 0));
    });
}

#[test]
fn an_unarmed_thread_is_never_interrupted() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, "");
        STOP_AT.with(|at| at.set(Some(Instant::now())));
        // The check would say stop, but this thread is not armed with it.
        let reply = pool.execute(cmd("BLPOP").arg("never").arg("0.5")).unwrap();
        STOP_AT.with(|at| at.set(None));
        assert_eq!(reply, Value::Nil);
    });
}
