//! A core `Config` from what the Python layer passes: a URL or an address, then knobs by name
//! (the Python layer has already translated redis-py's keyword arguments into knob names).

use redpool::{Config, ConfigBuilder, Error};

/// Where to connect, when no URL is given.
pub struct Address {
    pub host: String,
    pub port: i64,
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
                None => {
                    let port = u16::try_from(address.port)
                        .ok()
                        .filter(|p| *p != 0)
                        .ok_or_else(|| {
                            Error::invalid("port", address.port, "must be between 1 and 65535")
                        })?;
                    builder.host_port(address.host, port)
                }
            }
        }
    };
    for (knob, value) in settings {
        builder.set(knob, value)?;
    }
    builder.build()
}
