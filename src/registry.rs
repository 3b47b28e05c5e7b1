//! The process-wide registry: every caller asking for the same settings shares one pool.
//!
//! Pools are keyed by their whole normalized [`Config`] (address, credentials, db, every knob), so
//! `shared("redis://h:6379/0")` and `shared("redis://h/0?max_connections=50")` are the same pool,
//! while a different password or size is a different pool. A closed pool is replaced on the next
//! request. The registry lock is held only for map look-ups, never while connecting.
//!
//! It also keeps a weak list of every pool of the process (shared or not), for
//! [`metrics_text`]: a service gets the metrics of all its pools with no code of its own.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sync::Mutex;
use once_cell::sync::Lazy;

use crate::config::Config;
use crate::error::Result;
use crate::fork::{self, ForkGuarded};
use crate::metrics::prometheus::{self, PoolMetrics};
use crate::pool::{Pool, WeakPool};

struct Registry {
    pools: Mutex<HashMap<Config, Pool>>,
    /// Every pool created in this process, oldest first (dead ones pruned as they are found).
    live: Mutex<Vec<WeakPool>>,
}

impl ForkGuarded for Registry {
    fn lock_for_fork(&self) {
        // SAFETY: the registry is kept alive by `fork` until the fork is over.
        unsafe {
            self.pools.hold_across_fork();
            self.live.hold_across_fork();
        }
    }
}

static REGISTRY: Lazy<Arc<Registry>> = Lazy::new(|| {
    let registry = Arc::new(Registry {
        pools: Mutex::new(HashMap::new()),
        live: Mutex::new(Vec::new()),
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

/// Adds a new pool to the process-wide list (called by `Pool::new`).
pub(crate) fn track(pool: &Pool) {
    let mut live = REGISTRY.live.lock();
    live.retain(|weak| weak.upgrade().is_some_and(|p| !p.is_closed()));
    live.push(pool.downgrade());
}

/// Every open pool of the process, oldest first.
pub fn all_pools() -> Vec<Pool> {
    let live = REGISTRY.live.lock();
    live.iter()
        .filter_map(WeakPool::upgrade)
        .filter(|p| !p.is_closed())
        .collect()
}

/// The metrics of every open pool of the process.
pub fn all_metrics() -> Vec<PoolMetrics> {
    all_pools().iter().map(Pool::metrics).collect()
}

/// The metrics of every open pool of the process in the Prometheus text format.
pub fn metrics_text() -> String {
    prometheus::render(&all_metrics())
}
