//! Numbers from JS. A JS number is an `f64`: it may be NaN, ±Infinity, negative, fractional or
//! too large for the Rust type it becomes. Every number the addon takes arrives as an `f64` and is
//! checked here before it becomes a count or a [`Duration`]: a bad one is an
//! `ERR_INVALID_ARGUMENT` naming what it is and what is wrong, never a panic (`Duration::from_secs_f64`
//! panics on NaN and huge values; `Instant + Duration` on overflow) and never a value silently
//! changed into another (Node-API's own `u32` conversion wraps modulo 2^32).

use std::time::Duration;

use crate::errors::Failure;

/// The longest duration the addon takes, in milliseconds: the core's bound for every duration
/// setting and per-call duration (365 days).
const MAX_DURATION_MS: f64 = redpool::config::MAX_DURATION.as_millis() as f64;

/// A number as JS would print it in a message (`NaN`, `Infinity`, `1e+21` aside, plain digits).
fn show(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{value}")
    }
}

fn invalid(name: &str, value: f64, rule: &str) -> Failure {
    Failure::invalid(format!("invalid {name} = {}: {rule}", show(value)))
}

/// A number that JS holds exactly: whole numbers beyond 2^53 - 1 are not (`2 ** 53 + 1` is
/// `2 ** 53`), so such a value is refused rather than passed on as another number. NaN and
/// ±Infinity pass: the core refuses them, naming the setting. The message names the setting but
/// not the value (it may be a password given as a number).
pub fn exact(name: &str, value: f64) -> Result<f64, Failure> {
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
    if value.is_finite() && value.abs() > MAX_SAFE_INTEGER {
        return Err(Failure::invalid(format!(
            "invalid {name}: must be at most 9007199254740991 (Number.MAX_SAFE_INTEGER) in size"
        )));
    }
    Ok(value)
}

/// A count: a whole number from 0 to what a `usize` holds (the core checks the range of the
/// setting it is for, and names it).
pub fn count(name: &str, value: f64) -> Result<usize, Failure> {
    let value = exact(name, value)?;
    if !value.is_finite() {
        return Err(invalid(name, value, "must be a finite number"));
    }
    if value.fract() != 0.0 || value < 0.0 || value > usize::MAX as f64 {
        return Err(invalid(name, value, "must be a whole number >= 0"));
    }
    Ok(value as usize)
}

/// A duration in milliseconds: finite, >= 0, at most 365 days.
pub fn millis(name: &str, ms: f64) -> Result<Duration, Failure> {
    if !ms.is_finite() {
        return Err(invalid(name, ms, "must be a finite number of milliseconds"));
    }
    if ms < 0.0 {
        return Err(invalid(name, ms, "must be >= 0"));
    }
    if ms > MAX_DURATION_MS {
        return Err(invalid(
            name,
            ms,
            "must be at most 365 days (31536000000 ms)",
        ));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count("n", 7.0).unwrap(), 7);
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 1e20, 0.5] {
            let err = count("n", bad).unwrap_err();
            assert_eq!(err.code, "ERR_INVALID_ARGUMENT");
            assert!(err.message.starts_with("invalid n = "), "{}", err.message);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(millis("t", 1500.0).unwrap(), Duration::from_millis(1500));
        assert_eq!(
            millis("t", MAX_DURATION_MS).unwrap(),
            redpool::config::MAX_DURATION
        );
        for bad in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            1e20,
            2f64.powi(53),
        ] {
            let err = millis("t", bad).unwrap_err();
            assert_eq!(err.code, "ERR_INVALID_ARGUMENT");
            assert!(err.message.starts_with("invalid t = "), "{}", err.message);
        }
    }
}
