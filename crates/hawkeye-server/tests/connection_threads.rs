//! The standalone server serves connections on one thread by default and on
//! `HAWKEYE_CONNECTION_THREADS` worker threads when asked; a value that is
//! not a positive count is refused at start with the variable named.

mod common;

use std::process::{Command, Stdio};

use common::process::ServerProcess;
use common::Client;
use hawkeye_testkit::RedisServer;
use serde_json::json;

/// Go's call shape (read without the JSON parser), then a batch, then the
/// total read back: every event counted whatever the runtime.
async fn calls_are_counted(server: &ServerProcess, metric: &str) {
    let mut c = Client::connect(&server.socket()).await;
    for id in 0..50 {
        let call =
            format!("{{\"method\":\"Metric.Handle\",\"params\":[{{\"Text\":\"{metric}:1|c\"}}],\"id\":{id}}}\n");
        c.send_raw(call.as_bytes()).await;
        let r = c.read().await.unwrap();
        assert_eq!(r, json!({"error": null, "result": 0, "id": id}));
    }
    let r = c
        .call("metric.send", json!([format!("{metric}:50|c")]))
        .await;
    assert_eq!(r["result"]["accepted"], json!(1), "{r}");
    let total = c.query(json!({"metric": metric, "window": "5m"})).await;
    assert_eq!(total, json!(100.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_thread_or_several_count_every_event() {
    let redis = RedisServer::start();
    for threads in ["1", "3"] {
        let mut server = ServerProcess::start(&redis, &[("HAWKEYE_CONNECTION_THREADS", threads)]);
        calls_are_counted(&server, &format!("threads.{threads}")).await;
        let status = server
            .terminate(std::time::Duration::from_secs(20))
            .expect("the server stops on SIGTERM");
        assert!(status.success(), "{threads} threads: {status:?}");
    }
}

#[test]
fn zero_threads_is_refused_with_the_variable_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye-server"))
        .env_clear()
        .env("HAWKEYE_SOCKET", dir.path().join("hawkeye.sock"))
        .env("REDIS_URL", "memory://")
        .env("HAWKEYE_CONNECTION_THREADS", "0")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("HAWKEYE_CONNECTION_THREADS"), "{stderr}");
    assert!(
        !dir.path().join("hawkeye.sock").exists(),
        "nothing was bound"
    );
}
