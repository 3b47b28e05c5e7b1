//! The pool against a real redis-server: the cap under concurrency, reply integrity, waiting
//! (timeout message, FIFO, priority), warm-up, recovery after CLIENT KILL, timeouts that do not
//! poison the pool, close(), commands, pipelines and transactions.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use redpool::{AcquireOptions, CloseReason, Config, ErrorKind, Pool, Priority, Value, cmd};
use support::{RedisServer, unique_name, wait_until, with_timeout};

const LIMIT: Duration = Duration::from_secs(60);

fn pool(server: &RedisServer, name: &str, query: &str) -> Pool {
    let url = format!("{}/0?client_name={name}&{query}", server.url());
    Pool::from_url(&url).expect("pool")
}

fn bulk(value: Value) -> Vec<u8> {
    match value {
        Value::BulkString(bytes) => bytes,
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

#[test]
fn thirty_two_threads_on_four_connections_get_their_own_replies() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("cap");
        let pool = pool(&server, &name, "max_connections=4&acquire_timeout=30s");
        let mut raw = server.raw();
        for t in 0..32 {
            for i in 0..50 {
                let key = format!("k:{t}:{i}");
                let val = format!("v:{t}:{i}");
                raw.cmd_str(&["SET", &key, &val]);
            }
        }
        let done = Arc::new(AtomicBool::new(false));
        let census = {
            let done = done.clone();
            let port = server.port();
            let name = name.clone();
            thread::spawn(move || {
                let mut most = 0;
                let mut raw = support::RawClient::connect(port, None).unwrap();
                while !done.load(Ordering::Relaxed) {
                    let list = raw.cmd_str(&["CLIENT", "LIST"]);
                    let text = list.as_str().unwrap_or_default().to_string();
                    let ours = support::parse_client_list(&text)
                        .iter()
                        .filter(|c| c.get("name").map(String::as_str) == Some(name.as_str()))
                        .count();
                    most = most.max(ours);
                    thread::sleep(Duration::from_millis(2));
                }
                most
            })
        };
        let workers: Vec<_> = (0..32)
            .map(|t| {
                let pool = pool.clone();
                thread::spawn(move || {
                    for n in 0..1000 {
                        let i = (n * 7 + t) % 50;
                        let key = format!("k:{t}:{i}");
                        let got = pool.execute(cmd("GET").arg(&key)).expect("GET");
                        assert_eq!(
                            bulk(got),
                            format!("v:{t}:{i}").into_bytes(),
                            "reply for {key}"
                        );
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker");
        }
        done.store(true, Ordering::Relaxed);
        let most = census.join().unwrap();
        assert!(
            most <= 4,
            "server saw {most} connections named {name}, cap is 4"
        );
        assert!(most >= 1);
        let stats = pool.stats();
        assert!(stats.open <= 4, "{stats:?}");
        assert!(
            stats.connections_created <= 4,
            "never more than the cap: {stats:?}"
        );
        assert_eq!(stats.commands, 32_000);
        assert_eq!(stats.acquires, 32_000);
        assert_eq!(stats.in_use, 0);
        assert_eq!(stats.waiting, 0);
        assert_eq!(stats.closed_total(), 0, "{stats:?}");
        assert!(server.count_clients_named(&name) <= 4);
    });
}

#[test]
fn acquire_timeout_explains_itself() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(
            &server,
            &unique_name("exhaust"),
            "max_connections=1&acquire_timeout=200ms",
        );
        let held = pool.acquire().unwrap();
        let err = pool.acquire().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PoolExhausted);
        let message = err.to_string();
        for needle in [
            "max_connections=1",
            "in use=1",
            "idle=0",
            "waiting=0",
            "127.0.0.1",
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from: {message}"
            );
        }
        let err = pool.try_acquire().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PoolExhausted);
        assert!(err.to_string().contains("zero timeout"), "{err}");
        let stats = pool.stats();
        assert_eq!(stats.acquire_timeouts, 2);
        assert_eq!(stats.errors_of(ErrorKind::PoolExhausted), 2);
        assert!(
            stats.wait_time_max >= Duration::from_millis(150),
            "{stats:?}"
        );
        drop(held);
        assert!(pool.try_acquire().is_ok());
    });
}

