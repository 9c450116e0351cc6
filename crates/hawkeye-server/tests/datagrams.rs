//! Datagrams lose nothing silently: a datagram is read whole (the buffer is
//! as large as the largest a local sender can send), a datagram cut by a
//! smaller `HAWKEYE_DGRAM_MAX_BYTES` is counted (datagrams and bytes, and
//! the line cut), and invalid UTF-8 is refused as on the stream socket.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

use common::process::ServerProcess;
use common::steady::Steady;
use common::Client;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};

/// Polls `server.stats` until the lines taken and refused reach `lines`.
async fn wait_for_lines(c: &mut Client, lines: u64, steady: &Steady) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = c.call("server.stats", json!(null)).await["result"].clone();
        let seen = s["lines_accepted"].as_u64().unwrap() + s["lines_rejected"].as_u64().unwrap();
        // The steady client's lines count too; it may be one ahead.
        let steady_lines = steady.answered.load(std::sync::atomic::Ordering::Relaxed);
        if seen >= lines + steady_lines {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never got there: {s}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A server with a datagram socket (and `env`), over its own Redis, with
/// the steady client running and an observer connected.
struct DatagramServer {
    _redis: RedisServer,
    _dir: tempfile::TempDir,
    server: ServerProcess,
    dgram: PathBuf,
    steady: Steady,
    observer: Client,
}

async fn server_with_datagrams(env: &[(&str, &str)], steady: &str) -> DatagramServer {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dgram = dir.path().join("statsd.sock");
    let mut env = env.to_vec();
    env.push(("HAWKEYE_DGRAM_SOCKET", dgram.to_str().unwrap()));
    let server = ServerProcess::start(&redis, &env);
    let steady = Steady::start(server.socket(), steady);
    let observer = Client::connect(&server.socket()).await;
    DatagramServer {
        _redis: redis,
        _dir: dir,
        server,
        dgram,
        steady,
        observer,
    }
}

/// `count` lines of `metric:1|c\n` in one datagram.
fn datagram(metric: &str, count: usize) -> Vec<u8> {
    format!("{metric}:1|c\n").repeat(count).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_datagram_is_read_whole() {
    let mut t = server_with_datagrams(&[], "steady.dgram").await;
    // 110 KB: 8 462 lines of 13 bytes.
    let payload = datagram("dg.whole", 8462);
    assert!(payload.len() > 110_000);
    let sender = UnixDatagram::unbound().unwrap();
    sender.send_to(&payload, &t.dgram).unwrap();
    let s = wait_for_lines(&mut t.observer, 8462, &t.steady).await;
    assert_eq!(s["lines_rejected"], json!(0), "{s}");
    assert_eq!(s["datagrams"], json!(1), "{s}");
    assert_eq!(s["datagrams_truncated"], json!(0), "{s}");
    let total = t
        .observer
        .query(json!({"metric": "dg.whole", "window": "5m"}))
        .await;
    assert_eq!(total, json!(8462.0));
    t.steady.finish_exact(&t.server.socket()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datagram_cut_by_the_configured_limit_is_counted() {
    let mut t = server_with_datagrams(&[("HAWKEYE_DGRAM_MAX_BYTES", "65536")], "steady.cut").await;
    let payload = datagram("dg.cut__", 8462);
    assert_eq!(payload.len(), 110_006);
    let sender = UnixDatagram::unbound().unwrap();
    sender.send_to(&payload, &t.dgram).unwrap();
    // 65 536 bytes read: 5 041 whole lines (65 533 bytes) and 3 bytes of
    // the next, which is refused; the rest is known only as bytes.
    let s = wait_for_lines(&mut t.observer, 5042, &t.steady).await;
    assert_eq!(s["datagrams_truncated"], json!(1), "{s}");
    assert_eq!(
        s["datagram_bytes_truncated"],
        json!(payload.len() - 65_533),
        "{s}"
    );
    assert_eq!(s["lines_rejected"], json!(1), "{s}");
    let total = t
        .observer
        .query(json!({"metric": "dg.cut__", "window": "5m"}))
        .await;
    assert_eq!(total, json!(5041.0));
    t.steady.finish_exact(&t.server.socket()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_datagram_is_refused_not_replaced() {
    let mut t = server_with_datagrams(&[], "steady.utf8").await;
    let sender = UnixDatagram::unbound().unwrap();
    sender
        .send_to(
            b"utf8.tag:1|c|#k:v\xff\nutf8.set:\xfe|s\nutf8.ok:1|c\n",
            &t.dgram,
        )
        .unwrap();
    let s = wait_for_lines(&mut t.observer, 3, &t.steady).await;
    assert_eq!(s["lines_rejected"], json!(2), "{s}");
    let q = |m: &str| json!({"metric": m, "window": "5m"});
    assert_eq!(t.observer.query(q("utf8.tag")).await, json!(null));
    assert_eq!(t.observer.query(q("utf8.set")).await, json!(null));
    assert_eq!(t.observer.query(q("utf8.ok")).await, json!(1.0));
    t.steady.finish_exact(&t.server.socket()).await;
}
