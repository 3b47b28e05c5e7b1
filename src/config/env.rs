//! Configuration from environment variables: `REDIS_URL` (or host/port/db/credentials variables),
//! then any knob as `REDIS_<NAME>`.

use super::{ConfigBuilder, KNOBS};
use crate::error::Result;

/// Knobs that describe the server, read from variables only when `REDIS_URL` is not set.
const SERVER_KNOBS: [&str; 5] = ["host", "port", "db", "username", "password"];

pub(super) fn parse(var: impl Fn(&str) -> Option<String>) -> Result<ConfigBuilder> {
    let present = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let mut builder = match present("REDIS_URL") {
        Some(url) => ConfigBuilder::from_url(url.trim()).map_err(|e| e.context("REDIS_URL"))?,
        None => {
            let mut b = ConfigBuilder::default();
            for knob in SERVER_KNOBS {
                apply(&mut b, knob, &present)?;
            }
            b
        }
    };
    for knob in KNOBS.iter().filter(|k| !SERVER_KNOBS.contains(k)) {
        apply(&mut builder, knob, &present)?;
    }
    Ok(builder)
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