#[test]
fn acquire_timeout_reports_the_last_connect_error() {
    with_timeout(LIMIT, || {
        // A port with no server: connecting is refused.
        let port = support::unused_port();
        let pool = Pool::from_url(&format!(
            "redis://127.0.0.1:{port}?max_connections=1&acquire_timeout=100ms\
             &reconnect_backoff_base=1s"
        ))
        .unwrap();
        let err = pool.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connection, "{err}");
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
        let stats = pool.stats();
        assert_eq!(stats.open, 0, "a failed connect frees its slot: {stats:?}");
        // Nothing was sent, so the call was retried; the reconnect backoff kept the retries from
        // hammering the port (its first step, 0.5 to 1 s, is longer than the retry delays, and
        // than any stall of this thread that would let an early retry reach the next step).
        assert_eq!(stats.retries, 3, "{stats:?}");
        assert_eq!(
            stats.errors_of(ErrorKind::Connection),
            4,
            "each failed attempt counts"
        );
        assert!(stats.connect_attempts <= 2, "{stats:?}");
        assert_eq!(stats.connect_failures, stats.connect_attempts);
    });
}

/// Holds the only connection, queues `count` waiters one by one (each queued before the next
/// starts), then releases and returns the order in which they were served.
fn serve_order(priorities: &[Priority]) -> Vec<usize> {
    let server = RedisServer::start();
    let pool = pool(
        &server,
        &unique_name("order"),
        "max_connections=1&acquire_timeout=20s",
    );
    let held = pool.acquire().unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    for (i, priority) in priorities.iter().copied().enumerate() {
        let pool2 = pool.clone();
        let order = order.clone();
        threads.push(thread::spawn(move || {
            let mut conn = pool2
                .acquire_with(AcquireOptions {
                    timeout: None,
                    priority,
                })
                .unwrap();
            order.lock().unwrap().push(i);
            conn.execute(&cmd("PING")).unwrap();
        }));
        wait_until("the waiter to queue", Duration::from_secs(10), || {
            pool.stats().waiting == i + 1
        });
    }
    drop(held);
    for t in threads {
        t.join().unwrap();
    }
    order.lock().unwrap().clone()
}

#[test]
fn waiters_are_served_first_come_first_served() {
    with_timeout(LIMIT, || {
        let order = serve_order(&[Priority::Normal; 6]);
        assert_eq!(order, vec![0, 1, 2, 3, 4, 5]);
    });
}

#[test]
fn high_priority_waiters_go_first_in_their_own_order() {
    with_timeout(LIMIT, || {
        use Priority::{High, Normal};
        let order = serve_order(&[Normal, Normal, High, Normal, High]);
        assert_eq!(order, vec![2, 4, 0, 1, 3]);
    });
}

/// Sixteen threads checking out one connection in a tight loop: newcomers may take a connection
/// returned while the head waiter is within its fair hand-off window, but no thread starves (each
/// one's every acquire succeeds within `acquire_timeout`), and the cap holds.
#[test]
fn busy_threads_on_one_connection_all_progress() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(
            &server,
            &unique_name("busy"),
            "max_connections=1&acquire_timeout=20s",
        );
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let pool = pool.clone();
                thread::spawn(move || {
                    for i in 0..300 {
                        let mut conn = pool.acquire().expect("acquire");
                        if i % 50 == 0 {
                            let key = format!("busy:{t}");
                            conn.execute(cmd("SET").arg(&key).arg(i)).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("every thread finishes all its checkouts");
        }
        let stats = pool.stats();
        assert_eq!(
            (stats.open, stats.in_use, stats.waiting),
            (1, 0, 0),
            "{stats:?}"
        );
        assert_eq!(stats.acquire_timeouts, 0, "{stats:?}");
    });
}

#[test]
fn warm_up_opens_min_idle_connections() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("warm");
        let pool = pool(&server, &name, "max_connections=5&min_idle=3");
        assert_eq!(server.count_clients_named(&name), 3);
        let stats = pool.stats();
        assert_eq!(
            (stats.open, stats.idle, stats.in_use),
            (3, 3, 0),
            "{stats:?}"
        );
        assert_eq!(stats.connections_created, 3);
        // The warm connections are used before any new one is opened.
        pool.execute(&cmd("PING")).unwrap();
        assert_eq!(pool.stats().connections_created, 3);
    });
}

