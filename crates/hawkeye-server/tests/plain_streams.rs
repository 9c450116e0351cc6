//! Plain statsd lines on a stream, never answered: over TCP
//! (`HAWKEYE_TCP_ADDR`), and from a client of the JSON-RPC stream socket
//! whose first bytes are not JSON. Lines are taken exactly, across any
//! split of the writes; the stream socket's bounds hold (line length, line
//! timeout, connections); and a plain-line client that never reads neither
//! stalls nor makes the server hold more memory.

mod common;

use std::time::Duration;

use common::process::ServerProcess;
use common::{Client, TestServer};
use hawkeye_server::ServerConfig;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

fn with_tcp(config: &mut ServerConfig) {
    config.tcp_addr = Some("127.0.0.1:0".parse().unwrap());
}

fn count(metric: &str) -> Value {
    json!({"metric": metric, "window": "5m"})
}

/// Reads until the server closes the connection; what it sent before.
async fn read_to_close(stream: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut got));
    read.await.expect("the server closes the connection").ok();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_lines_are_taken_exactly_however_they_are_split() {
    let mut t = TestServer::start_with(RedisServer::start(), with_tcp).await;
    let addr = t.handle().tcp_addr().expect("a TCP listener");
    let mut c = t.client().await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    // A line split across writes, a bad line among good ones, \r\n endings,
    // tags, and a last line without its newline before the close.
    a.write_all(b"tcp.hits:1|c\ntcp.hi").await.unwrap();
    a.flush().await.unwrap();
    b.write_all(b"tcp.hits:2|c|#team:a\r\nnot a line\n")
        .await
        .unwrap();
    a.write_all(b"ts:1|c\ntcp.gauge:7|g\n\n").await.unwrap();
    b.write_all(&b"tcp.hits:1|c\n".repeat(5000)).await.unwrap();
    b.write_all(b"tcp.hits:10|c").await.unwrap();
    drop(b);
    a.write_all(b"tcp.hits:1|c|@0.5\n").await.unwrap();
    let s = c.stats_when(|s| s["lines_accepted"] == json!(5006)).await;
    assert_eq!(s["lines_rejected"], json!(1), "{s}");
    assert_eq!(s["connections_total"], json!(3), "{s}");
    assert_eq!(c.query(count("tcp.hits")).await, json!(5016.0));
    let tagged = json!({"metric": "tcp.hits", "window": "5m", "tags": {"team": "a"}});
    assert_eq!(c.query(tagged).await, json!(2.0));
    let gauge = json!({"metric": "tcp.gauge", "window": "5m", "type": "g"});
    assert_eq!(c.query(gauge).await, json!(7.0));
    // Nothing is ever written back.
    a.shutdown().await.unwrap();
    assert_eq!(read_to_close(&mut a).await, b"");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connections_keep_the_stream_sockets_bounds() {
    let mut t = TestServer::start_with(RedisServer::start(), |config| {
        with_tcp(config);
        config.max_line_bytes = 1000;
        config.max_pending_bytes = 1 << 20;
        config.line_timeout = Duration::from_millis(300);
        config.max_connections = 3;
        config.evict_idle_after = Duration::from_secs(3600);
    })
    .await;
    let addr = t.handle().tcp_addr().unwrap();
    let mut c = t.client().await;

    // A line longer than HAWKEYE_MAX_LINE_BYTES: the lines before it are
    // taken, the connection is closed, without a word.
    let mut long = TcpStream::connect(addr).await.unwrap();
    long.write_all(b"ok.before:1|c\n").await.unwrap();
    let _ = long.write_all(&[b'x'; 1500]).await;
    assert_eq!(read_to_close(&mut long).await, b"");
    // A line left incomplete past HAWKEYE_LINE_TIMEOUT.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"slow.line:1").await.unwrap();
    assert_eq!(read_to_close(&mut slow).await, b"");
    let s = c.stats_when(|s| s["connections"] == json!(1)).await;
    assert_eq!(s["connections_closed_line_too_long"], json!(1), "{s}");
    assert_eq!(s["connections_closed_line_timeout"], json!(1), "{s}");
    assert_eq!(s["lines_rejected"], json!(1), "the long line: {s}");
    assert_eq!(c.query(count("ok.before")).await, json!(1.0));
    assert_eq!(c.query(count("slow.line")).await, Value::Null);

    // HAWKEYE_MAX_CONNECTIONS counts both sockets: with the JSON client
    // and two TCP clients open, a third TCP client is closed at once.
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"held:1|c\n").await.unwrap();
        open.push(s);
    }
    c.stats_when(|s| s["connections"] == json!(3)).await;
    let mut refused = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_to_close(&mut refused).await, b"");
    let s = c.stats_when(|s| s["lines_accepted"] == json!(3)).await;
    assert_eq!(s["connections_refused"], json!(1), "{s}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_lines_on_the_stream_socket_are_taken_without_answers() {
    let mut t = TestServer::start().await;
    let mut c = t.client().await;
    // White space first, then plain lines: never answered.
    let mut plain = UnixStream::connect(t.socket()).await.unwrap();
    plain
        .write_all(b"\n \nplain.hits:1|c\nplain.hits:2|c|#k:v\nbad line\n")
        .await
        .unwrap();
    // White space, then JSON: a JSON-RPC client as before.
    let mut json_client = UnixStream::connect(t.socket()).await.unwrap();
    json_client
        .write_all(b"\n  {\"jsonrpc\":\"2.0\",\"method\":\"server.ping\",\"id\":7}\n")
        .await
        .unwrap();
    let mut answer = [0u8; 64];
    let n = json_client.read(&mut answer).await.unwrap();
    let answer: Value = serde_json::from_slice(&answer[..n]).unwrap();
    assert_eq!(answer["result"], json!("pong"), "{answer}");
    let s = c.stats_when(|s| s["lines_accepted"] == json!(2)).await;
    assert_eq!(s["lines_rejected"], json!(1), "{s}");
    assert_eq!(c.query(count("plain.hits")).await, json!(3.0));
    plain.shutdown().await.unwrap();
    assert_eq!(read_to_close(&mut plain).await, b"", "no answer, ever");
    t.shutdown().await;
}

