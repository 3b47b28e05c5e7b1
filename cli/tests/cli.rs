//! The `redpool` binary run as a user would, against a throwaway `redis-server` on a free
//! 127.0.0.1 port (see tests/support). Every run of the binary and every wait is bounded.

#[path = "../../tests/support/mod.rs"]
mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use support::{
    RawClient, RawReply, RedisServer, ServerOptions, unique_name, wait_until, with_timeout,
};

/// Hard limit for one test.
const TEST_LIMIT: Duration = Duration::from_secs(90);
/// Hard limit for one run of the binary (the CLI's own timeouts are 2-3 s).
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// What one run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Panics with the whole output unless the exit code is `code`.
    fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the failure was reported as exactly one line on stderr, without a panic, and
    /// returns that line.
    fn one_error_line(&self) -> &str {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr, got:\n{}", self.stderr);
        assert!(lines[0].starts_with("redpool: "), "{}", lines[0]);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        lines[0]
    }
}

/// Runs `redpool args...`, killing it (and failing) if it runs past [`RUN_LIMIT`].
fn redpool(args: &[&str]) -> Run {
    redpool_with_env(args, &[])
}

/// [`redpool`] with environment variables set (and the password variables cleared unless set).
fn redpool_with_env(args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_redpool"));
    command
        .env_remove("REDISCLI_AUTH")
        .env_remove("REDIS_PASSWORD");
    for (name, value) in vars {
        command.env(name, value);
    }
    let mut child = command
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redpool");
    let reader = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).expect("read output");
            text
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("stdout")));
    let stderr = reader(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("redpool {args:?} ran longer than {RUN_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code().expect("exited, not killed by a signal"),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// An oracle connection named `name`; returns it and its `CLIENT ID`.
fn named_client(server: &RedisServer, name: &str) -> (RawClient, String) {
    let mut raw = server.raw();
    assert_eq!(
        raw.cmd_str(&["CLIENT", "SETNAME", name]),
        RawReply::Status("OK".into())
    );
    let id = match raw.cmd_str(&["CLIENT", "ID"]) {
        RawReply::Int(id) => id.to_string(),
        other => panic!("CLIENT ID: {other:?}"),
    };
    (raw, id)
}

/// `CLIENT LIST`'s idle seconds of client `id` (`None` when it is gone).
fn idle_of(server: &RedisServer, id: &str) -> Option<u64> {
    server
        .client_list()
        .into_iter()
        .find(|c| c.get("id").map(String::as_str) == Some(id))
        .and_then(|c| c.get("idle")?.parse().ok())
}

/// Whether client `id` is still connected, asked by a fresh oracle connection.
fn connected(server: &RedisServer, id: &str) -> bool {
    idle_of(server, id).is_some()
}

#[test]
fn help_on_every_command_with_an_example() {
    with_timeout(TEST_LIMIT, || {
        for command in [
            &[][..],
            &["health"],
            &["monitor"],
            &["clients"],
            &["leak-test"],
        ] {
            let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
            let run = redpool(&args);
            run.expect_code(0);
            assert!(
                run.stdout.contains("Usage: redpool"),
                "{args:?}:\n{}",
                run.stdout
            );
            assert!(run.stdout.contains("Example"), "{args:?}:\n{}", run.stdout);
            assert!(
                run.stdout.contains("redis://127.0.0.1:6379"),
                "{args:?}:\n{}",
                run.stdout
            );
        }
        let top = redpool(&["--help"]);
        assert!(top.stdout.contains("Exit codes"), "{}", top.stdout);
        let health = redpool(&["health", "--help"]);
        assert!(health.stdout.contains("2 unhealthy"), "{}", health.stdout);
    });
}

#[test]
fn health_human_and_json() {
    with_timeout(TEST_LIMIT, || {
        let server = RedisServer::start();
        let url = server.url();
        let run = redpool(&["health", &url]);
        run.expect_code(0);
        for expected in [
            "status:",
            "healthy",
            "ping latency:",
            "redis_version:",
            "breaker:",
        ] {
            assert!(run.stdout.contains(expected), "{expected}:\n{}", run.stdout);
        }
        let run = redpool(&["health", "--json", &url]);
        run.expect_code(0);
        let json: serde_json::Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout));
        assert_eq!(json["status"], "healthy");
        assert!(json["ping_latency_ms"].is_number(), "{json}");
        assert!(json["error"].is_null(), "{json}");
        assert_eq!(json["breaker"], "closed");
        assert_eq!(json["consecutive_failures"], 0);
        assert!(json["server_info"]["redis_version"].is_string(), "{json}");
        assert!(
            json["reasons"].as_array().is_some_and(|r| r.is_empty()),
            "{json}"
        );
        assert!(
            json["stats"]["open"].as_u64().is_some_and(|n| n >= 1),
            "{json}"
        );
    });
}

