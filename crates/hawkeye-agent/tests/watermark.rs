//! The agent checks a window only once every live server has flushed it
//! (docs/cluster.md, "Watermark"): a server whose store writes hang for
//! seconds never makes the agent read a window it has not written, so the
//! value checked is exact. A real redis-server, the server and the agent
//! (libraries, one process); the server's store holds its data writes back
//! while the test says so.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Probe, RecordingMailer};
use hawkeye_agent::{parse_monitors, AgentConfig};
use hawkeye_server::ServerConfig;
use hawkeye_testkit::RedisServer;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const DEADLINE: Duration = Duration::from_secs(60);
const EVENTS: usize = 37;

/// Every second a window of one second; any event breaches.
const MONITORS: &str = "\
version: 1
monitors:
  - metric: burst
    type: c
    interval: 1s
    window: 1s
    subject: burst {{ value }}
    triggers:
      - threshold: 1
        run_every: 1h
        to: [oncall@example.com]
";

fn now_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Polls `done` until it holds, failing the test after [`DEADLINE`].
async fn until<F: std::future::Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_flush_is_waited_for_and_the_value_checked_is_exact() {
    let redis = RedisServer::start();
    let store = common::redis_store(&redis).await;
    let held = Arc::new(Probe::new(store.clone()));
    let dir = tempfile::tempdir().unwrap();
    let server_config = ServerConfig {
        socket_path: dir.path().join("hawkeye.sock"),
        flush_interval: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    let server = hawkeye_server::start(server_config, held.clone())
        .await
        .unwrap();
    until("the server's first watermark", || async {
        store.watermark().await.unwrap().is_some()
    })
    .await;

    let mailer = Arc::new(RecordingMailer::default());
    let monitors = parse_monitors(MONITORS, "test", Duration::from_secs(3600)).unwrap();
    let config = AgentConfig {
        evaluation_delay: Duration::from_millis(50),
        watermark_wait: DEADLINE,
        ..AgentConfig::default()
    }
    .with_monitors(monitors);
    let agent = hawkeye_agent::start(config, store.clone(), mailer.clone())
        .await
        .unwrap();

    // The burst's flush hangs: its second's window is due, the server has
    // not written it.
    held.hold_writes();
    let mut stream = tokio::net::UnixStream::connect(server.socket_path())
        .await
        .unwrap();
    let lines: Vec<String> = (0..EVENTS).map(|_| "burst:1|c".to_string()).collect();
    let request =
        serde_json::json!({"jsonrpc": "2.0", "method": "metric.send", "params": lines, "id": 1});
    stream
        .write_all(format!("{request}\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    BufReader::new(&mut stream)
        .read_line(&mut answer)
        .await
        .unwrap();
    assert!(answer.contains("\"rejected\":[]"), "{answer}");
    let sent_at = now_secs_f64();
    // The fault lasts: well past the check of the burst's second (due one
    // interval and 50 ms after it) and the old fixed margin (flush + 300 ms).
    until("the hang to last 3 s", || async {
        now_secs_f64() > sent_at + 3.0
    })
    .await;
    assert!(
        mailer.subjects().is_empty(),
        "checked before the flush: {:?}",
        mailer.subjects()
    );
    held.release_writes();

    until("the alert mail", || async { !mailer.subjects().is_empty() }).await;
    assert_eq!(mailer.subjects(), [format!("burst {EVENTS}")]);
    agent.shutdown().await;
    server.shutdown().await.unwrap();
    // A stopped server's watermark is removed: agents stop waiting for it.
    assert_eq!(store.watermark().await.unwrap(), None);
}
