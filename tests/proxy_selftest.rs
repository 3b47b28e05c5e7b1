//! Self-test of the fault-injection proxy in `tests/support/proxy.rs`, against a real
//! `redis-server` (it does not use redpool itself).

mod support;

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use support::proxy::FaultProxy;
use support::{RawClient, RawReply, RedisServer, encode_command, wait_until, with_timeout};

const LIMIT: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(300);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn ping(c: &mut RawClient) -> io::Result<RawReply> {
    c.try_command(&[b"PING"])
}

fn assert_pong(c: &mut RawClient) {
    assert_eq!(ping(c).expect("PING"), RawReply::Status("PONG".into()));
}

fn bulk_len(len: usize) -> usize {
    format!("${len}\r\n").len() + len + 2
}

/// Connections the server has besides the oracle connection asking.
fn server_clients(server: &RedisServer) -> usize {
    server.client_list().len() - 1
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    fs::read_dir("/proc/self/task")
        .expect("read /proc/self/task")
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read_to_string(e.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

/// Inodes of the sockets open in this process.
fn own_socket_inodes() -> HashSet<u64> {
    fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|e| e.ok())
        .filter_map(|e| fs::read_link(e.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Open TCP sockets of this process with local port `local` (or remote port `remote`).
fn own_tcp_sockets(local: Option<u16>, remote: Option<u16>) -> usize {
    let ours = own_socket_inodes();
    let table = fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port_of =
        |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap_or(""), 16).ok();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let inode: u64 = f.get(9).and_then(|i| i.parse().ok()).unwrap_or(0);
            inode != 0
                && ours.contains(&inode)
                && (local.is_some() && port_of(f[1]) == local
                    || remote.is_some() && port_of(f[2]) == remote)
        })
        .count()
}

/// Reads until EOF or an error; returns the bytes read and how it ended.
fn read_to_end_or_error(s: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Err(e)),
        }
    }
}

#[test]
fn forwards_commands_and_counts() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        assert_eq!(proxy.url(), format!("redis://127.0.0.1:{}", proxy.port()));
        assert_eq!(proxy.upstream_port(), server.port());
        assert_ne!(proxy.port(), server.port());
        assert_eq!((proxy.accepted(), proxy.live_links()), (0, 0));
        assert_eq!((proxy.bytes_up(), proxy.bytes_down()), (0, 0));

        let mut c = RawClient::connect(proxy.port(), None).expect("connect through proxy");
        let mut up = 0;
        let mut down = 0;
        assert_pong(&mut c);
        up += encode_command(&[b"PING"]).len();
        down += "+PONG\r\n".len();

        // Every byte value, CRLFs and RESP markers inside a value, and a 2 MiB value (partial
        // writes and back-pressure).
        let mut small: Vec<u8> = (0..=255u8).collect();
        small.extend_from_slice(b"\r\n$-1\r\n*2\r\n\0");
        let big: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
        for (key, value) in [(&b"proxy:small"[..], &small), (&b"proxy:big"[..], &big)] {
            assert_eq!(
                c.command(&[b"SET", key, value]),
                RawReply::Status("OK".into())
            );
            up += encode_command(&[b"SET", key, value]).len();
            down += "+OK\r\n".len();
            assert_eq!(
                c.command(&[b"GET", key]),
                RawReply::Bulk(Some(value.clone()))
            );
            up += encode_command(&[b"GET", key]).len();
            down += bulk_len(value.len());
            // The server really has it.
            assert_eq!(
                server.raw().command(&[b"GET", key]),
                RawReply::Bulk(Some(value.clone()))
            );
        }

        // Pipelined: 200 commands in one write.
        let mut batch = Vec::new();
        for i in 0..200 {
            batch.extend(encode_command(&[
                b"SET",
                format!("p:{i}").as_bytes(),
                format!("v:{i}").as_bytes(),
            ]));
            batch.extend(encode_command(&[b"GET", format!("p:{i}").as_bytes()]));
        }
        for i in 0..200 {
            c.send(&[
                b"SET",
                format!("p:{i}").as_bytes(),
                format!("v:{i}").as_bytes(),
            ])
            .unwrap();
            c.send(&[b"GET", format!("p:{i}").as_bytes()]).unwrap();
        }
        up += batch.len();
        for i in 0..200 {
            assert_eq!(c.read_reply().unwrap(), RawReply::Status("OK".into()));
            let v = format!("v:{i}").into_bytes();
            down += "+OK\r\n".len() + bulk_len(v.len());
            assert_eq!(c.read_reply().unwrap(), RawReply::Bulk(Some(v)));
        }

        assert_eq!(proxy.accepted(), 1);
        assert_eq!(proxy.live_links(), 1);
        assert_eq!(proxy.bytes_up(), up as u64);
        // Counted just after the write the client read from: allow the link thread a moment.
        wait_until("bytes_down matches", Duration::from_secs(2), || {
            proxy.bytes_down() == down as u64
        });
        assert_eq!(server_clients(&server), 1);

        // The client closes: the link (and its upstream connection) goes away.
        c.close();
        wait_until("link gone", Duration::from_secs(5), || {
            proxy.live_links() == 0
        });
        wait_until("upstream connection closed", Duration::from_secs(5), || {
            server_clients(&server) == 0
        });
        proxy.stop();
    });
}