#[test]
fn passwords_are_never_printed() {
    with_timeout(TEST_LIMIT, || {
        let password = "s3cret-Pa55word";
        let server = RedisServer::start_with(ServerOptions {
            password: Some(password.into()),
            ..ServerOptions::default()
        });
        let good = format!("redis://:{password}@127.0.0.1:{}/0", server.port());
        let run = redpool(&["health", &good]);
        run.expect_code(0);
        assert!(run.stdout.contains("<redacted>"), "{}", run.stdout);
        let bad = format!("redis://:wrong-{password}@127.0.0.1:{}/0", server.port());
        let down = format!("redis://:{password}@127.0.0.1:{}/0", support::unused_port());
        let runs = [
            redpool(&["health", "--json", &good]),
            redpool(&["health", &bad]),
            redpool(&["clients", &bad]),
            redpool(&["monitor", "--count", "1", &down]),
            redpool(&["leak-test", &format!("{good}&bogus_knob=1")]),
        ];
        assert_eq!(
            runs[1].code, 2,
            "a wrong password is unhealthy:\n{}",
            runs[1].stdout
        );
        assert_eq!(runs[2].code, 2, "{}", runs[2].stderr);
        for run in &runs {
            assert!(!run.stdout.contains(password), "{}", run.stdout);
            assert!(!run.stderr.contains(password), "{}", run.stderr);
        }
    });
}

#[test]
fn the_password_comes_from_the_environment_not_the_command_line() {
    with_timeout(TEST_LIMIT, || {
        let password = "env-Pa55word";
        let server = RedisServer::start_with(ServerOptions {
            password: Some(password.into()),
            ..ServerOptions::default()
        });
        let url = format!("redis://127.0.0.1:{}/0", server.port());
        for variable in ["REDISCLI_AUTH", "REDIS_PASSWORD"] {
            let run = redpool_with_env(&["health", &url], &[(variable, password)]);
            run.expect_code(0);
            assert!(!run.stderr.contains("warning"), "{}", run.stderr);
        }
        let wrong = redpool_with_env(&["health", &url], &[("REDISCLI_AUTH", "not-it")]);
        assert_eq!(wrong.code, 2, "{}", wrong.stdout);
        assert!(!wrong.stdout.contains("not-it") && !wrong.stderr.contains("not-it"));
        // A password in the URL still works, with a warning that says where else to put it.
        let in_url = format!("redis://:{password}@127.0.0.1:{}/0", server.port());
        let run = redpool(&["health", &in_url]);
        run.expect_code(0);
        assert!(run.stderr.contains("REDISCLI_AUTH"), "{}", run.stderr);
        assert!(!run.stderr.contains(password), "{}", run.stderr);
        // --ask-pass without a terminal is a usage error, not a hang.
        let run = redpool(&["--ask-pass", "health", &url]);
        assert_eq!(run.code, 64, "{}", run.stderr);
    });
}

#[test]
fn unreachable_server_is_a_clear_error() {
    with_timeout(TEST_LIMIT, || {
        let port = support::unused_port();
        let url = format!("redis://127.0.0.1:{port}");
        let run = redpool(&["health", &url]);
        run.expect_code(2);
        assert!(run.stdout.contains("unhealthy"), "{}", run.stdout);
        assert!(
            run.stdout.contains(&format!("127.0.0.1:{port}")),
            "{}",
            run.stdout
        );
        let json = redpool(&["health", "--json", &url]);
        json.expect_code(2);
        let json: serde_json::Value = serde_json::from_str(json.stdout.trim()).expect("JSON");
        assert_eq!(json["status"], "unhealthy");
        assert!(
            json["error"]
                .as_str()
                .is_some_and(|e| e.contains("refused")),
            "{json}"
        );
        for command in ["clients", "monitor", "leak-test"] {
            let run = redpool(&[command, &url]);
            run.expect_code(2);
            let line = run.one_error_line();
            assert!(
                line.starts_with(&format!("redpool: cannot connect to 127.0.0.1:{port}")),
                "{command}: {line}"
            );
            assert!(line.to_lowercase().contains("refused"), "{command}: {line}");
        }
    });
}

