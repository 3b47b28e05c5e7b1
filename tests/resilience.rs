//! Resilience against real faults: a stopped server (SIGSTOP) and the circuit breaker, a killed
//! and restarted server under load, lost replies and safe retries, keepalive socket options,
//! background maintenance, health transitions and events.

mod support;

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redpool::{BreakerState, CloseReason, ErrorKind, Event, HealthStatus, Pool, Value, cmd};
use support::proxy::FaultProxy;
use support::{RedisServer, unique_name, wait_until, with_timeout};

const LIMIT: Duration = Duration::from_secs(90);

fn pool_at(url: &str, name: &str, query: &str) -> Pool {
    Pool::from_url(&format!("{url}/0?client_name={name}&{query}")).expect("pool")
}

fn record_events(pool: &Pool) -> Arc<Mutex<Vec<Event>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    pool.subscribe(move |e| sink.lock().unwrap().push(e.clone()));
    events
}

fn breaker_changes(events: &Mutex<Vec<Event>>) -> Vec<(BreakerState, BreakerState)> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::BreakerStateChanged { from, to } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

#[test]
fn stopped_server_fails_within_the_timeout_then_the_breaker_fails_fast_then_recovers() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool_at(
            &server.url(),
            &unique_name("sigstop"),
            // 1 s timeouts, not less: the probe after the resume must succeed on a loaded machine
            // for the transitions to be exactly these.
            "max_connections=2&socket_timeout=1s&connect_timeout=1s&retries=0\
             &breaker_failure_threshold=3&breaker_recovery_timeout=1s",
        );
        let events = record_events(&pool);
        pool.execute(cmd("SET").arg("k").arg("v")).unwrap();
        server.stop_process();
        for _ in 0..3 {
            let started = Instant::now();
            let err = pool.execute(cmd("GET").arg("k")).unwrap_err();
            // A timeout, or the reconnect backoff failing fast after the handshake timed out.
            assert!(
                matches!(err.kind(), ErrorKind::Timeout | ErrorKind::Connection),
                "{err}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "must not hang: {:?}",
                started.elapsed()
            );
        }
        assert_eq!(pool.breaker_state(), BreakerState::Open);
        let before = pool.stats();
        for _ in 0..50 {
            let err = pool.execute(cmd("GET").arg("k")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::CircuitOpen, "{err}");
            assert!(err.to_string().contains("next probe in"), "{err}");
        }
        let after = pool.stats();
        assert_eq!(
            after.commands, before.commands,
            "no command was sent while open"
        );
        assert_eq!(
            after.connect_attempts, before.connect_attempts,
            "no connect while open"
        );
        assert_eq!(after.errors_of(ErrorKind::CircuitOpen), 50);

        server.cont_process();
        wait_until(
            "the recovery timeout to pass and a probe to succeed",
            Duration::from_secs(10),
            || pool.execute(cmd("GET").arg("k")).is_ok(),
        );
        assert_eq!(pool.breaker_state(), BreakerState::Closed);
        assert_eq!(
            pool.execute(cmd("GET").arg("k")).unwrap(),
            Value::BulkString(b"v".to_vec())
        );
        assert_eq!(
            breaker_changes(&events),
            vec![
                (BreakerState::Closed, BreakerState::Open),
                (BreakerState::Open, BreakerState::HalfOpen),
                (BreakerState::HalfOpen, BreakerState::Closed),
            ],
            "one event per transition"
        );
    });
}

