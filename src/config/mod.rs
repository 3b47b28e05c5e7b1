//! Pool configuration: one [`Config`] type, built from a URL, from the environment or from a
//! [`ConfigBuilder`], always through the same validation ([`ConfigBuilder::build`]).
//!
//! Every knob has one textual name (`max_connections`, `socket_timeout`, ...) used by URL query
//! options, environment variables (`REDIS_<NAME>`) and the C key/value setter alike, so the routes
//! cannot drift apart ([`knobs`]). Invalid settings are rejected with an error that names the
//! field, the value and the rule. Passwords never appear in `Debug` output or in errors.

mod env;
mod knobs;
pub(crate) mod policies;
mod url;

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use knobs::{KNOBS, Knob, KnobInput, is_duration_knob, parse_duration};

use crate::error::{Error, Result};
use policies::{Backoff, BreakerConfig, Jitter, RetryConfig};

/// Upper bound for connect, socket and acquire timeouts. Catches millisecond values given where
/// seconds are meant (`REDIS_CONNECT_TIMEOUT=5000` would otherwise wait 83 minutes).
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Upper bound for `max_connections`: far above any sane pool, below file-descriptor exhaustion.
const MAX_CONNECTIONS_LIMIT: usize = 65_535;
/// Upper bound for every other duration setting (a year): longer is "never" in practice, and
/// keeps every `Instant` sum far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Default `max_reply_bytes`: Redis's own `proto-max-bulk-len`.
pub(crate) const DEFAULT_MAX_REPLY_BYTES: u64 = 512 * 1024 * 1024;

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// A TCP host name or IP address and port.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// TCP port, 1..=65535.
        port: u16,
    },
    /// A Unix domain socket path.
    Unix(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Tcp { host, port } => write!(f, "{host}:{port}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Order in which idle connections are reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReuseOrder {
    /// Most recently returned first: keeps a small hot set and lets the rest expire (default).
    Lifo,
    /// Least recently returned first: spreads use evenly over all idle connections.
    Fifo,
}

/// TLS settings for `rediss://` connections.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct TlsConfig {
    /// PEM file of CA certificates to trust instead of the system store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate; needs `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Skip all certificate and host name verification. Dangerous; for tests only.
    pub insecure: bool,
}

/// TCP keepalive and dead-peer detection, set on every TCP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeepaliveConfig {
    /// SO_KEEPALIVE on (default) or off.
    pub enabled: bool,
    /// Idle time before the first probe (TCP_KEEPIDLE, default 60 s).
    pub idle: Duration,
    /// Time between probes (TCP_KEEPINTVL, default 10 s).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (TCP_KEEPCNT, default 5).
    pub count: u32,
    /// TCP_USER_TIMEOUT on Linux: how long written data may stay unacknowledged before the
    /// connection is dropped. `None`: idle + interval × count (default, 110 s); zero: not set.
    pub user_timeout: Option<Duration>,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig {
            enabled: true,
            idle: Duration::from_secs(60),
            interval: Duration::from_secs(10),
            count: 5,
            user_timeout: None,
        }
    }
}

impl KeepaliveConfig {
    /// The TCP_USER_TIMEOUT to set, if any.
    pub fn effective_user_timeout(&self) -> Option<Duration> {
        match self.user_timeout {
            Some(t) if t.is_zero() => None,
            Some(t) => Some(t),
            None if self.enabled => Some(self.idle + self.interval * self.count),
            None => None,
        }
    }
}

/// Ping latencies at which `health()` reports degraded and unhealthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HealthThresholds {
    /// At or above this ping latency the pool is degraded (default 50 ms).
    pub degraded_latency: Duration,
    /// At or above this ping latency the pool is unhealthy (default 100 ms).
    pub unhealthy_latency: Duration,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        HealthThresholds {
            degraded_latency: Duration::from_millis(50),
            unhealthy_latency: Duration::from_millis(100),
        }
    }
}

