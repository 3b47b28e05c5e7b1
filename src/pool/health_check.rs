//! Health checks of a pool: on demand ([`Pool::health`]) and in the background, every
//! `health_report_interval`, from the pool's maintenance thread, so the health status in metrics
//! and the `HealthChanged` event need no code of the application's own.

use std::sync::Arc;
use std::time::Instant;

use redis::Value;

use super::shared::Shared;
use super::{Pool, PooledConnection, Tracking};
use crate::error::Result;
use crate::events::Event;
use crate::health::{self, HealthReport, Observation};
use crate::sizing::Sample;

impl Pool {
    /// Checks the server: PING (timed) and INFO on a pooled connection, plus the breaker and pool
    /// state. Raises [`Event::HealthChanged`] only when the status differs from the previous check.
    /// Never fails: problems are part of the report.
    pub fn health(&self) -> HealthReport {
        let sample = self.load_before_check();
        let probe = self.acquire().and_then(ping_and_info);
        self.assess(sample, probe)
    }

    /// Whether the server answers now (`Connection::answers_ping`: PONG, or a refusal by the ACL),
    /// asked on a connection of its own outside the pool and closed
    /// at once: it neither waits for nor holds a pooled connection, and moves neither the breaker
    /// nor the stats; an answer opens the reconnect gate, as a successful connect does. For a
    /// client that follows reachability after an outage without competing with its callers (the
    /// Node client's recovery check).
    pub fn server_answers(&self) -> bool {
        self.shared.server_answers()
    }

    /// The latest health report (from the background check or an explicit [`Pool::health`]) and
    /// how long ago it was made; None before the first check. No I/O: it never touches a
    /// connection (the `/health` endpoint answers from it).
    pub fn last_health(&self) -> Option<(HealthReport, std::time::Duration)> {
        let memory = self.shared.health.lock();
        memory
            .last_report
            .as_ref()
            .map(|(at, report)| (report.clone(), at.elapsed()))
    }

    /// The counters that close the sizing window, read before the check's own checkout (which is
    /// no part of the load it sizes for).
    fn load_before_check(&self) -> Sample {
        self.shared.counters().sizing_sample(Instant::now())
    }

    fn assess(&self, now: Sample, probe: Result<(std::time::Duration, Value)>) -> HealthReport {
        let (ping, info) = match probe {
            Ok((latency, info)) => {
                let text = match &info {
                    Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    Value::VerbatimString { text, .. } => text.clone(),
                    _ => String::new(),
                };
                (Ok(latency), health::select_info_fields(&text))
            }
            Err(err) => (Err(err.to_string()), Vec::new()),
        };
        let breaker = self.shared.breaker();
        let observation = Observation {
            ping,
            info,
            breaker: breaker.state(),
            consecutive_failures: breaker.consecutive_failures(),
        };
        let stats = self.stats();
        let (report, changed) = {
            let mut memory = self.shared.health.lock();
            let before = memory.last_sample.replace(now).unwrap_or(now);
            // The check's own connection is back by now: `in_use` is the callers' alone.
            let sizing = crate::sizing::advise(
                &before,
                &now,
                stats.in_use,
                stats.max_connections,
                stats.min_idle,
            );
            health::assess(
                observation,
                self.config().health_thresholds(),
                &mut memory,
                stats,
                sizing,
            )
        };
        if let Some(from) = changed {
            let to = report.status;
            self.shared
                .events
                .emit(|| Event::HealthChanged { from, to });
        }
        report
    }
}

/// The maintenance thread's health check: runs when `health_report_interval` has passed since
/// the previous check (background or on demand), and never waits for a connection (a pool with
/// none free is checked at a later pass). Its checkout is not the callers' load: no acquire,
/// acquire timeout, hold time, command or error of it is counted in the pool's statistics
/// ([`Tracking::Maintenance`]); its outcome still goes to the breaker.
pub(crate) fn check_in_background(shared: &Arc<Shared>) {
    let Some(interval) = shared.config().health_report_interval() else {
        return;
    };
    let due = shared
        .health
        .lock()
        .last_sample
        .is_none_or(|last| last.at.elapsed() >= interval);
    if !due || shared.is_closed() {
        return;
    }
    let pool = Pool {
        shared: shared.clone(),
    };
    let sample = pool.load_before_check();
    let probe = match shared.ask_breaker() {
        Err(err) => Err(err),
        Ok(permit) => match shared.checkout_if_free() {
            // Every connection is busy or awaited: the callers come first; a later pass checks.
            None => return shared.release_permit(permit),
            Some(Err(err)) => {
                shared.record::<()>(permit, &Err(err.clone()));
                Err(err)
            }
            Some(Ok(conn)) => {
                let conn = PooledConnection::new(
                    shared.clone(),
                    conn,
                    Some(permit),
                    Tracking::Maintenance,
                );
                ping_and_info(conn)
            }
        },
    };
    pool.assess(sample, probe);
}

/// PING (timed), then INFO with the sections the report uses.
fn ping_and_info(mut conn: PooledConnection) -> Result<(std::time::Duration, Value)> {
    let started = Instant::now();
    conn.execute(&redis::cmd("PING"))?;
    let latency = started.elapsed();
    let info = conn.execute(
        redis::cmd("INFO")
            .arg("server")
            .arg("clients")
            .arg("memory")
            .arg("stats")
            .arg("replication"),
    )?;
    Ok((latency, info))
}