#[test]
fn killed_and_restarted_server_under_load() {
    with_timeout(LIMIT, || {
        let mut server = RedisServer::start();
        let name = unique_name("restart");
        let pool = pool_at(
            &server.url(),
            &name,
            "max_connections=4&socket_timeout=500ms&connect_timeout=500ms&acquire_timeout=1s\
             &breaker_recovery_timeout=200ms",
        );
        let stop = Arc::new(AtomicBool::new(false));
        let phase_two = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let late_failures = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let (pool, stop, phase_two) = (pool.clone(), stop.clone(), phase_two.clone());
                let (failures, late_failures) = (failures.clone(), late_failures.clone());
                thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let key = format!("r:{t}");
                        let result = pool
                            .execute(cmd("SET").arg(&key).arg(i))
                            .and_then(|_| pool.execute(cmd("GET").arg(&key)));
                        match result {
                            // The SET reached the killed server and the GET its empty successor
                            // (no persistence): the data died with it, nobody else's reply came.
                            Ok(Value::Nil) if !phase_two.load(Ordering::Relaxed) => {}
                            Ok(v) => assert_eq!(v, Value::BulkString(i.to_string().into_bytes())),
                            Err(err) => {
                                failures.fetch_add(1, Ordering::Relaxed);
                                if phase_two.load(Ordering::Relaxed) {
                                    late_failures.lock().unwrap().push(err.to_string());
                                }
                                thread::sleep(Duration::from_millis(2));
                            }
                        }
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(300));
        let before = pool.stats();
        let failures_before = failures.load(Ordering::Relaxed);
        // Down until a caller has failed, and for at least 700 ms. A fixed outage can pass unseen
        // under load: a call's retries wait for the reconnect gate, whose backoff grows, so calls
        // that started late can outlast it. Every call's retries end, so a failure comes.
        let outage_started = Instant::now();
        server.restart_when(|| {
            wait_until(
                "a caller to see the outage",
                Duration::from_secs(20),
                || {
                    failures.load(Ordering::Relaxed) > failures_before
                        && outage_started.elapsed() >= Duration::from_millis(700)
                },
            )
        });
        let during = pool.stats();
        // Let the pool recover (backoff step + breaker recovery), then demand full success.
        wait_until("the pool to serve again", Duration::from_secs(20), || {
            pool.execute(&cmd("PING")).is_ok()
        });
        thread::sleep(Duration::from_millis(500));
        phase_two.store(true, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(700));
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(
            late_failures.lock().unwrap().clone(),
            Vec::<String>::new(),
            "full success after recovery"
        );
        let attempts = during.connect_attempts - before.connect_attempts;
        assert!(
            attempts <= 4 + 12,
            "connect attempts during the outage are bounded by the backoff, not the callers: {attempts}"
        );
        assert!(server.count_clients_named(&name) <= 4);
        assert!(pool.stats().open <= 4);
    });
}

#[test]
fn lost_reply_of_a_write_is_not_retried_but_a_read_is() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let pool = pool_at(
            &proxy.url(),
            &unique_name("lost"),
            "max_connections=2&socket_timeout=2s",
        );
        pool.execute(cmd("SET").arg("seed").arg("x")).unwrap();

        proxy.lose_next_replies(1);
        let err = pool.execute(cmd("INCR").arg("ledger")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
        assert!(err.request_sent());
        let mut raw = server.raw();
        assert_eq!(
            raw.cmd_str(&["GET", "ledger"]).as_bytes(),
            Some(&b"1"[..]),
            "applied exactly once"
        );
        assert_eq!(pool.stats().retries, 0);

        // A pooled connection is ready, so the lost reply is the GET's, not a handshake's.
        pool.execute(&cmd("PING")).unwrap();
        proxy.lose_next_replies(1);
        let got = pool.execute(cmd("GET").arg("ledger")).unwrap();
        assert_eq!(
            got,
            Value::BulkString(b"1".to_vec()),
            "the read was retried"
        );
        assert_eq!(pool.stats().retries, 1);

        // Opting in retries a write too (and it may then apply twice: here it does).
        pool.execute(&cmd("PING")).unwrap();
        proxy.lose_next_replies(1);
        let options = redpool::CallOptions {
            retry_non_idempotent: Some(true),
            ..Default::default()
        };
        assert_eq!(
            pool.execute_with(cmd("INCR").arg("ledger"), options)
                .unwrap(),
            Value::Int(3)
        );
        assert_eq!(proxy.pending_lost_replies(), 0);
    });
}

fn sockopt(fd: i32, level: i32, name: i32) -> i32 {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: reads one int option of a socket we own into a local.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt failed");
    value
}