/// A password or token: compared and hashed by value, never printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for sending to the server only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// A validated pool configuration. Build it with [`Config::from_url`], [`Config::from_env`] or
/// [`Config::builder`]. Two configs are equal when every setting is equal; the process-wide
/// registry shares one pool per distinct config. `Debug` output redacts the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    address: Address,
    tls: Option<TlsConfig>,
    db: i64,
    username: Option<String>,
    password: Option<Secret>,
    client_name: String,
    pool_name: String,
    max_connections: usize,
    min_idle: usize,
    acquire_timeout: Duration,
    connect_timeout: Duration,
    socket_timeout: Duration,
    idle_timeout: Duration,
    max_lifetime: Duration,
    health_check_interval: Duration,
    health_report_interval: Duration,
    reuse_order: ReuseOrder,
    /// RESP3 (`HELLO 3` in the handshake) instead of RESP2.
    resp3: bool,
    tcp_nodelay: bool,
    keepalive: KeepaliveConfig,
    breaker: BreakerConfig,
    retry: RetryConfig,
    reconnect_backoff: Backoff,
    health: HealthThresholds,
    leak_detection_threshold: Duration,
    max_reply_bytes: u64,
}

impl Hash for Config {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Address and size are enough to spread pools over buckets; Eq decides.
        self.address.hash(state);
        self.db.hash(state);
        self.max_connections.hash(state);
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            address: Address::Tcp {
                host: "127.0.0.1".into(),
                port: 6379,
            },
            tls: None,
            db: 0,
            username: None,
            password: None,
            client_name: String::new(),
            pool_name: String::new(),
            max_connections: 50,
            min_idle: 0,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            socket_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(30 * 60),
            health_check_interval: Duration::from_secs(30),
            health_report_interval: Duration::from_secs(30),
            reuse_order: ReuseOrder::Lifo,
            resp3: false,
            tcp_nodelay: true,
            keepalive: KeepaliveConfig::default(),
            breaker: BreakerConfig::default(),
            retry: RetryConfig::default(),
            reconnect_backoff: Backoff {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(10),
                jitter: Jitter::Equal,
            },
            health: HealthThresholds::default(),
            leak_detection_threshold: Duration::ZERO,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
        }
    }
}

impl Config {
    /// A builder with every default, pointing at `127.0.0.1:6379`.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// Parses `redis://[user[:password]@]host[:port][/db][?knob=value&...]`,
    /// `rediss://...` (TLS) or `unix:///path/to.sock[?db=N&...]`.
    pub fn from_url(url: &str) -> Result<Config> {
        ConfigBuilder::from_url(url)?.build()
    }

    /// Builds the configuration from the process environment (see [`ConfigBuilder::from_env_with`]).
    pub fn from_env() -> Result<Config> {
        ConfigBuilder::from_env_with(|name| std::env::var(name).ok())?.build()
    }