#[test]
fn concurrent_links_keep_their_streams() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let port = proxy.port();
        let workers: Vec<_> = (0..8)
            .map(|w| {
                thread::spawn(move || {
                    let mut c = RawClient::connect(port, None).expect("connect");
                    for i in 0..100 {
                        let key = format!("w{w}:k{i}");
                        let val = format!("w{w}:v{i}:{}", "x".repeat(i * 37));
                        c.cmd_str(&["SET", &key, &val]);
                        assert_eq!(
                            c.cmd_str(&["GET", &key]),
                            RawReply::Bulk(Some(val.into_bytes()))
                        );
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
        assert_eq!(proxy.accepted(), 8);
        wait_until("links gone", Duration::from_secs(5), || {
            proxy.live_links() == 0
        });
    });
}

#[test]
fn latency_delays_both_directions() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let mut c = RawClient::connect(proxy.port(), None).expect("connect");
        assert_pong(&mut c);

        let d = Duration::from_millis(100);
        proxy.set_latency(d);
        for _ in 0..3 {
            let t = Instant::now();
            assert_pong(&mut c);
            let rtt = t.elapsed();
            assert!(rtt >= 2 * d, "round trip {rtt:?} < 2 x latency {d:?}");
            assert!(rtt < Duration::from_secs(5), "round trip {rtt:?}");
        }
        // A new link is delayed too, and data stays intact.
        let mut c2 = RawClient::connect(proxy.port(), None).expect("connect");
        let t = Instant::now();
        assert_eq!(
            c2.cmd_str(&["SET", "lat", "v"]),
            RawReply::Status("OK".into())
        );
        assert_eq!(
            c2.cmd_str(&["GET", "lat"]),
            RawReply::Bulk(Some(b"v".to_vec()))
        );
        assert!(t.elapsed() >= 4 * d);

        proxy.set_latency(Duration::ZERO);
        let fastest = (0..5)
            .map(|_| {
                let t = Instant::now();
                assert_pong(&mut c);
                t.elapsed()
            })
            .min()
            .unwrap();
        assert!(fastest < d, "latency 0: fastest round trip {fastest:?}");
    });
}

