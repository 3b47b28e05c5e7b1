//! Configuration: the three routes (URL, environment, builder) and every validation rule.
//! No server needed.

use std::collections::HashMap;
use std::time::Duration;

use redpool::{Address, Config, ConfigBuilder, ErrorKind, ReuseOrder};

fn url_error(url: &str) -> String {
    let err = Config::from_url(url).expect_err(url);
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{url}: {err}");
    err.to_string()
}

fn env(vars: &[(&str, &str)]) -> redpool::Result<Config> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ConfigBuilder::from_env_with(|name| map.get(name).cloned())?.build()
}

#[test]
fn defaults_are_documented_values() {
    let c = Config::builder().build().unwrap();
    assert_eq!(c.max_connections(), 50);
    assert_eq!(c.min_idle(), 0);
    assert_eq!(c.acquire_timeout(), Duration::from_secs(5));
    assert_eq!(c.connect_timeout(), Duration::from_secs(5));
    assert_eq!(c.socket_timeout(), Duration::from_secs(5));
    assert_eq!(c.idle_timeout(), Some(Duration::from_secs(300)));
    assert_eq!(c.max_lifetime(), Some(Duration::from_secs(1800)));
    assert_eq!(c.health_check_interval(), Some(Duration::from_secs(30)));
    assert_eq!(c.reuse_order(), ReuseOrder::Lifo);
    assert_eq!(c.client_name(), "");
    assert_eq!(c.pool_name(), "redpool");
    assert!(c.tcp_nodelay());
    assert!(c.tls().is_none());
}

#[test]
fn url_with_everything() {
    let c = Config::from_url(
        "redis://alice:s%40cret@example.internal:6380/3?max_connections=20&min_idle=2\
         &socket_timeout=2s&acquire_timeout=250ms&connect_timeout=1.5&reuse=fifo&client_name=api",
    )
    .unwrap();
    assert_eq!(
        c.address(),
        &Address::Tcp {
            host: "example.internal".into(),
            port: 6380
        }
    );
    assert_eq!(c.username(), Some("alice"));
    assert_eq!(c.password().unwrap().expose(), "s@cret");
    assert_eq!(c.db(), 3);
    assert_eq!(c.max_connections(), 20);
    assert_eq!(c.min_idle(), 2);
    assert_eq!(c.socket_timeout(), Duration::from_secs(2));
    assert_eq!(c.acquire_timeout(), Duration::from_millis(250));
    assert_eq!(c.connect_timeout(), Duration::from_millis(1500));
    assert_eq!(c.reuse_order(), ReuseOrder::Fifo);
    assert_eq!(c.client_name(), "api");
}

#[test]
fn url_forms() {
    let c = Config::from_url("redis://localhost").unwrap();
    assert_eq!(
        c.address(),
        &Address::Tcp {
            host: "localhost".into(),
            port: 6379
        }
    );
    let c = Config::from_url("redis://[::1]:7000").unwrap();
    assert_eq!(
        c.address(),
        &Address::Tcp {
            host: "::1".into(),
            port: 7000
        }
    );
    let c = Config::from_url("redis://:pw@127.0.0.1/").unwrap();
    assert_eq!(c.password().unwrap().expose(), "pw");
    assert_eq!(c.username(), None);
    let c = Config::from_url("unix:///run/redis.sock?db=2").unwrap();
    assert_eq!(c.address(), &Address::Unix("/run/redis.sock".into()));
    assert_eq!(c.db(), 2);
    let c = Config::from_url(
        "rediss://127.0.0.1:6390?tls_ca_file=/tmp/ca.pem&tls_cert_file=/tmp/c.pem&tls_key_file=/tmp/k.pem",
    )
    .unwrap();
    let tls = c.tls().unwrap();
    assert_eq!(tls.ca_file.as_deref(), Some("/tmp/ca.pem".as_ref()));
    assert!(!tls.insecure);
}