    /// Server address.
    pub fn address(&self) -> &Address {
        &self.address
    }
    /// TLS settings, when the scheme is `rediss://`.
    pub fn tls(&self) -> Option<&TlsConfig> {
        self.tls.as_ref()
    }
    /// Database index selected on connect.
    pub fn db(&self) -> i64 {
        self.db
    }
    /// ACL user name, if any.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }
    /// Password, if any (never printed).
    pub fn password(&self) -> Option<&Secret> {
        self.password.as_ref()
    }
    /// Name given to every connection with `CLIENT SETNAME` (empty, the default: none, as in
    /// redis-py, ioredis and hiredis).
    pub fn client_name(&self) -> &str {
        &self.client_name
    }
    /// The pool's name in metrics (the `pool` label): `pool_name` when set, else `client_name`,
    /// else `redpool`.
    pub fn pool_name(&self) -> &str {
        if !self.pool_name.is_empty() {
            &self.pool_name
        } else if !self.client_name.is_empty() {
            &self.client_name
        } else {
            "redpool"
        }
    }
    /// A connection checked out longer than this is reported as a suspected leak (None: off).
    pub fn leak_detection_threshold(&self) -> Option<Duration> {
        non_zero(self.leak_detection_threshold)
    }
    /// The largest bulk string length or aggregate element count accepted in a reply; a larger
    /// one is a protocol error and closes the connection (default 512 MB, as Redis's own
    /// `proto-max-bulk-len`).
    pub fn max_reply_bytes(&self) -> u64 {
        self.max_reply_bytes
    }
    /// Hard cap on open sockets, counting ones still connecting.
    pub fn max_connections(&self) -> usize {
        self.max_connections
    }
    /// Connections opened at start and kept open.
    pub fn min_idle(&self) -> usize {
        self.min_idle
    }
    /// Longest wait for a free connection.
    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }
    /// Longest wait for TCP connect, TLS and the handshake commands.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }
    /// Longest wait for each read or write on an open connection.
    pub fn socket_timeout(&self) -> Duration {
        self.socket_timeout
    }
    /// Idle connections unused this long are closed (None: never).
    pub fn idle_timeout(&self) -> Option<Duration> {
        non_zero(self.idle_timeout)
    }
    /// Connections older than this (minus a little jitter) are retired (None: never).
    pub fn max_lifetime(&self) -> Option<Duration> {
        non_zero(self.max_lifetime)
    }
    /// Idle connections unused this long are PINGed: before being handed out, and in the
    /// background so load balancers do not cut them (None: never).
    pub fn health_check_interval(&self) -> Option<Duration> {
        non_zero(self.health_check_interval)
    }
    /// How often the pool's maintenance thread runs a health check (the one `Pool::health` runs),
    /// so the health status in metrics and the `HealthChanged` event need no code of the
    /// application's own (None: only on demand).
    pub fn health_report_interval(&self) -> Option<Duration> {
        non_zero(self.health_report_interval)
    }
    /// LIFO or FIFO reuse of idle connections.
    pub fn reuse_order(&self) -> ReuseOrder {
        self.reuse_order
    }
    /// The protocol connections speak: 2 (RESP2, the default) or 3 (RESP3: `HELLO 3` in the
    /// handshake; maps, sets, doubles, booleans and pushes arrive as their own types).
    pub fn protocol(&self) -> u8 {
        if self.resp3 { 3 } else { 2 }
    }
    /// Whether TCP_NODELAY is set on sockets.
    pub fn tcp_nodelay(&self) -> bool {
        self.tcp_nodelay
    }
    /// TCP keepalive settings.
    pub fn keepalive(&self) -> &KeepaliveConfig {
        &self.keepalive
    }
    /// Circuit breaker settings.
    pub fn breaker(&self) -> &BreakerConfig {
        &self.breaker
    }
    /// Retry settings.
    pub fn retry(&self) -> &RetryConfig {
        &self.retry
    }
    /// Backoff between connect attempts while the server is unreachable (pool-wide).
    pub fn reconnect_backoff(&self) -> &Backoff {
        &self.reconnect_backoff
    }
    /// Latency thresholds of `health()`.
    pub fn health_thresholds(&self) -> &HealthThresholds {
        &self.health
    }

    /// The server as `redis://[user@]host:port/db` (or `rediss://`, `unix://`), without the password:
    /// safe for logs, errors and metrics labels.
    pub fn redacted_url(&self) -> String {
        let user = match (&self.username, &self.password) {
            (Some(u), Some(_)) => format!("{u}:<redacted>@"),
            (Some(u), None) => format!("{u}@"),
            (None, Some(_)) => ":<redacted>@".to_string(),
            (None, None) => String::new(),
        };
        match &self.address {
            Address::Unix(path) => format!("unix://{user}{}?db={}", path.display(), self.db),
            tcp => {
                let scheme = if self.tls.is_some() {
                    "rediss"
                } else {
                    "redis"
                };
                format!("{scheme}://{user}{tcp}/{}", self.db)
            }
        }
    }

    fn validate(&self) -> Result<()> {
        match &self.address {
            Address::Tcp { host, port } => {
                if host.trim().is_empty() {
                    return Err(Error::invalid("host", "\"\"", "must not be empty"));
                }
                if *port == 0 {
                    return Err(Error::invalid("port", 0, "must be between 1 and 65535"));
                }
            }
            Address::Unix(path) => {
                if path.as_os_str().is_empty() {
                    return Err(Error::invalid(
                        "unix socket path",
                        "\"\"",
                        "must not be empty",
                    ));
                }
                if self.tls.is_some() {
                    return Err(Error::invalid(
                        "tls",
                        "on",
                        "is not supported over unix sockets",
                    ));
                }
            }
        }
        check_pool_size(self.max_connections, self.min_idle)?;
        for (name, value) in [
            ("acquire_timeout", self.acquire_timeout),
            ("connect_timeout", self.connect_timeout),
            ("socket_timeout", self.socket_timeout),
        ] {
            positive(name, value)?;
            if value > MAX_TIMEOUT {
                return Err(Error::invalid(
                    name,
                    format!("{}s", value.as_secs_f64()),
                    "must be at most 1h (in URLs and environment variables a bare number is seconds: \
                     write 5000ms for milliseconds)",
                ));
            }
        }
        for (name, value) in knobs::durations(self) {
            check_duration(name, value)?;
        }
        if self.max_reply_bytes == 0 {
            return Err(Error::invalid("max_reply_bytes", 0, "must be at least 1"));
        }
        if !(0..=i64::from(i32::MAX)).contains(&self.db) {
            return Err(Error::invalid(
                "db",
                self.db,
                "must be a database index from 0 to 2147483647",
            ));
        }
        if self
            .client_name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(
                "client_name",
                format!("{:?}", self.client_name),
                "must not contain spaces or control characters",
            ));
        }
        if self.pool_name.chars().any(|c| c.is_control()) {
            return Err(Error::invalid(
                "pool_name",
                format!("{:?}", self.pool_name),
                "must not contain control characters",
            ));
        }
        if let Some(tls) = &self.tls {
            if tls.cert_file.is_some() != tls.key_file.is_some() {
                return Err(Error::invalid(
                    "tls_cert_file/tls_key_file",
                    "one of them",
                    "a client certificate needs both the certificate and the key file",
                ));
            }
        }
        self.validate_resilience()
    }

    fn validate_resilience(&self) -> Result<()> {
        let k = &self.keepalive;
        if k.enabled {
            for (name, value) in [
                ("tcp_keepalive_idle", k.idle),
                ("tcp_keepalive_interval", k.interval),
            ] {
                if value < Duration::from_secs(1) {
                    return Err(Error::invalid(
                        name,
                        format!("{value:?}"),
                        "must be at least 1s",
                    ));
                }
            }
            if !(1..=127).contains(&k.count) {
                return Err(Error::invalid(
                    "tcp_keepalive_count",
                    k.count,
                    "must be between 1 and 127",
                ));
            }
        }
        let b = &self.breaker;
        if b.enabled {
            for (name, value) in [
                ("breaker_failure_threshold", b.failure_threshold),
                ("breaker_half_open_probes", b.half_open_probes),
                ("breaker_success_threshold", b.success_threshold),
            ] {
                if value == 0 {
                    return Err(Error::invalid(name, 0, "must be at least 1"));
                }
            }
            if b.failure_rate_percent > 100 {
                return Err(Error::invalid(
                    "breaker_failure_rate",
                    b.failure_rate_percent,
                    "must be a percentage between 0 (off) and 100",
                ));
            }
            positive("breaker_recovery_timeout", b.recovery_timeout)?;
            positive("breaker_window", b.window)?;
            positive("breaker_probe_timeout", b.probe_timeout)?;
        }
        if self.retry.retries > 100 {
            return Err(Error::invalid(
                "retries",
                self.retry.retries,
                "must be at most 100",
            ));
        }
        for (prefix, backoff) in [
            ("retry_backoff", &self.retry.backoff),
            ("reconnect_backoff", &self.reconnect_backoff),
        ] {
            positive(&format!("{prefix}_base"), backoff.base)?;
            if backoff.cap < backoff.base {
                return Err(Error::invalid(
                    &format!("{prefix}_cap"),
                    format!("{:?}", backoff.cap),
                    &format!("must not be below {prefix}_base ({:?})", backoff.base),
                ));
            }
        }
        let h = &self.health;
        positive("health_degraded_latency", h.degraded_latency)?;
        if h.unhealthy_latency < h.degraded_latency {
            return Err(Error::invalid(
                "health_unhealthy_latency",
                format!("{:?}", h.unhealthy_latency),
                "must not be below health_degraded_latency",
            ));
        }
        Ok(())
    }
}