#[test]
fn client_kill_of_every_connection_is_survived() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("killed");
        let pool = pool(&server, &name, "max_connections=4&min_idle=4");
        assert_eq!(server.count_clients_named(&name), 4);
        assert_eq!(server.kill_clients_named(&name), 4);
        wait_until("the kills to land", Duration::from_secs(10), || {
            server.count_clients_named(&name) == 0
        });
        // Connections returned in the last millisecond skip the liveness look (see
        // VALIDATION_BYPASS in src/pool/shared.rs); these have been idle longer.
        std::thread::sleep(Duration::from_millis(5));
        for i in 0..100 {
            let key = format!("after-kill:{i}");
            pool.execute(cmd("SET").arg(&key).arg(i))
                .expect("SET after kill");
            assert_eq!(
                pool.execute(cmd("GET").arg(&key)).unwrap(),
                Value::BulkString(i.to_string().into())
            );
        }
        // Every killed connection is found dead when it is next handed out, and replaced.
        let all: Vec<_> = (0..4).map(|_| pool.acquire().unwrap()).collect();
        for mut conn in all {
            conn.execute(&cmd("PING")).unwrap();
        }
        let stats = pool.stats();
        assert_eq!(stats.closed(CloseReason::ServerClosed), 4, "{stats:?}");
        assert_eq!(stats.errors_of(ErrorKind::Connection), 0, "{stats:?}");
        assert!(server.count_clients_named(&name) <= 4);
    });
}

#[test]
fn read_timeout_does_not_poison_the_pool() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("sleepy");
        // 1 s, not less: none of the 200 GETs may time out on a loaded machine.
        let pool = pool(&server, &name, "max_connections=2&socket_timeout=1s");
        let mut raw = server.raw();
        for i in 0..100 {
            raw.cmd_str(&["SET", &format!("p:{i}"), &format!("value-{i}")]);
        }
        let err = pool
            .execute(cmd("DEBUG").arg("SLEEP").arg("2"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        // The late "+OK" of DEBUG SLEEP must never be read as the reply to a later command.
        for i in 0..100 {
            let got = pool.execute(cmd("GET").arg(format!("p:{i}"))).expect("GET");
            assert_eq!(bulk(got), format!("value-{i}").into_bytes());
        }
        thread::sleep(Duration::from_millis(700));
        for i in 0..100 {
            let got = pool.execute(cmd("GET").arg(format!("p:{i}"))).expect("GET");
            assert_eq!(bulk(got), format!("value-{i}").into_bytes());
        }
        let stats = pool.stats();
        assert_eq!(stats.closed(CloseReason::Broken), 1, "{stats:?}");
        assert_eq!(stats.errors_of(ErrorKind::Timeout), 1);
    });
}

#[test]
fn pipeline_timeout_mid_replies_closes_the_connection() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(
            &server,
            &unique_name("pipe-sleep"),
            "max_connections=1&socket_timeout=200ms",
        );
        let cmds = vec![
            cmd("SET").arg("a").arg("1").clone(),
            cmd("DEBUG").arg("SLEEP").arg("0.5").clone(),
            cmd("GET").arg("a").clone(),
        ];
        let err = pool.pipeline(&cmds).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        for _ in 0..20 {
            assert_eq!(
                pool.execute(cmd("GET").arg("a")).unwrap(),
                Value::BulkString(b"1".to_vec())
            );
        }
    });
}

#[test]
fn close_with_connections_out() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("closing");
        let pool = pool(
            &server,
            &name,
            "max_connections=2&min_idle=2&acquire_timeout=20s",
        );
        let mut held_a = pool.acquire().unwrap();
        let held_b = pool.acquire().unwrap();
        let waiter = {
            let pool = pool.clone();
            thread::spawn(move || pool.acquire().map(|_| ()))
        };
        wait_until("the waiter to queue", Duration::from_secs(10), || {
            pool.stats().waiting == 1
        });
        let returner = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            drop(held_b);
        });
        pool.close(Duration::from_millis(400));
        let err = waiter.join().unwrap().unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Closed,
            "waiters wake with Closed: {err}"
        );
        returner.join().unwrap();
        assert_eq!(pool.acquire().unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(
            pool.execute(&cmd("PING")).unwrap_err().kind(),
            ErrorKind::Closed
        );
        // After the grace period the socket still checked out was shut down: it fails fast.
        let err = held_a.execute(&cmd("PING")).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Connection), "{err}");
        drop(held_a);
        pool.close(Duration::from_millis(10));
        let stats = pool.stats();
        assert_eq!(
            (stats.open, stats.idle, stats.in_use),
            (0, 0, 0),
            "{stats:?}"
        );
        assert_eq!(stats.closed(CloseReason::PoolClosed), 2, "{stats:?}");
        wait_until(
            "the server to see every socket closed",
            Duration::from_secs(10),
            || server.count_clients_named(&name) == 0,
        );
    });
}

