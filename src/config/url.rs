//! Parsing of `redis://`, `rediss://` and `unix://` URLs into a [`ConfigBuilder`].
//!
//! Errors never repeat the URL itself, since it may carry a password.

use std::path::PathBuf;

use percent_encoding::percent_decode_str;

use super::{Address, ConfigBuilder};
use crate::error::{Error, Result};

/// Parses `url` into a builder; query options are applied with [`ConfigBuilder::set`].
pub(super) fn parse(url: &str) -> Result<ConfigBuilder> {
    let parsed = ::url::Url::parse(url.trim()).map_err(|e| {
        let hint = if e == ::url::ParseError::RelativeUrlWithoutBase {
            " (expected redis://host:port, rediss://host:port or unix:///path)"
        } else {
            ""
        };
        Error::new(
            crate::ErrorKind::InvalidArgument,
            format!("invalid url: {e}{hint}"),
        )
    })?;
    let mut builder = ConfigBuilder::default();
    match parsed.scheme() {
        "redis" | "rediss" => {
            if parsed.scheme() == "rediss" {
                builder = builder.tls(true);
            }
            builder.set_address(tcp_address(&parsed)?);
            let db = parsed.path().trim_start_matches('/');
            if !db.is_empty() {
                builder.set("db", db).map_err(|_| {
                    Error::invalid(
                        "db",
                        format!("{db:?}"),
                        "url path must be a database number",
                    )
                })?;
            }
        }
        "unix" | "redis+unix" => {
            let path = decode("unix socket path", parsed.path())?;
            builder.set_address(Address::Unix(PathBuf::from(path)));
        }
        other => {
            return Err(Error::invalid(
                "url scheme",
                format!("{other:?}"),
                "must be redis://, rediss:// or unix://",
            ));
        }
    }
    let username = decode("username", parsed.username())?;
    let password = parsed
        .password()
        .map(|p| decode("password", p))
        .transpose()?;
    if !username.is_empty() {
        builder.url_user_without_password = password.is_none();
        builder.set("username", &username)?;
    }
    if let Some(password) = password {
        builder.set("password", &password)?;
    }
    for (key, value) in parsed.query_pairs() {
        builder.set(&key, &value)?;
    }
    Ok(builder)
}

fn tcp_address(parsed: &::url::Url) -> Result<Address> {
    let host = match parsed.host() {
        Some(::url::Host::Domain(d)) => d.to_string(),
        Some(::url::Host::Ipv4(ip)) => ip.to_string(),
        Some(::url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(Error::invalid("host", "\"\"", "the url must name a host")),
    };
    let port = parsed.port().unwrap_or(6379);
    if port == 0 {
        return Err(Error::invalid("port", 0, "must be between 1 and 65535"));
    }
    Ok(Address::Tcp { host, port })
}

fn decode(field: &str, text: &str) -> Result<String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| Error::invalid(field, "in url", "is not valid UTF-8 after percent-decoding"))
}
