//! Pool settings from JS: an optional URL, an optional address, then core knobs by name (the JS
//! layer maps ioredis's option names onto them and passes the values as the user gave them).
//! Validation is the core's, messages included, naming the option as the user wrote it.

use napi::bindgen_prelude::Either3;
use napi_derive::napi;
use redpool::config::KnobInput;
use redpool::{Config, ConfigBuilder};

use crate::errors::Failure;
use crate::numbers;

/// One setting: the core knob it sets, the value as the user gave it, and the option's name in
/// the user's code (`connectTimeout`, `breaker.window`, `knobs.max_lifetime`).
#[napi(object)]
pub struct NativeKnob {
    /// The core knob (see the core's `KNOBS`).
    pub knob: String,
    /// A number (milliseconds for a duration, as every Node option), a string (a duration's
    /// text needs its unit: `'2s'`) or a boolean.
    pub value: Either3<f64, String, bool>,
    /// The option's name as the user wrote it; errors name it.
    pub written_as: String,
}

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
    /// Core knobs (`host` and `port` among them), applied in order.
    pub knobs: Vec<NativeKnob>,
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
    for NativeKnob {
        knob,
        value,
        written_as,
    } in &options.knobs
    {
        let input = match value {
            Either3::A(number) => KnobInput::Millis(numbers::exact(written_as, *number)?),
            Either3::B(text) => KnobInput::UnitRequired(text),
            Either3::C(flag) => KnobInput::Text(if *flag { "true" } else { "false" }),
        };
        builder.set_written(knob, input, written_as)?;
    }
    Ok(builder.build()?)
}
