//! The process-wide registry: every caller asking for the same settings shares one pool.
//!
//! Pools are keyed by their whole normalized [`Config`] (address, credentials, db, every knob), so
//! `shared("redis://h:6379/0")` and `shared("redis://h/0?max_connections=50")` are the same pool,
//! while a different password or size is a different pool. A closed pool is replaced on the next
//! request. The registry lock is held only for map look-ups, never while connecting.

use std::collections::HashMap;
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::Mutex;

use crate::config::Config;
use crate::error::Result;
use crate::fork::{self, ForkGuarded};
use crate::pool::Pool;

struct Registry {
    pools: Mutex<HashMap<Config, Pool>>,
}

impl ForkGuarded for Registry {
    fn lock_for_fork(&self) {
        std::mem::forget(self.pools.lock());
    }

    unsafe fn unlock_after_fork(&self) {
        // SAFETY: `lock_for_fork` locked it and forgot the guard, in this same fork.
        unsafe { self.pools.force_unlock() };
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
