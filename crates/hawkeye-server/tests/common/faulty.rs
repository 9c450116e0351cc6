//! The in-memory store (a product feature) with faults a test chooses:
//! one write refused, or every watermark call refused (in a cluster: the
//! master of `{alerts}` down, the metric names' masters up). It records
//! every write attempt.

use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use hawkeye_store::{
    AlertCommit, AlertRead, AlertSnapshot, GroupedOutcome, GroupedQuery, MemoryStore, OutboxEntry,
    QueryOutcome, Settle, Store, StoreError, Watermark, WindowQuery, WriteBatch,
};

/// One call of `write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Write {
    pub seq: u64,
    pub series: usize,
    /// (series, second) aggregates.
    pub aggregates: usize,
    /// Refused by the test's choice.
    pub failed: bool,
}

pub struct FaultyStore {
    pub inner: MemoryStore,
    /// Refuses every watermark call.
    pub refuse_watermarks: AtomicBool,
    /// The number (from 0) of the write call to refuse; `usize::MAX`: none.
    pub fail_write: AtomicUsize,
    writes: AtomicUsize,
    attempts: Mutex<Vec<Write>>,
}

impl Default for FaultyStore {
    fn default() -> Self {
        FaultyStore {
            inner: MemoryStore::default(),
            refuse_watermarks: AtomicBool::new(false),
            fail_write: AtomicUsize::new(usize::MAX),
            writes: AtomicUsize::new(0),
            attempts: Mutex::new(Vec::new()),
        }
    }
}

impl FaultyStore {
    /// Every write attempt so far, in order.
    pub fn attempts(&self) -> Vec<Write> {
        self.attempts.lock().unwrap().clone()
    }

    fn watermark_allowed(&self) -> Result<(), StoreError> {
        if self.refuse_watermarks.load(SeqCst) {
            return Err(StoreError::Unavailable(
                "the watermark's node is down (test)".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, SeqCst);
        let attempt = Write {
            seq: batch.seq,
            series: batch.series.len(),
            aggregates: batch.len(),
            failed: n == self.fail_write.load(SeqCst),
        };
        let failed = attempt.failed;
        self.attempts.lock().unwrap().push(attempt);
        if failed {
            return Err(StoreError::Unavailable("write refused (test)".into()));
        }
        self.inner.write(batch).await
    }
    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError> {
        self.inner.query_many(queries).await
    }
    async fn read_alerts(&self, read: &AlertRead) -> Result<AlertSnapshot, StoreError> {
        self.inner.read_alerts(read).await
    }
    async fn commit_alert(&self, commit: &AlertCommit) -> Result<bool, StoreError> {
        self.inner.commit_alert(commit).await
    }
    async fn claim_outbox(
        &self,
        now_ms: u64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.claim_outbox(now_ms, lease, max).await
    }
    async fn settle_outbox(&self, id: &str, settle: Settle) -> Result<(), StoreError> {
        self.inner.settle_outbox(id, settle).await
    }
    async fn put_silence(&self, id: &str, s: &str, ends_at_ms: u64) -> Result<(), StoreError> {
        self.inner.put_silence(id, s, ends_at_ms).await
    }
    async fn expire_silence(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.expire_silence(id).await
    }
    async fn silences(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        self.inner.silences(now_ms).await
    }
    async fn legacy_alert_states(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.inner.legacy_alert_states(keys).await
    }
    async fn delete_legacy_alert_states(&self, keys: &[String]) -> Result<(), StoreError> {
        self.inner.delete_legacy_alert_states(keys).await
    }
    async fn put_watermark(&self, id: u64, second: i64, life: Duration) -> Result<(), StoreError> {
        self.watermark_allowed()?;
        self.inner.put_watermark(id, second, life).await
    }
    async fn remove_watermark(&self, id: u64) -> Result<(), StoreError> {
        self.watermark_allowed()?;
        self.inner.remove_watermark(id).await
    }
    async fn watermark(&self) -> Result<Option<Watermark>, StoreError> {
        self.watermark_allowed()?;
        self.inner.watermark().await
    }
    async fn query_grouped(
        &self,
        queries: &[GroupedQuery],
    ) -> Result<Vec<GroupedOutcome>, StoreError> {
        self.inner.query_grouped(queries).await
    }
    async fn alert_states(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.alert_states(prefix).await
    }
    async fn append_history(
        &self,
        stream: &str,
        entries: &[String],
        max_len: usize,
    ) -> Result<(), StoreError> {
        self.inner.append_history(stream, entries, max_len).await
    }
    async fn history(&self, stream: &str, since_ms: u64) -> Result<Vec<(u64, String)>, StoreError> {
        self.inner.history(stream, since_ms).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}
