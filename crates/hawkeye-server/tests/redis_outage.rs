//! Redis stopped and restarted under load: nothing answered is lost while it
//! fits in the buffer, and what does not fit is refused and counted.

mod common;

use std::time::Duration;

use common::{error_code, TestServer};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};

/// Polls `server.stats` until `done` holds (the server has no other signal
/// for "a flush failed" or "the buffer drained").
async fn wait_for_stats(c: &mut common::Client, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..3000 {
        let stats = c.call("server.stats", json!(null)).await["result"].clone();
        if done(&stats) {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("server stats never reached the expected state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_under_load_loses_nothing_within_the_buffer() {
    let mut server = TestServer::start_with(RedisServer::start_persistent(), |_| {}).await;
    let mut c = server.client().await;
    let lines = |n: usize| json!(vec!["outage.events:1|c"; n]);
    let mut answered = 0u64;
    for _ in 0..100 {
        let r = c.call("metric.send", lines(50)).await;
        answered += r["result"]["accepted"].as_u64().unwrap();
    }
    server.redis.stop();
    // Keep sending while Redis is down: the server answers and buffers.
    for _ in 0..200 {
        let r = c.call("metric.send", lines(50)).await;
        answered += r["result"]["accepted"].as_u64().unwrap();
        c.call("metric.send", json!(["outage.gauge:+1|g"])).await;
    }
    let stats = wait_for_stats(&mut c, |s| s["store_errors"].as_u64().unwrap() > 0).await;
    assert!(stats["buffered"].as_u64().unwrap() > 0, "{stats}");
    // A query needs the store: it says so instead of answering from half the data.
    let r = c
        .call(
            "metric.query",
            json!({"metric": "outage.events", "window": "5m"}),
        )
        .await;
    assert_eq!(error_code(&r), code::STORE_UNAVAILABLE);

    server.redis.restart();
    wait_for_stats(&mut c, |s| s["buffered"].as_u64() == Some(0)).await;
    assert_eq!(answered, 300 * 50);
    assert_eq!(
        c.query(json!({"metric": "outage.events", "window": "5m"}))
            .await,
        json!(answered as f64)
    );
    assert_eq!(
        c.query(json!({"metric": "outage.gauge", "window": "5m"}))
            .await,
        json!(200.0)
    );
    let stats = c.call("server.stats", json!(null)).await["result"].clone();
    assert_eq!(stats["dropped"], json!(0), "{stats}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_buffer_events_are_refused_and_counted() {
    let server = TestServer::start_with(RedisServer::start(), |c| c.max_buffered = 5).await;
    let mut c = server.client().await;
    let mut redis = server.redis;
    redis.stop();
    // Ten new series while Redis is down: five fit, five are refused.
    let mut refused = 0;
    for i in 0..10 {
        let r = c
            .call("metric.send", json!([format!("full.{i}:1|c")]))
            .await;
        if r.get("error").is_some() {
            assert_eq!(error_code(&r), code::BUFFER_FULL, "{r}");
            refused += 1;
        }
    }
    assert_eq!(refused, 5);
    // An event for an aggregate already buffered still fits: it costs no memory.
    let r = c.call("metric.send", json!(["full.0:1|c"])).await;
    assert_eq!(r["result"]["accepted"], json!(1), "{r}");
    let stats = c.call("server.stats", json!(null)).await["result"].clone();
    assert_eq!(stats["dropped"], json!(5), "{stats}");
    redis.restart();
}