#[test]
fn every_invalid_setting_names_field_value_and_rule() {
    let cases: &[(&str, &[&str])] = &[
        (
            "redis://h?max_connections=0",
            &["max_connections", "0", "between 1 and"],
        ),
        (
            "redis://h?max_connections=-3",
            &["max_connections", "-3", "whole number"],
        ),
        (
            "redis://h?max_connections=4&min_idle=5",
            &["min_idle", "5", "max_connections (4)"],
        ),
        (
            "redis://h?socket_timeout=0",
            &["socket_timeout", "0", "greater than zero"],
        ),
        (
            "redis://h?acquire_timeout=-1s",
            &["acquire_timeout", "-1s", ">= 0"],
        ),
        (
            "redis://h?connect_timeout=0ms",
            &["connect_timeout", "greater than zero"],
        ),
        (
            "redis://h?connect_timeout=5000",
            &["connect_timeout", "at most 1h", "5000ms"],
        ),
        (
            "redis://h?socket_timeout=fast",
            &["socket_timeout", "fast", "duration"],
        ),
        (
            "redis://h?socket_timeout=3 fortnights",
            &["socket_timeout", "unknown unit"],
        ),
        ("redis://h?idle_timeout=NaN", &["idle_timeout", "NaN"]),
        ("http://h:6379", &["url scheme", "http", "redis://"]),
        ("redis://h:0", &["port", "0", "between 1 and 65535"]),
        ("redis://h:70000", &["invalid url", "port"]),
        ("redis://h/abc", &["db", "abc", "database number"]),
        ("redis://h?db=-1", &["db", "-1", "from 0 to 2147483647"]),
        (
            "redis://h?db=2147483648",
            &["db", "2147483648", "from 0 to 2147483647"],
        ),
        (
            "redis://h?reuse=random",
            &["reuse", "random", "lifo or fifo"],
        ),
        (
            "redis://h?tcp_nodelay=maybe",
            &["tcp_nodelay", "maybe", "true or false"],
        ),
        (
            "redis://h?client_name=my%20app",
            &["client_name", "my app", "spaces"],
        ),
        (
            "redis://h?max_conections=3",
            &[
                "option",
                "max_conections",
                "valid options are",
                "max_connections",
            ],
        ),
        (
            "redis://h?tls_ca_file=/x.pem",
            &["tls_ca_file", "rediss://"],
        ),
        (
            "rediss://h?tls_cert_file=/c.pem",
            &["tls_cert_file/tls_key_file", "both"],
        ),
        (
            "redis://alice@h",
            &["username", "not shown", "needs a password"],
        ),
        ("localhost:6379", &["url scheme", "localhost"]),
        ("not a url", &["invalid url"]),
        ("redis://", &["host"]),
    ];
    for (url, needles) in cases {
        let message = url_error(url);
        for needle in *needles {
            assert!(
                message.contains(needle),
                "error for {url:?} should mention {needle:?}: {message}"
            );
        }
    }
}

#[test]
fn builder_validates_like_urls() {
    let err = Config::builder().max_connections(0).build().unwrap_err();
    assert!(err.to_string().contains("max_connections"), "{err}");
    let err = Config::builder()
        .socket_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("socket_timeout"), "{err}");
    let err = Config::builder().host_port("", 6379).build().unwrap_err();
    assert!(err.to_string().contains("host"), "{err}");
    let err = Config::builder().host_port("h", 0).build().unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
    let err = Config::builder()
        .max_connections(2)
        .min_idle(3)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("min_idle"), "{err}");
    let mut b = Config::builder();
    let err = b.set("nonsense", "1").unwrap_err();
    assert!(err.to_string().contains("nonsense"), "{err}");
    let c = Config::builder()
        .host_port("10.0.0.1", 6400)
        .max_connections(7)
        .idle_timeout(Duration::ZERO)
        .max_lifetime(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(c.max_connections(), 7);
    assert_eq!(c.idle_timeout(), None, "zero disables idle eviction");
    assert_eq!(c.max_lifetime(), None, "zero disables max lifetime");
}

