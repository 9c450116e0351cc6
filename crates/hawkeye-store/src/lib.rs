//! Where hawkeye keeps its data: per-second aggregates of every series, and
//! the alert state of every trigger.
//!
//! [`Store`] is the one interface; [`RedisStore`] is the production
//! implementation (single node, TLS, Unix socket or cluster) and
//! [`MemoryStore`] keeps everything in the process, for embedding and demos.
//! The key schema of the Redis store is described in docs/storage.md.

pub mod aggregate;
pub mod alerts;
pub mod batch;
pub mod error;
pub mod grouped;
pub mod memory;
mod memory_alerts;
pub mod range;
pub mod redact;
pub mod redis_store;
mod rollup_codec;
pub mod sketch;
mod staleness;
pub mod store;
pub mod tiers;
pub mod window;

use std::sync::Arc;

pub use aggregate::{Aggregate, DistributionStats, GaugeStats};
pub use alerts::{AlertCommit, AlertRead, AlertSnapshot, OutboxEntry, Settle};
pub use batch::{SeriesWrite, WriteBatch};
pub use error::StoreError;
pub use grouped::{GroupValue, GroupedOutcome, GroupedQuery};
pub use memory::MemoryStore;
pub use range::{RangeOutcome, RangePoints, RangeQuery, MAX_RANGE_POINTS};
pub use redis_store::{check_rollup_retention, RedisConfig, RedisStore};
pub use store::{Compaction, Store, Watermark};
pub use tiers::DEFAULT_ROLLUP_RETENTION;
pub use window::{Aggregation, QueryError, QueryOutcome, WindowQuery};

/// Opens the store `config.url` names: `memory://` for the in-memory store,
/// anything else (`redis://`, `rediss://`, `redis+unix://`, one cluster node
/// or a comma list of them) for Redis. Connects nothing yet.
pub async fn open(config: RedisConfig) -> Result<Arc<dyn Store>, StoreError> {
    if config.url.trim() == MEMORY_URL {
        check_rollup_retention(config.retention, config.rollup_retention)?;
        return Ok(Arc::new(MemoryStore::with_rollup_retention(
            config.retention,
            config.rollup_retention,
        )));
    }
    Ok(Arc::new(RedisStore::new(config)?))
}

/// [`open`] with `REDIS_TIMEOUT`, `HAWKEYE_SHARDS_PER_NAME`,
/// `HAWKEYE_INDEX_CACHE` and `HAWKEYE_ROLLUP_RETENTION` read from the
/// environment (see [`RedisConfig::with_env`]); the in-memory store takes
/// only `HAWKEYE_ROLLUP_RETENTION`.
pub async fn open_with_env(
    url: &str,
    key_prefix: &str,
    retention: std::time::Duration,
) -> Result<Arc<dyn Store>, StoreError> {
    let config = RedisConfig::new(url, key_prefix, retention);
    if url.trim() == MEMORY_URL {
        return open(config.with_rollup_vars(|name| std::env::var(name).ok())?).await;
    }
    open(config.with_env()?).await
}

/// The URL that selects the in-memory store.
pub const MEMORY_URL: &str = "memory://";
