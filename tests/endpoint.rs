//! The built-in `/metrics` + `/health` endpoint under hostile or unlucky conditions, with real
//! sockets: clients that dribble their request hold nothing a scrape needs (each request has a
//! whole deadline), more connections than the endpoint keeps, `/health` answering from the
//! latest report without touching a connection (unless `?live=1`), a live check shared by
//! concurrent requests and bounded by the deadline, DNS-rebinding requests (a foreign `Host`)
//! refused, `accept()` failing with EMFILE without spinning, and a forked child that inherits
//! neither the endpoint's socket nor its running state.
//!
//! The endpoint is process-wide, so the tests of this binary take turns (`serial()`); the two that
//! change process-wide state (the descriptor limit, `fork()`) run alone in a child process of
//! this same test binary (`isolated()`).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use redpool::exporter::{self, MAX_CONNECTIONS, REQUEST_DEADLINE};
use redpool::{Pool, cmd};
use support::{PLUMBING_ONLY, RedisServer, unique_name, wait_until, with_timeout};

const LIMIT: Duration = Duration::from_secs(120);

/// One test at a time owns the process-wide endpoint.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The environment variable that tells a child test process which test to run for real.
const ISOLATED: &str = "REDPOOL_ENDPOINT_ISOLATED";

/// Runs `body` alone in a fresh process (this test binary, this one test), so it may change
/// process-wide state; the calling test passes when that process does.
fn isolated(name: &str, body: impl FnOnce()) {
    if std::env::var(ISOLATED).as_deref() == Ok(name) {
        body();
        return;
    }
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ISOLATED, name)
        .output()
        .expect("run the test binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} in its own process: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status
    );
}

/// An HTTP answer: status line, body, and how long the request took.
struct Answer {
    status: String,
    body: String,
    took: Duration,
}

/// `GET path` with `Host: host` (none when None); reads the whole answer (30 s at most).
fn get_with_host(addr: SocketAddr, path: &str, host: Option<&str>) -> Answer {
    let started = Instant::now();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = match host {
        Some(host) => format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
        None => format!("GET {path} HTTP/1.0\r\n\r\n"),
    };
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Answer {
        status: head.lines().next().unwrap_or_default().to_string(),
        body: body.to_string(),
        took: started.elapsed(),
    }
}

/// `GET path` as a scraper sends it (`Host: 127.0.0.1:port`).
fn get(addr: SocketAddr, path: &str) -> Answer {
    get_with_host(addr, path, Some(&addr.to_string()))
}

/// The raw JSON value of `key` in the `/health` entry of the pool named `pool`.
fn field_of(body: &str, pool: &str, key: &str) -> String {
    body.split(&format!("\"pool\":\"{pool}\""))
        .nth(1)
        .and_then(|entry| entry.split(&format!("\"{key}\":")).nth(1))
        .and_then(|rest| rest.split([',', '}']).next())
        .unwrap_or_else(|| panic!("no {key} for {pool} in {body}"))
        .to_string()
}