/// A listener that is not Redis (here: one answering like an HTTP server) is named as such, on
/// one line, whatever the parser had to say about the bytes.
#[test]
fn a_server_that_is_not_redis_is_one_clear_line() {
    with_timeout(TEST_LIMIT, || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(8) {
                let Ok(mut stream) = stream else { continue };
                let _ = std::io::Write::write_all(
                    &mut stream,
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n<html>",
                );
            }
        });
        // The password (so that the handshake has something to send) comes from the environment.
        let url = format!("redis://127.0.0.1:{port}");
        let auth = [("REDISCLI_AUTH", "pw")];
        let run = redpool_with_env(&["clients", &url], &auth);
        run.expect_code(2);
        let line = run.one_error_line();
        assert!(line.contains("is it a Redis server?"), "{line}");
        let health = redpool_with_env(&["health", &url], &auth);
        health.expect_code(2);
        assert!(
            health.stdout.contains("is it a Redis server?"),
            "{}",
            health.stdout
        );
        assert!(
            health.stdout.lines().all(|l| !l.starts_with("Unexpected")),
            "{}",
            health.stdout
        );
    });
}

#[test]
fn bad_urls_durations_and_arguments_are_usage_errors() {
    with_timeout(TEST_LIMIT, || {
        let cases: &[(&[&str], &str)] = &[
            (&["health", "http://127.0.0.1:6379"], "scheme"),
            (
                &["clients", "redis://127.0.0.1:1/?bogus_knob=1"],
                "bogus_knob",
            ),
            (&["health", "redis://127.0.0.1:99999"], "port"),
            (
                &["clients", "--idle-over", "5x", "redis://127.0.0.1:1"],
                "--idle-over",
            ),
            (
                &["monitor", "--interval", "soon", "redis://127.0.0.1:1"],
                "--interval",
            ),
            (
                &["monitor", "--count", "0", "redis://127.0.0.1:1"],
                "--count",
            ),
            (&["clients", "--kill", "redis://127.0.0.1:1"], "--name"),
            (
                &["leak-test", "--connections", "0", "redis://127.0.0.1:1"],
                "--connections",
            ),
            (&["health"], "<URL>"),
            (&["frobnicate"], "frobnicate"),
        ];
        for (args, named) in cases {
            let run = redpool(args);
            run.expect_code(64);
            let line = run.one_error_line();
            assert!(line.contains(named), "{args:?}: {line}");
            assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        }
    });
}

#[test]
fn monitor_shows_named_client_groups_frame_after_frame() {
    with_timeout(TEST_LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("monitored");
        let (_a, _) = named_client(&server, &name);
        let (_b, _) = named_client(&server, &name);
        let run = redpool(&[
            "monitor",
            "--count",
            "2",
            "--interval",
            "200ms",
            &server.url(),
        ]);
        run.expect_code(0);
        let out = &run.stdout;
        assert!(
            out.contains("refresh 1 of 2") && out.contains("refresh 2 of 2"),
            "{out}"
        );
        assert!(
            !out.contains('\x1b'),
            "no screen clearing when stdout is not a terminal:\n{out}"
        );
        let rows: Vec<Vec<&str>> = out
            .lines()
            .filter(|l| l.starts_with(&name))
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows.len(), 2, "one row per frame:\n{out}");
        assert!(
            rows.iter().all(|cols| cols[1] == "2"),
            "two clients in the group:\n{out}"
        );
        assert_eq!(out.matches("this monitor's pool:").count(), 2, "{out}");
        assert!(
            out.contains("acquires 2"),
            "local pool stats of the second frame:\n{out}"
        );
    });
}

