//! Output is bounded: a batch holds at most `HAWKEYE_MAX_BATCH` requests,
//! and a client that does not read its answers makes the server stop
//! reading from it instead of making it build the whole (amplified) answer
//! in memory. A client that reads late still gets every answer, whole.

mod common;

use std::time::Duration;

use common::process::ServerProcess;
use common::steady::Steady;
use common::{error_code, Client};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};

/// Lines in one amplifying request: each `"x",` (4 bytes) is answered by a
/// rejection of about 80 bytes, so 100 000 make an 8 MB answer.
const BAD_LINES: usize = 100_000;

fn amplifying_request(id: u64, lines: usize) -> String {
    let request =
        json!({"jsonrpc": "2.0", "method": "metric.send", "params": vec!["x"; lines], "id": id});
    request.to_string() + "\n"
}

async fn stats(c: &mut Client) -> Value {
    c.call("server.stats", json!(null)).await["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_past_the_limit_are_refused_whole() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis, &[("HAWKEYE_MAX_BATCH", "100")]);
    let steady = Steady::start(server.socket(), "steady.batch");
    let mut c = Client::connect(&server.socket()).await;
    let ping = |i: usize| json!({"jsonrpc": "2.0", "method": "server.ping", "id": i});
    let batch: Vec<Value> = (0..100).map(ping).collect();
    c.send_raw(format!("{}\n", json!(batch)).as_bytes()).await;
    let r = c.read().await.unwrap();
    assert_eq!(r.as_array().unwrap().len(), 100);
    assert_eq!(r[99], json!({"jsonrpc": "2.0", "result": "pong", "id": 99}));

    let batch: Vec<Value> = (0..101).map(ping).collect();
    c.send_raw(format!("{}\n", json!(batch)).as_bytes()).await;
    let r = c.read().await.unwrap();
    assert_eq!(error_code(&r), code::INVALID_REQUEST, "{r}");
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("HAWKEYE_MAX_BATCH"));
    // A megabyte of `[1,1,...]`: one error, not 500 000.
    let ones = format!("[{}1]\n", "1,".repeat(500_000));
    c.send_raw(ones.as_bytes()).await;
    let r = c.read().await.unwrap();
    assert_eq!(error_code(&r), code::INVALID_REQUEST, "{r}");
    c.ping().await;
    assert_eq!(stats(&mut c).await["batches_refused"], json!(2));
    steady.finish_exact(&server.socket()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_read_hold_no_amplified_answer() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis, &[]);
    let steady = Steady::start(server.socket(), "steady.output");
    steady.running().await;
    let mut c = Client::connect(&server.socket()).await;
    let baseline = server.status_kib("VmHWM");

    // Ten clients each send two amplifying requests and never read.
    const CLIENTS: u64 = 10;
    let mut writers = Vec::new();
    for _ in 0..CLIENTS {
        let mut hostile = Client::connect(&server.socket()).await;
        writers.push(tokio::spawn(async move {
            for id in 0..2 {
                // Blocks once the server stops reading: that is the point.
                let _ = hostile
                    .try_send_raw(amplifying_request(id, BAD_LINES).as_bytes())
                    .await;
            }
            std::future::pending::<()>().await;
        }));
    }
    // Every one of them has made the server wait for it to read.
    while stats(&mut c).await["output_waits"].as_u64().unwrap() < CLIENTS {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let peak = server.status_kib("VmHWM");
    // Each holds at most its request line (1 MiB), a read chunk and its
    // unsent answers (HAWKEYE_MAX_OUTPUT_BYTES, 64 KiB); 16 MiB for the
    // rest. Built whole, each answer alone would be 8 MB.
    let bound = CLIENTS * (1024 + 64 + 64) + 16 * 1024;
    assert!(
        peak - baseline <= bound,
        "peak RSS grew by {} KiB under {CLIENTS} non-reading clients; bound {bound} KiB",
        peak - baseline
    );
    for w in &writers {
        w.abort();
    }
    steady.finish_exact(&server.socket()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_late_gets_every_answer_whole() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis, &[]);
    let steady = Steady::start(server.socket(), "steady.late");
    let mut observer = Client::connect(&server.socket()).await;
    let mut late = Client::connect(&server.socket()).await;
    // A 2 MB answer: 30 times the output bound.
    const LINES: usize = 25_000;
    late.send_raw(amplifying_request(1, LINES).as_bytes()).await;
    late.send_raw(b"{\"jsonrpc\":\"2.0\",\"method\":\"server.ping\",\"id\":2}\n")
        .await;
    // The server has stopped, waiting for this client to read...
    while stats(&mut observer).await["output_waits"].as_u64().unwrap() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...and everything arrives, in order, once it does.
    let r = late.read().await.unwrap();
    assert_eq!(r["id"], json!(1));
    let rejected = r["error"]["data"]["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), LINES);
    assert_eq!(rejected[LINES - 1]["index"], json!(LINES - 1));
    assert!(rejected[7]["error"]
        .as_str()
        .unwrap()
        .contains("missing ':'"));
    assert_eq!(late.read().await.unwrap()["result"], json!("pong"));
    steady.finish_exact(&server.socket()).await;
}
