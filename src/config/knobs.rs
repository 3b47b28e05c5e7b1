//! Knobs by name: the one text interface to every setting, shared by URL query options,
//! environment variables (`REDIS_<NAME>`) and the C key/value setter.

use std::path::PathBuf;

use super::policies::Jitter;
use super::{Address, ConfigBuilder, ReuseOrder, Secret, TlsConfig};
use crate::error::{Error, Result};
use std::time::Duration;

/// Every knob name accepted by [`ConfigBuilder::set`].
pub const KNOBS: &[&str] = &[
    "host",
    "port",
    "max_connections",
    "min_idle",
    "acquire_timeout",
    "connect_timeout",
    "socket_timeout",
    "idle_timeout",
    "max_lifetime",
    "health_check_interval",
    "health_report_interval",
    "reuse",
    "client_name",
    "pool_name",
    "db",
    "username",
    "password",
    "tcp_nodelay",
    "tcp_keepalive",
    "tcp_keepalive_idle",
    "tcp_keepalive_interval",
    "tcp_keepalive_count",
    "tcp_user_timeout",
    "tls_ca_file",
    "tls_cert_file",
    "tls_key_file",
    "tls_insecure",
    "breaker",
    "breaker_failure_threshold",
    "breaker_failure_rate",
    "breaker_window",
    "breaker_min_calls",
    "breaker_recovery_timeout",
    "breaker_half_open_probes",
    "breaker_success_threshold",
    "breaker_probe_timeout",
    "retries",
    "retry_backoff_base",
    "retry_backoff_cap",
    "retry_jitter",
    "retry_non_idempotent",
    "reconnect_backoff_base",
    "reconnect_backoff_cap",
    "health_degraded_latency",
    "health_unhealthy_latency",
    "leak_detection_threshold",
    "max_reply_bytes",
];

/// The knobs whose value is a duration (`500ms`, `2s`, `1.5s`, `2m`, `1h`; bare text is seconds).
/// `ConfigBuilder::set` parses exactly these with [`parse_duration`] (a unit test holds the two
/// together). In alphabetical order.
pub const DURATION_KNOBS: &[&str] = &[
    "acquire_timeout",
    "breaker_probe_timeout",
    "breaker_recovery_timeout",
    "breaker_window",
    "connect_timeout",
    "health_check_interval",
    "health_degraded_latency",
    "health_report_interval",
    "health_unhealthy_latency",
    "idle_timeout",
    "leak_detection_threshold",
    "max_lifetime",
    "reconnect_backoff_base",
    "reconnect_backoff_cap",
    "retry_backoff_base",
    "retry_backoff_cap",
    "socket_timeout",
    "tcp_keepalive_idle",
    "tcp_keepalive_interval",
    "tcp_user_timeout",
];

/// True when `knob` takes a duration.
pub fn is_duration_knob(knob: &str) -> bool {
    DURATION_KNOBS.contains(&knob)
}

