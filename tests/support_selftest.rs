//! Self-test of the integration-test harness in `tests/support` (it does not use redpool itself).

mod support;

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{
    RawClient, RawReply, RedisServer, ServerOptions, TlsKind, unique_name, with_timeout,
};

const LIMIT: Duration = Duration::from_secs(60);

fn pong(server: &RedisServer) {
    assert_eq!(
        server.raw().cmd_str(&["PING"]),
        RawReply::Status("PONG".into())
    );
}

/// True if a process with this pid exists (reaped children do not).
fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn start_and_drop_cleans_up() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let (port, pid, dir) = (server.port(), server.pid(), server.dir().to_path_buf());
        assert!(dir.is_absolute() && dir.starts_with(std::env::temp_dir()));
        assert!(dir.join("redis.log").exists());
        assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
        assert_eq!(server.tls_port(), None);
        assert_eq!(server.password(), None);
        pong(&server);
        assert_eq!(
            server.info_field("server", "process_id"),
            Some(pid.to_string())
        );
        assert_eq!(
            server.info_field("server", "tcp_port"),
            Some(port.to_string())
        );
        assert!(
            server
                .info_field("server", "redis_version")
                .unwrap()
                .starts_with('7')
        );
        assert_eq!(server.info_field("server", "no_such_field"), None);
        // DEBUG is enabled for local connections.
        assert_eq!(
            server.raw().cmd_str(&["DEBUG", "SLEEP", "0"]),
            RawReply::Status("OK".into())
        );

        let started = Instant::now();
        drop(server);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "SHUTDOWN NOSAVE should be quick"
        );
        assert!(
            !process_exists(pid),
            "redis-server {pid} still exists (zombie?)"
        );
        assert!(!dir.exists(), "temp dir {dir:?} not removed");
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts"
        );
    });
}

#[test]
fn two_servers_get_distinct_ports_and_dirs() {
    with_timeout(LIMIT, || {
        let a = RedisServer::start();
        let b = RedisServer::start();
        assert_ne!(a.port(), b.port());
        assert_ne!(a.dir(), b.dir());
        pong(&a);
        pong(&b);
    });
}

