//! Observability against a real server: Prometheus metrics (validated by `promtool check
//! metrics`), leak detection (and no false positive for a blocking command within its own
//! timeout), runtime resize under concurrent load, and sizing advice from observed load.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use redpool::{CloseReason, Event, LeakReport, Pool, cmd};
use support::proxy::FaultProxy;
use support::{PLUMBING_ONLY, RedisServer, unique_name, wait_until, with_timeout};

const LIMIT: Duration = Duration::from_secs(90);

fn leak_reports(pool: &Pool) -> Arc<Mutex<Vec<LeakReport>>> {
    let reports = Arc::new(Mutex::new(Vec::new()));
    let sink = reports.clone();
    pool.subscribe(move |event| {
        if let Event::LeakSuspected(report) = event {
            sink.lock().unwrap().push(report.clone());
        }
    });
    reports
}

/// Runs `promtool check metrics` on `text`; panics with its output when it finds a problem.
fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package `prometheus`; tests/run.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics found problems:\n{report}\n--- text ---\n{text}"
    );
}

/// The value of the one series whose line starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no series {prefix} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn metrics_text_passes_promtool_and_counts_commands_outcomes_and_durations() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(support::ServerOptions {
            password: Some("s3cret-pass".into()),
            ..Default::default()
        });
        let name = unique_name("metrics");
        let url = format!(
            "redis://:s3cret-pass@127.0.0.1:{}/0?client_name={name}&pool_name=orders&min_idle=1\
             &{PLUMBING_ONLY}",
            server.port()
        );
        let pool = Pool::from_url(&url).unwrap();
        for i in 0..5 {
            pool.execute(cmd("SET").arg(format!("k{i}")).arg("v"))
                .unwrap();
        }
        pool.execute(cmd("GET").arg("k1")).unwrap();
        pool.execute(cmd("LPUSH").arg("k1").arg("x")).unwrap_err(); // WRONGTYPE
        pool.execute(&cmd("NOT-A-REAL-COMMAND")).unwrap_err();
        let replies = pool
            .pipeline(&[
                cmd("GET").arg("k2").clone(),
                cmd("HGET").arg("k2").arg("f").clone(),
            ])
            .unwrap();
        assert_eq!(replies.len(), 2);
        pool.health();

        let text = pool.metrics_text();
        promtool_check(&text);
        let base = format!("pool=\"orders\",server=\"127.0.0.1:{}\"", server.port());
        let series = |name: &str, labels: &str| {
            let sep = if labels.is_empty() { "" } else { "," };
            sample(&text, &format!("{name}{{{base}{sep}{labels}}} "))
        };
        assert_eq!(
            series("redpool_commands_total", "command=\"set\",outcome=\"ok\""),
            5.0
        );
        // 1 GET + 1 GET in the pipeline; the PING/INFO of health() go through a checkout too.
        assert_eq!(
            series("redpool_commands_total", "command=\"get\",outcome=\"ok\""),
            2.0
        );
        assert_eq!(
            series(
                "redpool_commands_total",
                "command=\"lpush\",outcome=\"error\""
            ),
            1.0
        );
        assert_eq!(
            series(
                "redpool_commands_total",
                "command=\"hget\",outcome=\"error\""
            ),
            1.0
        );
        assert_eq!(
            series(
                "redpool_commands_total",
                "command=\"other\",outcome=\"error\""
            ),
            1.0
        );
        assert_eq!(
            series("redpool_command_duration_seconds_count", "command=\"set\""),
            5.0
        );
        assert_eq!(
            series(
                "redpool_command_duration_seconds_bucket",
                "command=\"set\",le=\"+Inf\""
            ),
            5.0
        );
        assert_eq!(
            series(
                "redpool_command_duration_seconds_count",
                "command=\"pipeline\""
            ),
            1.0
        );
        assert_eq!(series("redpool_connection_max", ""), 50.0);
        assert_eq!(series("redpool_connection_idle_min", ""), 1.0);
        assert_eq!(series("redpool_connections", "state=\"used\""), 0.0);
        assert!(series("redpool_connections", "state=\"idle\"") >= 1.0);
        assert!(series("redpool_connection_opened_total", "") >= 1.0);
        assert!(series("redpool_connection_create_time_seconds_count", "") >= 1.0);
        assert!(series("redpool_connection_wait_time_seconds_count", "") >= 9.0);
        assert!(series("redpool_connection_use_time_seconds_count", "") >= 9.0);
        assert_eq!(series("redpool_errors_total", "kind=\"response\""), 2.0);
        assert_eq!(series("redpool_breaker_state", "state=\"closed\""), 1.0);
        assert_eq!(series("redpool_health_status", "status=\"healthy\""), 1.0);
        assert_eq!(series("redpool_health_status", "status=\"unknown\""), 0.0);
        assert!(!text.contains("s3cret-pass"), "no credentials in metrics");
        assert!(
            !text.contains("redacted"),
            "the server label is host:port only"
        );

        // The process-wide text has this pool too, and is valid with several pools.
        let other = Pool::from_url(&format!("{}/0?client_name={name}", server.url()));
        let all = redpool::registry::metrics_text();
        promtool_check(&all);
        assert!(all.contains(&base));
        drop(other);
        pool.close(Duration::ZERO);
        assert!(
            !redpool::registry::metrics_text().contains(&base),
            "closed pools are left out"
        );
    });
}