#[test]
fn close_returns_once_connections_come_back() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, &unique_name("drain"), "max_connections=2");
        let mut held = pool.acquire().unwrap();
        let user = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            // Work in progress during the grace period still completes.
            held.execute(&cmd("PING")).unwrap();
        });
        pool.close(Duration::from_secs(30));
        user.join().unwrap();
        assert_eq!(pool.stats().open, 0);
    });
}

#[test]
fn commands_are_binary_safe() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, &unique_name("binary"), "");
        let value: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
        let key = b"bin\x00key\r\n".to_vec();
        pool.execute(cmd("SET").arg(&key).arg(&value)).unwrap();
        assert_eq!(bulk(pool.execute(cmd("GET").arg(&key)).unwrap()), value);
        let mut raw = server.raw();
        assert_eq!(raw.command(&[b"GET", &key]).as_bytes().unwrap(), &value[..]);
        assert_eq!(pool.execute(cmd("GET").arg("missing")).unwrap(), Value::Nil);
        assert_eq!(pool.execute(cmd("INCR").arg("n")).unwrap(), Value::Int(1));
    });
}

#[test]
fn server_error_reply_keeps_the_connection() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, &unique_name("errors"), "max_connections=1");
        pool.execute(cmd("SET").arg("s").arg("text")).unwrap();
        let err = pool.execute(cmd("INCR").arg("s")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Response);
        assert_eq!(err.server_code(), Some("ERR"));
        assert!(err.to_string().contains("not an integer"), "{err}");
        let err = pool.execute(cmd("LPUSH").arg("s").arg("x")).unwrap_err();
        assert_eq!(err.server_code(), Some("WRONGTYPE"));
        assert_eq!(
            pool.execute(&cmd("PING")).unwrap(),
            Value::SimpleString("PONG".into())
        );
        let stats = pool.stats();
        assert_eq!(stats.connections_created, 1);
        assert_eq!(stats.closed_total(), 0);
        assert_eq!(stats.errors_of(ErrorKind::Response), 2);
    });
}

#[test]
fn pipelines_keep_errors_in_place() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, &unique_name("pipe"), "");
        let cmds: Vec<_> = (0..100)
            .map(|i| cmd("SET").arg(format!("pk:{i}")).arg(i).clone())
            .chain([
                cmd("INCR").arg("pk:1").clone(),
                cmd("LPUSH").arg("pk:2").arg("x").clone(),
            ])
            .collect();
        let replies = pool.pipeline(&cmds).unwrap();
        assert_eq!(replies.len(), 102);
        assert!(replies[..100].iter().all(|r| *r == Value::Okay));
        assert_eq!(replies[100], Value::Int(2));
        assert!(matches!(&replies[101], Value::ServerError(e) if e.code() == "WRONGTYPE"));
        assert_eq!(pool.pipeline(&[]).unwrap(), Vec::<Value>::new());
        assert_eq!(pool.stats().commands, 102);
    });
}

#[test]
fn a_batch_gives_each_command_its_own_outcome_in_one_round_trip() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, &unique_name("batch"), "");
        pool.execute(cmd("SET").arg("text").arg("abc")).unwrap();
        let before = pool.stats().acquires;
        let outcomes = pool.execute_batch(&[
            cmd("SET").arg("b:1").arg("one").clone(),
            cmd("INCR").arg("text").clone(),
            cmd("SELECT").arg(1).clone(),
            cmd("BLPOP").arg("b:empty").arg("0.05").clone(),
            cmd("GET").arg("b:1").clone(),
        ]);
        assert_eq!(outcomes.len(), 5);
        assert_eq!(outcomes[0], Ok(Value::Okay));
        let incr = outcomes[1].as_ref().unwrap_err();
        assert_eq!(
            (incr.kind(), incr.server_code()),
            (ErrorKind::Response, Some("ERR"))
        );
        assert_eq!(
            outcomes[2].as_ref().unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(outcomes[3], Ok(Value::Nil));
        assert_eq!(outcomes[4], Ok(Value::BulkString(b"one".to_vec())));
        // One checkout for the pipeline of three, one for the BLPOP sent alone.
        assert_eq!(pool.stats().acquires - before, 2);
        // A batch of one runs as `execute`; an empty one does nothing.
        assert_eq!(
            pool.execute_batch(&[cmd("GET").arg("b:1").clone()]),
            vec![Ok(Value::BulkString(b"one".to_vec()))]
        );
        assert!(pool.execute_batch(&[]).is_empty());
    });
}

