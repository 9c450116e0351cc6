//! `metric.range` through the real server binary, on a real Redis and on
//! the in-memory store: points per aligned step, gaps where a step has no
//! data, the same values `metric.query` reads over each step, and every bad
//! param refused with a clear error.

mod common;

use common::process::ServerProcess;
use common::{error_code, Client};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends counter and distribution lines stamped in two minutes that are
/// whole and past (`m0` and `m0 + 120`), none in the minute between; the
/// minute starts of the three.
async fn send_history(c: &mut Client) -> i64 {
    // Three whole minutes back, so that no step is still being written.
    let m0 = (now() / 60 - 4) * 60;
    let mut lines = Vec::new();
    for minute in [m0, m0 + 120] {
        for s in 0..60 {
            lines.push(format!("range.hits:2|c|#route:/a|T{}", minute + s));
            lines.push(format!("range.hits:1|c|#route:/b|T{}", minute + s));
            lines.push(format!("range.ms:{}|ms|T{}", 10 + s, minute + s));
        }
    }
    let r = c.call("metric.send", json!(lines)).await;
    assert_eq!(r["result"]["accepted"], json!(lines.len()), "{r}");
    m0
}

async fn range(c: &mut Client, params: Value) -> Value {
    let r = c.call("metric.range", params).await;
    assert!(r.get("error").is_none(), "range failed: {r}");
    r["result"].clone()
}

async fn steps_gaps_and_values(server: &ServerProcess) {
    let mut c = Client::connect(&server.socket()).await;
    let m0 = send_history(&mut c).await;
    let r = range(
        &mut c,
        json!({"metric": "range.hits", "window": "10m", "step": "1m"}),
    )
    .await;
    assert_eq!(r["step_secs"], json!(60), "{r}");
    assert_eq!(r["points"], json!([[m0, 180.0], [m0 + 120, 180.0]]), "{r}");
    let r = range(
        &mut c,
        json!({"metric": "range.hits", "window": "10m", "step": 60, "agg": "rate", "tags": {"route": "/b"}}),
    )
    .await;
    assert_eq!(r["points"], json!([[m0, 1.0], [m0 + 120, 1.0]]), "{r}");
    // 30-second steps: four points, each half of a minute.
    let r = range(
        &mut c,
        json!({"metric": "range.hits", "window": "10m", "step": "30s", "type": "c"}),
    )
    .await;
    let want: Vec<Value> = [m0, m0 + 30, m0 + 120, m0 + 150]
        .iter()
        .map(|t| json!([t, 90.0]))
        .collect();
    assert_eq!(r["points"], json!(want), "{r}");
    // A percentile per step is the one metric.query reads over that step.
    let r = range(
        &mut c,
        json!({"metric": "range.ms", "window": "10m", "step": "1m", "agg": "p50"}),
    )
    .await;
    let points = r["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{r}");
    // Without a step, about 60 points: 10 s steps for 10 minutes.
    let r = range(&mut c, json!({"metric": "range.hits", "window": "10m"})).await;
    assert_eq!(r["step_secs"], json!(10), "{r}");
    assert_eq!(r["points"].as_array().unwrap().len(), 12, "{r}");
    let r = range(&mut c, json!({"metric": "range.none", "window": "10m"})).await;
    assert_eq!(r["points"], json!([]), "{r}");
}

async fn bad_params_are_refused(server: &ServerProcess) {
    let mut c = Client::connect(&server.socket()).await;
    let refused = |params: Value, says: &'static str| {
        let socket = server.socket();
        async move {
            let mut c = Client::connect(&socket).await;
            let r = c.call("metric.range", params.clone()).await;
            assert_eq!(error_code(&r), code::INVALID_PARAMS, "{params}: {r}");
            let message = r["error"]["message"].as_str().unwrap().to_string();
            assert!(message.contains(says), "{params}: {message}");
        }
    };
    refused(
        json!({"metric": "x", "window": "1h", "step": 0}),
        "step: must be at least 1s",
    )
    .await;
    refused(
        json!({"metric": "x", "window": "1h", "step": "soon"}),
        "step:",
    )
    .await;
    refused(
        json!({"metric": "x", "window": "1h", "step": "100ms"}),
        "step: must be at least 1s",
    )
    .await;
    refused(
        json!({"metric": "x", "window": "40d", "step": "1h"}),
        "must be between 1s and the rollup retention",
    )
    .await;
    refused(
        json!({"metric": "x", "window": "1h", "step": "100ms", "extra": 1}),
        "unknown field",
    )
    .await;
    refused(json!({"metric": "x"}), "window").await;
    refused(
        json!({"metric": "x", "window": "1h", "agg": "median"}),
        "median",
    )
    .await;
    refused(json!({"metric": "no spaces", "window": "1h"}), "name").await;
    refused(
        json!({"metric": "range.hits", "window": "1h", "agg": "p95", "type": "c"}),
        "does not apply",
    )
    .await;
    // The server is still there.
    c.ping().await;
}

fn long_retention() -> [(&'static str, &'static str); 1] {
    [("HAWKEYE_RETENTION", "24h")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_on_redis() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis, &[]);
    steps_gaps_and_values(&server).await;
    bad_params_are_refused(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_on_the_in_memory_store() {
    let server = ServerProcess::start_with_url("memory://", &[]);
    steps_gaps_and_values(&server).await;
    bad_params_are_refused(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_points_names_the_step_that_fits() {
    let server = ServerProcess::start_with_url("memory://", &long_retention());
    let mut c = Client::connect(&server.socket()).await;
    let r = c
        .call(
            "metric.range",
            json!({"metric": "x", "window": "24h", "step": "1s"}),
        )
        .await;
    assert_eq!(error_code(&r), code::INVALID_PARAMS, "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("more than the 11000 points"), "{message}");
    let step: u64 = message
        .rsplit("use a step of at least ")
        .next()
        .and_then(|s| s.trim_end_matches('s').parse().ok())
        .unwrap_or_else(|| panic!("no step in {message}"));
    let r = range(
        &mut c,
        json!({"metric": "x", "window": "24h", "step": step}),
    )
    .await;
    assert_eq!(r["step_secs"], json!(step), "{r}");
    let r = c
        .call(
            "metric.range",
            json!({"metric": "x", "window": "24h", "step": step - 1}),
        )
        .await;
    assert_eq!(error_code(&r), code::INVALID_PARAMS, "{r}");
}
