//! The server's watermark (docs/cluster.md, "Watermark") on a store that
//! takes data but refuses the watermark (in a cluster: the master of
//! `{alerts}` down, the metric names' masters up): nothing answered is
//! lost, queries answer, the failures are counted, and shutdown does not
//! wait for the watermark.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::Client;
use hawkeye_server::ServerConfig;
use hawkeye_store::{
    AlertCommit, AlertRead, AlertSnapshot, GroupedOutcome, GroupedQuery, MemoryStore, OutboxEntry,
    QueryOutcome, Settle, Store, StoreError, Watermark, WindowQuery, WriteBatch,
};
use serde_json::json;

/// The in-memory store, with every watermark call refused.
#[derive(Default)]
struct NoWatermark(MemoryStore);

fn refused() -> StoreError {
    StoreError::Unavailable("the watermark's node is down (test)".into())
}

#[async_trait]
impl Store for NoWatermark {
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.0.write(batch).await
    }
    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError> {
        self.0.query_many(queries).await
    }
    async fn read_alerts(&self, read: &AlertRead) -> Result<AlertSnapshot, StoreError> {
        self.0.read_alerts(read).await
    }
    async fn commit_alert(&self, commit: &AlertCommit) -> Result<bool, StoreError> {
        self.0.commit_alert(commit).await
    }
    async fn claim_outbox(
        &self,
        now_ms: u64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.0.claim_outbox(now_ms, lease, max).await
    }
    async fn settle_outbox(&self, id: &str, settle: Settle) -> Result<(), StoreError> {
        self.0.settle_outbox(id, settle).await
    }
    async fn put_silence(&self, id: &str, s: &str, ends_at_ms: u64) -> Result<(), StoreError> {
        self.0.put_silence(id, s, ends_at_ms).await
    }
    async fn expire_silence(&self, id: &str) -> Result<bool, StoreError> {
        self.0.expire_silence(id).await
    }
    async fn silences(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        self.0.silences(now_ms).await
    }
    async fn legacy_alert_states(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.0.legacy_alert_states(keys).await
    }
    async fn delete_legacy_alert_states(&self, keys: &[String]) -> Result<(), StoreError> {
        self.0.delete_legacy_alert_states(keys).await
    }
    async fn put_watermark(&self, _: u64, _: i64, _: Duration) -> Result<(), StoreError> {
        Err(refused())
    }
    async fn remove_watermark(&self, _: u64) -> Result<(), StoreError> {
        Err(refused())
    }
    async fn watermark(&self) -> Result<Option<Watermark>, StoreError> {
        Err(refused())
    }
    async fn query_grouped(
        &self,
        queries: &[GroupedQuery],
    ) -> Result<Vec<GroupedOutcome>, StoreError> {
        self.0.query_grouped(queries).await
    }
    async fn alert_states(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.0.alert_states(prefix).await
    }
    async fn append_history(
        &self,
        stream: &str,
        entries: &[String],
        max_len: usize,
    ) -> Result<(), StoreError> {
        self.0.append_history(stream, entries, max_len).await
    }
    async fn history(&self, stream: &str, since_ms: u64) -> Result<Vec<(u64, String)>, StoreError> {
        self.0.history(stream, since_ms).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.0.ping().await
    }
}

#[tokio::test]
async fn a_refused_watermark_loses_nothing_and_holds_nothing_up() {
    let store = Arc::new(NoWatermark::default());
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        socket_path: dir.path().join("hawkeye.sock"),
        flush_interval: Duration::from_millis(20),
        // A shutdown that waited for the watermark would take this long.
        shutdown_timeout: Duration::from_secs(3600),
        ..ServerConfig::default()
    };
    let server = hawkeye_server::start(config, store.clone()).await.unwrap();
    let mut client = Client::connect(server.socket_path()).await;
    let lines: Vec<String> = (0..10).map(|_| "w:1|c".to_string()).collect();
    let r = client.call("metric.send", json!(lines)).await;
    assert_eq!(r["result"]["rejected"], json!([]), "{r}");
    // A query flushes the server's data and answers, watermark or not.
    let value = client.query(json!({"metric": "w", "window": 60})).await;
    assert_eq!(value, json!(10.0));
    // The flush task tried the watermark: counted as a store error.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while server.stats().store_errors == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no watermark tried");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = client.call("metric.send", json!(["w:5|c"])).await;
    assert_eq!(r["result"]["rejected"], json!([]), "{r}");
    drop(client);
    // Shutdown writes the data and gives up the watermark at once (the
    // bound is a hang detector, far below the shutdown timeout).
    tokio::time::timeout(Duration::from_secs(60), server.shutdown())
        .await
        .expect("shutdown waited for the watermark")
        .expect("no answered event lost");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let total = store
        .query(&WindowQuery::new("w", 600, now + 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(total, Some(15.0));
}
