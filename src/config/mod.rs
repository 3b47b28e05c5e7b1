//! Pool configuration: one [`Config`] type, built from a URL, from the environment or from a
//! [`ConfigBuilder`], always through the same validation.
//!
//! Every knob has one textual name (`max_connections`, `socket_timeout`, ...) used by URL query
//! options, environment variables and the C key/value setter alike, so the three routes cannot
//! drift apart. Invalid settings are rejected with an error that names the field, the value and
//! the rule. Passwords never appear in `Debug` output or in errors.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

mod url;

/// Upper bound for connect, socket and acquire timeouts. Catches millisecond values given where
/// seconds are meant (`REDIS_CONNECT_TIMEOUT=5000` would otherwise wait 83 minutes).
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// Upper bound for `max_connections`: far above any sane pool, below file-descriptor exhaustion.
const MAX_CONNECTIONS_LIMIT: usize = 65_535;

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
/// registry shares one pool per distinct config.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    address: Address,
    tls: Option<TlsConfig>,
    db: i64,
    username: Option<String>,
    password: Option<Secret>,
    client_name: String,
    max_connections: usize,
    min_idle: usize,
    acquire_timeout: Duration,
    connect_timeout: Duration,
    socket_timeout: Duration,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    health_check_interval: Option<Duration>,
    reuse_order: ReuseOrder,
    tcp_nodelay: bool,
}

impl Hash for Config {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Address and the sizing knobs are enough to spread pools over buckets; Eq decides.
        self.address.hash(state);
        self.db.hash(state);
        self.max_connections.hash(state);
    }
}

/// Knob names accepted by [`ConfigBuilder::set`], URL query options and the C setter.
pub const KNOBS: &[&str] = &[
    "max_connections",
    "min_idle",
    "acquire_timeout",
    "connect_timeout",
    "socket_timeout",
    "idle_timeout",
    "max_lifetime",
    "health_check_interval",
    "reuse",
    "client_name",
    "db",
    "username",
    "password",
    "tcp_nodelay",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "tls_insecure",
];

impl Config {
    /// Default `max_connections`.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 50;
    /// Default `acquire_timeout`, `connect_timeout` and `socket_timeout`.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default `idle_timeout`.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
    /// Default `max_lifetime`.
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
    /// Default `health_check_interval`.
    pub const DEFAULT_HEALTH_CHECK_INTERVAL: Duration = Duration::from_secs(30);
    /// Default `client_name`.
    pub const DEFAULT_CLIENT_NAME: &'static str = "redpool";

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
    /// Name given to every connection with `CLIENT SETNAME` (empty: none).
    pub fn client_name(&self) -> &str {
        &self.client_name
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
        self.idle_timeout
    }
    /// Connections older than this (minus a little jitter) are retired (None: never).
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }
    /// Idle connections unused this long are PINGed before being handed out (None: never).
    pub fn health_check_interval(&self) -> Option<Duration> {
        self.health_check_interval
    }
    /// LIFO or FIFO reuse of idle connections.
    pub fn reuse_order(&self) -> ReuseOrder {
        self.reuse_order
    }
    /// Whether TCP_NODELAY is set on sockets.
    pub fn tcp_nodelay(&self) -> bool {
        self.tcp_nodelay
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
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("client_name", &self.client_name)
            .field("max_connections", &self.max_connections)
            .field("min_idle", &self.min_idle)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("socket_timeout", &self.socket_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_lifetime", &self.max_lifetime)
            .field("health_check_interval", &self.health_check_interval)
            .field("reuse_order", &self.reuse_order)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .finish()
    }
}