#[test]
fn a_batch_sends_quit_alone_after_the_others() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, &unique_name("batchquit"), "retries=0");
        let outcomes = pool.execute_batch(&[
            cmd("INCR").arg("q:n").clone(),
            cmd("QUIT").clone(),
            cmd("INCR").arg("q:n").clone(),
        ]);
        assert_eq!(outcomes[0], Ok(Value::Int(1)));
        assert_eq!(outcomes[1], Ok(Value::Okay));
        assert_eq!(outcomes[2], Ok(Value::Int(2)));
        assert_eq!(
            pool.execute(cmd("GET").arg("q:n")),
            Ok(Value::BulkString(b"2".to_vec()))
        );
    });
}

#[test]
fn reads_of_a_failed_mixed_batch_are_sent_again_and_writes_are_not() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("batchretry");
        let pool = pool(&server, &name, "socket_timeout=1s&retries=3");
        pool.execute(cmd("SET").arg("r:k").arg("v")).unwrap();
        // The pipeline's DEBUG SLEEP outlasts the socket timeout: the exchange fails after the
        // request went out. The INCR (and the DEBUG) may have been applied, so they fail; the
        // GET is sent again on its own pipeline and answered once the server is back.
        let outcomes = pool.execute_batch(&[
            cmd("INCR").arg("r:n").clone(),
            cmd("DEBUG").arg("SLEEP").arg("2").clone(),
            cmd("GET").arg("r:k").clone(),
        ]);
        assert_eq!(outcomes[0].as_ref().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(outcomes[1].as_ref().unwrap_err().kind(), ErrorKind::Timeout);
        assert_eq!(outcomes[2], Ok(Value::BulkString(b"v".to_vec())));
        // The INCR was sent once, not again.
        assert_eq!(
            pool.execute(cmd("GET").arg("r:n")),
            Ok(Value::BulkString(b"1".to_vec()))
        );
    });
}

#[test]
fn a_failed_batch_fails_each_of_its_commands() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("batchfail");
        let pool = pool(&server, &name, "socket_timeout=200ms&retries=0");
        // The pipeline's second command keeps the server busy past the socket timeout.
        let outcomes = pool.execute_batch(&[
            cmd("SET").arg("f:1").arg("one").clone(),
            cmd("DEBUG").arg("SLEEP").arg("2").clone(),
            cmd("GET").arg("f:1").clone(),
        ]);
        assert_eq!(outcomes.len(), 3);
        for outcome in &outcomes {
            assert_eq!(outcome.as_ref().unwrap_err().kind(), ErrorKind::Timeout);
        }
        // The timed-out connection was closed, not pooled: the next batch reads its own replies.
        let outcomes = pool.execute_batch(&[
            cmd("ECHO").arg("after").clone(),
            cmd("GET").arg("f:1").clone(),
        ]);
        assert_eq!(outcomes[0], Ok(Value::BulkString(b"after".to_vec())));
        assert_eq!(outcomes[1], Ok(Value::BulkString(b"one".to_vec())));
    });
}