#[test]
fn blackhole_holds_traffic_until_lifted() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let mut c = RawClient::connect(proxy.port(), None).expect("connect");
        assert_pong(&mut c);

        proxy.blackhole(true);
        c.set_read_timeout(Some(SHORT)).unwrap();
        c.send(&[b"INCR", b"bh"]).unwrap();
        let err = c
            .read_reply()
            .expect_err("a reply came through the blackhole");
        assert!(is_timeout(&err), "expected a read timeout, got {err:?}");
        // Nothing reached the server.
        assert_eq!(server.raw().cmd_str(&["GET", "bh"]), RawReply::Bulk(None));
        // A new connection is accepted (the socket stays open) but gets nothing either.
        let mut c2 = RawClient::connect_with_timeout(proxy.port(), None, SHORT).expect("connect");
        let err = ping(&mut c2).expect_err("PING answered through the blackhole");
        assert!(is_timeout(&err), "expected a read timeout, got {err:?}");
        assert_eq!(proxy.live_links(), 2);

        // Lifted: the held bytes flow in both directions, in order.
        proxy.blackhole(false);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(c.read_reply().unwrap(), RawReply::Int(1));
        assert_eq!(c.cmd_str(&["INCR", "bh"]), RawReply::Int(2));
        assert_eq!(c2.read_reply().unwrap(), RawReply::Status("PONG".into()));
        assert_pong(&mut c2);

        // A reply already on its way is held too.
        // (Latency 300 ms: the reply waits in the proxy while the test sees the command applied.)
        proxy.set_latency(Duration::from_millis(300));
        c.send(&[b"INCR", b"bh"]).unwrap();
        wait_until("INCR applied", Duration::from_secs(5), || {
            server.raw().cmd_str(&["GET", "bh"]) == RawReply::Bulk(Some(b"3".to_vec()))
        });
        proxy.blackhole(true);
        c.set_read_timeout(Some(SHORT)).unwrap();
        assert!(is_timeout(&c.read_reply().expect_err("reply leaked")));
        assert_eq!(
            server.raw().cmd_str(&["GET", "bh"]),
            RawReply::Bulk(Some(b"3".to_vec()))
        );
        proxy.blackhole(false);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(c.read_reply().unwrap(), RawReply::Int(3));
    });
}

#[test]
fn reset_all_breaks_live_links() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let mut a = RawClient::connect(proxy.port(), None).expect("connect");
        let mut b = RawClient::connect(proxy.port(), None).expect("connect");
        assert_pong(&mut a);
        assert_pong(&mut b);
        assert_eq!(proxy.live_links(), 2);
        assert_eq!(server_clients(&server), 2);

        proxy.reset_all();
        assert_eq!(
            proxy.live_links(),
            0,
            "reset_all returns once the links are gone"
        );
        for c in [&mut a, &mut b] {
            let err = ping(c).expect_err("PING over a reset link");
            assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err:?}");
        }
        // The server side was reset too.
        wait_until("server connections dropped", Duration::from_secs(5), || {
            server_clients(&server) == 0
        });
        // New connections work.
        let mut c = RawClient::connect(proxy.port(), None).expect("connect");
        assert_pong(&mut c);
        assert_eq!(proxy.accepted(), 3);
    });
}

#[test]
fn refuse_new_resets_new_connections() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let mut old = RawClient::connect(proxy.port(), None).expect("connect");
        assert_pong(&mut old);

        proxy.refuse_new(true);
        for _ in 0..3 {
            // The kernel completes the connect; the first command fails.
            if let Ok(mut c) = RawClient::connect(proxy.port(), None) {
                let err = ping(&mut c).expect_err("PING through a refused connection");
                assert!(
                    matches!(
                        err.kind(),
                        io::ErrorKind::ConnectionReset
                            | io::ErrorKind::BrokenPipe
                            | io::ErrorKind::UnexpectedEof
                    ),
                    "{err:?}"
                );
            }
        }
        assert_eq!(proxy.accepted(), 4);
        assert_eq!(proxy.live_links(), 1);
        assert_pong(&mut old); // existing links are unaffected

        proxy.refuse_new(false);
        let mut c = RawClient::connect(proxy.port(), None).expect("connect");
        assert_pong(&mut c);
        assert_eq!(proxy.accepted(), 5);
    });
}