/// The size rules, shared by `build()` and `Pool::resize`.
pub(crate) fn check_pool_size(max_connections: usize, min_idle: usize) -> Result<()> {
    if max_connections == 0 || max_connections > MAX_CONNECTIONS_LIMIT {
        return Err(Error::invalid(
            "max_connections",
            max_connections,
            &format!("must be between 1 and {MAX_CONNECTIONS_LIMIT}"),
        ));
    }
    if min_idle > max_connections {
        return Err(Error::invalid(
            "min_idle",
            min_idle,
            &format!("must not exceed max_connections ({max_connections})"),
        ));
    }
    Ok(())
}

/// Checks a duration setting or argument against [`MAX_DURATION`]; the error names `name`.
pub(crate) fn check_duration(name: &str, value: Duration) -> Result<Duration> {
    if value > MAX_DURATION {
        return Err(Error::invalid(
            name,
            format!("{}s", value.as_secs_f64()),
            "must be at most 365 days (31536000s)",
        ));
    }
    Ok(value)
}

fn non_zero(d: Duration) -> Option<Duration> {
    Some(d).filter(|d| !d.is_zero())
}

fn positive(name: &str, value: Duration) -> Result<()> {
    if value.is_zero() {
        return Err(Error::invalid(name, "0", "must be greater than zero"));
    }
    Ok(())
}

