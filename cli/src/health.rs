//! `redpool health URL [--json]`: one health check of the server through a redpool pool.

use redpool::{HealthReport, HealthStatus};

use crate::duration;
use crate::exit::{self, Failure};
use crate::output::{self, aligned, pool_stats_rows};
use crate::target::Target;

/// Runs the check, prints the report and returns the exit code for its status.
pub fn run(url: &str, json: bool) -> Result<u8, Failure> {
    let target = Target::open(url)?;
    let report = target.pool.health();
    if json {
        // The core's JSON (shared with the C API and the /health endpoint): a field added to
        // `HealthReport` appears here without a change to the CLI.
        output::print(&format!("{}\n", report.to_json()))?;
    } else {
        output::print(&human(&target.shown, &report))?;
    }
    Ok(exit_code(report.status))
}

/// The exit code for a status: healthy 0, degraded 1, unhealthy (or unreachable) 2.
pub fn exit_code(status: HealthStatus) -> u8 {
    match status {
        HealthStatus::Healthy => exit::OK,
        HealthStatus::Degraded => exit::WARNING,
        HealthStatus::Unhealthy => exit::FAILURE,
    }
}

/// The report for people: one row per field (adding a field is one line).
fn human(shown: &str, r: &HealthReport) -> String {
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "-".to_string());
    let rows = [
        ("target", shown.to_string()),
        ("status", r.status.as_str().to_string()),
        ("ping latency", or_dash(r.ping_latency.map(duration::human))),
        ("error", or_dash(r.error.clone())),
        ("breaker", r.breaker.as_str().to_string()),
        ("consecutive failures", r.consecutive_failures.to_string()),
    ];
    let mut text = aligned(&rows, 0);
    if !r.reasons.is_empty() {
        text.push_str("reasons:\n");
        for reason in &r.reasons {
            text.push_str(&format!("  - {reason}\n"));
        }
    }
    if !r.server_info.is_empty() {
        let info: Vec<(&str, String)> = r
            .server_info
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        text.push_str("server:\n");
        text.push_str(&aligned(&info, 2));
    }
    text.push_str("this check's own pool:\n");
    text.push_str(&aligned(&pool_stats_rows(&r.stats), 2));
    text
}
