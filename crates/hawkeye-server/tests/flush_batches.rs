//! A flush of more series than one batch takes (aggregator/cut.rs): it goes
//! to the store in several batches, each numbered above the last; a batch
//! the store refuses is written again with its number before anything
//! newer, and every event is counted once.

mod common;

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use common::faulty::FaultyStore;
use common::Client;
use hawkeye_server::ServerConfig;
use serde_json::json;

const SERIES: usize = 25_000;

#[tokio::test]
async fn a_large_flush_goes_in_batches_and_a_refused_one_is_written_again() {
    let store = Arc::new(FaultyStore::default());
    // The second batch of the first flush.
    store.fail_write.store(1, SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        socket_path: dir.path().join("hawkeye.sock"),
        // Only queries flush: the test knows which write is which.
        flush_interval: Duration::from_secs(3600),
        max_series: SERIES,
        ..ServerConfig::default()
    };
    let server = hawkeye_server::start(config, store.clone()).await.unwrap();
    let mut client = Client::connect(server.socket_path()).await;
    for chunk in 0..SERIES / 1000 {
        let lines: Vec<String> = (0..1000)
            .map(|i| format!("big:1|c|#id:{}", chunk * 1000 + i))
            .collect();
        let r = client.call("metric.send", json!(lines)).await;
        assert_eq!(r["result"]["rejected"], json!([]), "{r}");
    }
    let query = json!({"metric": "big", "window": 600, "agg": "sum"});
    let r = client.call("metric.query", query.clone()).await;
    assert!(r["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("write refused (test)")));
    assert_eq!(server.stats().store_errors, 1);
    // The next flush writes the refused batch, then the rest.
    assert_eq!(client.query(query).await, json!(SERIES as f64));
    let attempts = store.attempts();
    assert!(attempts.len() >= 4, "{attempts:?}");
    assert!(attempts[1].failed);
    assert_eq!(attempts[2].seq, attempts[1].seq, "written again as it was");
    assert_eq!(attempts[2].series, attempts[1].series);
    for pair in attempts[2..].windows(2) {
        assert!(pair[1].seq > pair[0].seq, "{attempts:?}");
    }
    for a in &attempts {
        assert!(a.aggregates <= 10_000, "{attempts:?}");
    }
    let written: usize = attempts
        .iter()
        .filter(|a| !a.failed)
        .map(|a| a.series)
        .sum();
    assert_eq!(written, SERIES, "each series once");
    assert_eq!(server.stats().buffered, 0);
    drop(client);
    server.shutdown().await.expect("nothing lost");
}
