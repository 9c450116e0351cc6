//! The lockstep lane (src/lane.rs) answers Go's one-event calls on a thread
//! of its own and hands every other case to a task on the runtime, with
//! what it read and did not answer and what it could not write. These
//! tests drive each way a connection leaves the lane, with Go's exact call
//! shape (which the lane answers), and check that nothing is lost, nothing
//! is answered out of order, and every bound still holds.

mod common;

use std::time::Duration;

use common::{error_code, TestServer};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Go's net/rpc/jsonrpc request line for one event, byte for byte.
fn go_call(metric: &str, id: u64) -> String {
    format!(
        "{{\"method\":\"Metric.Handle\",\"params\":[{{\"Text\":\"{metric}:1|c\"}}],\"id\":{id}}}\n"
    )
}

fn go_answer(id: u64) -> Value {
    json!({"id": id, "result": 0, "error": null})
}

/// Reads one answer, or fails the test if none comes within a minute (a
/// connection the lane forgot would wait for ever).
async fn answer(c: &mut common::Client) -> Option<Value> {
    tokio::time::timeout(Duration::from_secs(60), c.read())
        .await
        .expect("an answer, or the end of the connection, within a minute")
}

async fn total(c: &mut common::Client, metric: &str) -> Value {
    c.query(json!({"metric": metric, "window": "5m"})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_calls_and_other_methods_on_one_connection_are_answered_in_order() {
    let mut t = TestServer::start().await;
    let mut c = t.client().await;
    for id in 0..20 {
        c.send_raw(go_call("lane.order", id).as_bytes()).await;
        assert_eq!(answer(&mut c).await, Some(go_answer(id)));
    }
    // One write: a Go call, a call the lane does not answer, a Go call.
    let mixed = format!(
        "{}{}\n{}",
        go_call("lane.order", 100),
        json!({"jsonrpc": "2.0", "method": "server.ping", "id": 101}),
        go_call("lane.order", 102)
    );
    c.send_raw(mixed.as_bytes()).await;
    assert_eq!(answer(&mut c).await, Some(go_answer(100)));
    assert_eq!(answer(&mut c).await.unwrap()["result"], json!("pong"));
    assert_eq!(answer(&mut c).await, Some(go_answer(102)));
    // Served on the runtime from now on, as before.
    for id in 200..220 {
        c.send_raw(go_call("lane.order", id).as_bytes()).await;
        assert_eq!(answer(&mut c).await, Some(go_answer(id)));
    }
    assert_eq!(total(&mut c, "lane.order").await, json!(42.0));
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_call_split_in_two_is_answered_and_the_line_bounds_hold() {
    let mut t = TestServer::start_with(RedisServer::start(), |c| {
        c.line_timeout = Duration::from_millis(300);
        c.max_line_bytes = 200;
        c.max_pending_bytes = 200;
    })
    .await;
    let call = go_call("lane.split", 1);
    let (head, tail) = call.split_at(30);
    let mut c = t.client().await;
    c.send_raw(head.as_bytes()).await;
    c.send_raw(tail.as_bytes()).await;
    assert_eq!(answer(&mut c).await, Some(go_answer(1)));

    // Half a call, and nothing more: closed at HAWKEYE_LINE_TIMEOUT.
    c.send_raw(head.as_bytes()).await;
    let r = answer(&mut c).await.expect("told why");
    assert_eq!(error_code(&r), code::LINE_TIMEOUT, "{r}");
    assert_eq!(answer(&mut c).await, None, "then closed");

    // A whole Go call longer than HAWKEYE_MAX_LINE_BYTES: refused, closed.
    let mut long = t.client().await;
    long.send_raw(go_call(&"x".repeat(300), 2).as_bytes()).await;
    let r = answer(&mut long).await.expect("told why");
    assert_eq!(error_code(&r), code::LINE_TOO_LONG, "{r}");
    assert_eq!(answer(&mut long).await, None, "then closed");

    let mut q = t.client().await;
    assert_eq!(total(&mut q, "lane.split").await, json!(1.0));
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_lane_connection_is_told_why_it_is_closed_to_admit_a_client() {
    let mut t = TestServer::start_with(RedisServer::start(), |c| {
        c.max_connections = 2;
        c.evict_idle_after = Duration::from_millis(200);
    })
    .await;
    let mut first = t.client().await;
    first.send_raw(go_call("lane.evict", 1).as_bytes()).await;
    assert_eq!(answer(&mut first).await, Some(go_answer(1)));
    let mut second = t.client().await;
    second.send_raw(go_call("lane.evict", 2).as_bytes()).await;
    assert_eq!(answer(&mut second).await, Some(go_answer(2)));
    // Both idle on the lane; the first the longest. Only time says when
    // they have been idle long enough.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut newcomer = t.client().await;
    newcomer.ping().await;
    let r = answer(&mut first)
        .await
        .expect("the longest idle is told why");
    assert_eq!(error_code(&r), code::TOO_MANY_CONNECTIONS, "{r}");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("idle the longest"));
    assert_eq!(answer(&mut first).await, None, "then closed");
    // The other stays on the lane and is answered.
    second.send_raw(go_call("lane.evict", 3).as_bytes()).await;
    assert_eq!(answer(&mut second).await, Some(go_answer(3)));
    assert_eq!(total(&mut newcomer, "lane.evict").await, json!(3.0));
    t.shutdown().await;
}

/// The hostile case: Go calls written one by one by a client that never
/// reads. The lane's write comes up short once the client's socket is
/// full; the connection goes to the runtime with the answers not written,
/// where it waits for the client under `HAWKEYE_MAX_OUTPUT_BYTES`. When
/// the client reads at last, every answer is there, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_calls_from_a_client_that_does_not_read_are_all_answered_in_order() {
    const CALLS: u64 = 50_000;
    let mut t = TestServer::start().await;
    let stream = UnixStream::connect(t.socket()).await.unwrap();
    let (read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        for id in 0..CALLS {
            write
                .write_all(go_call("lane.unread", id).as_bytes())
                .await
                .unwrap();
        }
        write
    });
    let mut stats = t.client().await;
    let s = stats
        .stats_when(|s| s["output_waits"].as_u64() >= Some(1))
        .await;
    assert_eq!(s["connections"], json!(2), "{s}");
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    for id in 0..CALLS {
        line.clear();
        let n = tokio::time::timeout(Duration::from_secs(60), reader.read_line(&mut line))
            .await
            .expect("the answers come once the client reads")
            .unwrap();
        assert!(n > 0, "closed before answer {id}");
        let r: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(r, go_answer(id));
    }
    let _write = writer.await.unwrap();
    assert_eq!(total(&mut stats, "lane.unread").await, json!(CALLS as f64));
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_lane_connections_and_keeps_their_events() {
    let mut t = TestServer::start().await;
    let mut c = t.client().await;
    for id in 0..10 {
        c.send_raw(go_call("lane.shutdown", id).as_bytes()).await;
        assert_eq!(answer(&mut c).await, Some(go_answer(id)));
    }
    let store = t.store.clone();
    t.shutdown().await;
    assert_eq!(answer(&mut c).await, None, "closed at shutdown");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let q = hawkeye_store::WindowQuery::new("lane.shutdown".to_string(), 300, now + 1);
    assert_eq!(store.query(&q).await.unwrap().unwrap(), Some(10.0));
}

/// A client that writes its calls and closes its side (as `nc -N` does)
/// is answered and then closed: its calls and its end may come in one
/// event, after which no other comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_closes_its_side_after_its_calls_is_answered_and_closed() {
    let mut t = TestServer::start().await;
    for id in 0..20 {
        let mut stream = UnixStream::connect(t.socket()).await.unwrap();
        stream
            .write_all(go_call("lane.halfclose", id).as_bytes())
            .await
            .unwrap();
        stream.shutdown().await.unwrap();
        let mut answers = String::new();
        tokio::time::timeout(
            Duration::from_secs(60),
            tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answers),
        )
        .await
        .expect("answered and closed")
        .unwrap();
        let answers: Vec<Value> = answers
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(answers, vec![go_answer(id)]);
    }
    let mut c = t.client().await;
    assert_eq!(total(&mut c, "lane.halfclose").await, json!(20.0));
    t.shutdown().await;
}

