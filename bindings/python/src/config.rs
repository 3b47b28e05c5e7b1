//! A core `Config` from what the Python layer passes: a URL or a socket path, then knobs by name
//! (the Python layer has already translated redis-py's keyword arguments into knob names; `host`
//! and `port` are knobs, so their defaults and checks are the core's).

use redpool::{Config, ConfigBuilder};

/// Where to connect, when no URL is given (without a socket path: the `host` and `port` knobs,
/// or the core's default address).
pub struct Address {
    pub unix_socket_path: Option<String>,
    pub tls: bool,
}

/// Builds and validates the configuration: `url` (or `address`), then each `(knob, value)` in
/// order through `ConfigBuilder::set`, then `build()`. Errors name the knob and never echo a
/// password.
pub fn build(
    url: Option<&str>,
    address: Address,
    settings: &[(String, String)],
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
    for (knob, value) in settings {
        builder.set(knob, value)?;
    }
    builder.build()
}