#[test]
fn command_labels_stay_bounded_whatever_callers_send() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = Pool::from_url(&format!("{}/0?pool_name=bounded", server.url())).unwrap();
        for i in 0..200 {
            let _ = pool.execute(&cmd(&format!("NOSUCHCOMMAND{i}")));
        }
        let text = pool.metrics_text();
        // (The background health check's PING and INFO may have their own series too.)
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("redpool_commands_total{"))
            .collect();
        assert!(
            series.iter().all(|l| !l.contains("nosuchcommand")),
            "no series per unknown name:\n{text}"
        );
        assert_eq!(
            series
                .iter()
                .filter(|l| l.contains("command=\"other\""))
                .count(),
            2,
            "all unknown names in one `other` group (ok and error):\n{text}"
        );
        promtool_check(&text);
    });
}

#[test]
fn a_connection_held_too_long_is_reported_once_with_its_holder() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = Pool::from_url(&format!(
            "{}/0?client_name={}&leak_detection_threshold=200ms",
            server.url(),
            unique_name("leak")
        ))
        .unwrap();
        let reports = leak_reports(&pool);
        let holder = thread::Builder::new()
            .name("slow-holder".into())
            .spawn({
                let pool = pool.clone();
                move || {
                    let mut conn = pool.acquire().unwrap();
                    conn.execute(&cmd("PING")).unwrap();
                    thread::sleep(Duration::from_millis(900));
                }
            })
            .unwrap();
        wait_until("the leak is reported", Duration::from_secs(10), || {
            !reports.lock().unwrap().is_empty()
        });
        holder.join().unwrap();
        thread::sleep(Duration::from_millis(300));
        let reports = reports.lock().unwrap().clone();
        assert_eq!(reports.len(), 1, "reported once per checkout: {reports:?}");
        let report = &reports[0];
        assert!(report.held_for >= Duration::from_millis(200));
        assert!(report.holder.thread.contains("slow-holder"), "{report:?}");
        assert!(
            report.holder.stack.contains("observability"),
            "the stack names the acquiring test: {}",
            report.holder.stack
        );
        assert_eq!(pool.stats().leaks_suspected, 1);
        assert!(pool.metrics_text().lines().any(|l| {
            l.starts_with("redpool_connection_leaks_suspected_total{") && l.ends_with(" 1")
        }));
    });
}

#[test]
fn a_blocking_command_within_its_own_timeout_is_not_a_leak() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool =
            Pool::from_url(&format!("{}/0?leak_detection_threshold=1s", server.url())).unwrap();
        let reports = leak_reports(&pool);
        // 1 s: this thread is not stalled that long between the checkout and the BLPOP, or the
        // BLPOP and the return, even on a loaded machine (those moments are not exempt).
        let mut conn = pool.acquire().unwrap();
        // BLPOP waits 1.5 s for a list that never fills: a legitimate long hold.
        let reply = conn
            .execute_with_timeout(
                cmd("BLPOP").arg(unique_name("empty-list")).arg(1.5),
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(reply, redpool::Value::Nil);
        drop(conn);
        // The one-shot form too.
        pool.execute_with_timeout(
            cmd("BLPOP").arg(unique_name("empty-list")).arg(1.2),
            Duration::from_secs(5),
        )
        .unwrap();
        thread::sleep(Duration::from_millis(1200));
        assert!(
            reports.lock().unwrap().is_empty(),
            "{:?}",
            reports.lock().unwrap()
        );
        assert_eq!(pool.stats().leaks_suspected, 0);
    });
}

