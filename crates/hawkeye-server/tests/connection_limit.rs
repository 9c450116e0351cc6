//! At `HAWKEYE_MAX_CONNECTIONS`, idle connections no longer lock everyone
//! out: a new client is admitted by closing the connection idle the longest
//! (idle at least `HAWKEYE_EVICT_IDLE_AFTER`), which is told why (-32005).
//! Active clients are never chosen: a Go net/rpc-style client with calls in
//! flight, a client sending every millisecond, a client half-way through a
//! line. When nobody is idle, the new client is refused with -32005.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::process::ServerProcess;
use common::steady::Steady;
use common::{error_code, Client};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::json;

/// Go's net/rpc client with concurrent callers: `Metric.Handle` calls in
/// the 1.0 dialect, eight in flight at a time. Returns the events answered.
fn go_client(
    socket: PathBuf,
    metric: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut c = Client::connect(&socket).await;
        let mut id = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut window = String::new();
            for i in 0..8 {
                let call = json!({"method": "Metric.Handle", "params": [{"Text": format!("{metric}:1|c")}], "id": id + i});
                window.push_str(&format!("{call}\n"));
            }
            c.send_raw(window.as_bytes()).await;
            for i in 0..8 {
                let r = c.read().await.expect("the Go client is never closed");
                assert_eq!(r, json!({"id": id + i, "result": 0, "error": null}));
            }
            id += 8;
        }
        id
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_make_room_and_active_ones_keep_working() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(
        &redis,
        &[
            ("HAWKEYE_MAX_CONNECTIONS", "6"),
            ("HAWKEYE_EVICT_IDLE_AFTER", "1s"),
            ("HAWKEYE_LINE_TIMEOUT", "1h"),
        ],
    );
    let socket = server.socket();
    // Half a line, sent first: the oldest connection, but not idle.
    let mut half = Client::connect(&socket).await;
    half.send_raw(b"{\"jsonrpc\":\"2.0\",\"method\":").await;
    // Three clients that call once and then sit idle.
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&socket).await;
        c.ping().await;
        idle.push(c);
    }
    let steady = Steady::start(socket.clone(), "steady.limit");
    let stop = Arc::new(AtomicBool::new(false));
    let go = go_client(socket.clone(), "go.limit", stop.clone());
    steady.running().await;
    // The table is full (6). Let the idle ones pass HAWKEYE_EVICT_IDLE_AFTER.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Three newcomers each take the place of an idle client.
    let mut newcomers = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&socket).await;
        c.ping().await;
        newcomers.push(c);
    }
    for mut c in idle {
        let r = c.read().await.expect("an idle client is told why");
        assert_eq!(error_code(&r), code::TOO_MANY_CONNECTIONS, "{r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.contains("idle the longest"), "{message}");
        assert!(c.read().await.is_none(), "then closed");
    }
    // Nobody is idle now: a fourth newcomer is refused.
    let mut refused = Client::connect(&socket).await;
    let r = refused.read().await.expect("a refused client is told why");
    assert_eq!(error_code(&r), code::TOO_MANY_CONNECTIONS, "{r}");
    assert!(refused.read().await.is_none());

    // The client half-way through its line was kept: it ends the line and
    // is answered.
    half.send_raw(b"\"server.ping\",\"id\":1}\n").await;
    assert_eq!(half.read().await.unwrap()["result"], json!("pong"));
    let s = newcomers[0].call("server.stats", json!(null)).await["result"].clone();
    assert_eq!(s["connections_closed_idle"], json!(3), "{s}");
    assert_eq!(s["connections_refused"], json!(1), "{s}");

    stop.store(true, Ordering::Relaxed);
    let go_events = go.await.expect("the Go client kept working");
    let mut c = newcomers.pop().unwrap();
    let total = c.query(json!({"metric": "go.limit", "window": "5m"})).await;
    assert_eq!(total, json!(go_events as f64));
    drop(c);
    steady.finish_exact(&socket).await;
}
