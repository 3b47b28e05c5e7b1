//! Configuration from environment variables: `REDIS_URL` (or host/port/db/credentials variables),
//! then any knob as `REDIS_<NAME>`.

use super::{ConfigBuilder, KNOBS};
use crate::error::{Error, ErrorKind, Result};

/// Knobs that describe the server, read from variables only when `REDIS_URL` is not set.
const SERVER_KNOBS: [&str; 5] = ["host", "port", "db", "username", "password"];

pub(super) fn parse(var: impl Fn(&str) -> Option<String>) -> Result<ConfigBuilder> {
    let present = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let mut builder = match present("REDIS_URL") {
        Some(url) => {
            let b = ConfigBuilder::from_url(url.trim()).map_err(|e| e.context("REDIS_URL"))?;
            refuse_conflicts(&b, &present)?;
            b
        }
        None => {
            let mut b = ConfigBuilder::default();
            for knob in SERVER_KNOBS {
                apply(&mut b, knob, &present)?;
            }
            b
        }
    };
    for knob in KNOBS
        .iter()
        .map(|k| k.name())
        .filter(|k| !SERVER_KNOBS.contains(k))
    {
        apply(&mut builder, knob, &present)?;
    }
    Ok(builder)
}

/// With `REDIS_URL` set, `REDIS_HOST`, `REDIS_PORT`, `REDIS_DB`, `REDIS_USERNAME` and
/// `REDIS_PASSWORD` are not read: one that says something else than the URL (a password the URL
/// lacks, another host) is refused, naming both variables and never a value (they may be
/// secrets). One that agrees with the URL is accepted: platforms commonly set the URL and its
/// parts side by side, and that deployment keeps working.
fn refuse_conflicts(url: &ConfigBuilder, present: &impl Fn(&str) -> Option<String>) -> Result<()> {
    for knob in SERVER_KNOBS {
        let mut probe = url.clone();
        apply(&mut probe, knob, present)?;
        if probe.config != url.config {
            let name = format!("REDIS_{}", knob.to_ascii_uppercase());
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "{name} conflicts with REDIS_URL: with REDIS_URL set, {name} is not read, \
                     and it says something else than the URL; put the setting in REDIS_URL \
                     (percent-encoded) or unset one of the two"
                ),
            ));
        }
    }
    Ok(())
}

fn apply(
    builder: &mut ConfigBuilder,
    knob: &str,
    present: &impl Fn(&str) -> Option<String>,
) -> Result<()> {
    let name = format!("REDIS_{}", knob.to_ascii_uppercase());
    if let Some(value) = present(&name) {
        let value = if knob == "password" {
            value
        } else {
            value.trim().to_string()
        };
        builder.set(knob, &value).map_err(|e| e.context(&name))?;
    }
    Ok(())
}