#[test]
fn a_slow_one_shot_command_is_not_a_leak() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let pool = Pool::from_url(&format!(
            "{}/0?leak_detection_threshold=100ms&socket_timeout=5s",
            proxy.url()
        ))
        .unwrap();
        let reports = leak_reports(&pool);
        proxy.set_latency(Duration::from_millis(400));
        // redpool returns the connection of a one-shot call itself: slow, but never leaked.
        pool.execute(&cmd("PING")).unwrap();
        proxy.set_latency(Duration::ZERO);
        thread::sleep(Duration::from_millis(300));
        assert!(
            reports.lock().unwrap().is_empty(),
            "{:?}",
            reports.lock().unwrap()
        );
    });
}

#[test]
fn resize_under_concurrent_load_serves_every_call() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("resize");
        let pool = Pool::from_url(&format!(
            "{}/0?client_name={name}&max_connections=4&acquire_timeout=10s",
            server.url()
        ))
        .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let workers: Vec<_> = (0..8)
            .map(|t| {
                let (pool, stop, done) = (pool.clone(), stop.clone(), done.clone());
                thread::spawn(move || {
                    let mut failures = Vec::new();
                    for i in 0..100_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let key = format!("resize-{t}-{i}");
                        match pool.execute(cmd("SET").arg(&key).arg(i)) {
                            Ok(_) => {
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => failures.push(err.to_string()),
                        }
                    }
                    failures
                })
            })
            .collect();
        for (max, min_idle) in [(1, 0), (8, 2), (2, 1), (6, 0), (1, 1), (3, 0)] {
            let before = done.load(Ordering::Relaxed);
            pool.resize(max, Some(min_idle)).unwrap();
            wait_until(
                "calls go on after the resize",
                Duration::from_secs(10),
                || done.load(Ordering::Relaxed) >= before + 200,
            );
            let stats = pool.stats();
            assert_eq!((stats.max_connections, stats.min_idle), (max, min_idle));
        }
        // Settled at max 3: the pool shrinks to the cap once returned connections are closed.
        wait_until(
            "open sockets within the new cap",
            Duration::from_secs(10),
            || pool.stats().open <= 3,
        );
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            let failures = worker.join().unwrap();
            assert!(failures.is_empty(), "no call may fail: {failures:?}");
        }
        assert!(pool.stats().closed(CloseReason::Resized) > 0);
        wait_until(
            "the server sees at most 3 pool connections",
            Duration::from_secs(10),
            || server.count_clients_named(&name) <= 3,
        );
        let err = pool.resize(0, Some(0)).unwrap_err();
        assert!(err.to_string().contains("max_connections"), "{err}");
        let err = pool.resize(2, Some(3)).unwrap_err();
        assert!(err.to_string().contains("min_idle"), "{err}");
        // None keeps min_idle, lowered to a smaller cap.
        pool.resize(5, Some(2)).unwrap();
        pool.resize(1, None).unwrap();
        assert_eq!(
            (pool.stats().max_connections, pool.stats().min_idle),
            (1, 1)
        );
    });
}

#[test]
fn growing_the_pool_serves_queued_callers_at_once() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = Pool::from_url(&format!(
            "{}/0?max_connections=1&acquire_timeout=30s",
            server.url()
        ))
        .unwrap();
        let held = pool.acquire().unwrap();
        let waiter = thread::spawn({
            let pool = pool.clone();
            move || pool.acquire().map(|c| c.id())
        });
        wait_until("the caller queues", Duration::from_secs(10), || {
            pool.stats().waiting == 1
        });
        pool.resize(2, None).unwrap();
        let id = waiter
            .join()
            .unwrap()
            .expect("served after the resize, not after 30 s");
        assert_ne!(id, held.id());
    });
}

