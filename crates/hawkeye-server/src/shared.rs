//! State shared by every task of one running server.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use hawkeye_store::Store;

use crate::aggregator::Aggregator;
use crate::config::ServerConfig;
use crate::flusher::FlushState;
use crate::stats::Stats;

pub(crate) struct Shared {
    pub config: ServerConfig,
    pub store: Arc<dyn Store>,
    pub aggregator: Mutex<Aggregator>,
    pub stats: Stats,
    /// Names this process's flushes in the store (see `WriteBatch`).
    pub server_id: u64,
    /// One flush at a time; holds the batch being written.
    pub flush: tokio::sync::Mutex<FlushState>,
}

impl Shared {
    pub fn new(config: ServerConfig, store: Arc<dyn Store>) -> Shared {
        let aggregator = Aggregator::new(
            config.max_series,
            config.max_buffered,
            config.retention.as_secs() as i64,
        );
        Shared {
            config,
            store,
            aggregator: Mutex::new(aggregator),
            stats: Stats::default(),
            server_id: rand::random::<u64>() >> 1,
            flush: tokio::sync::Mutex::new(FlushState::default()),
        }
    }

    pub fn aggregator(&self) -> MutexGuard<'_, Aggregator> {
        // The aggregator is only mutated by code that cannot panic half-way
        // through an update; keep serving if a panic elsewhere poisoned it.
        self.aggregator.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
