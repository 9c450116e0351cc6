//! Input is bounded in total: partial lines held across connections stay
//! within `HAWKEYE_MAX_PENDING_BYTES` (the connection holding the most is
//! closed with -32006), and a line left incomplete past
//! `HAWKEYE_LINE_TIMEOUT` closes its connection (-32007), even if it
//! trickles in a byte at a time.

mod common;

use std::time::Duration;

use common::process::ServerProcess;
use common::steady::Steady;
use common::{error_code, Client};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};

/// A bound on each wait, so that a regression fails instead of hanging.
const BOUND: Duration = Duration::from_secs(60);

async fn stats(c: &mut Client) -> Value {
    c.call("server.stats", json!(null)).await["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_partial_lines_stay_within_the_budget() {
    const BUDGET: u64 = 4 << 20;
    let redis = RedisServer::start();
    let server = ServerProcess::start(
        &redis,
        &[
            ("HAWKEYE_MAX_PENDING_BYTES", &BUDGET.to_string()),
            ("HAWKEYE_LINE_TIMEOUT", "1h"),
        ],
    );
    let steady = Steady::start(server.socket(), "steady.partial");
    steady.running().await;
    let mut observer = Client::connect(&server.socket()).await;
    // Ten clients each send 900 KB of a (JSON) line, and stay silent: 9 MB
    // against a 4 MiB budget.
    let mut partial = br#"{"jsonrpc":"2.0","method":""#.to_vec();
    partial.resize(900_000, b'x');
    let mut hostile = Vec::new();
    for _ in 0..10 {
        let mut c = Client::connect(&server.socket()).await;
        // It may be closed while still writing, if it holds the most then.
        let _ = c.try_send_raw(&partial).await;
        hostile.push(c);
    }
    let s = observer
        .stats_when(|s| s["connections_closed_input_budget"].as_u64().unwrap() >= 6)
        .await;
    assert!(s["pending_bytes"].as_u64().unwrap() <= BUDGET, "{s}");
    // Those closed were told why; the others are still open.
    let mut closed = 0;
    for mut c in hostile {
        if let Ok(Some(r)) = tokio::time::timeout(Duration::from_millis(200), c.read()).await {
            assert_eq!(error_code(&r), code::INPUT_BUDGET, "{r}");
            assert!(r["error"]["message"]
                .as_str()
                .unwrap()
                .contains("HAWKEYE_MAX_PENDING_BYTES"));
            closed += 1;
        }
    }
    assert!(closed >= 6, "{closed} told");
    steady.finish_exact(&server.socket()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_left_incomplete_past_the_deadline_closes_its_connection() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis, &[("HAWKEYE_LINE_TIMEOUT", "1s")]);
    let steady = Steady::start(server.socket(), "steady.timeout");
    let mut observer = Client::connect(&server.socket()).await;

    // A client that stops half-way through a line.
    let mut silent = Client::connect(&server.socket()).await;
    silent
        .send_raw(b"{\"jsonrpc\":\"2.0\",\"method\":\"server.ping\"")
        .await;
    // A client that trickles one line in, a byte at a time, for ever: the
    // deadline runs from the start of the line, not from the last byte.
    let socket = server.socket();
    let trickle = tokio::spawn(async move {
        let mut c = Client::connect(&socket).await;
        c.send_raw(b"{\"jsonrpc\":").await;
        loop {
            if c.try_send_raw(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.read().await
    });
    let r = tokio::time::timeout(BOUND, silent.read())
        .await
        .expect("the silent client is closed")
        .expect("with an error first");
    assert_eq!(error_code(&r), code::LINE_TIMEOUT, "{r}");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("HAWKEYE_LINE_TIMEOUT"));
    assert!(silent.read().await.is_none(), "then the connection closes");
    let r = tokio::time::timeout(BOUND, trickle)
        .await
        .expect("the trickling client is closed")
        .unwrap()
        .expect("with an error first");
    assert_eq!(error_code(&r), code::LINE_TIMEOUT, "{r}");
    // The observer, idle between whole lines all along, is untouched.
    let s = stats(&mut observer).await;
    assert_eq!(s["connections_closed_line_timeout"], json!(2), "{s}");
    steady.finish_exact(&server.socket()).await;
}