#[test]
fn health_report_suggests_a_size_from_observed_load() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let pool = Pool::from_url(&format!("{}/0?max_connections=32", proxy.url())).unwrap();
        pool.health(); // starts the window
        proxy.set_latency(Duration::from_millis(10));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let pool = pool.clone();
                thread::spawn(move || {
                    // Over a second of work each: a thread started late on a loaded machine
                    // costs the average little.
                    for _ in 0..100 {
                        pool.execute(&cmd("PING")).unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        proxy.set_latency(Duration::ZERO);
        let sizing = pool.health().sizing;
        // Four callers back to back: about four connections in use on average (a little less,
        // counting thread start-up and the health check itself).
        assert!(
            (2.0..=4.5).contains(&sizing.mean_in_use),
            "mean in use {sizing:?}"
        );
        assert!(
            (4..=10).contains(&sizing.suggested_max_connections),
            "suggestion {sizing:?}"
        );
        assert!(sizing.mean_hold_time >= Duration::from_millis(10));
        assert_eq!(sizing.max_connections, 32);
        assert_eq!(sizing.acquire_timeouts, 0);
    });
}

/// `GET path` on the endpoint; the status line and the body.
fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

/// The one test of this binary that runs the process-wide endpoint: `/metrics` answers (valid
/// text, promtool) while a live `/health` check waits on a stopped server, and after `stop()` the
/// same port can be served again at once, every time. (More endpoint tests: tests/endpoint.rs.)
#[test]
fn endpoint_scrapes_never_wait_for_health_and_stop_frees_the_port() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = Pool::from_url(&format!(
            "{}/0?pool_name=endpoint&socket_timeout=3s&connect_timeout=3s&retries=0",
            server.url()
        ))
        .unwrap();
        pool.execute(&cmd("PING")).unwrap();
        // Not an ephemeral port: another process could be handed it while it is stopped below.
        let port = support::port_outside_the_ephemeral_range();
        let addr = redpool::exporter::serve(&format!("127.0.0.1:{port}")).unwrap();

        server.stop_process();
        let health_done = Arc::new(AtomicBool::new(false));
        let health = {
            let done = health_done.clone();
            thread::spawn(move || {
                let answer = http_get(addr, "/health?live=1");
                done.store(true, Ordering::SeqCst);
                answer
            })
        };
        wait_until("the health check to wait on the server", LIMIT, || {
            pool.stats().in_use == 1
        });
        let (status, body) = http_get(addr, "/metrics");
        assert!(
            !health_done.load(Ordering::SeqCst),
            "/metrics was answered while /health still waited"
        );
        assert!(status.contains("200"), "{status}");
        assert!(body.contains("pool=\"endpoint\""), "{body}");
        promtool_check(&body);
        server.cont_process();
        let (status, _) = health.join().unwrap();
        assert!(status.starts_with("HTTP/1.1 "), "{status}");

        for round in 0..20 {
            assert!(redpool::exporter::stop(), "round {round}");
            let again = redpool::exporter::serve(&addr.to_string())
                .unwrap_or_else(|e| panic!("round {round}: serving {addr} again: {e}"));
            assert_eq!(again, addr);
        }
        assert!(redpool::exporter::stop());
        assert!(!redpool::exporter::stop(), "already stopped");
    });
}

#[test]
fn failed_connects_are_counted_by_kind() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(support::ServerOptions {
            password: Some("right-pass".into()),
            ..Default::default()
        });
        let wrong = Pool::from_url(&format!(
            "redis://:wrong-pass@127.0.0.1:{}/0?pool_name=bad-auth&retries=0",
            server.port()
        ))
        .unwrap();
        assert_eq!(
            wrong.execute(&cmd("PING")).unwrap_err().kind(),
            redpool::ErrorKind::Auth
        );
        let port = support::unused_port();
        let refused = Pool::from_url(&format!(
            "redis://127.0.0.1:{port}/0?pool_name=refused&retries=0"
        ))
        .unwrap();
        refused.execute(&cmd("PING")).unwrap_err();
        for (pool, failed, other) in [
            (&wrong, "auth", "connection"),
            (&refused, "connection", "auth"),
        ] {
            let text = pool.metrics_text();
            promtool_check(&text);
            assert!(!text.contains("wrong-pass"), "no password in metrics");
            let series = |kind: &str| {
                let line = text
                    .lines()
                    .find(|l| {
                        l.starts_with("redpool_connection_errors_total{")
                            && l.contains(&format!("kind=\"{kind}\""))
                    })
                    .unwrap_or_else(|| panic!("no {kind} series in\n{text}"));
                line.rsplit(' ').next().unwrap().parse::<f64>().unwrap()
            };
            assert!(series(failed) >= 1.0, "{failed}:\n{text}");
            assert_eq!(series(other), 0.0, "{other}:\n{text}");
        }
    });
}