#[test]
fn raw_client_binary_values_and_reply_types() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let mut c = server.raw();
        let key = unique_name("bin");
        let value: Vec<u8> = (0..=255u8)
            .chain(*b"\r\n\0$-1\r\n*3\r\n")
            .chain([0, 0, 13, 10])
            .collect();
        assert_eq!(
            c.command(&[b"SET", key.as_bytes(), &value]),
            RawReply::Status("OK".into())
        );
        let got = c.command(&[b"GET", key.as_bytes()]);
        assert_eq!(got.as_bytes(), Some(&value[..]));
        assert_eq!(got.as_str(), None, "not UTF-8");
        assert_eq!(
            c.cmd_str(&["STRLEN", &key]).as_int(),
            Some(value.len() as i64)
        );
        assert_eq!(
            c.cmd_str(&["SET", "empty", ""]),
            RawReply::Status("OK".into())
        );
        assert_eq!(
            c.cmd_str(&["GET", "empty"]),
            RawReply::Bulk(Some(Vec::new()))
        );

        // Nil bulk, negative integer, error.
        assert_eq!(c.cmd_str(&["GET", "missing"]), RawReply::Bulk(None));
        assert!(c.cmd_str(&["GET", "missing"]).is_nil());
        assert_eq!(c.cmd_str(&["DECRBY", "n", "5"]), RawReply::Int(-5));
        let err = c.cmd_str(&["NO-SUCH-COMMAND"]);
        assert!(
            err.is_error() && matches!(&err, RawReply::Error(e) if e.starts_with("ERR")),
            "{err:?}"
        );

        // Nested arrays, including an empty one.
        let nested = c.cmd_str(&["EVAL", "return {1, {'x', {-2}}, 'y', {}}", "0"]);
        assert_eq!(
            nested,
            RawReply::Array(Some(vec![
                RawReply::Int(1),
                RawReply::Array(Some(vec![
                    RawReply::Bulk(Some(b"x".to_vec())),
                    RawReply::Array(Some(vec![RawReply::Int(-2)])),
                ])),
                RawReply::Bulk(Some(b"y".to_vec())),
                RawReply::Array(Some(vec![])),
            ]))
        );
        c.cmd_str(&["RPUSH", "list", "a", "b"]);
        c.cmd_str(&["MULTI"]);
        c.cmd_str(&["LRANGE", "list", "0", "-1"]);
        c.cmd_str(&["GET", "missing"]);
        assert_eq!(
            c.cmd_str(&["EXEC"]),
            RawReply::Array(Some(vec![
                RawReply::Array(Some(vec![
                    RawReply::Bulk(Some(b"a".to_vec())),
                    RawReply::Bulk(Some(b"b".to_vec()))
                ])),
                RawReply::Bulk(None),
            ]))
        );
        // Nil array: BLPOP timing out.
        assert_eq!(
            c.cmd_str(&["BLPOP", "nothing", "0.01"]),
            RawReply::Array(None)
        );

        // Pipelining: send several, then read the replies in order.
        for i in 0..100 {
            c.send(&[
                b"SET",
                format!("k:{i}").as_bytes(),
                format!("v:{i}").as_bytes(),
            ])
            .unwrap();
        }
        for _ in 0..100 {
            assert_eq!(c.read_reply().unwrap(), RawReply::Status("OK".into()));
        }
        for i in 0..100 {
            assert_eq!(
                c.cmd_str(&["GET", &format!("k:{i}")]).as_str(),
                Some(format!("v:{i}").as_str())
            );
        }
        // A large bulk string crosses many buffer boundaries.
        let big = vec![b'z'; 3 * 1024 * 1024 + 7];
        c.command(&[b"SET", b"big", &big]);
        assert_eq!(
            c.command(&[b"GET", b"big"]).as_bytes().map(<[u8]>::len),
            Some(big.len())
        );
    });
}

#[test]
fn client_list_census_and_kill() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("census");
        let mut clients: Vec<RawClient> = (0..3).map(|_| server.raw()).collect();
        for c in &mut clients {
            assert_eq!(
                c.cmd_str(&["CLIENT", "SETNAME", &name]),
                RawReply::Status("OK".into())
            );
        }
        let list = server.client_list();
        assert!(list.len() >= 4, "3 named + the census connection: {list:?}");
        for entry in &list {
            for field in ["id", "addr", "fd", "name", "age", "cmd"] {
                assert!(entry.contains_key(field), "missing {field} in {entry:?}");
            }
            assert!(entry["addr"].starts_with("127.0.0.1:"));
        }
        let named: Vec<_> = list.iter().filter(|c| c["name"] == name).collect();
        assert_eq!(named.len(), 3);
        let addrs: Vec<String> = clients
            .iter()
            .map(|c| c.local_addr().unwrap().to_string())
            .collect();
        for c in &named {
            assert!(
                addrs.contains(&c["addr"]),
                "{} not one of {addrs:?}",
                c["addr"]
            );
        }
        assert_eq!(server.count_clients_named(&name), 3);
        assert_eq!(server.count_clients_named("nobody"), 0);

        assert_eq!(server.kill_clients_named(&name), 3);
        assert_eq!(server.count_clients_named(&name), 0);
        assert_eq!(server.kill_clients_named(&name), 0);
        for c in &mut clients {
            assert!(
                c.try_command(&[b"PING"]).is_err(),
                "killed connection still answers"
            );
        }
        let total: u64 = server
            .info_field("stats", "total_connections_received")
            .unwrap()
            .parse()
            .unwrap();
        assert!(total >= 3);
    });
}

