//! Knobs by name: the one text interface to every setting, shared by URL query options,
//! environment variables (`REDIS_<NAME>`) and the C key/value setter.

use std::path::PathBuf;

use super::policies::Jitter;
use super::{Address, Config, ConfigBuilder, ReuseOrder, Secret, TlsConfig};
use crate::error::{Error, Result};
use std::time::Duration;

/// How a knob's text is read, and where the value goes: the one description of each knob, so
/// its parsing, its kind (what [`is_duration_knob`] and [`KnobInput`] ask) and the bound every
/// duration is checked against cannot drift apart.
#[derive(Clone, Copy)]
enum Kind {
    /// A duration (`500ms`, `2s`, `1.5s`, `2m`, `1h`; a bare number is seconds), with how to read
    /// it back for the bound all durations share ([`super::check_duration`]).
    Duration(fn(&mut Config, Duration), fn(&Config) -> Duration),
    /// A whole number >= 0.
    Count(fn(&mut Config, usize)),
    /// A whole number kept in 32 bits: above 4294967295 is refused, never clamped.
    Number(fn(&mut Config, u32)),
    /// `true/false`, `yes/no`, `on/off`, `1/0`.
    Flag(fn(&mut Config, bool)),
    /// Text the knob reads itself (`knob`, `value`).
    Text(fn(&mut Config, &str, &str) -> Result<()>),
}

/// One knob: its name and [`Kind`].
#[derive(Clone, Copy)]
pub struct Knob {
    name: &'static str,
    kind: Kind,
}

impl Knob {
    /// The knob's name, as URL query options, `REDIS_<NAME>` variables and the setters take it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// True when the knob takes a duration.
    pub fn takes_duration(&self) -> bool {
        matches!(self.kind, Kind::Duration(..))
    }
}

const fn knob(name: &'static str, kind: Kind) -> Knob {
    Knob { name, kind }
}