/// Builds a [`Config`]. Setters never fail; [`ConfigBuilder::build`] validates everything at once
/// and names the first invalid field. Textual knobs go through [`ConfigBuilder::set`].
#[derive(Clone, Debug, Default)]
pub struct ConfigBuilder {
    config: Config,
    /// Knobs a binding set under its own option names (knob, name as written), for messages.
    spellings: Vec<(String, String)>,
    /// A URL named a user without a password: refused by `build()` unless a password is set
    /// afterwards (`redis://s3cr3t@host` is usually a password whose colon was forgotten).
    pub(crate) url_user_without_password: bool,
}

impl ConfigBuilder {
    /// A builder whose address, credentials, db and knobs come from `url`
    /// (see [`Config::from_url`]). Further setters may override them before `build()`.
    pub fn from_url(url: &str) -> Result<ConfigBuilder> {
        url::parse(url)
    }

    /// A builder from environment variables read through `var` (pass `std::env::var(..).ok()`):
    ///
    /// - `REDIS_URL`, or else `REDIS_HOST` / `REDIS_PORT` / `REDIS_DB` / `REDIS_USERNAME` /
    ///   `REDIS_PASSWORD` (defaults `127.0.0.1`, `6379`, `0`);
    /// - then every other knob as `REDIS_<NAME>`, overriding the URL: `REDIS_MAX_CONNECTIONS`,
    ///   `REDIS_MIN_IDLE`, `REDIS_CONNECT_TIMEOUT`, `REDIS_SOCKET_TIMEOUT`,
    ///   `REDIS_ACQUIRE_TIMEOUT`, `REDIS_HEALTH_CHECK_INTERVAL`, `REDIS_TCP_KEEPALIVE_IDLE`, ...
    ///
    /// Errors name the variable.
    pub fn from_env_with(var: impl Fn(&str) -> Option<String>) -> Result<ConfigBuilder> {
        env::parse(var)
    }

    /// Validates every setting and returns the configuration, or an error naming the first
    /// invalid field, its value and the rule.
    pub fn build(&self) -> Result<Config> {
        if self.url_user_without_password && self.config.password.is_none() {
            // The value is not shown: it may be a password without its colon.
            return Err(Error::invalid(
                "username",
                "(not shown: it may be a password without its colon)",
                "needs a password in a URL; write redis://:PASSWORD@host for a password alone, \
                 or redis://USER:PASSWORD@host",
            ));
        }
        self.config
            .validate()
            .map_err(|err| self.in_callers_words(err))?;
        Ok(self.config.clone())
    }

