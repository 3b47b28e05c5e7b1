//! Durations on the command line (`300s`, `5m`, `1500ms`, a plain number = seconds) and in the
//! output (`5m3s`, `0.213 ms`).

use std::time::Duration;

/// Parses a duration argument with the core's parser (the one URL options use), so the CLI and
/// the URL accept the same forms. Used as a clap value parser: the error names the problem.
pub fn parse(text: &str) -> Result<Duration, String> {
    redpool::config::parse_duration("duration", text).map_err(|err| {
        // The core says `invalid duration = "5x": <rule>`; clap already names the value.
        let message = err.to_string();
        let prefix = format!("invalid duration = {text:?}: ");
        message
            .strip_prefix(&prefix)
            .map_or(message.clone(), str::to_string)
    })
}

/// Like [`parse`], but zero is refused (a refresh interval of zero would spin).
pub fn parse_positive(text: &str) -> Result<Duration, String> {
    match parse(text)? {
        d if d.is_zero() => Err("must be greater than 0".to_string()),
        d => Ok(d),
    }
}

/// Whole seconds as `45s`, `5m3s`, `2h5m` or `3d4h` (the two largest units).
pub fn secs(total: u64) -> String {
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// A duration for people: milliseconds below one second (`200 ms`, `0.213 ms`), else [`secs`]
/// or `1.5s`.
pub fn human(d: Duration) -> String {
    let whole_millis = d.subsec_nanos() % 1_000_000 == 0;
    match (d < Duration::from_secs(1), whole_millis) {
        (true, true) => format!("{} ms", d.as_millis()),
        (true, false) => format!("{:.3} ms", d.as_secs_f64() * 1000.0),
        (false, _) if d.subsec_nanos() == 0 => secs(d.as_secs()),
        (false, _) => {
            format!("{:.3}", d.as_secs_f64())
                .trim_end_matches('0')
                .to_string()
                + "s"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("42"), Ok(Duration::from_secs(42)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        for bad in ["", "abc", "5x", "-1s", "s"] {
            let err = parse(bad).expect_err(bad);
            assert!(
                err.contains("duration") || err.contains("unit"),
                "{bad:?}: {err}"
            );
        }
        assert!(parse_positive("0s").is_err());
        assert_eq!(parse_positive("2s"), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(secs(0), "0s");
        assert_eq!(secs(59), "59s");
        assert_eq!(secs(60), "1m");
        assert_eq!(secs(303), "5m3s");
        assert_eq!(secs(7500), "2h5m");
        assert_eq!(secs(3 * 86_400 + 4 * 3600 + 5), "3d4h");
        assert_eq!(human(Duration::from_micros(213)), "0.213 ms");
        assert_eq!(human(Duration::from_secs(300)), "5m");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_millis(200)), "200 ms");
        assert_eq!(human(Duration::ZERO), "0 ms");
    }
}