/// The hostile case: a plain-line client that writes a lot and never reads.
/// Before, each line was answered with -32700 and, the answers unread, the
/// server stopped reading: the client stalled for ever. Now it is never
/// answered, so it cannot stall, and the server holds no more than a read
/// buffer for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_line_client_that_never_reads_neither_stalls_nor_grows_memory() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis, &[]);
    let mut c = Client::connect(&server.socket()).await;
    c.ping().await;
    let before = server.status_kib("VmHWM");
    const LINES: u64 = 400_000;
    let line = b"never.reads:1|c|#team:a,host:some-long-host-name-0001\n";
    let mut plain = UnixStream::connect(server.socket()).await.unwrap();
    let chunk = line.repeat(10_000);
    let write_all = async {
        for _ in 0..LINES / 10_000 {
            plain.write_all(&chunk).await.unwrap();
        }
    };
    // 22 MB, never reading: on the old code this write never finished.
    tokio::time::timeout(Duration::from_secs(120), write_all)
        .await
        .expect("the client's writes never block for long: nothing is answered");
    let s = c.stats_when(|s| s["lines_accepted"] == json!(LINES)).await;
    assert_eq!(s["lines_rejected"], json!(0), "{s}");
    assert_eq!(s["output_waits"], json!(0), "{s}");
    assert_eq!(c.query(count("never.reads")).await, json!(LINES as f64));
    let grown = server.status_kib("VmHWM") - before;
    // What the client sent is 22 MB; the server holds a read buffer of it.
    assert!(grown < 8 * 1024, "peak RSS grew by {grown} KiB");
}
