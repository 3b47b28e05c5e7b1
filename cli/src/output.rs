//! Writing to stdout, and the `label: value` blocks the reports are made of.

use std::io::{self, Write};

use redpool::PoolStats;

use crate::duration;
use crate::exit::{self, Failure};

/// Writes `text` to stdout and flushes (frames of a live view must appear at once). When the
/// reader has gone (`redpool monitor | head`), the process ends quietly with exit code 0.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => std::process::exit(exit::OK.into()),
        Err(err) => Err(Failure::server(format!("cannot write to stdout: {err}"))),
    }
}

/// `label: value` lines, values aligned, each line indented by `indent` spaces.
pub fn aligned(rows: &[(&str, String)], indent: usize) -> String {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
    rows.iter()
        .map(|(label, value)| format!("{:indent$}{:width$} {value}\n", "", format!("{label}:")))
        .collect()
}

/// The CLI's own pool stats as rows (one line per field: adding a field is one line).
pub fn pool_stats_rows(s: &PoolStats) -> Vec<(&'static str, String)> {
    vec![
        ("max connections", s.max_connections.to_string()),
        ("open", s.open.to_string()),
        ("idle", s.idle.to_string()),
        ("in use", s.in_use.to_string()),
        ("connecting", s.connecting.to_string()),
        ("waiting", s.waiting.to_string()),
        ("connections created", s.connections_created.to_string()),
        ("connections closed", s.closed_total().to_string()),
        ("connect failures", s.connect_failures.to_string()),
        ("acquires", s.acquires.to_string()),
        ("acquire timeouts", s.acquire_timeouts.to_string()),
        ("commands", s.commands.to_string()),
        (
            "errors",
            s.errors.iter().map(|(_, n)| n).sum::<u64>().to_string(),
        ),
        ("longest wait", duration::human(s.wait_time_max)),
    ]
}

/// The pool stats on one line (`open 1, idle 1, ...`), for the live view.
pub fn pool_stats_line(s: &PoolStats) -> String {
    pool_stats_rows(s)
        .iter()
        .map(|(label, value)| format!("{label} {value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_values() {
        let rows = [("a", "1".to_string()), ("long label", "2".to_string())];
        assert_eq!(aligned(&rows, 2), "  a:          1\n  long label: 2\n");
    }
}
