//! The server's watermark (docs/cluster.md, "Watermark") on a store that
//! takes data but refuses the watermark (in a cluster: the master of
//! `{alerts}` down, the metric names' masters up): nothing answered is
//! lost, queries answer, the failures are counted, and shutdown does not
//! wait for the watermark.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use common::faulty::FaultyStore;
use common::Client;
use hawkeye_server::ServerConfig;
use hawkeye_store::{Store, WindowQuery};
use serde_json::json;

#[tokio::test]
async fn a_refused_watermark_loses_nothing_and_holds_nothing_up() {
    let store = Arc::new(FaultyStore::default());
    store.refuse_watermarks.store(true, SeqCst);
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