#[test]
fn password_server_requires_auth() {
    with_timeout(LIMIT, || {
        let password = unique_name("s3cret");
        let server = RedisServer::start_with(ServerOptions {
            password: Some(password.clone()),
            ..Default::default()
        });
        assert_eq!(server.password(), Some(password.as_str()));

        let mut anon = RawClient::connect(server.port(), None).unwrap();
        match anon.cmd_str(&["GET", "k"]) {
            RawReply::Error(e) => assert!(e.starts_with("NOAUTH"), "{e}"),
            other => panic!("unauthenticated GET answered {other:?}"),
        }
        let wrong = RawClient::connect(server.port(), Some("wrong-password"));
        assert_eq!(
            wrong.err().map(|e| e.kind()),
            Some(std::io::ErrorKind::PermissionDenied)
        );

        let mut c = server.raw();
        assert_eq!(c.cmd_str(&["GET", "k"]), RawReply::Bulk(None));
        // The census helpers authenticate too.
        let name = unique_name("authed");
        c.cmd_str(&["CLIENT", "SETNAME", &name]);
        assert_eq!(server.count_clients_named(&name), 1);

        // Drop still shuts down promptly when a test changed the password.
        let pid = server.pid();
        assert_eq!(
            c.cmd_str(&["CONFIG", "SET", "requirepass", "changed"]),
            RawReply::Status("OK".into())
        );
        let started = Instant::now();
        drop(server);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!process_exists(pid));
    });
}

#[test]
fn extra_args_are_passed() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            extra_args: vec!["--maxclients".into(), "77".into()],
            ..Default::default()
        });
        let reply = server.raw().cmd_str(&["CONFIG", "GET", "maxclients"]);
        assert_eq!(reply.as_array().and_then(|a| a[1].as_str()), Some("77"));
        let reply = server.raw().cmd_str(&["CONFIG", "GET", "save"]);
        assert_eq!(
            reply.as_array().and_then(|a| a[1].as_str()),
            Some(""),
            "persistence is off"
        );
    });
}

fn openssl_text(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tls_server_starts_with_valid_certs() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            tls: Some(TlsKind::Valid),
            ..Default::default()
        });
        let tls_port = server.tls_port().expect("tls port");
        assert_ne!(tls_port, server.port());
        assert_eq!(server.tls_url(), format!("rediss://127.0.0.1:{tls_port}"));
        TcpStream::connect(("127.0.0.1", tls_port)).expect("TLS port accepts TCP");
        pong(&server); // the plain port stays on
        assert_eq!(
            server.info_field("server", "process_id"),
            Some(server.pid().to_string())
        );

        for f in [
            server.ca_file(),
            server.server_cert_file(),
            server.client_cert_file(),
            server.client_key_file(),
        ] {
            assert!(f.is_absolute() && f.is_file(), "{f:?}");
        }
        let ca = server.ca_file();
        let ca = ca.to_str().unwrap();
        for cert in [server.server_cert_file(), server.client_cert_file()] {
            let out = openssl_text(&["verify", "-CAfile", ca, cert.to_str().unwrap()]);
            assert!(out.contains(": OK"), "{out}");
        }
        let san = openssl_text(&[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            server.server_cert_file().to_str().unwrap(),
        ]);
        assert!(
            san.contains("IP Address:127.0.0.1") && san.contains("DNS:localhost"),
            "{san}"
        );

        // The server's TLS config is live (tls-auth-clients optional).
        let reply = server.raw().cmd_str(&["CONFIG", "GET", "tls-auth-clients"]);
        assert_eq!(
            reply.as_array().and_then(|a| a[1].as_str()),
            Some("optional")
        );
    });
}

#[test]
fn tls_wrong_host_cert_has_only_the_wrong_name() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            tls: Some(TlsKind::WrongHost),
            ..Default::default()
        });
        TcpStream::connect(("127.0.0.1", server.tls_port().unwrap()))
            .expect("TLS port accepts TCP");
        let cert = server.server_cert_file();
        let san = openssl_text(&[
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            cert.to_str().unwrap(),
        ]);
        assert!(san.contains("DNS:wrong.example.invalid"), "{san}");
        assert!(
            !san.contains("127.0.0.1") && !san.contains("localhost"),
            "{san}"
        );
        let out = openssl_text(&[
            "verify",
            "-CAfile",
            server.ca_file().to_str().unwrap(),
            cert.to_str().unwrap(),
        ]);
        assert!(
            out.contains(": OK"),
            "chains to the CA; only the name is wrong: {out}"
        );
    });
}