#[test]
fn environment_variables() {
    let c = env(&[
        ("REDIS_HOST", "cache.local"),
        ("REDIS_PORT", "6390"),
        ("REDIS_DB", "4"),
        ("REDIS_USERNAME", "svc"),
        ("REDIS_PASSWORD", "hunter2"),
        ("REDIS_MAX_CONNECTIONS", "12"),
        ("REDIS_MIN_IDLE", "1"),
        ("REDIS_CONNECT_TIMEOUT", "750ms"),
        ("REDIS_SOCKET_TIMEOUT", "3"),
        ("REDIS_ACQUIRE_TIMEOUT", "2s"),
        ("REDIS_HEALTH_CHECK_INTERVAL", "10"),
    ])
    .unwrap();
    assert_eq!(
        c.address(),
        &Address::Tcp {
            host: "cache.local".into(),
            port: 6390
        }
    );
    assert_eq!(c.db(), 4);
    assert_eq!(c.username(), Some("svc"));
    assert_eq!(c.password().unwrap().expose(), "hunter2");
    assert_eq!(c.max_connections(), 12);
    assert_eq!(c.min_idle(), 1);
    assert_eq!(c.connect_timeout(), Duration::from_millis(750));
    assert_eq!(c.socket_timeout(), Duration::from_secs(3));
    assert_eq!(c.acquire_timeout(), Duration::from_secs(2));
    assert_eq!(c.health_check_interval(), Some(Duration::from_secs(10)));

    // REDIS_URL wins over the host variables (ones that agree with it are fine); the knob
    // variables still apply on top.
    let c = env(&[
        ("REDIS_URL", "redis://10.1.1.1:7000/1?max_connections=9"),
        ("REDIS_HOST", "10.1.1.1"),
        ("REDIS_PORT", "7000"),
        ("REDIS_MAX_CONNECTIONS", "11"),
    ])
    .unwrap();
    assert_eq!(
        c.address(),
        &Address::Tcp {
            host: "10.1.1.1".into(),
            port: 7000
        }
    );
    assert_eq!(c.max_connections(), 11);

    // Nothing set: the local default.
    let c = env(&[]).unwrap();
    assert_eq!(c.address().to_string(), "127.0.0.1:6379");

    // Errors name the variable.
    let err = env(&[("REDIS_PORT", "http")]).unwrap_err();
    assert!(err.to_string().contains("REDIS_PORT"), "{err}");
    let err = env(&[("REDIS_MAX_CONNECTIONS", "0")]).unwrap_err();
    assert!(err.to_string().contains("max_connections"), "{err}");
    let err = env(&[("REDIS_SOCKET_TIMEOUT", "soon")]).unwrap_err();
    assert!(err.to_string().contains("REDIS_SOCKET_TIMEOUT"), "{err}");
    let err = env(&[("REDIS_URL", "mysql://x")]).unwrap_err();
    assert!(err.to_string().contains("REDIS_URL"), "{err}");
}

#[test]
fn host_and_port_are_knobs_too() {
    let mut b = Config::builder();
    b.set("host", "cache.internal")
        .unwrap()
        .set("port", "6390")
        .unwrap();
    assert_eq!(
        b.build().unwrap().address().to_string(),
        "cache.internal:6390"
    );
    let err = b.set("port", "99999").unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
}

#[test]
fn secrets_never_printed() {
    let secret = "Sup3r-S3cret-Passw0rd";
    let c = Config::from_url(&format!("redis://bob:{secret}@127.0.0.1:6379/0")).unwrap();
    let shown = [format!("{c:?}"), c.redacted_url()];
    for text in shown {
        assert!(!text.contains(secret), "secret leaked: {text}");
    }
    assert_eq!(c.redacted_url(), "redis://bob:<redacted>@127.0.0.1:6379/0");
    // An invalid URL that carries a password does not echo it either.
    let err = Config::from_url(&format!(
        "redis://bob:{secret}@127.0.0.1:6379/0?max_connections=0"
    ))
    .unwrap_err();
    assert!(!err.to_string().contains(secret), "{err}");
    let err = Config::from_url(&format!("redis://bob:{secret}@host:99999")).unwrap_err();
    assert!(!err.to_string().contains(secret), "{err}");
}

