//! Pool settings from JS: an optional URL, an optional address, then core knobs by name (the JS
//! layer maps ioredis's option names onto them). Validation is the core's, messages included
//! (a count above the core's 32-bit fields is refused by its knob table, naming the knob).

use napi_derive::napi;
use redpool::config::KnobInput;
use redpool::{Config, ConfigBuilder};

use crate::errors::Failure;

/// What the JS layer passes to create a pool.
#[napi(object)]
pub struct NativeOptions {
    /// `redis://`, `rediss://` or `unix://` URL; its settings come first.
    pub url: Option<String>,
    /// Start from the environment (`REDIS_URL`, or `REDIS_HOST`/`REDIS_PORT`/..., then any knob
    /// as `REDIS_<NAME>`), read by the core as in every language (`Redis.fromEnv()`).
    pub from_env: Option<bool>,
    /// Unix socket path; overrides host and port.
    pub path: Option<String>,
    /// Use TLS.
    pub tls: Option<bool>,
    /// Core knobs as `[name, value]` pairs (see the core's `KNOBS`; `host` and `port` among
    /// them), applied in order. A third element says how the user wrote a value of the
    /// `knobs` option (the core's `KnobInput`): `"number"` (a JS number: milliseconds for a
    /// duration knob) or `"text"` (a string: a duration needs its unit).
    pub knobs: Vec<Vec<String>>,
}

/// Builds and validates the pool configuration.
pub fn build(options: NativeOptions) -> Result<Config, Failure> {
    let mut builder = match (&options.url, options.from_env.unwrap_or(false)) {
        (Some(_), true) => {
            return Err(Failure::from(redpool::Error::invalid(
                "fromEnv",
                "a URL",
                "the environment gives the URL (REDIS_URL); pass options only",
            )));
        }
        (Some(url), false) => ConfigBuilder::from_url(url)?,
        (None, true) => ConfigBuilder::from_env_with(|name| std::env::var(name).ok())?,
        (None, false) => Config::builder(),
    };
    if let Some(path) = options.path {
        builder = builder.unix_socket(path);
    }
    if let Some(tls) = options.tls {
        builder = builder.tls(tls);
    }
    for pair in &options.knobs {
        match pair.as_slice() {
            [name, value] => {
                builder.set(name, value)?;
            }
            [name, value, how] if how == "number" || how == "text" => {
                let input = if how == "number" {
                    KnobInput::Millis(value)
                } else {
                    KnobInput::UnitRequired(value)
                };
                builder.set_input(name, input)?;
            }
            _ => {
                return Err(Failure::from(redpool::Error::invalid(
                    "knobs",
                    pair.len(),
                    "each entry must be a [name, value] pair",
                )));
            }
        }
    }
    Ok(builder.build()?)
}
