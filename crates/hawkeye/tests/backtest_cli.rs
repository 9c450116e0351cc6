//! `hawkeye backtest` against a real redis-server: what it prints, that it
//! leaves the store exactly as it found it (silences included, and off),
//! and its errors. The comparison with a live agent is in the agent's
//! `backtest_e2e.rs`.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hawkeye_agent::Silence;
use hawkeye_protocol::{MetricKind, SeriesKey};
use hawkeye_store::{Aggregate, RedisConfig, RedisStore, SeriesWrite, Store, WriteBatch};
use hawkeye_testkit::monitors::errors_monitor;
use hawkeye_testkit::RedisServer;
use serde_json::Value;

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `hawkeye backtest ARGS` in `dir`, with only the settings given here.
fn backtest(redis: &RedisServer, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawkeye"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("backtest")
        .args(args)
        .env("REDIS_URL", redis.url())
        .env("SERVICE_NAME", "shop")
        .env("ENVIRONMENT", "prod")
        .env("RUST_LOG", "warn")
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run the hawkeye binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn store(redis: &RedisServer) -> Arc<dyn Store> {
    Arc::new(
        RedisStore::new(RedisConfig::new(
            redis.url(),
            "hawkeye",
            Duration::from_secs(3600),
        ))
        .unwrap(),
    )
}

/// Every key with its value, and Redis' count of changes to the data.
fn snapshot(redis: &RedisServer) -> (Vec<(String, String)>, String) {
    let mut keys: Vec<String> = redis.cli(&["--scan"]).lines().map(str::to_string).collect();
    keys.sort();
    let dump = keys
        .into_iter()
        .map(|k| {
            let v = redis.cli(&["DUMP", &k]);
            (k, v)
        })
        .collect();
    let changes = redis
        .info_field("rdb_changes_since_last_save")
        .expect("INFO persistence");
    (dump, changes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_what_fired_and_leaves_the_store_as_it_was() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("monitors.yaml"), errors_monitor(&[])).unwrap();
    let store = store(&redis);
    // 5 errors a second for 30 s, two minutes ago.
    let start = now_secs() / 10 * 10 - 120;
    let batch = WriteBatch {
        server_id: 1,
        seq: 1,
        series: vec![SeriesWrite {
            key: Arc::new(SeriesKey::new(MetricKind::Counter, "errors", &[])),
            points: (start..start + 30)
                .map(|s| (s, Aggregate::Counter(5.0)))
                .collect(),
        }],
    };
    store.write(&batch).await.unwrap();
    // A silence of the monitor: a live agent would mail nothing.
    let now_ms = now_secs() as u64 * 1000;
    let s = Silence::new(
        "errors",
        Default::default(),
        None,
        "test",
        now_ms - 600_000,
        3_600_000,
    )
    .unwrap();
    store
        .put_silence(&s.id, &s.to_json(), s.ends_at)
        .await
        .unwrap();
    let before = snapshot(&redis);

    let out = backtest(&redis, dir.path(), &[], &["--since", "5m", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let notices: Vec<(&str, i64)> = lines
        .iter()
        .filter(|l| l["type"] == "notification")
        .map(|l| {
            (
                l["notice"].as_str().unwrap(),
                l["slot_ms"].as_i64().unwrap(),
            )
        })
        .collect();
    // The first window holding the data is the 10 s after `start`; the
    // first without it, 30 s later.
    assert_eq!(
        notices,
        [
            ("firing", (start + 10) * 1000),
            ("resolved", (start + 40) * 1000)
        ],
        "{lines:?}"
    );
    let firing = &lines[0];
    assert_eq!(firing["monitor"], "errors");
    assert_eq!(firing["trigger"], "warn");
    assert_eq!(firing["value"], 50.0);
    assert_eq!(firing["to"], serde_json::json!(["oncall@example.com"]));
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["notifications"], 2);
    assert_eq!(summary["monitors"][0]["firing"], 1);

    assert_eq!(snapshot(&redis), before, "the backtest wrote to the store");

    let text = backtest(&redis, dir.path(), &[], &["--since", "5m"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("errors") && text.contains("1 (warn)"),
        "{text}"
    );
    assert!(
        text.contains("firing") && text.contains("oncall@example.com"),
        "{text}"
    );
    assert!(text.contains("MONITOR  FIRING  REPEAT  RESOLVED"), "{text}");
    assert_eq!(snapshot(&redis), before, "the backtest wrote to the store");

    // A `notifier: log` monitor: listed, not logged as well.
    std::fs::write(
        dir.path().join("log.yaml"),
        errors_monitor(&[]).replace("    triggers:", "    notifier: log\n    triggers:"),
    )
    .unwrap();
    let logged = backtest(&redis, dir.path(), &[], &["log.yaml", "--since", "5m"]);
    assert!(logged.status.success(), "{}", stderr(&logged));
    let listed = String::from_utf8_lossy(&logged.stdout);
    assert!(
        listed.contains("firing    50     - (notifier: log)"),
        "{listed}"
    );
    assert!(
        !stderr(&logged).contains("hawkeye::alert"),
        "{}",
        stderr(&logged)
    );

    // Older than HAWKEYE_RETENTION, a 10 s monitor reads rollups: said.
    let old = backtest(&redis, dir.path(), &[], &["--since", "2h"]);
    assert!(old.status.success(), "{}", stderr(&old));
    let note = stderr(&old);
    assert!(
        note.contains("read per-minute rollups") && note.contains("the checks of errors"),
        "{note}"
    );
    let recent = backtest(&redis, dir.path(), &[], &["--since", "30m"]);
    assert!(!stderr(&recent).contains("rollups"), "{}", stderr(&recent));
}

#[test]
fn bad_arguments_and_files_are_clear_errors() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("monitors.yaml"), errors_monitor(&[])).unwrap();
    let fails = |env: &[(&str, &str)], args: &[&str], expected: &str| {
        let out = backtest(&redis, dir.path(), env, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
    };
    fails(
        &[],
        &["--since", "yesterday"],
        "--since: \"yesterday\" is neither",
    );
    fails(
        &[],
        &["--since", "1h", "--until", "soon"],
        "--until: \"soon\"",
    );
    fails(
        &[],
        &["--since", "40d"],
        "more than the store keeps (35d, HAWKEYE_ROLLUP_RETENTION)",
    );
    fails(
        &[("HAWKEYE_ROLLUP_RETENTION", "1h")],
        &["--since", "2h"],
        "more than the store keeps (1h, HAWKEYE_ROLLUP_RETENTION)",
    );
    fails(
        &[],
        &["--since", "1h", "--max-checks", "100"],
        "more than the limit of 100",
    );
    fails(
        &[],
        &["--since", "10m", "--step", "1.5s"],
        "whole number of seconds",
    );
    fails(
        &[],
        &["--since", "10m", "--until", "20m"],
        "is not after the start",
    );
    fails(
        &[("REDIS_URL", "memory://")],
        &["--since", "10m"],
        "the backtest reads the data the servers stored",
    );

    std::fs::write(
        dir.path().join("bad.yaml"),
        "version: 1\nmonitors:\n  - metric: errors\n    triggers:\n      - threshold: lots\n",
    )
    .unwrap();
    fails(&[], &["bad.yaml"], "bad.yaml:5:");
}
