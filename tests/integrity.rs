//! Reply integrity, case by case: each command whose replies are not "one per command", each
//! session state the server keeps, and the guard on every check-in, against real servers (and a
//! loopback listener that answers more than it was asked, for the guard).

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use redpool::{CloseReason, ErrorKind, Pool, Value, cmd};
use support::{RedisServer, ServerOptions, TlsKind, unique_name, wait_until, with_timeout};

const LIMIT: Duration = Duration::from_secs(60);

fn pool(url: &str, query: &str) -> Pool {
    Pool::from_url(&format!("{url}?{query}")).expect("pool")
}

/// A command from its words.
fn command(words: &[&str]) -> redpool::Cmd {
    let mut c = cmd(words[0]);
    for word in &words[1..] {
        c.arg(*word);
    }
    c
}

fn bulk(text: &str) -> Value {
    Value::BulkString(text.as_bytes().to_vec())
}

fn confirmation(kind: &str, name: &str, count: i64) -> Value {
    Value::Array(vec![bulk(kind), bulk(name), Value::Int(count)])
}

#[test]
fn unsubscribe_of_two_channels_is_refused_on_the_pool_and_read_whole_on_a_checkout() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server.url(), "max_connections=1");
        for family in ["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "SUBSCRIBE"] {
            let err = pool.execute(cmd(family).arg("a").arg("b")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{family}: {err}");
            assert!(err.message().starts_with(family), "{err}");
            assert!(err.message().contains("pub/sub"), "{err}");
            let err = pool
                .pipeline(&[cmd("GET").arg("k").clone(), cmd(family).arg("a").clone()])
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        }
        assert_eq!(pool.stats().connections_created, 0, "nothing was sent");

        let mut conn = pool.acquire().unwrap();
        let id = conn.id();
        assert_eq!(
            conn.execute(cmd("UNSUBSCRIBE").arg("a").arg("b")).unwrap(),
            Value::Array(vec![
                confirmation("unsubscribe", "a", 0),
                confirmation("unsubscribe", "b", 0)
            ])
        );
        assert_eq!(conn.execute(cmd("ECHO").arg("mine")).unwrap(), bulk("mine"));
        // Subscribed: one confirmation per channel, then UNSUBSCRIBE with no name gets one per
        // subscription; a message published in between is not a reply.
        assert_eq!(
            conn.execute(cmd("SUBSCRIBE").arg("x").arg("y")).unwrap(),
            Value::Array(vec![
                confirmation("subscribe", "x", 1),
                confirmation("subscribe", "y", 2)
            ])
        );
        server.raw().cmd_str(&["PUBLISH", "x", "hello"]);
        let replies = conn
            .pipeline(&[
                cmd("PING").clone(),
                cmd("UNSUBSCRIBE").clone(),
                cmd("PING").clone(),
            ])
            .unwrap();
        assert_eq!(replies[0], Value::Array(vec![bulk("pong"), bulk("")]));
        // One confirmation per channel, in the server's order, the last one counting zero.
        let Value::Array(confirmations) = &replies[1] else {
            panic!("{:?}", replies[1])
        };
        let mut names: Vec<Value> = confirmations
            .iter()
            .map(|c| match c {
                Value::Array(fields) if fields[0] == bulk("unsubscribe") => fields[1].clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        names.sort_by_key(|name| format!("{name:?}"));
        assert_eq!(names, vec![bulk("x"), bulk("y")]);
        assert!(matches!(&confirmations[1], Value::Array(fields) if fields[2] == Value::Int(0)));
        assert_eq!(replies[2], Value::SimpleString("PONG".into()));
        drop(conn);
        assert_eq!(pool.stats().closed(CloseReason::Discarded), 1);
        assert!(
            pool.stats().out_of_band_replies >= 1,
            "the message was counted"
        );
        let conn = pool.acquire().unwrap();
        assert_ne!(conn.id(), id, "a subscribed connection is never reused");
    });
}

