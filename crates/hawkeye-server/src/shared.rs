//! State shared by every task of one running server.

use std::sync::{Arc, Mutex, MutexGuard};

use hawkeye_store::{Store, StoreError};

use crate::aggregator::{self, Aggregator};
use crate::config::ServerConfig;
use crate::flusher::Flusher;
use crate::registry::Registry;
use crate::server_id;
use crate::stats::Stats;

pub(crate) struct Shared {
    pub config: ServerConfig,
    pub store: Arc<dyn Store>,
    pub aggregator: Mutex<Aggregator>,
    pub stats: Stats,
    pub flusher: Flusher,
    pub registry: Registry,
}

impl Shared {
    /// `name` is what the server is called in the store (`HAWKEYE_SERVER_ID`).
    pub fn new(config: ServerConfig, store: Arc<dyn Store>, name: &str) -> Shared {
        let aggregator = Aggregator::new(
            config.max_series,
            config.max_buffered,
            config.retention.as_secs() as i64,
        );
        Shared {
            flusher: Flusher::new(store.clone(), config.flush_interval, server_id::id_of(name)),
            registry: Registry::new(
                config.max_connections,
                config.max_pending_bytes,
                config.evict_idle_after,
            ),
            config,
            store,
            aggregator: Mutex::new(aggregator),
            stats: Stats::default(),
        }
    }

    pub fn aggregator(&self) -> MutexGuard<'_, Aggregator> {
        aggregator::lock(&self.aggregator)
    }

    /// Writes everything taken so far to the store.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.flusher.flush(&self.aggregator, &self.stats).await
    }
}
