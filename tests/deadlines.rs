//! A deadline is a deadline: a server (or network) that dribbles a reply one byte at a time keeps
//! every single read short, but no call outlives its deadline: `socket_timeout` for the whole
//! exchange, the caller's own deadline when it gives one, `connect_timeout` for the TCP connect,
//! TLS and AUTH/SELECT/SETNAME handshakes together. Through the loopback fault proxy.
//!
//! The bounds asserted are generous (several times the deadline): they tell an answer by the
//! deadline from the ~20 s the dribbled reply would take, not a speed.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use redpool::{CallOptions, ErrorKind, Pool, cmd};
use support::proxy::FaultProxy;
use support::{RedisServer, ServerOptions, TlsKind, with_timeout};

const LIMIT: Duration = Duration::from_secs(60);
/// One byte every 200 ms: a 100-byte reply takes over 20 s.
const DRIBBLE: Duration = Duration::from_millis(200);
/// Far below the 20 s a dribbled reply takes, far above the deadlines used (0.5 s).
const ANSWERED_BY: Duration = Duration::from_secs(4);

fn hundred_byte_value(server: &RedisServer) {
    server.raw().cmd_str(&["SET", "k", &"v".repeat(100)]);
}

#[test]
fn a_dribbled_reply_times_out_by_the_socket_timeout_for_the_whole_reply() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        hundred_byte_value(&server);
        let proxy = FaultProxy::start(server.port());
        let pool = Pool::from_url(&format!(
            "{}/0?socket_timeout=500ms&retries=0&max_connections=1",
            proxy.url()
        ))
        .unwrap();
        pool.execute(&cmd("PING")).unwrap(); // connected before the dribbling starts
        proxy.dribble(Some(DRIBBLE));
        let started = Instant::now();
        let err = pool.execute(cmd("GET").arg("k")).unwrap_err();
        let took = started.elapsed();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(took >= Duration::from_millis(450), "{took:?}");
        assert!(took < ANSWERED_BY, "answered after {took:?}");
        // A pipeline and a transaction are bounded the same way.
        for call in [
            pool.pipeline(&[cmd("GET").arg("k").clone()]).map(drop),
            pool.transaction(&[cmd("GET").arg("k").clone()]).map(drop),
        ] {
            assert_eq!(call.unwrap_err().kind(), ErrorKind::Timeout);
        }
        assert!(started.elapsed() < ANSWERED_BY * 3);
    });
}

#[test]
fn a_callers_deadline_bounds_the_reply_too() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        hundred_byte_value(&server);
        let proxy = FaultProxy::start(server.port());
        // The socket timeout alone would allow 30 s; the caller's deadline is 500 ms.
        let pool = Pool::from_url(&format!(
            "{}/0?socket_timeout=30s&retries=0&max_connections=1",
            proxy.url()
        ))
        .unwrap();
        pool.execute(&cmd("PING")).unwrap();
        proxy.dribble(Some(DRIBBLE));
        let started = Instant::now();
        let options = CallOptions {
            deadline: Some(started + Duration::from_millis(500)),
            ..CallOptions::default()
        };
        let err = pool.execute_with(cmd("GET").arg("k"), options).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(started.elapsed() < ANSWERED_BY, "{:?}", started.elapsed());
        // A blocking command's own reply timeout does not extend past the caller's deadline.
        let started = Instant::now();
        let options = CallOptions {
            deadline: Some(started + Duration::from_millis(500)),
            reply_timeout: Some(Duration::from_secs(30)),
            ..CallOptions::default()
        };
        let err = pool.execute_with(cmd("GET").arg("k"), options).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(started.elapsed() < ANSWERED_BY, "{:?}", started.elapsed());
    });
}

#[test]
fn a_dribbled_handshake_times_out_by_the_connect_timeout() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            password: Some("dribble-pw".into()),
            ..Default::default()
        });
        let proxy = FaultProxy::start(server.port());
        proxy.dribble(Some(DRIBBLE));
        // AUTH and CLIENT SETNAME are answered `+OK` each: 10 bytes, 2 s dribbled.
        let pool = Pool::from_url(&format!(
            "redis://:dribble-pw@127.0.0.1:{}/0?connect_timeout=500ms&retries=0",
            proxy.port()
        ))
        .unwrap();
        let started = Instant::now();
        let err = pool.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.message().contains("handshake"), "{err}");
        assert!(started.elapsed() < ANSWERED_BY, "{:?}", started.elapsed());
    });
}

#[test]
fn a_dribbled_tls_handshake_times_out_by_the_connect_timeout() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            tls: Some(TlsKind::Valid),
            ..Default::default()
        });
        let proxy = FaultProxy::start(server.tls_port().unwrap());
        proxy.dribble(Some(Duration::from_millis(50)));
        let pool = Pool::from_url(&format!(
            "rediss://localhost:{}/0?tls_ca_file={}&connect_timeout=500ms&retries=0",
            proxy.port(),
            server.ca_file().display()
        ))
        .unwrap();
        let started = Instant::now();
        let err = pool.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(err.message().contains("TLS handshake"), "{err}");
        assert!(started.elapsed() < ANSWERED_BY, "{:?}", started.elapsed());
    });
}

#[test]
fn a_callers_deadline_bounds_opening_and_checking_a_connection_too() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            password: Some("dribble-pw".into()),
            ..Default::default()
        });
        let proxy = FaultProxy::start(server.port());
        // connect_timeout and socket_timeout alone would allow 30 s each.
        let pool = Pool::from_url(&format!(
            "redis://:dribble-pw@127.0.0.1:{}/0?connect_timeout=30s&socket_timeout=30s\
             &health_check_interval=1ms&retries=0&max_connections=1",
            proxy.port()
        ))
        .unwrap();
        let within = |ms: u64| CallOptions {
            deadline: Some(Instant::now() + Duration::from_millis(ms)),
            ..CallOptions::default()
        };
        // The handshake of a new connection.
        proxy.dribble(Some(DRIBBLE));
        let started = Instant::now();
        let err = pool.execute_with(&cmd("PING"), within(500)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(started.elapsed() < ANSWERED_BY, "{:?}", started.elapsed());
        // Cut short by the caller, the attempt says nothing of the server: no reconnect backoff.
        proxy.dribble(None);
        pool.execute_with(&cmd("PING"), within(10_000)).unwrap();
        // The PING that checks a connection idle past health_check_interval (unless the
        // maintenance thread's keepalive PING holds it then: the call then waits for it, also no
        // longer than its deadline).
        thread::sleep(Duration::from_millis(5));
        proxy.dribble(Some(DRIBBLE));
        let started = Instant::now();
        let err = pool.execute_with(&cmd("PING"), within(500)).unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::Timeout | ErrorKind::PoolExhausted),
            "{err}"
        );
        assert!(started.elapsed() < ANSWERED_BY, "{:?}", started.elapsed());
    });
}
