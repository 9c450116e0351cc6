//! Where hawkeye keeps its data: per-second aggregates of every series, and
//! the alert state of every trigger.
//!
//! [`Store`] is the one interface; [`RedisStore`] is the production
//! implementation (single node, TLS, Unix socket or cluster) and
//! [`MemoryStore`] keeps everything in the process, for embedding and demos.
//! The key schema of the Redis store is described in [`redis_store`].

pub mod aggregate;
pub mod memory;
pub mod redact;
pub mod redis_store;
pub mod sketch;
pub mod window;

use std::sync::Arc;

use async_trait::async_trait;
use hawkeye_protocol::SeriesKey;

pub use aggregate::{Aggregate, DistributionStats, GaugeStats};
pub use memory::MemoryStore;
pub use redis_store::{RedisConfig, RedisStore};
pub use window::{Aggregation, QueryError, WindowQuery};

/// Everything one server flush writes.
///
/// `(server_id, seq)` names the flush: a store applies a flush to a series at
/// most once, so a flush that failed half-way can be retried whole without
/// counting anything twice. A server numbers its flushes from 1 and retries a
/// failed one before it writes a later one.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub server_id: u64,
    pub seq: u64,
    pub series: Vec<SeriesWrite>,
}

/// One series' aggregates, one per second (unix seconds).
#[derive(Debug, Clone)]
pub struct SeriesWrite {
    pub key: Arc<SeriesKey>,
    pub points: Vec<(i64, Aggregate)>,
}

impl WriteBatch {
    /// How many (series, second) aggregates the batch holds.
    pub fn len(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer; try again later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered with something this code does not understand.
    #[error("unexpected reply from the store: {0}")]
    Protocol(String),
    #[error("invalid store configuration: {0}")]
    Config(String),
}

/// Result of one query of a [`Store::query_many`] call.
pub type QueryOutcome = Result<Option<f64>, QueryError>;

/// The storage interface shared by the server (writes, queries) and the
/// agent (window reads, alert state).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies a flush. Idempotent per `(server_id, seq)` and series.
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError>;

    /// Reads several windows at once (the Redis store pipelines them: two
    /// round trips whatever the number of queries). Each query has its own
    /// outcome: `Ok(None)` means no data in the window.
    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError>;

    /// Reads one window.
    async fn query(&self, query: &WindowQuery) -> Result<QueryOutcome, StoreError> {
        let mut outcomes = self.query_many(std::slice::from_ref(query)).await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Protocol("no outcome for the query".into()))
    }

    /// The alert states stored under `keys` (opaque strings the agent
    /// writes), `None` where there is none.
    async fn alert_states(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError>;

    /// Sets the state of `key` to `new` only if it is still `expected`
    /// (`None`: absent). Returns whether it did. Two agents sharing a store use
    /// this so that only one of them acts on a transition.
    async fn swap_alert_state(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
    ) -> Result<bool, StoreError>;

    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

#[async_trait]
impl<S: Store + ?Sized> Store for Arc<S> {
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        (**self).write(batch).await
    }
    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError> {
        (**self).query_many(queries).await
    }
    async fn alert_states(&self, keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        (**self).alert_states(keys).await
    }
    async fn swap_alert_state(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
    ) -> Result<bool, StoreError> {
        (**self).swap_alert_state(key, expected, new).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        (**self).ping().await
    }
}

/// Opens the store a URL names: `memory://` for the in-memory store, anything
/// else (`redis://`, `rediss://`, `redis+unix://`, a comma list of cluster
/// nodes) for Redis.
pub async fn open(
    url: &str,
    key_prefix: &str,
    retention: std::time::Duration,
) -> Result<Arc<dyn Store>, StoreError> {
    if url.trim() == MEMORY_URL {
        return Ok(Arc::new(MemoryStore::new(retention)));
    }
    let store = RedisStore::connect(RedisConfig {
        url: url.to_string(),
        key_prefix: key_prefix.to_string(),
        retention,
    })
    .await?;
    Ok(Arc::new(store))
}

/// The URL that selects the in-memory store.
pub const MEMORY_URL: &str = "memory://";
