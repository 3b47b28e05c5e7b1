//! The library version at run time (the header has the compile-time `REDPOOL_VERSION_*` macros).

use std::ffi::c_char;

static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The version as a static string, e.g. "0.1.0". Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn redpool_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// The version as `(major << 24) | (minor << 16) | (patch << 8)`, comparable with
/// `REDPOOL_VERSION_NUMBER`.
#[unsafe(no_mangle)]
pub extern "C" fn redpool_version_number() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    (part(env!("CARGO_PKG_VERSION_MAJOR")) << 24)
        | (part(env!("CARGO_PKG_VERSION_MINOR")) << 16)
        | (part(env!("CARGO_PKG_VERSION_PATCH")) << 8)
}