/// How a binding's caller wrote a knob value, for bindings whose own options are in other units
/// than the core's bare-number seconds (Node: milliseconds). One rule, so a number can never
/// silently mean 1000 times what was meant:
pub enum KnobInput<'a> {
    /// Text exactly as the core reads it (URL, environment, C, Python): a bare number for a
    /// duration knob is seconds.
    Text(&'a str),
    /// A number from a language whose durations are milliseconds: for a duration knob it is
    /// milliseconds (`2000` → `2000ms`); for any other knob it is the number. NaN and ±Infinity
    /// are refused, naming the knob.
    Millis(f64),
    /// Text from that language: a duration knob's text must carry its unit (`"2s"`,
    /// `"500ms"`); a bare number is refused, naming the knob, because it could be meant in
    /// either unit.
    UnitRequired(&'a str),
}

impl ConfigBuilder {
    /// Sets one knob from a binding's own option: `written_as` is the name the caller used
    /// (`socket_connect_timeout`, `connectTimeout`, `knobs.max_lifetime`), and every error about
    /// the knob names it instead, now or in [`ConfigBuilder::build`]. The bindings only map their
    /// names onto knobs and pass values on; defaults, rules and messages stay here.
    pub fn set_written(
        &mut self,
        knob: &str,
        input: KnobInput<'_>,
        written_as: &str,
    ) -> Result<&mut Self> {
        self.set_input(knob, input)
            .map_err(|err| err.naming(knob, written_as))?;
        if knob != written_as {
            self.spellings.retain(|(k, _)| k != knob);
            self.spellings
                .push((knob.to_string(), written_as.to_string()));
        }
        Ok(self)
    }

    /// An error of `build()` in the caller's words: a knob set with [`ConfigBuilder::set_written`]
    /// is named as the caller wrote it.
    pub(super) fn in_callers_words(&self, err: Error) -> Error {
        self.spellings
            .iter()
            .fold(err, |err, (knob, written_as)| err.naming(knob, written_as))
    }

    /// Sets one knob the way a binding's caller wrote it (see [`KnobInput`]).
    pub fn set_input(&mut self, knob: &str, input: KnobInput<'_>) -> Result<&mut Self> {
        match input {
            KnobInput::Text(value) => self.set(knob, value),
            KnobInput::Millis(number) if !number.is_finite() => {
                Err(Error::invalid(knob, number, "must be a finite number"))
            }
            KnobInput::Millis(number) if number < 0.0 && is_duration_knob(knob) => Err(
                Error::invalid(knob, number, "must be a finite duration >= 0"),
            ),
            // (`f64`'s Display never uses an exponent: 1e21 is written out in digits.)
            KnobInput::Millis(number) if is_duration_knob(knob) => {
                self.set(knob, &format!("{number}ms"))
            }
            KnobInput::Millis(number) => self.set(knob, &number.to_string()),
            KnobInput::UnitRequired(text) => {
                let bare = !text.trim().is_empty()
                    && !text.trim().ends_with(|c: char| c.is_ascii_alphabetic());
                if is_duration_knob(knob) && bare {
                    return Err(Error::invalid(
                        knob,
                        quoted(text),
                        "a duration given as text needs its unit (500ms, 2s, 1m, 1h); \
                         a number is milliseconds",
                    ));
                }
                self.set(knob, text)
            }
        }
    }

    /// Sets one knob from text, as URL query options and environment variables do.
    /// Durations take `ms`, `s`, `m` or `h` suffixes; a bare number means seconds.
    /// Booleans take `true/false`, `yes/no`, `on/off`, `1/0`. Unknown names are rejected with the
    /// list of valid ones. Values are checked for form here and for range in `build()`.
    pub fn set(&mut self, knob: &str, value: &str) -> Result<&mut Self> {
        let c = &mut self.config;
        let duration = || parse_duration(knob, value);
        let count = || parse_count(knob, value);
        let number = || {
            parse_count(knob, value).and_then(|n| {
                u32::try_from(n)
                    .map_err(|_| Error::invalid(knob, quoted(value), "must be at most 4294967295"))
            })
        };
        let flag = || parse_bool(knob, value);
        match knob {
            "host" => {
                let port = match &c.address {
                    Address::Tcp { port, .. } => *port,
                    Address::Unix(_) => 6379,
                };
                c.address = Address::Tcp {
                    host: value.trim().to_string(),
                    port,
                };
            }
            "port" => {
                let port = parse_port(value)?;
                let host = match &c.address {
                    Address::Tcp { host, .. } => host.clone(),
                    Address::Unix(_) => "127.0.0.1".to_string(),
                };
                c.address = Address::Tcp { host, port };
            }
            "max_connections" => c.max_connections = count()?,
            "min_idle" => c.min_idle = count()?,
            "acquire_timeout" => c.acquire_timeout = duration()?,
            "connect_timeout" => c.connect_timeout = duration()?,
            "socket_timeout" => c.socket_timeout = duration()?,
            "idle_timeout" => c.idle_timeout = duration()?,
            "max_lifetime" => c.max_lifetime = duration()?,
            "health_check_interval" => c.health_check_interval = duration()?,
            "health_report_interval" => c.health_report_interval = duration()?,
            "reuse" => {
                c.reuse_order = match value.to_ascii_lowercase().as_str() {
                    "lifo" => ReuseOrder::Lifo,
                    "fifo" => ReuseOrder::Fifo,
                    _ => return Err(Error::invalid(knob, quoted(value), "must be lifo or fifo")),
                }
            }
            "client_name" => c.client_name = value.to_string(),
            "pool_name" => c.pool_name = value.to_string(),
            "db" => {
                c.db = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| Error::invalid(knob, quoted(value), "must be a whole number"))?
            }
            "username" => c.username = Some(value.to_string()).filter(|u| !u.is_empty()),
            "password" => c.password = Some(Secret::new(value)).filter(|p| !p.0.is_empty()),
            "tcp_nodelay" => c.tcp_nodelay = flag()?,
            "tcp_keepalive" => c.keepalive.enabled = flag()?,
            "tcp_keepalive_idle" => c.keepalive.idle = duration()?,
            "tcp_keepalive_interval" => c.keepalive.interval = duration()?,
            "tcp_keepalive_count" => c.keepalive.count = number()?,
            "tcp_user_timeout" => c.keepalive.user_timeout = Some(duration()?),
            "tls_ca_file" => tls_mut(&mut c.tls, knob)?.ca_file = Some(PathBuf::from(value)),
            "tls_cert_file" => tls_mut(&mut c.tls, knob)?.cert_file = Some(PathBuf::from(value)),
            "tls_key_file" => tls_mut(&mut c.tls, knob)?.key_file = Some(PathBuf::from(value)),
            "tls_insecure" => {
                let insecure = flag()?;
                tls_mut(&mut c.tls, knob)?.insecure = insecure;
            }
            "breaker" => c.breaker.enabled = flag()?,
            "breaker_failure_threshold" => c.breaker.failure_threshold = number()?,
            "breaker_failure_rate" => c.breaker.failure_rate_percent = number()?,
            "breaker_window" => c.breaker.window = duration()?,
            "breaker_min_calls" => c.breaker.min_calls = number()?,
            "breaker_recovery_timeout" => c.breaker.recovery_timeout = duration()?,
            "breaker_half_open_probes" => c.breaker.half_open_probes = number()?,
            "breaker_success_threshold" => c.breaker.success_threshold = number()?,
            "breaker_probe_timeout" => c.breaker.probe_timeout = duration()?,
            "retries" => c.retry.retries = number()?,
            "retry_backoff_base" => c.retry.backoff.base = duration()?,
            "retry_backoff_cap" => c.retry.backoff.cap = duration()?,
            "retry_jitter" => {
                c.retry.backoff.jitter = Jitter::parse(value).ok_or_else(|| {
                    Error::invalid(
                        knob,
                        quoted(value),
                        "must be full, equal, decorrelated or none",
                    )
                })?
            }
            "retry_non_idempotent" => c.retry.retry_non_idempotent = flag()?,
            "reconnect_backoff_base" => c.reconnect_backoff.base = duration()?,
            "reconnect_backoff_cap" => c.reconnect_backoff.cap = duration()?,
            "health_degraded_latency" => c.health.degraded_latency = duration()?,
            "health_unhealthy_latency" => c.health.unhealthy_latency = duration()?,
            "leak_detection_threshold" => c.leak_detection_threshold = duration()?,
            "max_reply_bytes" => c.max_reply_bytes = count()? as u64,
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
}

fn tls_mut<'a>(tls: &'a mut Option<TlsConfig>, knob: &str) -> Result<&'a mut TlsConfig> {
    tls.as_mut().ok_or_else(|| {
        Error::invalid(
            knob,
            "given",
            "TLS options need a rediss:// URL (or .tls(true) in the builder)",
        )
    })
}

pub(super) fn quoted(value: &str) -> String {
    format!("{value:?}")
}

/// Parses a TCP port, 1..=65535.
pub(super) fn parse_port(value: &str) -> Result<u16> {
    match value.trim().parse::<u32>() {
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

/// Parses `500ms`, `2s`, `1.5s`, `2m`, `1h` or a bare number of seconds (exponent forms such as
/// `1e-05` or `2.5e3ms` included). Negative, empty and non-finite values are rejected with the
/// knob's name.
pub fn parse_duration(knob: &str, value: &str) -> Result<Duration> {
    let text = value.trim();
    // The unit is the trailing run of letters, so a number in exponent form (`1e-05`, what
    // Python's `repr(0.00001)` and JS's `String(1e21)` print) is a number, not a unit.
    let split = text
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .len();
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
