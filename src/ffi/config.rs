//! `redpool_config`: an opaque, validating builder for pool settings.

use std::ffi::c_char;

use super::{boundary, non_null, utf8, write_out};
use crate::config::ConfigBuilder;

/// Pool settings under construction. Created by `redpool_config_new`, `redpool_config_from_url`
/// or `redpool_config_from_env`; freed by `redpool_config_free`. Creating a pool copies it, so it
/// may be freed right after. Use from one thread at a time.
pub struct redpool_config {
    pub(crate) builder: ConfigBuilder,
}

/// Hands a new config to C through `out` (allocated only once `out` is known to be writable).
///
/// # Safety
/// `out` is NULL or valid for a write.
unsafe fn hand_out(
    out: *mut *mut redpool_config,
    builder: ConfigBuilder,
) -> crate::error::Result<()> {
    super::request::check_out(out, "out")?;
    let handle = Box::into_raw(Box::new(redpool_config { builder }));
    // SAFETY: per the caller's contract; `out` is not NULL.
    unsafe { write_out(out, "out", handle) }
}

/// Creates settings with every default (server `127.0.0.1:6379`). On success `*out` owns a new
/// config; free it with `redpool_config_free`.
///
/// # Safety
/// `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_config_new(
    out: *mut *mut redpool_config,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        unsafe { hand_out(out, ConfigBuilder::default()) }
    })
}

/// Creates settings from a URL: `redis://[user[:password]@]host[:port][/db][?knob=value&...]`,
/// `rediss://...` (TLS) or `unix:///path.sock[?db=N]`. On success `*out` owns a new config.
///
/// # Safety
/// `url` is NULL or a NUL-terminated string; `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_config_from_url(
    url: *const c_char,
    out: *mut *mut redpool_config,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let url = unsafe { utf8(url, "url") }?;
        let builder = ConfigBuilder::from_url(url)?;
        // SAFETY: per this function's contract.
        unsafe { hand_out(out, builder) }
    })
}

/// Creates settings from the environment: `REDIS_URL` (or `REDIS_HOST`, `REDIS_PORT`,
/// `REDIS_DB`, `REDIS_USERNAME`, `REDIS_PASSWORD`), then any knob as `REDIS_<KNOB>` (for example
/// `REDIS_MAX_CONNECTIONS`). On success `*out` owns a new config.
///
/// # Safety
/// `out` is NULL or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_config_from_env(
    out: *mut *mut redpool_config,
) -> super::redpool_status {
    boundary(|| {
        let builder = ConfigBuilder::from_env_with(|name| std::env::var(name).ok())?;
        // SAFETY: per this function's contract.
        unsafe { hand_out(out, builder) }
    })
}

/// Sets one knob by name, with a text value: `"max_connections"` = `"20"`, `"socket_timeout"` =
/// `"250ms"`, `"breaker"` = `"off"`, ... (the names and units of the README's tables). The form is
/// checked now (unknown knob, unparsable value); ranges and combinations are checked when a pool is
/// created. Both strings are copied.
///
/// # Safety
/// `config` is NULL or a live config; `key` and `value` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_config_set(
    config: *mut redpool_config,
    key: *const c_char,
    value: *const c_char,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let config = unsafe { config.as_mut() }.ok_or_else(|| super::null("config"))?;
        // SAFETY: per this function's contract.
        let (key, value) = unsafe { (utf8(key, "key")?, utf8(value, "value")?) };
        config.builder.set(key, value)?;
        Ok(())
    })
}

/// Checks every setting as pool creation would, without creating a pool.
///
/// # Safety
/// `config` is NULL or a live config.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_config_validate(
    config: *const redpool_config,
) -> super::redpool_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let config = unsafe { non_null(config, "config") }?;
        config.builder.build().map(drop)
    })
}

/// Frees a config. NULL is ignored. Must not be called twice on the same config.
///
/// # Safety
/// `config` is NULL or a config from `redpool_config_*` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn redpool_config_free(config: *mut redpool_config) {
    super::query((), || {
        if !config.is_null() {
            // SAFETY: allocated by `hand_out`, owned by the caller.
            drop(unsafe { Box::from_raw(config) });
        }
    })
}
