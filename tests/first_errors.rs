//! The breaker judges calls, and errors name the cause: against a port with nothing listening,
//! the first calls each report the refusal (one failed call counts once toward the breaker,
//! however many attempts its retries made), and the open circuit then names the failure that
//! opened it; after a wrong password every error is an authentication error, never "unreachable".

mod support;

use std::time::Duration;

use redpool::{ErrorKind, Pool, cmd};
use support::{RedisServer, ServerOptions, unused_port, with_timeout};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn the_first_calls_against_a_closed_port_report_the_refusal_then_the_circuit_names_it() {
    with_timeout(LIMIT, || {
        let port = unused_port();
        // Default retries (3) and breaker threshold (5); short backoffs keep the test quick.
        let pool = Pool::from_url(&format!(
            "redis://127.0.0.1:{port}/0?retry_backoff_base=5ms&retry_backoff_cap=20ms\
             &reconnect_backoff_base=5ms&reconnect_backoff_cap=20ms"
        ))
        .unwrap();
        for call in 1..=5 {
            let err = pool.execute(&cmd("PING")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Connection, "call {call}: {err}");
            assert!(err.message().contains("refused"), "call {call}: {err}");
            assert!(pool.stats().retries >= 3 * call, "call {call} was retried");
        }
        let err = pool.execute(&cmd("PING")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::CircuitOpen, "{err}");
        assert!(err.message().contains("last:"), "{err}");
        assert!(err.message().contains("refused"), "{err}");
    });
}

#[test]
fn after_a_wrong_password_every_error_says_authentication() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start_with(ServerOptions {
            password: Some("right-pw".into()),
            ..Default::default()
        });
        let pool = Pool::from_url(&format!(
            "redis://:wrong-pw@127.0.0.1:{}/0?reconnect_backoff_base=2s&reconnect_backoff_cap=2s",
            server.port()
        ))
        .unwrap();
        for call in 0..3 {
            let err = pool.execute(&cmd("PING")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Auth, "call {call}: {err}");
            assert!(!err.message().contains("unreachable"), "call {call}: {err}");
            assert!(
                err.message().contains("authentication"),
                "call {call}: {err}"
            );
            assert!(!err.message().contains("wrong-pw"), "call {call}: {err}");
        }
    });
}
