//! A core `Config` from what the Python layer passes: a URL or a socket path, then knobs by name
//! (the Python layer has already translated redis-py's keyword arguments into knob names, and
//! values into text; `host` and `port` are knobs, so their defaults and checks are the core's).

use redpool::config::KnobInput;
use redpool::{Config, ConfigBuilder};

/// Where to connect, when no URL is given (without a socket path: the `host` and `port` knobs,
/// or the core's default address).
pub struct Address {
    pub unix_socket_path: Option<String>,
    pub tls: bool,
}

/// Builds and validates the configuration: `url` (or `address`), then each
/// `(knob, value, written_as)` in order through `ConfigBuilder::set_written` (values are the
/// core's text: a bare number of a duration is seconds, as in Python), then `build()`. Errors
/// name the argument as the caller wrote it and never echo a password.
pub fn build(
    url: Option<&str>,
    address: Address,
    settings: &[(String, String, String)],
) -> redpool::Result<Config> {
    let mut builder = match url {
        Some(url) => ConfigBuilder::from_url(url)?,
        None => {
            let builder = Config::builder().tls(address.tls);
            match address.unix_socket_path {
                Some(path) => builder.unix_socket(path),
                None => builder,
            }
        }
    };
    for (knob, value, written_as) in settings {
        builder.set_written(knob, KnobInput::Text(value), written_as)?;
    }
    builder.build()
}
