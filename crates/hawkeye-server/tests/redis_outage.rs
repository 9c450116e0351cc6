//! Redis stopped and restarted under load: nothing answered is lost while it
//! fits in the buffer, and what does not fit is refused and counted.

mod common;

use common::{error_code, TestServer};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::json;

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
    let stats = c
        .stats_when(|s| s["store_errors"].as_u64().unwrap() > 0)
        .await;
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
    c.stats_when(|s| s["buffered"].as_u64() == Some(0)).await;
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

/// Seconds pinned with `|T`, so that no test depends on the clock.
fn pinned() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 10
}

/// Stops Redis and waits until a flush has failed: from then on the batch in
/// flight is retried alone and everything newer waits in memory.
async fn outage(server: &mut TestServer, c: &mut common::Client) {
    let r = c.call("metric.send", json!(["warm.up:1|c"])).await;
    assert_eq!(r["result"]["accepted"], json!(1), "{r}");
    server.redis.stop();
    c.stats_when(|s| s["store_errors"].as_u64().unwrap() > 0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_buffer_events_are_refused_and_counted() {
    let mut server = TestServer::start_with(RedisServer::start(), |c| c.max_buffered = 6).await;
    let mut c = server.client().await;
    outage(&mut server, &mut c).await;
    let buffered = c.call("server.stats", json!(null)).await["result"]["buffered"]
        .as_u64()
        .unwrap();
    let room = 6 - buffered;
    // Ten new series while Redis is down: those that fit are taken, the rest refused.
    let t = pinned();
    let mut refused = 0;
    for i in 0..10 {
        let r = c
            .call("metric.send", json!([format!("full.{i}:1|c|T{t}")]))
            .await;
        if r.get("error").is_some() {
            assert_eq!(error_code(&r), code::BUFFER_FULL, "{r}");
            refused += 1;
        }
    }
    assert_eq!(refused, 10 - room);
    // A counter event for an aggregate already buffered still fits: it costs no memory.
    let r = c
        .call("metric.send", json!([format!("full.0:1|c|T{t}")]))
        .await;
    assert_eq!(r["result"]["accepted"], json!(1), "{r}");
    let stats = c.call("server.stats", json!(null)).await["result"].clone();
    assert_eq!(stats["dropped"], json!(10 - room), "{stats}");
    server.redis.restart();
    c.stats_when(|s| s["buffered"].as_u64() == Some(0)).await;
    assert_eq!(
        c.query(json!({"metric": "full.0", "window": "5m"})).await,
        json!(2.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_members_count_against_the_buffer() {
    let mut server = TestServer::start_with(RedisServer::start(), |c| c.max_buffered = 50).await;
    let mut c = server.client().await;
    outage(&mut server, &mut c).await;
    // One set, one second: each new member takes memory, so the bound
    // refuses members, not just new aggregates.
    let t = pinned();
    let mut taken = 0;
    for i in 0..200 {
        let r = c
            .call("metric.send", json!([format!("users:u{i}|s|T{t}")]))
            .await;
        if r.get("error").is_some() {
            assert_eq!(error_code(&r), code::BUFFER_FULL, "{r}");
        } else {
            taken += 1;
        }
    }
    assert!(taken < 50, "{taken} members taken past a bound of 50");
    let stats = c.call("server.stats", json!(null)).await["result"].clone();
    assert!(stats["buffered"].as_u64().unwrap() <= 50, "{stats}");
    server.redis.restart();
    c.stats_when(|s| s["buffered"].as_u64() == Some(0)).await;
    assert_eq!(
        c.query(json!({"metric": "users", "window": "5m"})).await,
        json!(taken as f64)
    );
}