#[test]
fn client_reply_skip_and_off_are_counted_as_the_server_answers() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server.url(), "max_connections=1");
        let err = pool
            .execute(cmd("CLIENT").arg("REPLY").arg("OFF"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().starts_with("CLIENT REPLY"), "{err}");

        let mut conn = pool.acquire().unwrap();
        assert_eq!(
            conn.execute(cmd("CLIENT").arg("REPLY").arg("SKIP"))
                .unwrap(),
            Value::Nil
        );
        assert_eq!(
            conn.execute(cmd("SET").arg("k").arg("skipped")).unwrap(),
            Value::Nil
        );
        assert_eq!(conn.execute(cmd("GET").arg("k")).unwrap(), bulk("skipped"));
        assert_eq!(
            conn.execute(cmd("CLIENT").arg("REPLY").arg("OFF")).unwrap(),
            Value::Nil
        );
        let silent = conn
            .pipeline(&[
                cmd("SET").arg("k").arg("off").clone(),
                cmd("INCR").arg("n").clone(),
                cmd("GET").arg("k").clone(),
            ])
            .unwrap();
        assert_eq!(silent, vec![Value::Nil; 3]);
        assert_eq!(
            conn.execute(cmd("CLIENT").arg("REPLY").arg("ON")).unwrap(),
            Value::Okay
        );
        assert_eq!(conn.execute(cmd("GET").arg("k")).unwrap(), bulk("off"));
        assert_eq!(conn.execute(cmd("GET").arg("n")).unwrap(), bulk("1"));
        drop(conn);
        assert_eq!(pool.stats().closed(CloseReason::Discarded), 1);
        assert_eq!(pool.execute(cmd("GET").arg("k")).unwrap(), bulk("off"));
    });
}

#[test]
fn a_watch_left_by_discard_without_multi_never_aborts_the_next_callers_transaction() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server.url(), "max_connections=1");
        let mut conn = pool.acquire().unwrap();
        let id = conn.id();
        conn.execute(cmd("WATCH").arg("k")).unwrap();
        let err = conn.execute(&cmd("DISCARD")).unwrap_err();
        assert!(err.message().contains("DISCARD without MULTI"), "{err}");
        drop(conn);
        // The key changes after the first caller left: its WATCH must not reach the next one.
        server.raw().cmd_str(&["SET", "k", "changed"]);
        let outcome = pool
            .transaction(&[cmd("SET").arg("other").arg("1").clone()])
            .unwrap();
        assert_eq!(outcome, Some(vec![Value::Okay]), "aborted by a stale WATCH");
        let conn = pool.acquire().unwrap();
        assert_eq!(conn.id(), id, "UNWATCHed on return and reused");
    });
}

#[test]
fn a_refused_multi_says_its_commands_ran_outside_a_transaction() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        server.raw().cmd_str(&[
            "ACL",
            "SETUSER",
            "nomulti",
            "on",
            ">pw-nomulti",
            "~*",
            "&*",
            "+@all",
            "-multi",
        ]);
        let url = server
            .url()
            .replace("redis://", "redis://nomulti:pw-nomulti@");
        let pool = pool(&url, "max_connections=1&retries=0");
        let err = pool
            .transaction(&[cmd("INCR").arg("n").clone(), cmd("INCR").arg("n").clone()])
            .unwrap_err();
        let message = err.message();
        // A server error reply, with its code first: never taken for a lost connection.
        assert_eq!(err.server_code(), Some("NOPERM"), "{message}");
        assert!(message.starts_with("NOPERM"), "{message}");
        assert!(message.contains("MULTI was refused"), "{message}");
        assert!(message.contains("outside a transaction"), "{message}");
        assert!(
            message.contains("2 of them answered without error"),
            "{message}"
        );
        assert!(!message.contains("discarded"), "{message}");
        assert!(err.request_sent());
        assert_eq!(server.raw().cmd_str(&["GET", "n"]).as_str(), Some("2"));
        // The connection is still in step.
        assert_eq!(
            pool.execute(cmd("ECHO").arg("after")).unwrap(),
            bulk("after")
        );
    });
}

