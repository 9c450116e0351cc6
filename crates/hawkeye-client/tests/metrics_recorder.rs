//! `metrics::counter!` and friends report to hawkeye (feature `metrics`).
#![cfg(feature = "metrics")]

mod common;

use std::time::Duration;

use common::{query, query_value, TestServer};
use hawkeye_client::{Client, ClientConfig, HawkeyeRecorder};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_macros_report_to_hawkeye() {
    let server = TestServer::start().await;
    let client = Client::new(
        ClientConfig::new(server.socket_path()).flush_interval(Duration::from_millis(10)),
    )
    .unwrap();
    let recorder = HawkeyeRecorder::new(client.clone());
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..7 {
            metrics::counter!("rec.jobs", "queue" => "mail").increment(1);
        }
        metrics::gauge!("rec.backlog").set(5.0);
        metrics::gauge!("rec.backlog").increment(2.0);
        for v in [1.0, 2.0, 3.0] {
            metrics::histogram!("rec.size").record(v);
        }
    });
    client.flush().await.expect("flush");

    let socket = server.socket_path();
    let mut by_queue = query("rec.jobs", "sum");
    by_queue.tags = Some([("queue".to_string(), "mail".to_string())].into());
    assert_eq!(query_value(&socket, &by_queue).await, Some(7.0));
    assert_eq!(
        query_value(&socket, &query("rec.backlog", "last")).await,
        Some(7.0)
    );
    assert_eq!(
        query_value(&socket, &query("rec.size", "count")).await,
        Some(3.0)
    );
}

/// `counter!(..).absolute(n)` called again for the same key sends only the
/// difference: the handle (and its last value) is kept per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_counters_are_not_counted_twice() {
    let server = TestServer::start().await;
    let client = Client::new(
        ClientConfig::new(server.socket_path()).flush_interval(Duration::from_millis(10)),
    )
    .unwrap();
    let recorder = HawkeyeRecorder::new(client.clone());
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("rec.total", "k" => "v").absolute(100);
        metrics::counter!("rec.total", "k" => "v").absolute(100);
        metrics::counter!("rec.total", "k" => "v").absolute(150);
        metrics::counter!("rec.total", "k" => "w").absolute(10);
    });
    client.flush().await.expect("flush");
    assert_eq!(
        query_value(&server.socket_path(), &query("rec.total", "sum")).await,
        Some(160.0)
    );
}
