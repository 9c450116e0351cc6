//! What DogStatsD clients send beyond plain statsd, read as DogStatsD reads
//! it: a tag key repeated with several values keeps every tag, and the
//! fields about the sender (`card:`, `e:`, a future one-letter field) are
//! accepted and ignored, not counted as rejected lines.

mod common;

use common::TestServer;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_tag_keys_and_sender_fields_are_read_as_dogstatsd_does() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let r = c
        .call(
            "metric.send",
            json!([
                "dd.hits:1|c|#team:a,team:b",
                "dd.hits:1|c|#team:b,team:a|card:orchestrator",
                "dd.hits:1|c|#team:a|e:it-false,cn-app,pu-4f2c|c:ci-1",
                "dd.hits:1|c|#team:a,team:a|x:future",
            ]),
        )
        .await;
    assert_eq!(r["result"], json!({"accepted": 4, "rejected": []}), "{r}");

    let q = |tags| json!({"metric": "dd.hits", "window": "5m", "tags": tags});
    // Two series: {team:a, team:b} (the first two lines, whatever the
    // order) and {team:a} (a tag written twice is one tag).
    assert_eq!(c.query(q(json!({"team": "a"}))).await, json!(4.0));
    assert_eq!(c.query(q(json!({"team": "b"}))).await, json!(2.0));
    assert_eq!(c.query(q(json!({}))).await, json!(4.0));
    let stats = c.call("server.stats", json!(null)).await;
    assert_eq!(stats["result"]["lines_rejected"], json!(0), "{stats}");
}