/// The hostile case for eviction: with no idle time asked
/// (`HAWKEYE_EVICT_IDLE_AFTER=0`), connections opened without end close
/// lockstep clients between two calls, and sometimes as a call arrives.
/// Every call is answered, or its client told why it is closed (-32005);
/// never closed without a word. What was answered is what is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockstep_clients_closed_to_admit_others_are_always_told_why() {
    let mut t = TestServer::start_with(RedisServer::start(), |c| {
        c.max_connections = 5;
        c.evict_idle_after = Duration::ZERO;
    })
    .await;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (socket, done) = (t.socket(), done.clone());
        tokio::spawn(async move {
            let mut opened = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                // Held until the next one is open: each takes a place.
                let _held = UnixStream::connect(&socket).await;
                opened += 1;
                tokio::task::yield_now().await;
            }
            opened
        })
    };
    let clients: Vec<_> = (0..4)
        .map(|k| {
            let socket = t.socket();
            tokio::spawn(async move {
                let (mut answered, mut told) = (0u64, 0u64);
                let mut c = common::Client::connect(&socket).await;
                for id in 0..300 {
                    // Closed while idle, before this call: the word of why
                    // is waiting to be read.
                    let sent = c.try_send_raw(go_call("lane.churn", id).as_bytes()).await;
                    match answer(&mut c).await {
                        Some(r) if sent.is_err() => {
                            assert_eq!(error_code(&r), code::TOO_MANY_CONNECTIONS, "{r}");
                            told += 1;
                            c = common::Client::connect(&socket).await;
                        }
                        Some(r) if r == go_answer(id) => answered += 1,
                        Some(r) => {
                            assert_eq!(error_code(&r), code::TOO_MANY_CONNECTIONS, "{r}");
                            assert_eq!(answer(&mut c).await, None, "closed after");
                            told += 1;
                            c = common::Client::connect(&socket).await;
                        }
                        None => panic!("client {k}: call {id} closed without a word"),
                    }
                }
                (answered, told)
            })
        })
        .collect();
    let mut answered = 0;
    for client in clients {
        answered += client.await.unwrap().0;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(churn.await.unwrap() > 0);
    let mut c = t.client().await;
    assert_eq!(total(&mut c, "lane.churn").await, json!(answered as f64));
    t.shutdown().await;
}
