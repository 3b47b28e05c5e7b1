//! One behaviour in every language (issue 15.1): the rules the bindings used to restate, as the
//! core states them once. The C, Python and Node suites check the same rules through their
//! bindings (tests/c, python/tests/test_one_source.py, node/test/one-source.test.mjs).

mod support;

use std::time::Duration;

use redpool::{ErrorKind, Pool, Value, cmd};
use support::{RedisServer, with_timeout};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn noperm_is_a_response_error_not_an_auth_error() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        server.raw().cmd_str(&[
            "ACL",
            "SETUSER",
            "reader",
            "on",
            ">reader-pass",
            "~*",
            "&*",
            "+@all",
            "-set",
        ]);
        let url = server
            .url()
            .replace("redis://", "redis://reader:reader-pass@");
        let pool = Pool::from_url(&format!("{url}?retries=0")).unwrap();
        let err = pool.execute(cmd("SET").arg("k").arg("v")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Response, "{err}");
        assert_eq!(err.server_code(), Some("NOPERM"), "{err}");
        // The credentials were accepted: the pool keeps working.
        assert_eq!(pool.execute(cmd("GET").arg("k")).unwrap(), Value::Nil);
        // Refused credentials stay Auth.
        let wrong = server.url().replace("redis://", "redis://reader:wrong@");
        let err = Pool::from_url(&format!("{wrong}?retries=0"))
            .unwrap()
            .execute(&cmd("PING"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    });
}

#[test]
fn transient_kinds_are_one_list() {
    let transient: Vec<ErrorKind> = ErrorKind::ALL
        .into_iter()
        .filter(|kind| kind.is_transient())
        .collect();
    assert_eq!(
        transient,
        [
            ErrorKind::Connection,
            ErrorKind::Timeout,
            ErrorKind::PoolExhausted,
            ErrorKind::CircuitOpen,
            ErrorKind::Protocol,
        ]
    );
}

#[test]
fn a_refused_connection_is_transient_and_a_server_error_is_not() {
    with_timeout(LIMIT, || {
        let server = RedisServer::start();
        let pool = Pool::from_url(&format!("{}?retries=0", server.url())).unwrap();
        let err = pool.execute(cmd("INCR").arg("k").arg("x")).unwrap_err();
        assert!(!err.kind().is_transient(), "{err}");
        drop(server);
        let err = pool.execute(&cmd("PING")).unwrap_err();
        assert!(err.kind().is_transient(), "{err}");
    });
}

#[test]
fn a_released_connection_and_an_unsupported_reply_have_one_error_each() {
    // Python and Node raise these (C: a released handle is NULL; an unsupported reply is an ERROR
    // reply with this message in place of the value).
    let released = redpool::Error::released();
    assert_eq!(released.kind(), ErrorKind::Closed);
    assert!(!released.kind().is_transient());
    let unsupported = redpool::Error::unsupported_reply(&Value::Boolean(true));
    assert_eq!(unsupported.kind(), ErrorKind::Protocol);
    assert!(
        unsupported
            .message()
            .to_lowercase()
            .starts_with("unsupported reply type boolean:"),
        "{unsupported}"
    );
}

#[test]
fn a_knobs_kind_is_what_its_parser_does_and_node_numbers_are_milliseconds() {
    use redpool::config::{KNOBS, KnobInput, is_duration_knob};
    // A knob's kind is what its parser does: an unknown unit is refused by the duration knobs
    // only.
    for knob in KNOBS {
        let err = redpool::Config::builder().set(knob.name(), "1qq").err();
        let unit_refused = err.is_some_and(|e| e.message().contains("unknown unit"));
        assert_eq!(unit_refused, knob.takes_duration(), "{}", knob.name());
        assert_eq!(is_duration_knob(knob.name()), knob.takes_duration());
    }
    let config = |input| {
        let mut b = redpool::Config::builder();
        b.set_input("max_lifetime", input)?;
        Ok::<_, redpool::Error>(b.build().unwrap())
    };
    let lifetime = |c: redpool::Config| c.max_lifetime().unwrap();
    assert_eq!(
        lifetime(config(KnobInput::Millis(2000.0)).unwrap()),
        Duration::from_secs(2)
    );
    assert_eq!(
        lifetime(config(KnobInput::Text("2000")).unwrap()),
        Duration::from_secs(2000)
    );
    assert_eq!(
        lifetime(config(KnobInput::UnitRequired("2s")).unwrap()),
        Duration::from_secs(2)
    );
    let err = config(KnobInput::UnitRequired("2000")).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("max_lifetime"), "{err}");
    assert!(err.message().contains("needs its unit"), "{err}");
    // Counts are numbers, whatever the input.
    let mut b = redpool::Config::builder();
    b.set_input("retries", KnobInput::Millis(2.0)).unwrap();
    b.set_input("breaker_min_calls", KnobInput::UnitRequired("7"))
        .unwrap();
    let c = b.build().unwrap();
    assert_eq!(c.retry().retries, 2);
}