/// Builds a [`Config`]. Setters never fail; [`ConfigBuilder::build`] validates everything at once
/// and names the first invalid field. Textual knobs go through [`ConfigBuilder::set`].
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    address: Address,
    tls: Option<TlsConfig>,
    db: i64,
    username: Option<String>,
    password: Option<Secret>,
    client_name: String,
    max_connections: usize,
    min_idle: usize,
    acquire_timeout: Duration,
    connect_timeout: Duration,
    socket_timeout: Duration,
    idle_timeout: Duration,
    max_lifetime: Duration,
    health_check_interval: Duration,
    reuse_order: ReuseOrder,
    tcp_nodelay: bool,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder {
            address: Address::Tcp {
                host: "127.0.0.1".into(),
                port: 6379,
            },
            tls: None,
            db: 0,
            username: None,
            password: None,
            client_name: Config::DEFAULT_CLIENT_NAME.into(),
            max_connections: Config::DEFAULT_MAX_CONNECTIONS,
            min_idle: 0,
            acquire_timeout: Config::DEFAULT_TIMEOUT,
            connect_timeout: Config::DEFAULT_TIMEOUT,
            socket_timeout: Config::DEFAULT_TIMEOUT,
            idle_timeout: Config::DEFAULT_IDLE_TIMEOUT,
            max_lifetime: Config::DEFAULT_MAX_LIFETIME,
            health_check_interval: Config::DEFAULT_HEALTH_CHECK_INTERVAL,
            reuse_order: ReuseOrder::Lifo,
            tcp_nodelay: true,
        }
    }
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
    /// - then, overriding what the URL said: `REDIS_MAX_CONNECTIONS`, `REDIS_MIN_IDLE`,
    ///   `REDIS_CONNECT_TIMEOUT`, `REDIS_SOCKET_TIMEOUT`, `REDIS_ACQUIRE_TIMEOUT`,
    ///   `REDIS_HEALTH_CHECK_INTERVAL` (durations as `2s`, `500ms`, or bare seconds).
    ///
    /// Errors name the variable.
    pub fn from_env_with(var: impl Fn(&str) -> Option<String>) -> Result<ConfigBuilder> {
        let present = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut builder = match present("REDIS_URL") {
            Some(url) => ConfigBuilder::from_url(url.trim()).map_err(|e| e.context("REDIS_URL"))?,
            None => {
                let mut b = ConfigBuilder::default();
                let host = present("REDIS_HOST").unwrap_or_else(|| "127.0.0.1".into());
                let port = match present("REDIS_PORT") {
                    Some(p) => parse_port(p.trim()).map_err(|e| e.context("REDIS_PORT"))?,
                    None => 6379,
                };
                b.address = Address::Tcp {
                    host: host.trim().to_string(),
                    port,
                };
                for (env, knob) in [
                    ("REDIS_DB", "db"),
                    ("REDIS_USERNAME", "username"),
                    ("REDIS_PASSWORD", "password"),
                ] {
                    if let Some(value) = present(env) {
                        b.set(knob, &value).map_err(|e| e.context(env))?;
                    }
                }
                b
            }
        };
        for (env, knob) in [
            ("REDIS_MAX_CONNECTIONS", "max_connections"),
            ("REDIS_MIN_IDLE", "min_idle"),
            ("REDIS_CONNECT_TIMEOUT", "connect_timeout"),
            ("REDIS_SOCKET_TIMEOUT", "socket_timeout"),
            ("REDIS_ACQUIRE_TIMEOUT", "acquire_timeout"),
            ("REDIS_HEALTH_CHECK_INTERVAL", "health_check_interval"),
        ] {
            if let Some(value) = present(env) {
                builder
                    .set(knob, value.trim())
                    .map_err(|e| e.context(env))?;
            }
        }
        Ok(builder)
    }

    /// Sets one knob from text, as URL query options and environment variables do.
    /// Durations take `ms`, `s`, `m` or `h` suffixes; a bare number means seconds.
    /// Booleans take `true/false`, `yes/no`, `on/off`, `1/0`. Unknown names are rejected with the
    /// list of valid ones.
    pub fn set(&mut self, knob: &str, value: &str) -> Result<&mut Self> {
        match knob {
            "max_connections" => self.max_connections = parse_count(knob, value)?,
            "min_idle" => self.min_idle = parse_count(knob, value)?,
            "acquire_timeout" => self.acquire_timeout = parse_duration(knob, value)?,
            "connect_timeout" => self.connect_timeout = parse_duration(knob, value)?,
            "socket_timeout" => self.socket_timeout = parse_duration(knob, value)?,
            "idle_timeout" => self.idle_timeout = parse_duration(knob, value)?,
            "max_lifetime" => self.max_lifetime = parse_duration(knob, value)?,
            "health_check_interval" => self.health_check_interval = parse_duration(knob, value)?,
            "reuse" => {
                self.reuse_order = match value.to_ascii_lowercase().as_str() {
                    "lifo" => ReuseOrder::Lifo,
                    "fifo" => ReuseOrder::Fifo,
                    _ => return Err(Error::invalid(knob, quoted(value), "must be lifo or fifo")),
                }
            }
            "client_name" => self.client_name = value.to_string(),
            "db" => {
                self.db = value
                    .parse::<i64>()
                    .map_err(|_| Error::invalid(knob, quoted(value), "must be a whole number"))?
            }
            "username" => self.username = Some(value.to_string()).filter(|u| !u.is_empty()),
            "password" => self.password = Some(Secret::new(value)).filter(|p| !p.0.is_empty()),
            "tcp_nodelay" => self.tcp_nodelay = parse_bool(knob, value)?,
            "tls_ca_file" => self.tls_mut(knob)?.ca_file = Some(PathBuf::from(value)),
            "tls_cert_file" => self.tls_mut(knob)?.cert_file = Some(PathBuf::from(value)),
            "tls_key_file" => self.tls_mut(knob)?.key_file = Some(PathBuf::from(value)),
            "tls_insecure" => {
                let insecure = parse_bool(knob, value)?;
                self.tls_mut(knob)?.insecure = insecure;
            }
            _ => {
                return Err(Error::invalid(
                    "option",
                    quoted(knob),
                    &format!("unknown; valid options are {}", KNOBS.join(", ")),
                ));
            }
        }
        Ok(self)
    }

    fn tls_mut(&mut self, knob: &str) -> Result<&mut TlsConfig> {
        self.tls.as_mut().ok_or_else(|| {
            Error::invalid(
                knob,
                "given",
                "TLS options need a rediss:// URL (or .tls(true) in the builder)",
            )
        })
    }

    /// Connects to `host:port` over TCP.
    pub fn host_port(mut self, host: impl Into<String>, port: u16) -> Self {
        self.address = Address::Tcp {
            host: host.into(),
            port,
        };
        self
    }
    /// Connects to a Unix domain socket.
    pub fn unix_socket(mut self, path: impl AsRef<Path>) -> Self {
        self.address = Address::Unix(path.as_ref().to_path_buf());
        self
    }
    /// Turns TLS on (default settings: verify against the system store) or off.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = if on {
            Some(self.tls.unwrap_or_default())
        } else {
            None
        };
        self
    }
    /// Replaces the TLS settings (and turns TLS on).
    pub fn tls_config(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Database index to SELECT on connect.
    pub fn db(mut self, db: i64) -> Self {
        self.db = db;
        self
    }
    /// ACL user name and password (AUTH user pass), or password alone when `username` is None.
    pub fn credentials(mut self, username: Option<&str>, password: Option<&str>) -> Self {
        self.username = username.map(str::to_string);
        self.password = password.map(Secret::new);
        self
    }
    /// Name given to every connection with CLIENT SETNAME; empty for none.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }
    /// Hard cap on open sockets (default 50).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }
    /// Connections opened at start and kept (default 0).
    pub fn min_idle(mut self, n: usize) -> Self {
        self.min_idle = n;
        self
    }
    /// Longest wait for a free connection (default 5 s).
    pub fn acquire_timeout(mut self, d: Duration) -> Self {
        self.acquire_timeout = d;
        self
    }
    /// Longest wait to connect and handshake (default 5 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }
    /// Longest wait for each read or write (default 5 s).
    pub fn socket_timeout(mut self, d: Duration) -> Self {
        self.socket_timeout = d;
        self
    }
    /// Close idle connections unused this long (default 300 s; zero: never).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = d;
        self
    }
    /// Retire connections this old (default 30 min, minus up to 2.5 % jitter; zero: never).
    pub fn max_lifetime(mut self, d: Duration) -> Self {
        self.max_lifetime = d;
        self
    }
    /// PING idle connections unused this long before handing them out (default 30 s; zero: never).
    pub fn health_check_interval(mut self, d: Duration) -> Self {
        self.health_check_interval = d;
        self
    }
    /// LIFO (default) or FIFO reuse of idle connections.
    pub fn reuse_order(mut self, order: ReuseOrder) -> Self {
        self.reuse_order = order;
        self
    }
    /// TCP_NODELAY on sockets (default on).
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tcp_nodelay = on;
        self
    }

    /// Validates every setting and returns the configuration, or an error naming the first
    /// invalid field, its value and the rule.
    pub fn build(&self) -> Result<Config> {
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
        if self.max_connections == 0 || self.max_connections > MAX_CONNECTIONS_LIMIT {
            return Err(Error::invalid(
                "max_connections",
                self.max_connections,
                &format!("must be between 1 and {MAX_CONNECTIONS_LIMIT}"),
            ));
        }
        if self.min_idle > self.max_connections {
            return Err(Error::invalid(
                "min_idle",
                self.min_idle,
                &format!("must not exceed max_connections ({})", self.max_connections),
            ));
        }
        for (name, value) in [
            ("acquire_timeout", self.acquire_timeout),
            ("connect_timeout", self.connect_timeout),
            ("socket_timeout", self.socket_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::invalid(name, "0", "must be greater than zero"));
            }
            if value > MAX_TIMEOUT {
                return Err(Error::invalid(
                    name,
                    format!("{}s", value.as_secs_f64()),
                    "must be at most 1h (bare numbers are seconds: write 5000ms for milliseconds)",
                ));
            }
        }
        if self.db < 0 {
            return Err(Error::invalid("db", self.db, "must not be negative"));
        }
        if self
            .client_name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(
                "client_name",
                quoted(&self.client_name),
                "must not contain spaces or control characters",
            ));
        }
        if self.password.is_none() && self.username.is_some() {
            return Err(Error::invalid(
                "username",
                quoted(self.username.as_deref().unwrap_or_default()),
                "needs a password",
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
        let optional = |d: Duration| Some(d).filter(|d| !d.is_zero());
        Ok(Config {
            address: self.address.clone(),
            tls: self.tls.clone(),
            db: self.db,
            username: self.username.clone(),
            password: self.password.clone(),
            client_name: self.client_name.clone(),
            max_connections: self.max_connections,
            min_idle: self.min_idle,
            acquire_timeout: self.acquire_timeout,
            connect_timeout: self.connect_timeout,
            socket_timeout: self.socket_timeout,
            idle_timeout: optional(self.idle_timeout),
            max_lifetime: optional(self.max_lifetime),
            health_check_interval: optional(self.health_check_interval),
            reuse_order: self.reuse_order,
            tcp_nodelay: self.tcp_nodelay,
        })
    }

    pub(crate) fn set_address(&mut self, address: Address) {
        self.address = address;
    }
}

fn quoted(value: &str) -> String {
    format!("{value:?}")
}

/// Parses a TCP port, 1..=65535.
pub(crate) fn parse_port(value: &str) -> Result<u16> {
    match value.parse::<u32>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(p as u16),
        _ => Err(Error::invalid(
            "port",
            quoted(value),
            "must be a number between 1 and 65535",
        )),
    }
}