/// A client that sends `GET /metrics HTTP/1.1\r\n...` one byte every `every`, never finishing;
/// returns how long after connecting the endpoint cut it off (None: not within `limit`).
fn dribble(addr: SocketAddr, every: Duration, limit: Duration) -> Option<Duration> {
    let request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".repeat(100);
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(every)).unwrap();
    for byte in request.iter().cycle() {
        if started.elapsed() > limit {
            return None;
        }
        if stream.write_all(&[*byte]).is_err() {
            return Some(started.elapsed());
        }
        let mut buf = [0u8; 256];
        match stream.read(&mut buf) {
            // Closed, or answered (408): either way cut off.
            Ok(_) => return Some(started.elapsed()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

/// Sixteen clients send a byte every second (under any per-read timeout, and more than the eight
/// request slots the endpoint used to have): scrapes are answered at once all the while, and
/// each slow client is cut off at the request deadline.
#[test]
fn slow_clients_are_cut_off_at_the_deadline_and_scrapes_still_answer() {
    let _serial = serial();
    with_timeout(LIMIT, || {
        let addr = exporter::serve("127.0.0.1:0").unwrap();
        let slow: Vec<_> = (0..16)
            .map(|_| {
                thread::spawn(move || {
                    dribble(addr, Duration::from_secs(1), Duration::from_secs(20))
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(1500));
        for i in 0..5 {
            let answer = get(addr, "/metrics");
            assert!(
                answer.status.contains("200"),
                "scrape {i}: {}",
                answer.status
            );
            assert!(
                answer.took < Duration::from_secs(1),
                "scrape {i} took {:?} while slow clients were connected",
                answer.took
            );
            thread::sleep(Duration::from_millis(300));
        }
        for (i, client) in slow.into_iter().enumerate() {
            let cut = client.join().unwrap();
            let cut = cut.unwrap_or_else(|| panic!("slow client {i} was never cut off"));
            assert!(
                cut >= REQUEST_DEADLINE - Duration::from_millis(100)
                    && cut < REQUEST_DEADLINE + Duration::from_secs(2),
                "slow client {i} cut off after {cut:?}, expected about {REQUEST_DEADLINE:?}"
            );
        }
        assert!(exporter::stop());
    });
}

/// Far more idle connections than the endpoint keeps open (each sent half a request and
/// stopped): a scrape still gets through at once (the oldest half-sent request makes room).
#[test]
fn more_idle_connections_than_the_limit_do_not_lock_scrapers_out() {
    let _serial = serial();
    with_timeout(LIMIT, || {
        let addr = exporter::serve("127.0.0.1:0").unwrap();
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS * 2)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
                s
            })
            .collect();
        thread::sleep(Duration::from_millis(300));
        for i in 0..5 {
            let answer = get(addr, "/metrics");
            assert!(
                answer.status.contains("200"),
                "scrape {i}: {}",
                answer.status
            );
            assert!(
                answer.took < Duration::from_secs(1),
                "scrape {i}: {:?}",
                answer.took
            );
        }
        drop(idle);
        assert!(exporter::stop());
    });
}

/// `/health` answers from the latest report and opens no connection; a pool with no report yet
/// is checked once; `/health?live=1` checks now.
#[test]
fn health_answers_from_the_latest_report_without_a_connection_unless_live() {
    let _serial = serial();
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("endpoint-health");
        // No background checks: every report the endpoint serves is one it was asked for.
        let pool = Pool::from_url(&format!(
            "{}/0?client_name={name}&pool_name={name}&min_idle=0&health_report_interval=0\
             &{PLUMBING_ONLY}",
            server.url()
        ))
        .unwrap();
        let addr = exporter::serve("127.0.0.1:0").unwrap();
        assert!(pool.last_health().is_none());

        // No report yet: this pool is checked once, live.
        let first = get(addr, "/health");
        assert!(
            first.status.contains("200"),
            "{} {}",
            first.status,
            first.body
        );
        assert!(first.body.contains("\"live\":false"), "{}", first.body);
        assert!(
            first.body.contains(&format!("\"pool\":\"{name}\"")),
            "{}",
            first.body
        );
        assert!(
            first.body.contains("\"ping_latency_ms\":"),
            "{}",
            first.body
        );
        assert_eq!(
            pool.stats().acquires,
            1,
            "the first /health checked the pool once"
        );
        assert!(pool.last_health().is_some());

        // From now on: the latest report, its age growing, and no connection touched.
        let acquires = pool.stats().acquires;
        let created = pool.stats().connections_created;
        let clients = server.count_clients_named(&name);
        let mut ages = Vec::new();
        for i in 0..10 {
            let answer = get(addr, "/health");
            assert!(answer.status.contains("200"), "{i}: {}", answer.status);
            let age: u64 = field_of(&answer.body, &name, "age_ms").parse().unwrap();
            ages.push(age);
            thread::sleep(Duration::from_millis(20));
        }
        assert!(ages.windows(2).all(|w| w[0] <= w[1]), "ages {ages:?}");
        assert!(ages[9] >= ages[0] + 150, "ages {ages:?}");
        assert_eq!(pool.stats().acquires, acquires, "/health took a connection");
        assert_eq!(pool.stats().connections_created, created);
        assert_eq!(server.count_clients_named(&name), clients);

        // Asked for: a live check, once per request here.
        let live = get(addr, "/health?live=1");
        assert!(live.status.contains("200"), "{}", live.status);
        assert!(live.body.contains("\"live\":true"), "{}", live.body);
        assert_eq!(pool.stats().acquires, acquires + 1);
        let live = get(addr, "/health?live=1");
        assert!(live.status.contains("200"), "{}", live.status);
        assert_eq!(pool.stats().acquires, acquires + 2);

        // A report the application made itself is served too (it is the latest): a check that
        // waited 300 ms on a frozen server, told apart by its latency.
        server.stop_process();
        let explicit = thread::spawn({
            let pool = pool.clone();
            move || pool.health()
        });
        // The check's PING is sent once it holds the connection: only from then on is it waiting.
        wait_until("the check to hold the connection", LIMIT, || {
            pool.stats().in_use == 1
        });
        thread::sleep(Duration::from_millis(300));
        server.cont_process();
        let report = explicit.join().unwrap();
        let latency = report
            .ping_latency
            .expect("the check succeeded once resumed");
        assert!(latency >= Duration::from_millis(250), "{latency:?}");
        let answer = get(addr, "/health");
        let served = field_of(&answer.body, &name, "ping_latency_ms");
        let served: f64 = served.parse().unwrap();
        assert!(
            (served - latency.as_secs_f64() * 1000.0).abs() < 1.0,
            "served {served} ms, the explicit check measured {latency:?}: {}",
            answer.body
        );
        assert!(exporter::stop());
        pool.close(Duration::from_secs(1));
    });
}

/// Concurrent `/health?live=1` requests while the server is frozen: one live check (one
/// connection) is shared by all of them, and each is answered (503, the check unfinished) within
/// the request deadline.
#[test]
fn a_live_check_is_shared_and_bounded_by_the_deadline() {
    let _serial = serial();
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("endpoint-live");
        let pool = Pool::from_url(&format!(
            "{}/0?pool_name={name}&min_idle=0&health_report_interval=0&socket_timeout=8s&retries=0",
            server.url()
        ))
        .unwrap();
        pool.execute(&cmd("PING")).unwrap();
        let addr = exporter::serve("127.0.0.1:0").unwrap();
        server.stop_process();
        let acquires = pool.stats().acquires;
        let created = pool.stats().connections_created;
        let requests: Vec<_> = (0..8)
            .map(|_| thread::spawn(move || get(addr, "/health?live=1")))
            .collect();
        wait_until("the live check to take its connection", LIMIT, || {
            pool.stats().in_use == 1
        });
        for (i, request) in requests.into_iter().enumerate() {
            let answer = request.join().unwrap();
            assert!(answer.status.contains("503"), "{i}: {}", answer.status);
            assert!(
                answer.body.contains("did not finish"),
                "{i}: {}",
                answer.body
            );
            assert!(
                answer.took <= REQUEST_DEADLINE + Duration::from_millis(500),
                "{i}: answered after {:?}",
                answer.took
            );
        }
        let during = pool.stats();
        server.cont_process();
        wait_until("the live check to end", LIMIT, || {
            let stats = pool.stats();
            stats.in_use == 0 && stats.connecting == 0 && stats.waiting == 0
        });
        thread::sleep(Duration::from_millis(300));
        let after = pool.stats();
        assert_eq!(
            (during.connecting, during.waiting),
            (0, 0),
            "only one check ran: {during:?}"
        );
        assert_eq!(
            after.acquires,
            acquires + 1,
            "8 concurrent live requests shared one check: {after:?}"
        );
        assert_eq!(after.connections_created, created);
        assert!(exporter::stop());
        pool.close(Duration::from_secs(1));
    });
}