#[test]
fn equal_settings_are_equal_configs() {
    let a = Config::from_url("redis://127.0.0.1:6379/0").unwrap();
    let b = Config::from_url("redis://127.0.0.1/?max_connections=50&socket_timeout=5s").unwrap();
    assert_eq!(a, b);
    let c = Config::from_url("redis://127.0.0.1/?max_connections=51").unwrap();
    assert_ne!(a, c);
}

#[test]
fn every_duration_is_bounded_so_no_deadline_can_overflow() {
    for knob in redpool::config::KNOBS
        .iter()
        .map(|k| k.name())
        .filter(|k| k.ends_with("timeout") || k.ends_with("interval") || k.ends_with("lifetime"))
    {
        let url = format!("redis://127.0.0.1:1/0?{knob}=10000000000000000000s");
        let message = url_error(&url);
        assert!(message.contains(knob), "{knob}: {message}");
        assert!(!message.contains("panicked"), "{message}");
    }
    for knob in [
        "max_lifetime",
        "idle_timeout",
        "breaker_recovery_timeout",
        "tcp_keepalive_idle",
    ] {
        let err = ConfigBuilder::default()
            .set(knob, &format!("{}h", 366 * 24))
            .and_then(|b| b.build())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{knob}");
        assert!(
            err.message().contains(knob) && err.message().contains("365 days"),
            "{err}"
        );
    }
    // The largest accepted value works end to end: a pool is created and used.
    let pool =
        redpool::Pool::from_url("redis://127.0.0.1:1/0?max_lifetime=8760h&connect_timeout=100ms")
            .expect("a year is accepted");
    let err = pool.execute(&redpool::cmd("PING")).unwrap_err();
    assert_ne!(err.kind(), ErrorKind::InvalidArgument);
    // Per-call durations from the API are bounded the same way.
    let forever = Duration::MAX;
    let err = pool
        .acquire_with(redpool::AcquireOptions {
            timeout: Some(forever),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("acquire timeout"), "{err}");
    let err = pool
        .execute_with_timeout(redpool::cmd("BLPOP").arg("q").arg(0), forever)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    pool.close(forever);
}

#[test]
fn a_password_without_its_colon_is_never_echoed() {
    let message = url_error("redis://s3cr3t-Pa55@127.0.0.1:6379/0");
    assert!(!message.contains("s3cr3t"), "{message}");
    assert!(
        message.contains("username") && message.contains("redis://:PASSWORD@host"),
        "{message}"
    );
}

#[test]
fn a_username_alone_set_by_name_is_an_acl_user_without_a_password() {
    // As redis-py's `username=` without `password=`: AUTH user with an empty password, which
    // an ACL user with `nopass` accepts. Only the URL form is refused (see above).
    let config = Config::builder()
        .set("username", "reader")
        .and_then(|b| b.build())
        .expect("a username alone");
    assert_eq!(config.username(), Some("reader"));
    assert!(config.password().is_none());
}

#[test]
fn a_url_user_may_take_its_password_from_a_setting() {
    // As redis-py's from_url("redis://alice@host", password="pw").
    let mut builder = ConfigBuilder::from_url("redis://alice@127.0.0.1:6379/0").expect("url");
    builder.set("password", "pw").expect("password");
    let config = builder.build().expect("a user from the URL and a password by name");
    assert_eq!(config.username(), Some("alice"));
}

#[test]
fn counts_out_of_range_are_refused_not_clamped() {
    for knob in [
        "retries",
        "breaker_failure_threshold",
        "tcp_keepalive_count",
    ] {
        let message = url_error(&format!("redis://h/0?{knob}=4294967296"));
        assert!(
            message.contains(knob) && message.contains("at most"),
            "{message}"
        );
    }
}
