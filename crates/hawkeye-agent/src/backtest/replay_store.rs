//! The store a backtest's [`crate::Engine`] runs on: metric data is read
//! from the real store, everything the engine writes (alert states, the
//! outbox, the history) goes to a private in-memory store, so a backtest
//! changes nothing an agent or `hawkeye alerts` reads, and sends nothing.
//! What the engine recorded (its mail and history entries) is kept aside
//! for the backtest to report (docs/backtest.md).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hawkeye_store::{
    AlertCommit, AlertRead, AlertSnapshot, GroupedOutcome, GroupedQuery, MemoryStore, OutboxEntry,
    QueryOutcome, RangeOutcome, RangeQuery, Settle, Store, StoreError, Watermark, WindowQuery,
    WriteBatch,
};

/// What the engine recorded since the last [`ReplayStore::take`].
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    /// The outbox entries of the commits (mail and webhook posts, as JSON).
    pub outbox: Vec<OutboxEntry>,
    /// The history entries (JSON, see `engine::history`).
    pub history: Vec<String>,
    /// The last error of a read of the real store.
    pub data_error: Option<String>,
}

pub(crate) struct ReplayStore {
    data: Arc<dyn Store>,
    /// States and the marker. Silences are never written here, so the
    /// replay runs with none.
    private: MemoryStore,
    recorded: Mutex<Recorded>,
}

impl ReplayStore {
    pub(crate) fn new(data: Arc<dyn Store>) -> ReplayStore {
        ReplayStore {
            data,
            // Holds no metric data: the retention does not matter.
            private: MemoryStore::new(Duration::from_secs(1)),
            recorded: Mutex::new(Recorded::default()),
        }
    }

    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What was recorded since the last call.
    pub(crate) fn take(&self) -> Recorded {
        std::mem::take(&mut *self.recorded())
    }

    /// `result`, remembering its error (the backtest stops on it).
    fn data<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            self.recorded().data_error = Some(e.to_string());
        }
        result
    }
}

#[async_trait]
impl Store for ReplayStore {
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        // Never to the real store (the engine writes no metric data anyway).
        self.private.write(batch).await
    }
    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError> {
        self.data(self.data.query_many(queries).await)
    }
    async fn query_grouped(
        &self,
        queries: &[GroupedQuery],
    ) -> Result<Vec<GroupedOutcome>, StoreError> {
        self.data(self.data.query_grouped(queries).await)
    }
    async fn query_range(&self, range: &RangeQuery) -> Result<RangeOutcome, StoreError> {
        self.data(self.data.query_range(range).await)
    }
    async fn watermark(&self) -> Result<Option<Watermark>, StoreError> {
        self.data(self.data.watermark().await)
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.data(self.data.ping().await)
    }
    async fn read_alerts(&self, read: &AlertRead) -> Result<AlertSnapshot, StoreError> {
        self.private.read_alerts(read).await
    }
    async fn commit_alert(&self, commit: &AlertCommit) -> Result<bool, StoreError> {
        // The mail is kept aside rather than queued: nobody delivers it, and
        // the private store's memory stays that of the states.
        let mut state_only = commit.clone();
        let outbox = std::mem::take(&mut state_only.outbox);
        let applied = self.private.commit_alert(&state_only).await?;
        if applied {
            self.recorded().outbox.extend(outbox);
        }
        Ok(applied)
    }
    async fn claim_outbox(
        &self,
        now_ms: u64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.private.claim_outbox(now_ms, lease, max).await
    }
    async fn settle_outbox(&self, id: &str, settle: Settle) -> Result<(), StoreError> {
        self.private.settle_outbox(id, settle).await
    }
    async fn put_silence(
        &self,
        id: &str,
        silence: &str,
        ends_at_ms: u64,
    ) -> Result<(), StoreError> {
        self.private.put_silence(id, silence, ends_at_ms).await
    }
    async fn expire_silence(&self, id: &str) -> Result<bool, StoreError> {
        self.private.expire_silence(id).await
    }
    async fn silences(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        self.private.silences(now_ms).await
    }
    async fn legacy_alert_states(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.private.legacy_alert_states(keys).await
    }
    async fn delete_legacy_alert_states(&self, keys: &[String]) -> Result<(), StoreError> {
        self.private.delete_legacy_alert_states(keys).await
    }
    async fn alert_states(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.private.alert_states(prefix).await
    }
    async fn append_history(
        &self,
        _stream: &str,
        entries: &[String],
        _max_len: usize,
    ) -> Result<(), StoreError> {
        // Kept whole (a stream would keep only the latest entries).
        self.recorded().history.extend_from_slice(entries);
        Ok(())
    }
    async fn history(&self, stream: &str, since_ms: u64) -> Result<Vec<(u64, String)>, StoreError> {
        self.private.history(stream, since_ms).await
    }
}