fn parse_count(knob: &str, value: &str) -> Result<usize> {
    value
        .trim()
        .parse::<usize>()
        .map_err(|_| Error::invalid(knob, quoted(value), "must be a whole number >= 0"))
}

fn parse_bool(knob: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::invalid(knob, quoted(value), "must be true or false")),
    }
}

/// Parses `500ms`, `2s`, `1.5s`, `2m`, `1h` or a bare number of seconds. Negative, empty and
/// non-finite values are rejected with the knob's name.
pub fn parse_duration(knob: &str, value: &str) -> Result<Duration> {
    let text = value.trim();
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let not_a_duration = || {
        Error::invalid(
            knob,
            quoted(value),
            "must be a duration such as 500ms, 2s, 1.5s or 1m",
        )
    };
    if number.trim().is_empty() {
        return Err(not_a_duration());
    }
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 0.001,
        "us" => 0.000_001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(Error::invalid(
                knob,
                quoted(value),
                &format!("unknown unit {other:?}; use ms, s, m or h"),
            ));
        }
    };
    let amount: f64 = number.trim().parse().map_err(|_| not_a_duration())?;
    if !amount.is_finite() || amount < 0.0 {
        return Err(Error::invalid(
            knob,
            quoted(value),
            "must be a finite duration >= 0",
        ));
    }
    Duration::try_from_secs_f64(amount * scale)
        .map_err(|_| Error::invalid(knob, quoted(value), "is too large"))
}
