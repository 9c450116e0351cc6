//! Backfill through the real server binary (docs/protocol.md, "Timestamps";
//! docs/storage.md, "Tiers"): two days of one point a minute, sent as `|T`
//! lines, read back exactly over a 2-day window and over the last hour, on
//! a real Redis and on the in-memory store; a timestamp older than the
//! rollup retention is refused with a clear error; on Redis, the server's
//! own compaction packs the closed hours and the reads stay exact.

mod common;

use common::process::ServerProcess;
use common::{error_code, Client};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};

/// Points sent: one a minute for two days.
const POINTS: i64 = 2 * 1440;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends point `i` (0 the oldest) at the first second of minute
/// `newest - (POINTS - 1 - i)`: a counter of 1, a gauge of `i` and a
/// timing of `i + 1` ms. Returns the newest minute (the current one).
async fn send_two_days(c: &mut Client) -> i64 {
    let newest = now() / 60;
    let lines: Vec<String> = (0..POINTS)
        .flat_map(|i| {
            let t = (newest - (POINTS - 1 - i)) * 60;
            [
                format!("bf.hits:1|c|#host:a|T{t}"),
                format!("bf.level:{i}|g|T{t}"),
                format!("bf.ms:{}|ms|T{t}", i + 1),
            ]
        })
        .collect();
    for chunk in lines.chunks(900) {
        let r = c.call("metric.send", json!(chunk)).await;
        assert_eq!(r["result"]["accepted"], json!(chunk.len()), "{r}");
    }
    newest
}

/// `metric.query` of `params`, with the minute it was read in; read again
/// if a minute boundary passed while it was read, so that the expected
/// value is known exactly.
async fn query_in_minute(c: &mut Client, params: Value) -> (Value, i64) {
    loop {
        let before = now() / 60;
        let value = c.query(params.clone()).await;
        if now() / 60 == before {
            return (value, before);
        }
    }
}

async fn two_days_read_back_exactly(server: &ServerProcess) -> i64 {
    let mut c = Client::connect(&server.socket()).await;
    let newest = send_two_days(&mut c).await;
    reads_are_exact(&mut c, newest).await;
    newest
}

/// The reads of the two days sent up to minute `newest`.
async fn reads_are_exact(c: &mut Client, newest: i64) {
    // A 2-day window ending in minute M reads minutes M - 2879 ..= M: the
    // point of the current minute from the per-second tier, the others
    // from the rollups. Every point is in unless the minute moved on.
    let (hits, minute) = query_in_minute(c, json!({"metric": "bf.hits", "window": "2d"})).await;
    let late = minute - newest;
    assert_eq!(hits, json!((POINTS - late) as f64));
    let (max, _) = query_in_minute(
        c,
        json!({"metric": "bf.level", "window": "2d", "agg": "max"}),
    )
    .await;
    assert_eq!(max, json!((POINTS - 1) as f64));
    let (count, minute) = query_in_minute(
        c,
        json!({"metric": "bf.ms", "window": "48h", "agg": "count"}),
    )
    .await;
    assert_eq!(count, json!((POINTS - (minute - newest)) as f64));
    // The last hour: 60 points (one fewer per minute since the send), from
    // the per-second tier.
    let (hits, minute) = query_in_minute(c, json!({"metric": "bf.hits", "window": "1h"})).await;
    assert_eq!(hits, json!((60 - (minute - newest)) as f64));
    let (min, minute) = query_in_minute(
        c,
        json!({"metric": "bf.level", "window": "1h", "agg": "min"}),
    )
    .await;
    assert_eq!(min, json!((POINTS - 60 + (minute - newest)) as f64));
    // A range over the two days: every point once, each whole hour 60.
    let r = c
        .call(
            "metric.range",
            json!({"metric": "bf.hits", "window": "2d", "step": "1h"}),
        )
        .await;
    let points = r["result"]["points"].as_array().expect("points").clone();
    let total: f64 = points.iter().map(|p| p[1].as_f64().unwrap()).sum();
    assert_eq!(total, POINTS as f64, "no minute twice, none missed");
    for p in &points[1..points.len() - 1] {
        assert_eq!(p[1], json!(60.0), "{p}");
    }
}