#[test]
fn keepalive_options_are_set_on_every_socket() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool_at(
            &server.url(),
            &unique_name("ka"),
            "tcp_keepalive_idle=7s&tcp_keepalive_interval=3&tcp_keepalive_count=4&tcp_user_timeout=20s",
        );
        let conn = pool.acquire().unwrap();
        let fd = conn.as_raw_fd();
        assert_eq!(sockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 7);
        assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 3);
        assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 4);
        assert_eq!(
            sockopt(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
            20_000
        );
        assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
        drop(conn);

        // Defaults: 60 s / 10 s / 5, and TCP_USER_TIMEOUT = idle + interval x count.
        let pool = pool_at(&server.url(), &unique_name("ka-default"), "");
        let conn = pool.acquire().unwrap();
        let fd = conn.as_raw_fd();
        assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), 60);
        assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), 10);
        assert_eq!(sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), 5);
        assert_eq!(
            sockopt(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
            110_000
        );
        drop(conn);

        // Through the environment route, and switched off.
        let vars = [
            ("REDIS_URL", server.url()),
            ("REDIS_TCP_KEEPALIVE", "off".to_string()),
        ];
        let config = redpool::ConfigBuilder::from_env_with(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap()
        .build()
        .unwrap();
        let pool = Pool::new(config).unwrap();
        let conn = pool.acquire().unwrap();
        assert_eq!(
            sockopt(conn.as_raw_fd(), libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            0
        );
        assert_eq!(
            sockopt(conn.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
            0
        );
    });
}

#[test]
fn maintenance_evicts_idle_connections_down_to_min_idle() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("evict");
        let pool = pool_at(
            &server.url(),
            &name,
            "max_connections=4&min_idle=1&idle_timeout=300ms",
        );
        let held: Vec<_> = (0..4).map(|_| pool.acquire().unwrap()).collect();
        // Counted while held: once idle, a stall of this thread lets maintenance evict them.
        assert_eq!(server.count_clients_named(&name), 4);
        drop(held);
        wait_until("idle eviction", Duration::from_secs(10), || {
            let stats = pool.stats();
            stats.open == 1 && stats.closed(CloseReason::IdleTimeout) == 3
        });
        wait_until("the server to see it", Duration::from_secs(5), || {
            server.count_clients_named(&name) == 1
        });
        // It stays at min_idle.
        thread::sleep(Duration::from_millis(500));
        assert_eq!(server.count_clients_named(&name), 1);
    });
}

#[test]
fn maintenance_retires_old_connections_and_refills_min_idle() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("lifetime");
        let pool = pool_at(
            &server.url(),
            &name,
            // Long enough that the first count cannot catch the pool retiring them on a slow machine.
            "max_connections=4&min_idle=2&max_lifetime=1s",
        );
        let first: Vec<String> = ids_named(&server, &name);
        assert_eq!(first.len(), 2);
        wait_until("retirement and refill", Duration::from_secs(10), || {
            pool.stats().closed(CloseReason::MaxLifetime) >= 2 && pool.stats().open == 2
        });
        wait_until(
            "the server to see fresh connections",
            Duration::from_secs(5),
            || {
                let now = ids_named(&server, &name);
                now.len() == 2 && now.iter().all(|id| !first.contains(id))
            },
        );

        // Connections killed by the server are noticed while idle, and min_idle is restored.
        let before = ids_named(&server, &name);
        server.kill_clients_named(&name);
        wait_until("refill after CLIENT KILL", Duration::from_secs(10), || {
            let now = ids_named(&server, &name);
            now.len() == 2 && now.iter().all(|id| !before.contains(id))
        });
        assert!(
            pool.stats().closed(CloseReason::ServerClosed) >= 2
                || pool.stats().closed(CloseReason::MaxLifetime) >= 4
        );
    });
}

/// Idle connections the server closed are found by maintenance, not only at the next checkout:
/// an idle application hears of it (`ConnectionClosed`, reason `server_closed`) and `min_idle` is
/// restored, with no keepalive PING due and nothing checked out; the next write then goes
/// through once.
#[test]
fn maintenance_finds_idle_connections_the_server_closed() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        maintenance_finds_closed(&server, &server.url());
    });
}

/// The same over TLS, where the server's `close_notify` waits on the socket: it is read into the
/// session and seen as the close it is, not taken for a session ticket.
#[test]
fn maintenance_finds_idle_tls_connections_the_server_closed() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(support::ServerOptions {
            tls: Some(support::TlsKind::Valid),
            ..Default::default()
        });
        let ca = server.ca_file().display().to_string();
        maintenance_finds_closed(&server, &format!("{}/0?tls_ca_file={ca}", server.tls_url()));
    });
}

fn maintenance_finds_closed(server: &RedisServer, url: &str) {
    let name = unique_name("peer-closed");
    let separator = if url.contains('?') { '&' } else { '?' };
    let pool = Pool::from_url(&format!(
        "{url}{separator}client_name={name}&max_connections=4&min_idle=2&health_check_interval=1h"
    ))
    .unwrap();
    let events = record_events(&pool);
    wait_until("min_idle open", Duration::from_secs(10), || {
        ids_named(server, &name).len() == 2
    });
    let before = ids_named(server, &name);
    assert_eq!(server.kill_clients_named(&name), 2);
    wait_until("both found and replaced", Duration::from_secs(10), || {
        let now = ids_named(server, &name);
        pool.stats().closed(CloseReason::ServerClosed) == 2
            && now.len() == 2
            && now.iter().all(|id| !before.contains(id))
    });
    assert_eq!(pool.stats().acquires, 0, "no caller was involved");
    let closed = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ConnectionClosed {
                    reason: CloseReason::ServerClosed,
                    ..
                }
            )
        })
        .count();
    assert_eq!(closed, 2);
    let key = unique_name("peer-closed-counter");
    assert_eq!(pool.execute(cmd("INCR").arg(&key)).unwrap(), Value::Int(1));
}