    /// Connects to `host:port` over TCP.
    pub fn host_port(mut self, host: impl Into<String>, port: u16) -> Self {
        self.config.address = Address::Tcp {
            host: host.into(),
            port,
        };
        self
    }
    /// Connects to a Unix domain socket.
    pub fn unix_socket(mut self, path: impl AsRef<Path>) -> Self {
        self.config.address = Address::Unix(path.as_ref().to_path_buf());
        self
    }
    /// Turns TLS on (default settings: verify against the system store) or off.
    pub fn tls(mut self, on: bool) -> Self {
        self.config.tls = if on {
            Some(self.config.tls.unwrap_or_default())
        } else {
            None
        };
        self
    }
    /// Replaces the TLS settings (and turns TLS on).
    pub fn tls_config(mut self, tls: TlsConfig) -> Self {
        self.config.tls = Some(tls);
        self
    }
    /// Database index to SELECT on connect.
    pub fn db(mut self, db: i64) -> Self {
        self.config.db = db;
        self
    }
    /// ACL user name and password (AUTH user pass), or password alone when `username` is None.
    pub fn credentials(mut self, username: Option<&str>, password: Option<&str>) -> Self {
        self.config.username = username.map(str::to_string);
        self.config.password = password.map(Secret::new);
        self
    }
    /// Name given to every connection with CLIENT SETNAME; empty for none.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.config.client_name = name.into();
        self
    }
    /// Sets the pool's name in metrics (default: the client name, else `redpool`).
    pub fn pool_name(mut self, name: impl Into<String>) -> Self {
        self.config.pool_name = name.into();
        self
    }
    /// Reports connections checked out longer than `threshold` as suspected leaks (zero: off).
    pub fn leak_detection_threshold(mut self, threshold: Duration) -> Self {
        self.config.leak_detection_threshold = threshold;
        self
    }
    /// The largest bulk length or aggregate count accepted in a reply (default 512 MB).
    pub fn max_reply_bytes(mut self, n: u64) -> Self {
        self.config.max_reply_bytes = n;
        self
    }
    /// Hard cap on open sockets (default 50).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.max_connections = n;
        self
    }
    /// Connections opened at start and kept (default 0).
    pub fn min_idle(mut self, n: usize) -> Self {
        self.config.min_idle = n;
        self
    }
    /// Longest wait for a free connection (default 5 s).
    pub fn acquire_timeout(mut self, d: Duration) -> Self {
        self.config.acquire_timeout = d;
        self
    }
    /// Longest wait to connect and handshake (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }
    /// Longest wait for each read or write (default 5 s).
    pub fn socket_timeout(mut self, d: Duration) -> Self {
        self.config.socket_timeout = d;
        self
    }
    /// Close idle connections unused this long (default 300 s; zero: never).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.config.idle_timeout = d;
        self
    }
    /// Retire connections this old (default 30 min, minus up to 2.5 % jitter; zero: never).
    pub fn max_lifetime(mut self, d: Duration) -> Self {
        self.config.max_lifetime = d;
        self
    }
    /// PING idle connections unused this long (default 30 s; zero: never).
    pub fn health_check_interval(mut self, d: Duration) -> Self {
        self.config.health_check_interval = d;
        self
    }
    /// Run a background health check this often (default 30 s; zero: only on demand).
    pub fn health_report_interval(mut self, d: Duration) -> Self {
        self.config.health_report_interval = d;
        self
    }
    /// LIFO (default) or FIFO reuse of idle connections.
    pub fn reuse_order(mut self, order: ReuseOrder) -> Self {
        self.config.reuse_order = order;
        self
    }
    /// TCP_NODELAY on sockets (default on).
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.config.tcp_nodelay = on;
        self
    }
    /// TCP keepalive and TCP_USER_TIMEOUT settings.
    pub fn keepalive(mut self, keepalive: KeepaliveConfig) -> Self {
        self.config.keepalive = keepalive;
        self
    }
    /// Circuit breaker settings.
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.config.breaker = breaker;
        self
    }
    /// Retry settings.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.config.retry = retry;
        self
    }
    /// Backoff between connect attempts while the server is unreachable.
    pub fn reconnect_backoff(mut self, backoff: Backoff) -> Self {
        self.config.reconnect_backoff = backoff;
        self
    }
    /// Latency thresholds of `health()`.
    pub fn health_thresholds(mut self, thresholds: HealthThresholds) -> Self {
        self.config.health = thresholds;
        self
    }

    pub(crate) fn set_address(&mut self, address: Address) {
        self.config.address = address;
    }
}