#[test]
fn transactions_commit_abort_and_reject() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(&server, &unique_name("tx"), "max_connections=2");
        let replies = pool
            .transaction(&[
                cmd("SET").arg("t").arg("1").clone(),
                cmd("INCR").arg("t").clone(),
            ])
            .unwrap()
            .expect("committed");
        assert_eq!(replies, vec![Value::Okay, Value::Int(2)]);

        // A runtime error of one command stays in place; the others are applied.
        let replies = pool
            .transaction(&[
                cmd("LPUSH").arg("t").arg("x").clone(),
                cmd("INCR").arg("t").clone(),
            ])
            .unwrap()
            .unwrap();
        assert!(matches!(&replies[0], Value::ServerError(e) if e.code() == "WRONGTYPE"));
        assert_eq!(replies[1], Value::Int(3));

        // A command rejected while queueing discards the whole transaction; the error names
        // every rejected command with its own error reply.
        let err = pool
            .transaction(&[
                cmd("INCR").arg("t").clone(),
                cmd("NOSUCHCOMMAND").clone(),
                cmd("GET").clone(),
            ])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Response);
        assert!(
            err.to_string().contains("command 2 (NOSUCHCOMMAND)"),
            "{err}"
        );
        let rejected: Vec<_> = err
            .rejected_commands()
            .iter()
            .map(|(index, reply)| (*index, reply.server_code(), reply.message()))
            .collect();
        assert!(
            matches!(&rejected[..], [(1, Some("ERR"), unknown), (2, Some("ERR"), arity)]
                if unknown.contains("unknown command") && arity.contains("wrong number of arguments")),
            "{rejected:?}"
        );
        assert_eq!(
            pool.execute(cmd("GET").arg("t")).unwrap(),
            Value::BulkString(b"3".to_vec())
        );

        // WATCH on a checked-out connection, a concurrent write, EXEC aborted.
        let mut conn = pool.acquire().unwrap();
        conn.execute(cmd("WATCH").arg("t")).unwrap();
        server.raw().cmd_str(&["SET", "t", "100"]);
        let outcome = conn
            .transaction(&[cmd("SET").arg("t").arg("4").clone()])
            .unwrap();
        assert_eq!(outcome, None, "EXEC aborted by WATCH");
        // Without interference the same sequence commits.
        conn.execute(cmd("WATCH").arg("t")).unwrap();
        let outcome = conn.transaction(&[cmd("INCR").arg("t").clone()]).unwrap();
        assert_eq!(outcome, Some(vec![Value::Int(101)]));
        drop(conn);
        assert_eq!(pool.stats().closed_total(), 0);
    });
}

#[test]
fn connection_state_left_behind_is_cleaned_or_closed() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("state");
        let pool = pool(&server, &name, "max_connections=1");
        pool.execute(cmd("SET").arg("where").arg("db0")).unwrap();
        // SELECT on the shared pool is refused: its effect would reach the next caller.
        let err = pool.execute(cmd("SELECT").arg(1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.message()
                .starts_with("SELECT cannot run on a shared pooled connection")
        );
        assert!(
            err.message().contains("database in the pool's settings"),
            "{err}"
        );
        // On a checked-out connection it works, and that connection is not reused on db 1.
        let mut conn = pool.acquire().unwrap();
        conn.execute(cmd("SELECT").arg(1)).unwrap();
        assert_eq!(conn.execute(cmd("GET").arg("where")).unwrap(), Value::Nil);
        drop(conn);
        assert_eq!(
            pool.execute(cmd("GET").arg("where")).unwrap(),
            Value::BulkString(b"db0".to_vec())
        );
        assert_eq!(
            pool.stats().closed(CloseReason::Discarded),
            1,
            "the SELECTed connection was closed"
        );
        assert_eq!(pool.stats().closed_total(), 1);

        // A WATCH left open is undone (UNWATCH) and the connection reused.
        let mut conn = pool.acquire().unwrap();
        let id = conn.id();
        conn.execute(cmd("WATCH").arg("where")).unwrap();
        drop(conn);
        server.raw().cmd_str(&["SET", "where", "changed"]);
        let mut conn = pool.acquire().unwrap();
        assert_eq!(conn.id(), id, "reused after UNWATCH");
        let outcome = conn
            .transaction(&[cmd("GET").arg("where").clone()])
            .unwrap();
        assert!(outcome.is_some(), "no stale WATCH aborted this transaction");
        // A MULTI left open is discarded.
        conn.execute(&cmd("MULTI")).unwrap();
        conn.execute(cmd("SET").arg("where").arg("never")).unwrap();
        drop(conn);
        assert_eq!(
            pool.execute(cmd("GET").arg("where")).unwrap(),
            Value::BulkString(b"changed".to_vec())
        );

        // discard() closes instead of returning.
        let conn = pool.acquire().unwrap();
        conn.discard();
        assert_eq!(pool.stats().closed(CloseReason::Discarded), 2);
        assert!(server.count_clients_named(&name) <= 1);
    });
}

