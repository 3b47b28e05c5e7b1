//! redpool: production Redis connection management (pooling, safe reuse, a process-wide registry
//! and stats) in one synchronous Rust core, shipped to C, Python and Node.
//!
//! ```no_run
//! let pool = redpool::shared("redis://127.0.0.1:6379/0?max_connections=20")?;
//! pool.execute(redpool::cmd("SET").arg("greeting").arg("hello"))?;
//! let value = pool.execute(redpool::cmd("GET").arg("greeting"))?;
//! # Ok::<(), redpool::Error>(())
//! ```
//!
//! See `docs/ARCHITECTURE.md` for the map of the modules.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod breaker;
mod clock;
mod command;
pub mod config;
mod connection;
pub mod error;
pub mod events;
pub mod exporter;
#[cfg(feature = "capi")]
pub mod ffi;
mod fork;
pub mod health;
pub mod interrupt;
pub mod leak;
pub mod metrics;
pub mod pool;
pub mod prometheus;
mod random;
pub mod registry;
mod resp;
pub mod retry;
pub mod sizing;
mod sync;
mod tls;
pub mod workers;

pub use breaker::{BreakerConfig, BreakerState};
pub use command::blocking::{BLOCK_FOREVER, blocking_reply_timeout, call_reply_timeout};
pub use command::secrets::secret_arguments;
pub use command::{check_one_shot, is_ordinary_name};
pub use config::{
    Address, Config, ConfigBuilder, HealthThresholds, KeepaliveConfig, ReuseOrder, Secret,
    TlsConfig,
};
pub use error::{Error, ErrorKind, Result};
pub use events::Event;
pub use health::{HealthReport, HealthStatus};
pub use leak::{Holder, LeakReport};
pub use metrics::{CloseReason, PoolStats};
pub use pool::{AcquireOptions, CallOptions, Pool, PooledConnection, Priority};
pub use redis::{Cmd, Value, cmd};
pub use registry::{shared, shared_default, shared_with};
pub use retry::{Backoff, Jitter, RetryConfig};

/// The library version (`CARGO_PKG_VERSION`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
