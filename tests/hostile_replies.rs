//! Bounded replies from a broken or hostile server: a loopback listener answers a command with a
//! malformed frame (a huge or negative length, endless nesting, a line that never ends). Each is a
//! protocol error raised at once (not a timeout: the listener keeps the connection open, so
//! waiting would end in one), with no allocation of the announced size, and the connection
//! closed. Alone in its binary, so the process's memory is this test's.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use redpool::{CloseReason, ErrorKind, Pool, cmd};
use support::with_timeout;

/// What the listener answers the first request of each connection with.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// These bytes.
    Bytes(&'static [u8]),
    /// `prefix`, then `len` bytes of `fill` in 64 KiB writes, never a CRLF.
    Endless {
        prefix: &'static [u8],
        fill: u8,
        len: usize,
    },
    /// `unit` repeated `times`.
    Repeated { unit: &'static [u8], times: usize },
}

/// A listener on a free loopback port answering every connection with `answer`, then holding it
/// open (up to 20 s) without another byte.
fn hostile_server(answer: Answer) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut stream) = stream else { return };
            thread::spawn(move || {
                let mut request = [0u8; 1024];
                if stream.read(&mut request).unwrap_or(0) == 0 {
                    return;
                }
                let _ = match answer {
                    Answer::Bytes(bytes) => stream.write_all(bytes),
                    Answer::Endless { prefix, fill, len } => {
                        let chunk = vec![fill; 64 * 1024];
                        stream.write_all(prefix).and_then(|()| {
                            (0..len / chunk.len()).try_for_each(|_| stream.write_all(&chunk))
                        })
                    }
                    Answer::Repeated { unit, times } => stream.write_all(&unit.repeat(times)),
                };
                stream.set_read_timeout(Some(Duration::from_secs(20))).ok();
                let _ = stream.read(&mut request); // until the client closes
            });
        }
    });
    port
}

/// Resident memory of this process, in bytes.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn malformed_replies_are_protocol_errors_at_once_without_allocating_what_they_announce() {
    with_timeout(Duration::from_secs(120), || {
        let cases: &[(Answer, &str, &str)] = &[
            (
                Answer::Bytes(b"$1000000000000\r\n"),
                "",
                "above max_reply_bytes",
            ),
            (
                Answer::Bytes(b"$536870913\r\n"),
                "",
                "above max_reply_bytes",
            ),
            (
                Answer::Bytes(b"*99999999999\r\n"),
                "",
                "above max_reply_bytes",
            ),
            (
                Answer::Bytes(b"%4000000000\r\n"),
                "",
                "above max_reply_bytes",
            ),
            (Answer::Bytes(b"$-2\r\n"), "", "negative length"),
            (Answer::Bytes(b"*-3\r\n"), "", "negative length"),
            (
                Answer::Bytes(b"$5000\r\n"),
                "&max_reply_bytes=1000",
                "above max_reply_bytes (1000)",
            ),
            (
                Answer::Repeated {
                    unit: b"*1\r\n",
                    times: 100_000,
                },
                "",
                "nested deeper",
            ),
            (
                Answer::Endless {
                    prefix: b"+",
                    fill: b'a',
                    len: 8 << 20,
                },
                "",
                "longer than",
            ),
            (
                Answer::Endless {
                    prefix: b"-ERR ",
                    fill: b'x',
                    len: 8 << 20,
                },
                "",
                "longer than",
            ),
            (
                Answer::Endless {
                    prefix: b":",
                    fill: b'9',
                    len: 2 << 20,
                },
                "",
                "longer than",
            ),
        ];
        let before = resident_bytes();
        for (answer, query, expected) in cases {
            let port = hostile_server(*answer);
            let url = format!(
                "redis://127.0.0.1:{port}/0?client_name=&socket_timeout=5s&retries=0{query}"
            );
            let pool = Pool::from_url(&url).unwrap();
            let err = pool.execute(cmd("GET").arg("k")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol, "{answer:?}: {err}");
            assert!(err.message().contains(expected), "{answer:?}: {err}");
            assert!(
                err.message().len() < 400,
                "one short line: {}",
                err.message()
            );
            assert_eq!(pool.stats().closed(CloseReason::Broken), 1, "{answer:?}");
            assert_eq!(pool.stats().open, 0, "{answer:?}");
        }
        let grown = resident_bytes().saturating_sub(before);
        assert!(
            grown < 48 << 20,
            "memory grew by {} MB reading malformed replies",
            grown >> 20
        );
    });
}