#[test]
fn blocking_commands_get_their_own_timeout() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(
            &server,
            &unique_name("blocking"),
            "max_connections=2&socket_timeout=200ms",
        );
        let mut conn = pool.acquire().unwrap();
        let started = Instant::now();
        let reply = conn
            .execute_with_timeout(
                cmd("BLPOP").arg("empty-list").arg("0.6"),
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(reply, Value::Nil);
        assert!(started.elapsed() >= Duration::from_millis(500));
        // The normal timeout is back afterwards.
        let err = conn
            .execute(cmd("BLPOP").arg("empty-list").arg("1"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        drop(conn);
        // And a pushed value is received through the pool-level variant.
        let pusher = {
            let port = server.port();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(300));
                support::RawClient::connect(port, None)
                    .unwrap()
                    .cmd_str(&["RPUSH", "jobs", "job-1"]);
            })
        };
        let reply = pool
            .execute_with_timeout(cmd("BLPOP").arg("jobs").arg(5), Duration::from_secs(6))
            .unwrap();
        pusher.join().unwrap();
        assert_eq!(
            reply,
            Value::Array(vec![
                Value::BulkString(b"jobs".to_vec()),
                Value::BulkString(b"job-1".to_vec())
            ])
        );
    });
}

#[test]
fn idle_timeout_and_max_lifetime_retire_connections() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = pool(
            &server,
            &unique_name("aging"),
            "max_connections=1&idle_timeout=150ms",
        );
        pool.execute(&cmd("PING")).unwrap();
        thread::sleep(Duration::from_millis(250));
        pool.execute(&cmd("PING")).unwrap();
        let stats = pool.stats();
        assert_eq!(stats.closed(CloseReason::IdleTimeout), 1, "{stats:?}");
        assert_eq!(stats.connections_created, 2);

        let pool = self::pool(
            &server,
            &unique_name("lifetime"),
            "max_connections=1&max_lifetime=200ms",
        );
        pool.execute(&cmd("PING")).unwrap();
        thread::sleep(Duration::from_millis(250));
        pool.execute(&cmd("PING")).unwrap();
        assert_eq!(pool.stats().closed(CloseReason::MaxLifetime), 1);
    });
}

#[test]
fn unix_socket_and_db_selection() {
    with_timeout(LIMIT, || {
        let dir = std::env::temp_dir().join(unique_name("redpool-sock"));
        std::fs::create_dir_all(&dir).unwrap();
        let sock = dir.join("redis.sock");
        let server = RedisServer::start_with(support::ServerOptions {
            extra_args: vec!["--unixsocket".into(), sock.display().to_string()],
            ..Default::default()
        });
        let pool = Pool::from_url(&format!("unix://{}?db=2", sock.display())).unwrap();
        pool.execute(cmd("SET").arg("u").arg("over-unix")).unwrap();
        let mut raw = server.raw();
        raw.cmd_str(&["SELECT", "2"]);
        assert_eq!(raw.cmd_str(&["GET", "u"]).as_bytes().unwrap(), b"over-unix");
        drop(server);
        let _ = std::fs::remove_dir_all(dir);
    });
}

#[test]
fn registry_shares_one_pool_per_configuration() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let url = format!("{}/0?client_name={}", server.url(), unique_name("shared"));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let url = url.clone();
                thread::spawn(move || redpool::shared(&url).unwrap())
            })
            .collect();
        let pools: Vec<Pool> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(pools.iter().all(|p| p.same_pool(&pools[0])));
        let same = redpool::shared(&format!("{url}&max_connections=50&socket_timeout=5s")).unwrap();
        assert!(same.same_pool(&pools[0]), "normalized settings are equal");
        let other = redpool::shared(&format!("{url}&max_connections=7")).unwrap();
        assert!(!other.same_pool(&pools[0]));
        let config = Config::from_url(&url).unwrap();
        assert!(redpool::shared_with(config).unwrap().same_pool(&pools[0]));
        pools[0].close(Duration::ZERO);
        let fresh = redpool::shared(&url).unwrap();
        assert!(!fresh.same_pool(&pools[0]), "a closed pool is replaced");
        assert!(fresh.execute(&cmd("PING")).is_ok());
    });
}