#[test]
fn hang_new_accepts_but_never_answers() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        // A connect completed before the call is not hung, even if the proxy had not accepted it.
        let mut before = RawClient::connect(proxy.port(), None).expect("connect");
        proxy.hang_new(true);
        assert_pong(&mut before);
        before.close();
        wait_until("link gone", Duration::from_secs(5), || {
            proxy.live_links() == 0
        });
        let mut hung = RawClient::connect_with_timeout(proxy.port(), None, SHORT)
            .expect("connect succeeds while hanging");
        let err = ping(&mut hung).expect_err("PING answered by a hung link");
        assert!(is_timeout(&err), "expected a timeout, got {err:?}");
        assert_eq!(proxy.accepted(), 2);
        assert_eq!(proxy.live_links(), 1);
        // (The server may take a moment to notice that `before` went away.)
        wait_until("no upstream connection", Duration::from_secs(5), || {
            server_clients(&server) == 0
        });
        thread::sleep(Duration::from_millis(100));
        assert_eq!(
            server_clients(&server),
            0,
            "a hung link never connects upstream"
        );

        proxy.hang_new(false);
        let mut c = RawClient::connect(proxy.port(), None).expect("connect");
        assert_pong(&mut c);
        // The hung link stays hung.
        assert!(is_timeout(
            &ping(&mut hung).expect_err("hung link answered")
        ));
        assert_eq!(proxy.live_links(), 2);

        // It ends when the client closes it.
        hung.close();
        wait_until("hung link gone", Duration::from_secs(5), || {
            proxy.live_links() == 1
        });
        // ... or on reset_all.
        proxy.hang_new(true);
        let _hung2 = TcpStream::connect(addr(proxy.port())).unwrap();
        wait_until("second hung link", Duration::from_secs(5), || {
            proxy.live_links() == 2
        });
        proxy.reset_all();
        assert_eq!(proxy.live_links(), 0);
    });
}

#[test]
fn lose_next_replies_applies_the_command_and_drops_the_reply() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let mut a = RawClient::connect(proxy.port(), None).expect("connect");
        let mut b = RawClient::connect(proxy.port(), None).expect("connect");
        assert_pong(&mut a);
        assert_pong(&mut b);

        proxy.lose_next_replies(1);
        assert_eq!(proxy.pending_lost_replies(), 1);
        let err = a
            .try_command(&[b"INCR", b"k"])
            .expect_err("the reply should be lost");
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ),
            "{err:?}"
        );
        assert_eq!((proxy.pending_lost_replies(), proxy.replies_lost()), (0, 1));
        // The server executed it.
        assert_eq!(
            server.raw().cmd_str(&["GET", "k"]),
            RawReply::Bulk(Some(b"1".to_vec()))
        );
        // Exactly one reply was lost: the other link and a new one work.
        assert_eq!(b.cmd_str(&["INCR", "k"]), RawReply::Int(2));
        let mut c = RawClient::connect(proxy.port(), None).expect("connect");
        assert_eq!(c.cmd_str(&["INCR", "k"]), RawReply::Int(3));
        wait_until("lost link gone", Duration::from_secs(5), || {
            proxy.live_links() == 2
        });

        // Two: one per link, each applied on the server.
        proxy.lose_next_replies(2);
        assert!(b.try_command(&[b"INCR", b"k"]).is_err());
        assert_eq!(proxy.pending_lost_replies(), 1);
        assert!(c.try_command(&[b"INCR", b"k"]).is_err());
        assert_eq!((proxy.pending_lost_replies(), proxy.replies_lost()), (0, 3));
        assert_eq!(
            server.raw().cmd_str(&["GET", "k"]),
            RawReply::Bulk(Some(b"5".to_vec()))
        );
        let mut d = RawClient::connect(proxy.port(), None).expect("connect");
        assert_eq!(d.cmd_str(&["INCR", "k"]), RawReply::Int(6));

        // Server bytes that follow no request are not a reply: a pub/sub message is delivered.
        assert_eq!(
            d.cmd_str(&["SUBSCRIBE", "chan"])
                .as_array()
                .map(|a| a.len()),
            Some(3)
        );
        proxy.lose_next_replies(1);
        assert_eq!(
            server.raw().cmd_str(&["PUBLISH", "chan", "hello"]),
            RawReply::Int(1)
        );
        let msg = d.read_reply().expect("pub/sub message");
        assert_eq!(
            msg.as_array().and_then(|a| a[2].as_bytes()),
            Some(&b"hello"[..])
        );
        assert_eq!(proxy.pending_lost_replies(), 1);
        proxy.lose_next_replies(0);
    });
}