/// With no call of the application's own, the maintenance thread checks health every
/// `health_report_interval`: the status in metrics and the `HealthChanged` events follow a server
/// that stops answering and comes back.
#[test]
fn background_health_checks_follow_the_server() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = Pool::from_url(&format!(
            "{}/0?pool_name=background-health&health_report_interval=100ms&socket_timeout=300ms&retries=0",
            server.url()
        ))
        .unwrap();
        let changes = Arc::new(Mutex::new(Vec::new()));
        let sink = changes.clone();
        pool.subscribe(move |event| {
            if let Event::HealthChanged { to, .. } = event {
                sink.lock().unwrap().push(*to);
            }
        });
        let status_is = |status: &str| {
            pool.metrics_text().lines().any(|l| {
                l.starts_with("redpool_health_status{")
                    && l.contains(&format!("status=\"{status}\""))
                    && l.ends_with(" 1")
            })
        };
        wait_until("a background check to find it healthy", LIMIT, || {
            status_is("healthy")
        });
        server.stop_process();
        wait_until("a background check to find it unhealthy", LIMIT, || {
            status_is("unhealthy")
        });
        server.cont_process();
        wait_until("a background check to find it healthy again", LIMIT, || {
            status_is("healthy")
        });
        let seen = changes.lock().unwrap().clone();
        use redpool::HealthStatus::{Healthy, Unhealthy};
        let down = seen.iter().position(|s| *s == Unhealthy);
        assert!(
            down.is_some_and(|d| seen[..d].contains(&Healthy) && seen[d..].contains(&Healthy)),
            "healthy, then unhealthy, then healthy again: {seen:?}"
        );
    });
}

/// The background health check never waits for a connection, and leaves no trace in the callers'
/// statistics: when every connection is busy, no acquire timeout and no error (tests/c/threads.c
/// saw 17 "acquire timeouts" under valgrind that were the check's, not the callers'); when it
/// runs, no acquire and no command. Once a connection is free again, the check runs.
#[test]
fn a_busy_pool_skips_the_background_check_without_counting_it() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = Pool::from_url(&format!(
            "{}/0?pool_name=busy-health&max_connections=1&health_report_interval=20ms",
            server.url()
        ))
        .unwrap();
        wait_until("a first background check", LIMIT, || {
            pool.last_health().is_some()
        });
        let held = pool.acquire().unwrap();
        // About 50 maintenance passes find the check due and the only connection busy.
        thread::sleep(Duration::from_millis(500));
        let busy = pool.stats();
        drop(held);
        assert_eq!(busy.acquire_timeouts, 0, "{busy:?}");
        assert!(busy.errors.iter().all(|(_, n)| *n == 0), "{busy:?}");
        wait_until(
            "a background check after the connection came back",
            LIMIT,
            || {
                pool.last_health()
                    .is_some_and(|(_, age)| age < Duration::from_millis(400))
            },
        );
        let after = pool.stats();
        // The checks' PINGs and INFOs are no commands of the callers, its checkouts no acquires.
        assert_eq!((after.commands, after.acquires), (0, 1), "{after:?}");
        assert_eq!(after.acquire_timeouts, 0, "{after:?}");
        assert!(after.errors.iter().all(|(_, n)| *n == 0), "{after:?}");
    });
}

/// While the background health check holds a connection (its PING waits on a stopped server),
/// that connection is the pool's, not a caller's: `in_use` stays 0 (tests/c/threads.c under
/// valgrind read `in_use` 1 after every caller had finished).
#[test]
fn the_background_checks_connection_is_not_in_the_callers_in_use() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = Pool::from_url(&format!(
            "{}/0?pool_name=check-in-use&health_report_interval=50ms&socket_timeout=5s",
            server.url()
        ))
        .unwrap();
        wait_until("a first background check", LIMIT, || {
            pool.last_health().is_some()
        });
        server.stop_process();
        let mut held = None;
        wait_until("the check to hold its connection", LIMIT, || {
            let s = pool.stats();
            let holding = s.open == 1 && s.idle == 0 && s.connecting == 0;
            if holding {
                held = Some(s);
            }
            holding
        });
        server.cont_process();
        let stats = held.unwrap();
        assert_eq!(stats.in_use, 0, "{stats:?}");
    });
}
