//! State shared by every task of one running server.

use std::sync::{Arc, Mutex, MutexGuard};

use hawkeye_store::{Store, StoreError};

use crate::aggregator::{self, Aggregator};
use crate::config::ServerConfig;
use crate::exporter::Exporter;
use crate::flusher::Flusher;
use crate::registry::Registry;
use crate::reject_log::{Listener, RejectLog};
use crate::server_id;
use crate::stats::Stats;

pub(crate) struct Shared {
    pub config: ServerConfig,
    pub store: Arc<dyn Store>,
    pub aggregator: Mutex<Aggregator>,
    pub stats: Stats,
    pub flusher: Flusher,
    pub registry: Registry,
    /// What `/metrics` shows of the series, when `HAWKEYE_HTTP_ADDR` is set.
    pub exporter: Option<Arc<Exporter>>,
    /// One per [`Listener`], in [`Listener::ALL`]'s order.
    reject_logs: [RejectLog; 4],
}

impl Shared {
    /// `name` is what the server is called in the store (`HAWKEYE_SERVER_ID`).
    pub fn new(config: ServerConfig, store: Arc<dyn Store>, name: &str) -> Shared {
        let aggregator = Aggregator::new(
            config.max_series,
            config.max_buffered,
            config.retention.as_secs() as i64,
        )
        .accepting_timestamps_within(config.rollup_retention.as_secs() as i64);
        let interval = config.reject_log_interval;
        let exporter = config.http_addr.map(|_| {
            Arc::new(Exporter::new(
                config.max_series,
                config.max_buffered,
                config.retention.as_secs() as i64,
            ))
        });
        let flusher = Flusher::new(store.clone(), config.flush_interval, server_id::id_of(name))
            .export_to(exporter.clone());
        Shared {
            exporter,
            reject_logs: Listener::ALL.map(|l| RejectLog::new(l.name(), interval)),
            flusher,
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

    /// Where lines refused on `listener` are logged.
    pub fn reject_log(&self, listener: Listener) -> &RejectLog {
        &self.reject_logs[listener as usize]
    }

    pub fn aggregator(&self) -> MutexGuard<'_, Aggregator> {
        aggregator::lock(&self.aggregator)
    }

    /// Writes everything taken so far to the store.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.flusher.flush(&self.aggregator, &self.stats).await
    }
}