#[test]
fn disconnect_closes_idle_connections_now_and_busy_ones_when_returned() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let name = unique_name("disconnect");
        let pool = pool(&server, &name, "max_connections=4");
        let busy = pool.acquire().expect("a connection");
        let idle: Vec<_> = (0..2)
            .map(|_| pool.acquire().expect("a connection"))
            .collect();
        drop(idle);
        assert_eq!(server.count_clients_named(&name), 3);

        pool.disconnect().expect("disconnect");
        // The two idle ones are closed at once; the busy one keeps working for its caller.
        wait_until("the idle ones to close", Duration::from_secs(10), || {
            server.count_clients_named(&name) == 1
        });
        let mut busy = busy;
        assert_eq!(
            busy.execute(&cmd("PING")).expect("ping"),
            Value::SimpleString("PONG".into())
        );
        drop(busy);
        wait_until("the returned one to close", Duration::from_secs(10), || {
            server.count_clients_named(&name) == 0
        });
        assert_eq!(pool.stats().closed(CloseReason::Discarded), 3);

        // The pool stays open: the next call opens a new connection.
        pool.execute(cmd("SET").arg("k").arg("v")).expect("set");
        assert_eq!(server.count_clients_named(&name), 1);
        pool.close(Duration::ZERO);
        assert_eq!(pool.disconnect().unwrap_err().kind(), ErrorKind::Closed);
    });
}

/// `server_answers` asks on a connection of its own: with the pool's only connection held it
/// answers at once, and it changes neither the stats nor the breaker; a PING refused by the ACL
/// is an answer; a frozen server, a wrong password or a closed port answer false; an answer
/// opens the reconnect gate a failed connect closed.
#[test]
fn server_answers_outside_the_pool() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(support::ServerOptions {
            password: Some("probe-pass".into()),
            ..Default::default()
        });
        let name = unique_name("answers");
        let url = |credentials: &str| {
            format!(
                "redis://{credentials}@127.0.0.1:{}/0?client_name={name}&max_connections=1\
                 &acquire_timeout=30s&socket_timeout=300ms&connect_timeout=300ms&retries=0\
                 &breaker=false&reconnect_backoff_base=20s&reconnect_backoff_cap=20s",
                server.port()
            )
        };
        let pool = Pool::from_url(&url(":probe-pass")).unwrap();
        let held = pool.acquire().unwrap();
        let before = pool.stats();
        assert!(
            pool.server_answers(),
            "answers while the only connection is held"
        );
        assert_eq!(
            pool.stats(),
            before,
            "no pooled connection, counter or gauge touched"
        );
        wait_until(
            "its own connection to be closed",
            Duration::from_secs(10),
            || server.count_clients_named(&name) == 1,
        );
        drop(held);

        // A connect that times out on a frozen server closes the reconnect gate (10 to 20 s).
        pool.disconnect().unwrap();
        server.stop_process();
        assert!(!pool.server_answers(), "a frozen server does not answer");
        assert!(pool.execute(&cmd("PING")).is_err());
        server.cont_process();
        let gated = pool.execute(&cmd("PING")).unwrap_err();
        assert!(gated.to_string().contains("next attempt in"), "{gated}");
        // An answer opens it: the next call connects at once.
        assert!(pool.server_answers());
        assert_eq!(
            pool.execute(&cmd("PING")).unwrap(),
            Value::SimpleString("PONG".into())
        );

        let mut raw = server.raw();
        let acl = [
            "ACL",
            "SETUSER",
            "noping",
            "on",
            ">noping-pass",
            "~*",
            "+@all",
            "-ping",
        ];
        assert_eq!(raw.cmd_str(&acl).as_str(), Some("OK"));
        let refused = Pool::from_url(&url("noping:noping-pass")).unwrap();
        assert!(refused.server_answers(), "NOPERM is an answer");

        let wrong = Pool::from_url(&url(":wrong-pass")).unwrap();
        assert!(!wrong.server_answers(), "refused credentials");
        let nothing = Pool::from_url(&format!(
            "redis://127.0.0.1:{}?connect_timeout=300ms",
            support::unused_port()
        ))
        .unwrap();
        assert!(!nothing.server_answers(), "nothing listening");
    });
}