/// DNS rebinding: a page on `http://evil.example:PORT/` whose name now resolves to 127.0.0.1
/// sends `Host: evil.example:PORT`. Refused (403), with nothing checked; loopback names pass.
#[test]
fn requests_for_a_foreign_host_are_refused() {
    let _serial = serial();
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("endpoint-host");
        let pool = Pool::from_url(&format!(
            "{}/0?pool_name={name}&min_idle=0&health_report_interval=0",
            server.url()
        ))
        .unwrap();
        let addr = exporter::serve("127.0.0.1:0").unwrap();
        let port = addr.port();
        for host in [
            "evil.example".to_string(),
            format!("evil.example:{port}"),
            format!("localhost.evil.example:{port}"),
            format!("127.0.0.1.nip.io:{port}"),
            format!("10.1.2.3:{port}"),
        ] {
            for path in ["/metrics", "/health", "/health?live=1"] {
                let answer = get_with_host(addr, path, Some(&host));
                assert!(
                    answer.status.contains("403"),
                    "{host} {path}: {}",
                    answer.status
                );
                assert!(
                    !answer.body.contains("redpool_"),
                    "{host} {path}: {}",
                    answer.body
                );
                assert!(
                    !answer.body.contains(&name),
                    "{host} {path}: {}",
                    answer.body
                );
            }
        }
        assert_eq!(
            pool.stats().acquires,
            0,
            "a refused /health checked nothing"
        );
        for host in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            "localhost".to_string(),
            format!("[::1]:{port}"),
        ] {
            let answer = get_with_host(addr, "/metrics", Some(&host));
            assert!(answer.status.contains("200"), "{host}: {}", answer.status);
        }
        // HTTP/1.0 without a Host header (no browser sends that).
        let answer = get_with_host(addr, "/metrics", None);
        assert!(answer.status.contains("200"), "{}", answer.status);
        assert!(exporter::stop());
        pool.close(Duration::from_secs(1));
    });
}