#[test]
fn clients_dry_run_lists_but_does_not_kill() {
    with_timeout(TEST_LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("idler");
        let (mut idler, id) = named_client(&server, &name);
        wait_until("the client idles 2 s", Duration::from_secs(10), || {
            idle_of(&server, &id).is_some_and(|idle| idle >= 2)
        });
        let run = redpool(&[
            "clients",
            "--name",
            &name,
            "--idle-over",
            "1s",
            &server.url(),
        ]);
        run.expect_code(0);
        let rows: Vec<Vec<&str>> = run
            .stdout
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|cols| cols.get(2) == Some(&name.as_str()))
            .collect();
        assert_eq!(rows.len(), 1, "one row (ID ADDR NAME ...):\n{}", run.stdout);
        assert_eq!(rows[0][0], id, "{}", run.stdout);
        assert!(
            run.stdout.contains("dry run: pass --kill to close them"),
            "{}",
            run.stdout
        );
        assert_eq!(idler.cmd_str(&["PING"]), RawReply::Status("PONG".into()));
        // The tool's own connection is never listed, even by its name, and never killed.
        let run = redpool(&["clients", "--name", "redpool-cli", "--kill", &server.url()]);
        run.expect_code(0);
        assert!(
            run.stdout.contains("killed 0 of 0 clients"),
            "{}",
            run.stdout
        );
        assert!(
            !run.stdout.lines().any(|l| l.contains("redpool-cli  ")),
            "{}",
            run.stdout
        );
    });
}

#[test]
fn clients_kill_closes_only_matching_idle_clients() {
    with_timeout(TEST_LIMIT, || {
        let server = RedisServer::start();
        let victim_name = unique_name("victim");
        let (mut victim, victim_id) = named_client(&server, &victim_name);
        let (mut bystander, bystander_id) = named_client(&server, &unique_name("bystander"));
        let (busy, busy_id) = named_client(&server, &victim_name);
        // The busy twin shares the victim's name but never idles: it PINGs every 50 ms.
        let stop = Arc::new(AtomicBool::new(false));
        let pinger = {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut busy = busy;
                for _ in 0..1200 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    assert_eq!(busy.cmd_str(&["PING"]), RawReply::Status("PONG".into()));
                    thread::sleep(Duration::from_millis(50));
                }
                busy
            })
        };
        wait_until(
            "victim and bystander idle 2 s",
            Duration::from_secs(10),
            || {
                [&victim_id, &bystander_id]
                    .iter()
                    .all(|id| idle_of(&server, id).is_some_and(|idle| idle >= 2))
            },
        );
        let url = server.url();
        let run = redpool(&[
            "clients",
            "--name",
            &victim_name,
            "--idle-over",
            "1s",
            "--kill",
            &url,
        ]);
        stop.store(true, Ordering::Relaxed);
        let mut busy = pinger.join().expect("pinger");
        run.expect_code(0);
        assert!(
            run.stdout.contains("killed 1 of 1 client"),
            "{}",
            run.stdout
        );
        assert!(!run.stdout.contains("dry run"), "{}", run.stdout);
        wait_until("the victim is gone", Duration::from_secs(5), || {
            !connected(&server, &victim_id)
        });
        assert!(connected(&server, &bystander_id), "another name stays");
        assert!(
            connected(&server, &busy_id),
            "a busy client of the same name stays"
        );
        assert!(
            victim.try_command(&[b"PING"]).is_err(),
            "the victim's socket was closed"
        );
        assert_eq!(
            bystander.cmd_str(&["PING"]),
            RawReply::Status("PONG".into())
        );
        assert_eq!(busy.cmd_str(&["PING"]), RawReply::Status("PONG".into()));
    });
}

#[test]
fn leak_test_passes_against_a_healthy_server() {
    with_timeout(TEST_LIMIT, || {
        let server = RedisServer::start();
        let (_other, _) = named_client(&server, &unique_name("bystander"));
        let run = redpool(&[
            "leak-test",
            "--connections",
            "20",
            "--rounds",
            "2",
            &server.url(),
        ]);
        run.expect_code(0);
        let out = &run.stdout;
        assert!(out.contains("baseline: 1 clients"), "{out}");
        assert_eq!(
            out.matches("the server listed 20 of them").count(),
            2,
            "{out}"
        );
        assert_eq!(
            out.matches("pool created 20, closed 20").count(),
            2,
            "{out}"
        );
        assert!(out.contains("PASS"), "{out}");
        let leftover = server
            .client_list()
            .iter()
            .filter(|c| c.get("name").is_some_and(|n| n.starts_with("redpool-")))
            .count();
        assert_eq!(leftover, 0, "no connection of the tool is left:\n{out}");
    });
}