#[test]
fn cut_reply_after_truncates_and_closes() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let value = "x".repeat(100);
        server.raw().cmd_str(&["SET", "cut", &value]);
        let full = format!("$100\r\n{value}\r\n").into_bytes();

        proxy.cut_reply_after(Some(10));
        let mut s = TcpStream::connect(addr(proxy.port())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&encode_command(&[b"GET", b"cut"])).unwrap();
        let (got, end) = read_to_end_or_error(&mut s);
        assert_eq!(got, full[..10].to_vec());
        assert!(!end.as_ref().is_err_and(is_timeout), "{end:?}");
        wait_until("cut link gone", Duration::from_secs(5), || {
            proxy.live_links() == 0
        });
        assert_eq!(proxy.bytes_down(), 10);

        // An existing link counts from the call.
        proxy.cut_reply_after(None);
        let mut s = TcpStream::connect(addr(proxy.port())).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(&encode_command(&[b"GET", b"cut"])).unwrap();
        let mut buf = vec![0u8; full.len()];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(buf, full);
        proxy.cut_reply_after(Some(3));
        s.write_all(&encode_command(&[b"PING"])).unwrap();
        let (got, _) = read_to_end_or_error(&mut s);
        assert_eq!(got, b"+PO".to_vec());

        // Off again: whole replies.
        proxy.cut_reply_after(None);
        let mut c = RawClient::connect(proxy.port(), None).expect("connect");
        assert_eq!(
            c.cmd_str(&["GET", "cut"]),
            RawReply::Bulk(Some(value.into_bytes()))
        );
    });
}

#[test]
fn stop_leaves_no_threads_or_sockets() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let tasks_before = fs::read_dir("/proc/self/task").unwrap().count();
        let proxy = FaultProxy::start(server.port());
        let prefix = proxy.thread_name_prefix();
        let port = proxy.port();

        // A forwarding link, a blackholed one, a latency-delayed one with queued data and a hung one.
        let mut a = RawClient::connect(port, None).expect("connect");
        assert_pong(&mut a);
        proxy.set_latency(Duration::from_millis(500));
        let mut b = RawClient::connect(port, None).expect("connect");
        b.send(&[b"PING"]).unwrap();
        proxy.hang_new(true);
        let mut hung = TcpStream::connect(addr(port)).unwrap();
        wait_until("3 links", Duration::from_secs(5), || {
            proxy.live_links() == 3
        });
        proxy.blackhole(true);

        assert_eq!(
            threads_named(&prefix),
            1 + 3,
            "accept thread + one per link"
        );
        assert_eq!(
            own_tcp_sockets(Some(port), None),
            1 + 3,
            "listener + 3 accepted sockets"
        );
        // The link threads connect upstream on their own.
        wait_until("2 upstream sockets", Duration::from_secs(5), || {
            own_tcp_sockets(None, Some(server.port())) == 2
        });
        let tasks_during = fs::read_dir("/proc/self/task").unwrap().count();

        let t = Instant::now();
        proxy.stop();
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "stop took {:?}",
            t.elapsed()
        );

        assert_eq!(threads_named(&prefix), 0, "proxy threads left after stop");
        assert_eq!(
            own_tcp_sockets(Some(port), None),
            0,
            "proxy sockets left after stop"
        );
        assert_eq!(
            own_tcp_sockets(None, Some(server.port())),
            0,
            "upstream sockets left"
        );
        let err = TcpStream::connect_timeout(&addr(port), SHORT).expect_err("still listening");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err:?}");
        // Other tests run threads concurrently, so the total is only a sanity check: it must
        // have dropped by at least the proxy's threads unless others started meanwhile.
        let tasks_after = fs::read_dir("/proc/self/task").unwrap().count();
        eprintln!("tasks: before {tasks_before}, during {tasks_during}, after {tasks_after}");

        // The clients see their links closed.
        hung.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (got, end) = read_to_end_or_error(&mut hung);
        assert!(
            got.is_empty() && !end.as_ref().is_err_and(is_timeout),
            "{end:?}"
        );
        assert!(ping(&mut a).is_err());
        wait_until("server connections closed", Duration::from_secs(5), || {
            server_clients(&server) == 0
        });
    });
}

#[test]
fn drop_stops_too() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let proxy = FaultProxy::start(server.port());
        let prefix = proxy.thread_name_prefix();
        let port = proxy.port();
        let mut a = RawClient::connect(port, None).expect("connect");
        assert_pong(&mut a);
        drop(proxy);
        assert_eq!(threads_named(&prefix), 0);
        assert_eq!(own_tcp_sockets(Some(port), None), 0);
        assert!(TcpStream::connect_timeout(&addr(port), SHORT).is_err());
        assert!(ping(&mut a).is_err());
    });
}
