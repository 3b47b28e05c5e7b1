//! The process-wide registry: every caller asking for the same settings shares one pool.
//!
//! Pools are keyed by their whole normalized [`Config`] (address, credentials, db, every knob), so
//! `shared("redis://h:6379/0")` and `shared("redis://h/0?max_connections=50")` are the same pool,
//! while a different password or size is a different pool. A closed pool is replaced on the next
//! request. The registry lock is held only for map look-ups, never while connecting.
//!
//! Pools created here, shared or [`dedicated`], also start the metrics endpoint when
//! `REDPOOL_METRICS_ADDR` is set (see [`crate::exporter`]); [`metrics_text`] renders every pool
//! of the process, however it was created.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sync::{HeldLock, Mutex};
use once_cell::sync::Lazy;

use crate::config::Config;
use crate::error::Result;
use crate::exporter;
use crate::fork::{self, ForkGuarded};
use crate::pool::Pool;
use crate::prometheus::{self, PoolMetrics};

struct Registry {
    pools: Mutex<HashMap<Config, Pool>>,
}

impl ForkGuarded for Registry {
    fn lock_for_fork(&self, held: &mut Vec<HeldLock>) {
        // SAFETY: the registry is kept alive by `fork` until the fork is over.
        unsafe {
            held.push(self.pools.hold_across_fork());
        }
    }
}

static REGISTRY: Lazy<Arc<Registry>> = Lazy::new(|| {
    let registry = Arc::new(Registry {
        pools: Mutex::new(HashMap::new()),
    });
    let guarded: Arc<dyn ForkGuarded> = registry.clone();
    fork::guard(Arc::downgrade(&guarded));
    registry
});

/// The process-wide pool for `url` (see [`Config::from_url`]), created on first use.
pub fn shared(url: &str) -> Result<Pool> {
    shared_with(Config::from_url(url)?)
}

/// The process-wide pool configured from the environment (`REDIS_URL`, `REDIS_HOST`, ...; see
/// [`crate::ConfigBuilder::from_env_with`]).
pub fn shared_default() -> Result<Pool> {
    shared_with(Config::from_env()?)
}

/// The process-wide pool for `config`, created on first use.
pub fn shared_with(config: Config) -> Result<Pool> {
    exporter::start_from_env();
    if let Some(pool) = lookup(&config) {
        return Ok(pool);
    }
    // Created (and warmed up) outside the lock; if another thread won the race, use its pool.
    let created = Pool::new(config.clone())?;
    let mut pools = REGISTRY.pools.lock();
    match pools.get(&config) {
        Some(existing) if !existing.is_closed() => {
            let existing = existing.clone();
            drop(pools);
            created.close(std::time::Duration::ZERO);
            Ok(existing)
        }
        _ => {
            pools.insert(config, created.clone());
            Ok(created)
        }
    }
}

fn lookup(config: &Config) -> Option<Pool> {
    let pools = REGISTRY.pools.lock();
    pools.get(config).filter(|p| !p.is_closed()).cloned()
}

/// A pool of its own for `config` (never shared), created as the bindings create pools for their
/// users: like [`shared_with`], it starts the metrics endpoint when `REDPOOL_METRICS_ADDR` is set
/// ([`Pool::new`] alone does not).
pub fn dedicated(config: Config) -> Result<Pool> {
    exporter::start_from_env();
    Pool::new(config)
}

/// Every open pool of the process, oldest first.
pub fn all_pools() -> Vec<Pool> {
    crate::pool::all_pools()
}

/// The metrics of every open pool of the process.
pub fn all_metrics() -> Vec<PoolMetrics> {
    all_pools().iter().map(Pool::metrics).collect()
}

/// The metrics of every open pool of the process in the Prometheus text format.
pub fn metrics_text() -> String {
    prometheus::render(&all_metrics())
}