/// `|T` older than the rollup retention is refused, and says why; a week
/// is beyond a 3-day rollup retention, and so is a 4-day window.
async fn too_old_is_refused(server: &ServerProcess) {
    let mut c = Client::connect(&server.socket()).await;
    let t = now() - 4 * 86_400;
    let r = c
        .call("metric.send", json!([format!("old:1|c|T{t}")]))
        .await;
    assert_eq!(error_code(&r), code::INVALID_PARAMS, "{r}");
    let message = r["error"]["message"].as_str().unwrap();
    assert!(message.contains("HAWKEYE_ROLLUP_RETENTION"), "{message}");
    let r = c
        .call("metric.query", json!({"metric": "old", "window": "4d"}))
        .await;
    assert_eq!(error_code(&r), code::INVALID_PARAMS, "{r}");
    let t = now() - 2 * 86_400;
    let r = c
        .call("metric.send", json!([format!("old:1|c|T{t}")]))
        .await;
    assert_eq!(r["result"]["accepted"], json!(1), "{r}");
    assert_eq!(
        c.query(json!({"metric": "old", "window": "3d"})).await,
        json!(1.0)
    );
}

const ROLLUPS: [(&str, &str); 1] = [("HAWKEYE_ROLLUP_RETENTION", "3d")];

/// The hour hashes of `bf.hits` (`P:{bf.hits}:c:h<hour>:host:a`) of hours
/// closed for the compaction's grace, and its day strings.
fn hits_rollup_keys(redis: &RedisServer) -> (usize, usize) {
    let closed_before = (now() - hawkeye_store::redis_store::COMPACTION_GRACE_SECS) / 3600;
    let keys = redis.cli(&["--scan", "--pattern", "hawkeye:{bf.hits}:c:[hd]*"]);
    let hours = keys
        .lines()
        .filter_map(|k| k.split(":c:h").nth(1))
        .filter_map(|rest| rest.split(':').next()?.parse::<i64>().ok())
        .filter(|&hour| hour < closed_before)
        .count();
    let days = keys.lines().filter(|k| k.contains(":c:d")).count();
    (hours, days)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_days_backfilled_on_redis() {
    let redis = RedisServer::start();
    let env = [ROLLUPS[0], ("HAWKEYE_COMPACTION_INTERVAL", "1s")];
    let server = ServerProcess::start(&redis, &env);
    let newest = two_days_read_back_exactly(&server).await;
    // The server's own compaction pass (every second here) packs every
    // closed hour into its day string; the reads stay exact.
    hawkeye_testkit::eventually(
        "the closed hours compacted",
        std::time::Duration::from_secs(120),
        || {
            let (hours, days) = hits_rollup_keys(&redis);
            hours == 0 && days >= 2
        },
    );
    let mut c = Client::connect(&server.socket()).await;
    reads_are_exact(&mut c, newest).await;
    too_old_is_refused(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_days_backfilled_on_the_in_memory_store() {
    let server = ServerProcess::start_with_url("memory://", &ROLLUPS);
    two_days_read_back_exactly(&server).await;
    too_old_is_refused(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollup_retention_shorter_than_the_retention_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hawkeye-server"))
        .env_clear()
        .env("HAWKEYE_SOCKET", dir.path().join("s.sock"))
        .env("REDIS_URL", "memory://")
        .env("HAWKEYE_RETENTION", "2h")
        .env("HAWKEYE_ROLLUP_RETENTION", "1h")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HAWKEYE_ROLLUP_RETENTION") && stderr.contains("shorter"),
        "{stderr}"
    );
}