#[test]
#[should_panic(expected = "server started without TLS")]
fn tls_accessors_panic_without_tls() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        server.ca_file();
    });
}

#[test]
fn sigstop_and_sigcont_round_trip() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let mut before = server.raw();
        server.stop_process();
        // The kernel still completes the connect, but nothing answers.
        let mut frozen =
            RawClient::connect_with_timeout(server.port(), None, Duration::from_millis(300))
                .expect("connect to a stopped server succeeds");
        let started = Instant::now();
        assert!(
            frozen.try_command(&[b"PING"]).is_err(),
            "a stopped server answered"
        );
        assert!(started.elapsed() >= Duration::from_millis(250));

        server.cont_process();
        // The request sent while frozen is answered after SIGCONT.
        frozen
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(
            frozen.read_reply().unwrap(),
            RawReply::Status("PONG".into())
        );
        assert_eq!(before.cmd_str(&["PING"]), RawReply::Status("PONG".into()));
        pong(&server);

        // Dropping a frozen server is prompt and leaves no process.
        server.stop_process();
        let pid = server.pid();
        let started = Instant::now();
        drop(server);
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(!process_exists(pid));
    });
}

#[test]
fn restart_keeps_port_dir_and_options() {
    with_timeout(LIMIT, || {
        let password = unique_name("pw");
        let mut server = RedisServer::start_with(ServerOptions {
            password: Some(password.clone()),
            tls: Some(TlsKind::Valid),
            ..Default::default()
        });
        let (port, tls_port, pid, dir) = (
            server.port(),
            server.tls_port(),
            server.pid(),
            server.dir().to_path_buf(),
        );
        let mut old = server.raw();
        assert_eq!(
            old.cmd_str(&["SET", "k", "v"]),
            RawReply::Status("OK".into())
        );

        server.restart();
        assert_eq!(server.port(), port);
        assert_eq!(server.tls_port(), tls_port);
        assert_eq!(server.dir(), dir);
        assert_ne!(server.pid(), pid);
        assert!(!process_exists(pid), "old process not reaped");
        assert!(
            old.try_command(&[b"PING"]).is_err(),
            "old connection survived a restart"
        );

        let mut c = server.raw();
        assert_eq!(
            c.cmd_str(&["GET", "k"]),
            RawReply::Bulk(None),
            "no persistence"
        );
        let mut anon = RawClient::connect(port, None).unwrap();
        assert!(
            matches!(anon.cmd_str(&["GET", "k"]), RawReply::Error(e) if e.starts_with("NOAUTH"))
        );
        TcpStream::connect(("127.0.0.1", tls_port.unwrap())).expect("TLS port back");
        assert!(server.ca_file().is_file());

        // Restarting a frozen server works too.
        server.stop_process();
        server.restart();
        assert_eq!(server.port(), port);
        pong(&server);
    });
}

#[test]
fn with_timeout_returns_value() {
    assert_eq!(with_timeout(Duration::from_secs(5), || 40 + 2), 42);
}

#[test]
#[should_panic(expected = "test exceeded its time limit of")]
fn with_timeout_fails_a_hang() {
    with_timeout(Duration::from_millis(100), || {
        std::thread::sleep(Duration::from_secs(3))
    });
}

#[test]
#[should_panic(expected = "inner failure 7")]
fn with_timeout_propagates_panics() {
    with_timeout(Duration::from_secs(5), || -> () {
        panic!("inner failure {}", 7)
    });
}

#[test]
fn unique_names_differ() {
    let a = unique_name("x");
    let b = unique_name("x");
    assert_ne!(a, b);
    assert!(a.starts_with("x") && a.contains(&std::process::id().to_string()));
}