/// Every knob accepted by [`ConfigBuilder::set`], in the order of the README's table.
pub const KNOBS: &[Knob] = &[
    knob("host", Kind::Text(set_host)),
    knob("port", Kind::Text(set_port)),
    knob("max_connections", Kind::Count(|c, n| c.max_connections = n)),
    knob("min_idle", Kind::Count(|c, n| c.min_idle = n)),
    knob(
        "acquire_timeout",
        Kind::Duration(|c, d| c.acquire_timeout = d, |c| c.acquire_timeout),
    ),
    knob(
        "connect_timeout",
        Kind::Duration(|c, d| c.connect_timeout = d, |c| c.connect_timeout),
    ),
    knob(
        "socket_timeout",
        Kind::Duration(|c, d| c.socket_timeout = d, |c| c.socket_timeout),
    ),
    knob(
        "idle_timeout",
        Kind::Duration(|c, d| c.idle_timeout = d, |c| c.idle_timeout),
    ),
    knob(
        "max_lifetime",
        Kind::Duration(|c, d| c.max_lifetime = d, |c| c.max_lifetime),
    ),
    knob(
        "health_check_interval",
        Kind::Duration(
            |c, d| c.health_check_interval = d,
            |c| c.health_check_interval,
        ),
    ),
    knob(
        "health_report_interval",
        Kind::Duration(
            |c, d| c.health_report_interval = d,
            |c| c.health_report_interval,
        ),
    ),
    knob("reuse", Kind::Text(set_reuse)),
    knob("protocol", Kind::Text(set_protocol)),
    knob(
        "client_name",
        Kind::Text(|c, _, v| {
            c.client_name = v.to_string();
            Ok(())
        }),
    ),
    knob(
        "pool_name",
        Kind::Text(|c, _, v| {
            c.pool_name = v.to_string();
            Ok(())
        }),
    ),
    knob("db", Kind::Text(set_db)),
    knob(
        "username",
        Kind::Text(|c, _, v| {
            c.username = Some(v.to_string()).filter(|u| !u.is_empty());
            Ok(())
        }),
    ),
    knob(
        "password",
        Kind::Text(|c, _, v| {
            c.password = Some(Secret::new(v)).filter(|p| !p.0.is_empty());
            Ok(())
        }),
    ),
    knob("tcp_nodelay", Kind::Flag(|c, on| c.tcp_nodelay = on)),
    knob(
        "tcp_keepalive",
        Kind::Flag(|c, on| c.keepalive.enabled = on),
    ),
    knob(
        "tcp_keepalive_idle",
        Kind::Duration(|c, d| c.keepalive.idle = d, |c| c.keepalive.idle),
    ),
    knob(
        "tcp_keepalive_interval",
        Kind::Duration(|c, d| c.keepalive.interval = d, |c| c.keepalive.interval),
    ),
    knob(
        "tcp_keepalive_count",
        Kind::Number(|c, n| c.keepalive.count = n),
    ),
    knob(
        "tcp_user_timeout",
        Kind::Duration(
            |c, d| c.keepalive.user_timeout = Some(d),
            |c| c.keepalive.user_timeout.unwrap_or_default(),
        ),
    ),
    knob(
        "tls_ca_file",
        Kind::Text(|c, k, v| {
            tls_mut(&mut c.tls, k)?.ca_file = Some(PathBuf::from(v));
            Ok(())
        }),
    ),
    knob(
        "tls_cert_file",
        Kind::Text(|c, k, v| {
            tls_mut(&mut c.tls, k)?.cert_file = Some(PathBuf::from(v));
            Ok(())
        }),
    ),
    knob(
        "tls_key_file",
        Kind::Text(|c, k, v| {
            tls_mut(&mut c.tls, k)?.key_file = Some(PathBuf::from(v));
            Ok(())
        }),
    ),
    knob(
        "tls_insecure",
        Kind::Text(|c, k, v| {
            let insecure = parse_bool(k, v)?;
            tls_mut(&mut c.tls, k)?.insecure = insecure;
            Ok(())
        }),
    ),
    knob("breaker", Kind::Flag(|c, on| c.breaker.enabled = on)),
    knob(
        "breaker_failure_threshold",
        Kind::Number(|c, n| c.breaker.failure_threshold = n),
    ),
    knob(
        "breaker_failure_rate",
        Kind::Number(|c, n| c.breaker.failure_rate_percent = n),
    ),
    knob(
        "breaker_window",
        Kind::Duration(|c, d| c.breaker.window = d, |c| c.breaker.window),
    ),
    knob(
        "breaker_min_calls",
        Kind::Number(|c, n| c.breaker.min_calls = n),
    ),
    knob(
        "breaker_recovery_timeout",
        Kind::Duration(
            |c, d| c.breaker.recovery_timeout = d,
            |c| c.breaker.recovery_timeout,
        ),
    ),
    knob(
        "breaker_half_open_probes",
        Kind::Number(|c, n| c.breaker.half_open_probes = n),
    ),
    knob(
        "breaker_success_threshold",
        Kind::Number(|c, n| c.breaker.success_threshold = n),
    ),
    knob(
        "breaker_probe_timeout",
        Kind::Duration(
            |c, d| c.breaker.probe_timeout = d,
            |c| c.breaker.probe_timeout,
        ),
    ),
    knob("retries", Kind::Number(|c, n| c.retry.retries = n)),
    knob(
        "retry_backoff_base",
        Kind::Duration(|c, d| c.retry.backoff.base = d, |c| c.retry.backoff.base),
    ),
    knob(
        "retry_backoff_cap",
        Kind::Duration(|c, d| c.retry.backoff.cap = d, |c| c.retry.backoff.cap),
    ),
    knob("retry_jitter", Kind::Text(set_retry_jitter)),
    knob(
        "retry_non_idempotent",
        Kind::Flag(|c, on| c.retry.retry_non_idempotent = on),
    ),
    knob(
        "reconnect_backoff_base",
        Kind::Duration(
            |c, d| c.reconnect_backoff.base = d,
            |c| c.reconnect_backoff.base,
        ),
    ),
    knob(
        "reconnect_backoff_cap",
        Kind::Duration(
            |c, d| c.reconnect_backoff.cap = d,
            |c| c.reconnect_backoff.cap,
        ),
    ),
    knob(
        "health_degraded_latency",
        Kind::Duration(
            |c, d| c.health.degraded_latency = d,
            |c| c.health.degraded_latency,
        ),
    ),
    knob(
        "health_unhealthy_latency",
        Kind::Duration(
            |c, d| c.health.unhealthy_latency = d,
            |c| c.health.unhealthy_latency,
        ),
    ),
    knob(
        "leak_detection_threshold",
        Kind::Duration(
            |c, d| c.leak_detection_threshold = d,
            |c| c.leak_detection_threshold,
        ),
    ),
    knob(
        "max_reply_bytes",
        Kind::Count(|c, n| c.max_reply_bytes = n as u64),
    ),
];