/// A server that accepts connections and closes them at once (a balancer with no backend): a
/// connection opened to keep `min_idle` must answer a PING first, so each refill is a failed
/// connect and backs the reconnect gate off, instead of reconnecting every maintenance period.
#[test]
fn connections_closed_on_arrival_back_the_refills_off() {
    with_timeout(LIMIT, || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let accepts = Arc::new(AtomicUsize::new(0));
        listener.set_nonblocking(true).unwrap();
        let acceptor = thread::spawn({
            let (stop, accepts) = (stop.clone(), accepts.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((socket, _)) => {
                            accepts.fetch_add(1, Ordering::Relaxed);
                            drop(socket);
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            }
        });
        // No handshake to send: only the PING finds the close.
        let pool = Pool::from_url(&format!(
            "redis://127.0.0.1:{port}?min_idle=4&max_connections=4&health_check_interval=1h\
             &reconnect_backoff_base=2s&reconnect_backoff_cap=10s"
        ))
        .unwrap();
        wait_until("the first refill", Duration::from_secs(10), || {
            accepts.load(Ordering::Relaxed) >= 1
        });
        thread::sleep(Duration::from_secs(3));
        stop.store(true, Ordering::Relaxed);
        acceptor.join().unwrap();
        // The gate's steps: 1 to 2 s, then 2 to 4 s, so at most 2 more attempts in the 3 s
        // (without the PING: 4 connections every maintenance period, 12 or more).
        let accepted = accepts.load(Ordering::Relaxed);
        assert!(accepted <= 3, "{accepted} connections in about 3 s");
        assert!(pool.stats().connect_failures >= 1, "{:?}", pool.stats());
    });
}

fn ids_named(server: &RedisServer, name: &str) -> Vec<String> {
    server
        .client_list()
        .into_iter()
        .filter(|c| c.get("name").map(String::as_str) == Some(name))
        .map(|c| c["id"].clone())
        .collect()
}

fn ping_calls(server: &RedisServer) -> u64 {
    let mut raw = server.raw();
    let text = raw.cmd_str(&["INFO", "commandstats"]);
    let text = text.as_str().unwrap_or_default();
    support::parse_info_field(text, "cmdstat_ping")
        .and_then(|v| v.split(',').next().map(str::to_string))
        .and_then(|calls| calls.trim_start_matches("calls=").parse().ok())
        .unwrap_or(0)
}

#[test]
fn idle_connections_are_kept_alive_and_checked_before_reuse() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool_at(
            &server.url(),
            &unique_name("keepalive"),
            "max_connections=1&health_check_interval=150ms",
        );
        pool.execute(cmd("SET").arg("k").arg("v")).unwrap();
        let pings_before = ping_calls(&server);
        wait_until(
            "an idle connection to be PINGed regularly",
            Duration::from_secs(10),
            || ping_calls(&server) >= pings_before + 2,
        );
        assert_eq!(pool.stats().closed_total(), 0, "and kept");

        // A connection that silently stopped answering is found by the PING and replaced.
        let proxy = FaultProxy::start(server.port());
        let pool = pool_at(
            &proxy.url(),
            &unique_name("silent"),
            "max_connections=1&health_check_interval=100ms&socket_timeout=200ms",
        );
        pool.execute(cmd("GET").arg("k")).unwrap();
        proxy.blackhole(true);
        wait_until(
            "the dead connection to be found",
            Duration::from_secs(10),
            || pool.stats().closed(CloseReason::HealthCheckFailed) >= 1,
        );
        proxy.blackhole(false);
        wait_until(
            "a fresh connection to work",
            Duration::from_secs(10),
            || pool.execute(cmd("GET").arg("k")).ok() == Some(Value::BulkString(b"v".to_vec())),
        );
    });
}