/// CPU time (user + system) of this whole process.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Out of descriptors, `accept()` fails with EMFILE while the connection stays queued: the
/// endpoint pauses (doubling, capped) instead of spinning, and answers once descriptors are back.
#[test]
fn accept_failures_back_off_instead_of_spinning() {
    let _serial = serial();
    isolated("accept_failures_back_off_instead_of_spinning", || {
        with_timeout(LIMIT, || {
            let addr = exporter::serve("127.0.0.1:0").unwrap();
            // A client socket made now: connecting later needs no new descriptor.
            let client =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            // SAFETY: plain libc calls on our own descriptors and limits.
            let (lowest_free, old) = unsafe {
                let probe = libc::fcntl(client.as_raw_fd(), libc::F_DUPFD, 0);
                assert!(probe >= 0);
                libc::close(probe);
                let mut old: libc::rlimit = std::mem::zeroed();
                assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
                (probe, old)
            };
            let lowered = libc::rlimit {
                rlim_cur: lowest_free as libc::rlim_t,
                rlim_max: old.rlim_max,
            };
            // SAFETY: lowers our own soft limit; restored below.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
            client.connect(&addr.into()).unwrap();
            let before = cpu_time();
            thread::sleep(Duration::from_millis(1500));
            let spent = cpu_time() - before;
            // SAFETY: restores the limit read above.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) }, 0);
            assert!(
                spent < Duration::from_millis(300),
                "the process used {spent:?} of CPU in 1.5 s while accept() failed: it spins"
            );
            // Descriptors are back: the queued connection is accepted (within the 1 s cap of
            // the pause) and answered.
            let mut stream: TcpStream = client.into();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            assert!(response.starts_with("HTTP/1.1 200"), "{response:.200}");
            assert!(exporter::stop());
        });
    });
}

/// Runs `child` in a forked child process (after `go` is written to its pipe) and returns its
/// pid and the pipe's write end.
fn fork_child(child: impl FnOnce() -> Result<(), String>) -> (libc::pid_t, libc::c_int) {
    let mut pipe = [0; 2];
    // SAFETY: pipe writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: fork() in a process running this one test; the child runs `child` and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut go = [0u8; 1];
        // SAFETY: the child keeps only the read end (so a parent that dies ends the wait), and
        // reads one byte from it.
        unsafe {
            libc::close(pipe[1]);
            libc::read(pipe[0], go.as_mut_ptr().cast(), 1);
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child))
            .unwrap_or_else(|_| Err("panicked".into()));
        let code = match outcome {
            Ok(()) => 0,
            Err(why) => {
                eprintln!("child: {why}");
                1
            }
        };
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: the parent keeps only the write end.
    unsafe { libc::close(pipe[0]) };
    (pid, pipe[1])
}

/// A forked child inherits neither the endpoint's listening socket (once the parent stops, the
/// port refuses connections and can be served again while the child lives) nor its running state
/// (`stop()` finds nothing; `serve()` starts the child's own endpoint on a new port), and the
/// parent's endpoint keeps answering.
#[test]
fn a_forked_child_has_no_endpoint_and_can_serve_its_own() {
    let _serial = serial();
    isolated(
        "a_forked_child_has_no_endpoint_and_can_serve_its_own",
        || {
            with_timeout(LIMIT, || {
                // Not an ephemeral port: another process could be handed it while it is stopped.
                let port = support::port_outside_the_ephemeral_range();
                let addr = exporter::serve(&format!("127.0.0.1:{port}")).unwrap();
                assert!(get(addr, "/metrics").status.contains("200"));
                let (pid, go) = fork_child(move || {
                    if exporter::stop() {
                        return Err("the child inherited a running endpoint".into());
                    }
                    let mine = exporter::serve("127.0.0.1:0").map_err(|e| e.to_string())?;
                    if mine == addr {
                        return Err(format!("serve() in the child returned the parent's {addr}"));
                    }
                    let answer = get(mine, "/metrics");
                    if !answer.status.contains("200") {
                        return Err(format!("the child's endpoint: {}", answer.status));
                    }
                    let answer = get(addr, "/metrics");
                    if !answer.status.contains("200") {
                        return Err(format!(
                            "the parent's endpoint, from the child: {}",
                            answer.status
                        ));
                    }
                    if !exporter::stop() {
                        return Err("the child's endpoint was not running".into());
                    }
                    Ok(())
                });
                // The child is alive and holds no copy of the listening socket.
                assert!(exporter::stop());
                let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(2));
                assert!(
                    refused.is_err(),
                    "{addr} still accepts connections after stop(): the child kept the socket"
                );
                let again = exporter::serve(&addr.to_string()).unwrap();
                assert_eq!(again, addr);
                // SAFETY: one byte to our child, then wait for it.
                let status = unsafe {
                    assert_eq!(libc::write(go, b"g".as_ptr().cast(), 1), 1);
                    libc::close(go);
                    let mut status = 0;
                    assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
                    status
                };
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "the child failed (status {status:#x}); see its stderr above"
                );
                for _ in 0..3 {
                    assert!(get(addr, "/metrics").status.contains("200"));
                }
                assert!(exporter::stop());
            });
        },
    );
}
