//! Pool settings from JS: an optional URL, an optional address, then core knobs by name (the JS
//! layer maps ioredis's option names onto them). All validation is the core's.

use napi_derive::napi;
use redpool::{Config, ConfigBuilder};

/// What the JS layer passes to create a pool.
#[napi(object)]
pub struct NativeOptions {
    /// `redis://`, `rediss://` or `unix://` URL; its settings come first.
    pub url: Option<String>,
    /// Host name or IP address (with `port`); overrides the URL's.
    pub host: Option<String>,
    /// TCP port; overrides the URL's.
    pub port: Option<u32>,
    /// Unix socket path; overrides host and port.
    pub path: Option<String>,
    /// Use TLS.
    pub tls: Option<bool>,
    /// Core knobs as `[name, value]` pairs (see the core's `KNOBS`), applied in order.
    pub knobs: Vec<Vec<String>>,
}

/// Builds and validates the pool configuration.
pub fn build(options: NativeOptions) -> redpool::Result<Config> {
    let mut builder = match &options.url {
        Some(url) => ConfigBuilder::from_url(url)?,
        None => Config::builder(),
    };
    if let Some(host) = options.host {
        let port = options.port.unwrap_or(6379);
        let port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| {
            redpool::Error::invalid("port", port, "must be a number between 1 and 65535")
        })?;
        builder = builder.host_port(host, port);
    }
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
            _ => {
                return Err(redpool::Error::invalid(
                    "knobs",
                    pair.len(),
                    "each entry must be a [name, value] pair",
                ));
            }
        }
    }
    builder.build()
}