/// The knob called `name`, if there is one.
fn find(name: &str) -> Option<&'static Knob> {
    KNOBS.iter().find(|k| k.name == name)
}

/// True when `knob` takes a duration.
pub fn is_duration_knob(knob: &str) -> bool {
    find(knob).is_some_and(Knob::takes_duration)
}

/// Every duration setting of `config` by its knob name, for the bound they all share.
pub(super) fn durations(config: &Config) -> impl Iterator<Item = (&'static str, Duration)> + '_ {
    KNOBS.iter().filter_map(move |k| match k.kind {
        Kind::Duration(_, get) => Some((k.name, get(config))),
        _ => None,
    })
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
        // The latest setting of a knob is the one its errors are about.
        self.spellings.retain(|(k, _)| k != knob);
        if knob != written_as {
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
        let Some(found) = find(knob) else {
            let names: Vec<&str> = KNOBS.iter().map(Knob::name).collect();
            return Err(Error::invalid(
                "option",
                quoted(knob),
                &format!("unknown; valid options are {}", names.join(", ")),
            ));
        };
        let c = &mut self.config;
        match found.kind {
            Kind::Duration(set, _) => set(c, parse_duration(knob, value)?),
            Kind::Count(set) => set(c, parse_count(knob, value)?),
            Kind::Number(set) => set(
                c,
                u32::try_from(parse_count(knob, value)?).map_err(|_| {
                    Error::invalid(knob, quoted(value), "must be at most 4294967295")
                })?,
            ),
            Kind::Flag(set) => set(c, parse_bool(knob, value)?),
            Kind::Text(set) => set(c, knob, value)?,
        }
        Ok(self)
    }
}

fn set_host(c: &mut Config, _: &str, value: &str) -> Result<()> {
    let port = match &c.address {
        Address::Tcp { port, .. } => *port,
        Address::Unix(_) => 6379,
    };
    c.address = Address::Tcp {
        host: value.trim().to_string(),
        port,
    };
    Ok(())
}

fn set_port(c: &mut Config, _: &str, value: &str) -> Result<()> {
    let port = parse_port(value)?;
    let host = match &c.address {
        Address::Tcp { host, .. } => host.clone(),
        Address::Unix(_) => "127.0.0.1".to_string(),
    };
    c.address = Address::Tcp { host, port };
    Ok(())
}

fn set_reuse(c: &mut Config, knob: &str, value: &str) -> Result<()> {
    c.reuse_order = match value.to_ascii_lowercase().as_str() {
        "lifo" => ReuseOrder::Lifo,
        "fifo" => ReuseOrder::Fifo,
        _ => return Err(Error::invalid(knob, quoted(value), "must be lifo or fifo")),
    };
    Ok(())
}

fn set_protocol(c: &mut Config, knob: &str, value: &str) -> Result<()> {
    c.resp3 = match value.trim() {
        "2" => false,
        "3" => true,
        _ => {
            return Err(Error::invalid(
                knob,
                quoted(value),
                "must be 2 (RESP2) or 3 (RESP3)",
            ));
        }
    };
    Ok(())
}

fn set_db(c: &mut Config, knob: &str, value: &str) -> Result<()> {
    c.db = value
        .trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid(knob, quoted(value), "must be a whole number"))?;
    Ok(())
}

fn set_retry_jitter(c: &mut Config, knob: &str, value: &str) -> Result<()> {
    c.retry.backoff.jitter = Jitter::parse(value).ok_or_else(|| {
        Error::invalid(
            knob,
            quoted(value),
            "must be full, equal, decorrelated or none",
        )
    })?;
    Ok(())
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