#[test]
fn a_server_error_that_repeats_binary_arguments_is_an_answer_not_a_broken_connection() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server.url(), "max_connections=1&retries=0");
        // The server repeats the unknown command's arguments byte for byte: not UTF-8.
        let err = pool
            .execute(cmd("NOSUCHCOMMAND").arg(&b"\xff\xfe"[..]))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Response, "{err}");
        assert_eq!(err.server_code(), Some("ERR"), "{err}");
        assert!(err.message().contains("unknown command"), "{err}");
        // Inside a pipeline, in place; inside a transaction, a rejected command of an EXECABORT.
        let replies = pool
            .pipeline(&[
                cmd("NOSUCHCOMMAND").arg(&b"\xff"[..]).clone(),
                cmd("ECHO").arg("next").clone(),
            ])
            .unwrap();
        assert!(
            matches!(&replies[0], Value::ServerError(e) if e.code() == "ERR"),
            "{replies:?}"
        );
        assert_eq!(replies[1], bulk("next"));
        let err = pool
            .transaction(&[cmd("NOSUCHCOMMAND").arg(&b"\xff"[..]).clone()])
            .unwrap_err();
        assert_eq!(err.rejected_commands().len(), 1, "{err}");
        // The one connection is still in step: never closed as broken.
        assert_eq!(
            pool.execute(cmd("ECHO").arg("after")).unwrap(),
            bulk("after")
        );
        let stats = pool.stats();
        assert_eq!(
            (stats.connections_created, stats.closed_total()),
            (1, 0),
            "{stats:?}"
        );
    });
}

#[test]
fn tracking_invalidations_between_replies_are_never_a_commands_reply() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server.url(), "max_connections=1");
        for session in [&["HELLO", "3"][..], &["CLIENT", "TRACKING", "ON"]] {
            let c = command(session);
            assert_eq!(
                pool.execute(&c).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
        }
        server.raw().cmd_str(&["SET", "tracked", "1"]);
        server.raw().cmd_str(&["SET", "other", "2"]);
        let mut conn = pool.acquire().unwrap();
        conn.execute(cmd("HELLO").arg(3)).unwrap();
        assert_eq!(
            conn.execute(cmd("CLIENT").arg("TRACKING").arg("ON"))
                .unwrap(),
            Value::Okay
        );
        for round in 0..20 {
            assert_eq!(conn.execute(cmd("GET").arg("tracked")).unwrap(), bulk("1"));
            // Another client's write sends this connection an invalidation push.
            server.raw().cmd_str(&["SET", "tracked", "1"]);
            thread::sleep(Duration::from_millis(if round % 2 == 0 { 20 } else { 0 }));
            assert_eq!(conn.execute(cmd("GET").arg("other")).unwrap(), bulk("2"));
        }
        drop(conn);
        assert!(pool.stats().out_of_band_replies >= 10, "{:?}", pool.stats());
        assert_eq!(pool.stats().closed(CloseReason::Discarded), 1);
    });
}

#[test]
fn session_commands_are_refused_on_the_pool_and_close_a_checkout() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server.url(), "max_connections=2");
        let session: &[&[&str]] = &[
            &["SELECT", "1"],
            &["CLIENT", "SETNAME", "x"],
            &["READONLY"],
            &["READWRITE"],
            &["AUTH", "pw"],
            &["HELLO", "2"],
            &["CLIENT", "REPLY", "ON"],
            &["CLIENT", "TRACKING", "OFF"],
            &["RESET"],
            &["MONITOR"],
            &["SUBSCRIBE", "c"],
            &["PSUBSCRIBE", "p*"],
            &["SSUBSCRIBE", "s"],
        ];
        for args in session {
            let c = command(args);
            let err = pool.execute(&c).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{args:?}");
            assert!(
                err.message().contains("instead") || err.message().contains("; "),
                "{err}"
            );
            assert_eq!(
                pool.transaction(std::slice::from_ref(&c))
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidArgument
            );
        }
        for lone in [cmd("MULTI"), cmd("WATCH").arg("k").clone()] {
            assert_eq!(
                pool.execute(&lone).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
        }
        for never in [
            &["SYNC"][..],
            &["PSYNC", "?", "-1"],
            &["REPLCONF", "ACK", "0"],
        ] {
            let c = command(never);
            let mut conn = pool.acquire().unwrap();
            assert_eq!(
                conn.execute(&c).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
            assert_eq!(conn.execute(cmd("ECHO").arg("x")).unwrap(), bulk("x"));
        }
        assert_eq!(pool.stats().closed_total(), 0, "refusals send nothing");
        // MONITOR works on a checkout; the connection then takes no request and is closed.
        let mut conn = pool.acquire().unwrap();
        assert_eq!(conn.execute(&cmd("MONITOR")).unwrap(), Value::Okay);
        let err = conn.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("MONITOR"), "{err}");
        drop(conn);
        assert_eq!(pool.stats().closed(CloseReason::Discarded), 1);
        // A SUBSCRIBE cannot be queued in a transaction, even on a checkout.
        let mut conn = pool.acquire().unwrap();
        let err = conn
            .transaction(&[cmd("SUBSCRIBE").arg("c").clone()])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("cannot be queued"), "{err}");
        assert_eq!(conn.execute(cmd("ECHO").arg("y")).unwrap(), bulk("y"));
    });
}

