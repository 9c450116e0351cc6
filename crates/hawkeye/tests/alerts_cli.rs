//! `hawkeye alerts` against a real redis-server holding what a real agent
//! engine wrote: three routes of a grouped monitor, two over the threshold.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use hawkeye_agent::{parse_monitors, Engine, EngineSettings};
use hawkeye_protocol::{MetricKind, SeriesKey};
use hawkeye_store::{Aggregate, RedisConfig, RedisStore, SeriesWrite, Store, WriteBatch};
use hawkeye_testkit::RedisServer;
use serde_json::Value;

const MONITORS: &str = "\
version: 1
monitors:
  - id: route-errors
    metric: http.errors
    interval: 10s
    group_by: [route]
    triggers:
      - {threshold: 5, to: [oncall@example.com]}
";

fn hawkeye(redis: &RedisServer, monitors: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .args(args)
        .env("REDIS_URL", redis.url())
        .env("HAWKEYE_KEY_PREFIX", "hawkeye")
        .env("SERVICE_NAME", "shop")
        .env("ENVIRONMENT", "prod")
        .env("MONITOR_CONFIG_FILE", monitors)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the hawkeye binary")
}

fn json(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_and_history_of_a_grouped_monitor() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let monitors = dir.path().join("monitors.yaml");
    std::fs::write(&monitors, MONITORS).unwrap();
    let store: Arc<dyn Store> = Arc::new(
        RedisStore::new(RedisConfig::new(
            redis.url(),
            "hawkeye",
            Duration::from_secs(3600),
        ))
        .unwrap(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let t0 = now / 10_000 * 10_000;
    let series = [("/a", 9.0), ("/b", 7.0), ("/c", 1.0)]
        .into_iter()
        .map(|(route, n)| SeriesWrite {
            key: Arc::new(SeriesKey::new(
                MetricKind::Counter,
                "http.errors",
                &[("route", route)],
            )),
            points: vec![((t0 / 1000) as i64 - 1, Aggregate::Counter(n))],
        })
        .collect();
    store
        .write(&WriteBatch {
            server_id: 1,
            seq: 1,
            series,
        })
        .await
        .unwrap();
    let settings = EngineSettings {
        service: "shop".into(),
        environment: "prod".into(),
        mail_from: "hawkeye@localhost".into(),
        evaluation_delay_ms: 0,
        state_ttl: hawkeye_agent::engine::DEFAULT_STATE_TTL,
    };
    let file = parse_monitors(MONITORS, "monitors.yaml", Duration::from_secs(3600)).unwrap();
    let mut engine = Engine::new(&file, store.clone(), settings, t0);
    let report = engine.tick(t0).await;
    assert_eq!(report.notices.len(), 2, "{report:?}");

    let run = |args: &[&str]| hawkeye(&redis, &monitors, args);
    let states = json(&run(&["alerts", "--json"]));
    let mut firing: Vec<(String, String, String)> = states
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap().to_string(),
                s["group"]["route"].as_str().unwrap().to_string(),
                s["value"].to_string(),
            )
        })
        .collect();
    firing.sort();
    assert_eq!(
        firing,
        [
            ("firing".into(), "/a".into(), "9.0".into()),
            ("firing".into(), "/b".into(), "7.0".into())
        ],
        "{states:?}"
    );
    assert_eq!(states[0]["monitor"], "route-errors");
    assert_eq!(states[0]["threshold"], 5.0);
    assert_eq!(states[0]["op"], ">=");
    assert!(states[0]["since"].as_str().unwrap().ends_with('Z'));

    let history = json(&run(&["alerts", "--history", "--since", "1h", "--json"]));
    assert_eq!(history.len(), 2, "{history:?}");
    for h in &history {
        assert_eq!(
            (h["from"].as_str(), h["to"].as_str()),
            (Some("ok"), Some("firing"))
        );
        assert_eq!(h["notice"], "firing");
        assert_eq!(h["mail_to"][0], "oncall@example.com");
        assert!(h["subject"].as_str().unwrap().contains("route=/"), "{h}");
    }

    // A silence of one group: that group shows silenced, in the table too.
    let out = run(&[
        "silence",
        "add",
        "--metric",
        "http.errors",
        "--tag",
        "route=/a",
        "--for",
        "1h",
        "--reason",
        "test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["alerts"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.starts_with("STATUS"), "{table}");
    let a = table
        .lines()
        .find(|l| l.contains("route=/a"))
        .unwrap_or_default();
    let b = table
        .lines()
        .find(|l| l.contains("route=/b"))
        .unwrap_or_default();
    assert!(
        a.starts_with("silenced") && b.starts_with("firing"),
        "{table}"
    );
    let out = run(&["alerts", "--history"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("route-errors{route=/a} level 1  ok -> firing  firing: [shop/prod] http.errors route=/a >= 5 (level 1)  to oncall@example.com"),
        "{text}"
    );
}