/// A binding passes its own option's name with the value; the core's rules decide, and every
/// error, from the setter or from `build()`, names the option as the caller wrote it.
#[test]
fn errors_name_the_option_as_the_binding_caller_wrote_it() {
    use redpool::config::KnobInput;
    let mut b = redpool::Config::builder();
    let err = b
        .set_written(
            "connect_timeout",
            KnobInput::Text("soon"),
            "socket_connect_timeout",
        )
        .err()
        .unwrap();
    assert!(
        err.message()
            .starts_with("invalid socket_connect_timeout = \"soon\": must be a duration"),
        "{err}"
    );
    // A range rule checked by build() names it too.
    let mut b = redpool::Config::builder();
    b.set_written("connect_timeout", KnobInput::Millis(0.0), "connectTimeout")
        .unwrap();
    let err = b.build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.message()
            .starts_with("invalid connectTimeout = 0: must be greater than zero"),
        "{err}"
    );
    let mut b = redpool::Config::builder();
    b.set_written("max_connections", KnobInput::Text("0"), "maxConnections")
        .unwrap();
    let err = b.build().unwrap_err();
    assert!(
        err.message()
            .starts_with("invalid maxConnections = 0: must be between 1"),
        "{err}"
    );
    // The latest setting of a knob names it (Python: timeout=5, then acquire_timeout=0).
    let mut b = redpool::Config::builder();
    b.set_written("acquire_timeout", KnobInput::Text("5"), "timeout")
        .unwrap();
    b.set_written("acquire_timeout", KnobInput::Text("0"), "acquire_timeout")
        .unwrap();
    let err = b.build().unwrap_err();
    assert!(
        err.message().starts_with("invalid acquire_timeout = 0"),
        "{err}"
    );
    // Numbers as languages print them: exponent forms are numbers, not units.
    let mut b = redpool::Config::builder();
    b.set_written("socket_timeout", KnobInput::Text("1e-05"), "socket_timeout")
        .unwrap();
    b.set_written(
        "acquire_timeout",
        KnobInput::Millis(2.5e3),
        "acquireTimeout",
    )
    .unwrap();
    let c = b.build().unwrap();
    assert_eq!(c.socket_timeout(), Duration::from_micros(10));
    assert_eq!(c.acquire_timeout(), Duration::from_millis(2500));
    for (input, rule) in [
        (f64::NAN, "must be a finite number"),
        (f64::INFINITY, "must be a finite number"),
        (-5.0, "= -5: must be a finite duration >= 0"),
        (1e21, "must be at most"),
    ] {
        let mut b = redpool::Config::builder();
        let err = b
            .set_written("socket_timeout", KnobInput::Millis(input), "commandTimeout")
            .and_then(|b| b.build())
            .err()
            .unwrap_or_else(|| panic!("{input} accepted"));
        assert!(
            err.message().starts_with("invalid commandTimeout = "),
            "{input}: {err}"
        );
        assert!(err.message().contains(rule), "{input}: {err}");
    }
}

#[test]
fn with_redis_url_set_a_conflicting_server_variable_is_refused_naming_both() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        redpool::ConfigBuilder::from_env_with(move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    };
    for (var, value) in [
        ("REDIS_HOST", "elsewhere"),
        ("REDIS_PORT", "7001"),
        ("REDIS_DB", "2"),
        ("REDIS_USERNAME", "svc"),
        ("REDIS_PASSWORD", "s3cret-in-env"),
    ] {
        let vars: &'static [(&str, &str)] =
            Box::leak(vec![("REDIS_URL", "redis://cache:7000/1"), (var, value)].into_boxed_slice());
        let err = env(vars).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(
            err.message()
                .contains(&format!("{var} conflicts with REDIS_URL")),
            "{err}"
        );
        assert!(!err.message().contains(value), "a value leaked: {err}");
        assert!(!err.message().contains("cache"), "the URL leaked: {err}");
    }
    // The same settings, said twice, agree.
    env(&[
        ("REDIS_URL", "redis://svc:pw@cache:7000/1"),
        ("REDIS_HOST", "cache"),
        ("REDIS_PORT", "7000"),
        ("REDIS_DB", "1"),
        ("REDIS_USERNAME", "svc"),
        ("REDIS_PASSWORD", "pw"),
    ])
    .unwrap()
    .build()
    .unwrap();
}