/// A loopback listener that answers every request with `answer` (and keeps the connection open).
fn answering_server(answer: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_connection_with_unread_bytes_is_closed_even_when_returned_and_reused_at_once() {
    with_timeout(LIMIT, || {
        // Two replies to every request: the second one is never asked for.
        let port = answering_server(b"+PONG\r\n$5\r\nstale\r\n");
        let url = format!("redis://127.0.0.1:{port}/0?client_name=&max_connections=1");
        let pool = Pool::from_url(&url).unwrap();
        for _ in 0..50 {
            // Back to back, well within a millisecond of the return: the bytes left in the
            // reader must close the connection, not reach the next call.
            assert_eq!(
                pool.execute(&cmd("PING")).unwrap(),
                Value::SimpleString("PONG".into())
            );
        }
        assert_eq!(pool.stats().closed(CloseReason::Broken), 50);

        // Handed straight to a waiting thread: the same guard.
        let conn = pool.acquire().unwrap();
        let waiter = {
            let pool = pool.clone();
            thread::spawn(move || pool.execute(&cmd("PING")))
        };
        wait_until("the second caller waits", LIMIT, || {
            pool.stats().waiting == 1
        });
        let mut conn = conn;
        assert_eq!(
            conn.execute(&cmd("PING")).unwrap(),
            Value::SimpleString("PONG".into())
        );
        drop(conn);
        assert_eq!(
            waiter.join().unwrap().unwrap(),
            Value::SimpleString("PONG".into())
        );
        assert_eq!(pool.stats().closed(CloseReason::Broken), 52);
    });
}

#[test]
fn the_transaction_body_is_checked_before_anything_is_sent() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions::default());
        let name = unique_name("body");
        let pool = pool(
            &server.url(),
            &format!("client_name={name}&max_connections=1"),
        );
        let mut conn = pool.acquire().unwrap();
        for inner in ["EXEC", "DISCARD", "MULTI"] {
            let err = conn
                .transaction(&[cmd("SET").arg("k").arg("v").clone(), cmd(inner)])
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{inner}");
        }
        assert_eq!(server.raw().cmd_str(&["EXISTS", "k"]).as_int(), Some(0));
        assert_eq!(conn.execute(cmd("ECHO").arg("z")).unwrap(), bulk("z"));
    });
}

#[test]
fn over_tls_a_clean_connection_is_reused_and_a_big_reply_leaves_nothing_behind() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            tls: Some(TlsKind::Valid),
            ..Default::default()
        });
        let url = format!(
            "{}/0?tls_ca_file={}&max_connections=1",
            server.tls_url(),
            server.ca_file().display()
        );
        let pool = Pool::from_url(&url).unwrap();
        // Replies spanning many TLS records and more than the reader's buffer.
        let big = "x".repeat(100_000);
        pool.execute(cmd("SET").arg("big").arg(&big)).unwrap();
        for _ in 0..50 {
            assert_eq!(pool.execute(cmd("GET").arg("big")).unwrap(), bulk(&big));
            assert_eq!(
                pool.execute(cmd("ECHO").arg("small")).unwrap(),
                bulk("small")
            );
        }
        // The guard saw no unread plaintext: one connection served everything.
        let stats = pool.stats();
        assert_eq!(stats.connections_created, 1, "{stats:?}");
        assert_eq!(stats.closed_total(), 0, "{stats:?}");
    });
}