#[test]
fn health_reports_transitions_once_each() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool_at(
            &server.url(),
            &unique_name("health"),
            "max_connections=2&health_degraded_latency=1s&health_unhealthy_latency=3s",
        );
        let events = record_events(&pool);
        let report = pool.health();
        assert_eq!(report.status, HealthStatus::Healthy, "{report:?}");
        assert!(report.ping_latency.is_some());
        let info: Vec<&str> = report.server_info.iter().map(|(k, _)| k.as_str()).collect();
        for field in [
            "redis_version",
            "role",
            "connected_clients",
            "used_memory_human",
            "rejected_connections",
        ] {
            assert!(info.contains(&field), "{field} missing from {info:?}");
        }
        assert_eq!(pool.health().status, HealthStatus::Healthy);

        // CLIENT PAUSE answers once the pause is in force, so the PING that follows is held for
        // (almost) the whole pause however slow this machine is; the thresholds leave a wide
        // margin on both sides.
        let pause_server = |millis: &str| {
            let reply = server.raw().cmd_str(&["CLIENT", "PAUSE", millis, "ALL"]);
            assert_eq!(reply.as_str(), Some("OK"), "{reply:?}");
        };
        pause_server("2000");
        let report = pool.health();
        assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
        pause_server("4000");
        let report = pool.health();
        assert_eq!(report.status, HealthStatus::Unhealthy, "{report:?}");
        assert_eq!(pool.health().status, HealthStatus::Healthy);
        assert_eq!(pool.health().status, HealthStatus::Healthy);

        let changes: Vec<_> = events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::HealthChanged { from, to } => Some((*from, *to)),
                _ => None,
            })
            .collect();
        use HealthStatus::*;
        assert_eq!(
            changes,
            vec![
                (None, Healthy),
                (Some(Healthy), Degraded),
                (Some(Degraded), Unhealthy),
                (Some(Unhealthy), Healthy)
            ]
        );
    });
}

#[test]
fn events_are_delivered_and_a_panicking_subscriber_breaks_nothing() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool_at(
            &server.url(),
            &unique_name("events"),
            "max_connections=1&acquire_timeout=100ms",
        );
        pool.subscribe(|_| panic!("a buggy subscriber"));
        let events = record_events(&pool);
        let held = pool.acquire().unwrap();
        assert_eq!(pool.acquire().unwrap_err().kind(), ErrorKind::PoolExhausted);
        let conn = held;
        conn.discard();
        pool.execute(&cmd("PING")).unwrap();
        pool.close(Duration::from_secs(1));
        let seen = events.lock().unwrap().clone();
        let created = seen
            .iter()
            .filter(|e| matches!(e, Event::ConnectionCreated { .. }))
            .count();
        assert_eq!(created, 2, "{seen:?}");
        assert!(
            seen.iter()
                .any(|e| matches!(e, Event::PoolExhausted { max_connections: 1 }))
        );
        assert!(
            seen.iter()
                .any(|e| matches!(e, Event::AcquireTimedOut { .. }))
        );
        assert!(seen.iter().any(|e| matches!(
            e,
            Event::ConnectionClosed {
                reason: CloseReason::Discarded,
                ..
            }
        )));
        assert!(seen.iter().any(|e| matches!(
            e,
            Event::ConnectionClosed {
                reason: CloseReason::PoolClosed,
                ..
            }
        )));
    });
}

#[test]
fn unreachable_server_does_not_cause_a_connect_storm() {
    with_timeout(LIMIT, || {
        let port = support::unused_port();
        let pool = Pool::from_url(&format!(
            "redis://127.0.0.1:{port}?max_connections=16&breaker=false&retries=0"
        ))
        .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        // At least a second and 500 calls, however slowly this machine runs the callers.
        let started = Instant::now();
        let go_on = move |calls: &AtomicUsize| {
            started.elapsed() < Duration::from_secs(30)
                && (started.elapsed() < Duration::from_secs(1)
                    || calls.load(Ordering::Relaxed) < 500)
        };
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (pool, calls) = (pool.clone(), calls.clone());
                thread::spawn(move || {
                    while go_on(&calls) {
                        let err = pool.execute(&cmd("PING")).unwrap_err();
                        assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
                        calls.fetch_add(1, Ordering::Relaxed);
                        thread::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let elapsed = started.elapsed();
        let stats = pool.stats();
        let calls = calls.load(Ordering::Relaxed);
        assert!(calls >= 500, "callers kept calling: {calls}");
        // The first burst (one per caller), then the backoff: 100 ms base with equal jitter,
        // doubling, so the k-th later attempt comes at least 50 ms × (2^k - 1) after the first:
        // about 4 in a second, one more for each doubling of the time.
        let later = u64::from((elapsed.as_millis() as u64 / 50 + 1).ilog2());
        assert!(
            stats.connect_attempts <= 16 + later + 2,
            "{stats:?} in {elapsed:?}"
        );
    });
}
