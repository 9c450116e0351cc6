//! One line cannot freeze the server: a line of 120 000 tags (which once
//! stalled every client for seconds) is refused at once with a clear error,
//! and a request of hundreds of thousands of lines is worked through in
//! pieces, other clients being answered in between. The server runs on one
//! runtime thread here, so that any long synchronous stretch would show.

mod common;

use std::time::Duration;

use common::process::ServerProcess;
use common::steady::Steady;
use common::{error_code, Client};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::json;

/// A bound on each wait, so that a regression fails instead of hanging.
const BOUND: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_past_the_tag_and_key_limits_are_refused_at_once() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis, &[("TOKIO_WORKER_THREADS", "1")]);
    let steady = Steady::start(server.socket(), "steady.tags");
    steady.running().await;
    let mut hostile = Client::connect(&server.socket()).await;

    // 120 000 distinct tags: about 850 KB in one line.
    let tags: Vec<String> = (0..120_000).map(|i| format!("t{i}")).collect();
    let line = format!("x:1|c|#{}", tags.join(","));
    assert!(line.len() > 800_000);
    let r = tokio::time::timeout(BOUND, hostile.call("metric.send", json!([line])))
        .await
        .expect("the tag line is answered");
    assert_eq!(error_code(&r), code::INVALID_PARAMS, "{r}");
    let reason = r["error"]["data"]["rejected"][0]["error"].as_str().unwrap();
    assert!(reason.contains("HAWKEYE_MAX_TAGS"), "{reason}");

    // A key longer than HAWKEYE_MAX_KEY_BYTES (4096 by default).
    let line = format!("x:1|c|#k:{}", "v".repeat(5000));
    let r = hostile.call("metric.send", json!([line])).await;
    let reason = r["error"]["data"]["rejected"][0]["error"].as_str().unwrap();
    assert!(reason.contains("HAWKEYE_MAX_KEY_BYTES"), "{r}");

    // Go's dialect says the same.
    let go = json!({"method": "Metric.Handle", "params": [{"Text": format!("x:1|c|#{}", tags[..200].join(","))}], "id": 3});
    hostile.send_raw(format!("{go}\n").as_bytes()).await;
    let r = hostile.read().await.unwrap();
    assert!(
        r["error"].as_str().unwrap().contains("HAWKEYE_MAX_TAGS"),
        "{r}"
    );

    let stats = hostile.call("server.stats", json!(null)).await["result"].clone();
    assert_eq!(stats["lines_rejected_tags"], json!(2), "{stats}");
    assert_eq!(stats["lines_rejected_key_bytes"], json!(1), "{stats}");
    assert_eq!(
        stats["series"],
        json!(1),
        "only the steady client's series: {stats}"
    );
    steady.finish_exact(&server.socket()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_request_is_worked_through_while_others_are_answered() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis, &[("TOKIO_WORKER_THREADS", "1")]);
    let steady = Steady::start(server.socket(), "steady.huge");
    steady.running().await;
    let mut observer = Client::connect(&server.socket()).await;

    // One notification of 200 000 lines (800 KB), each refused by the
    // parser and counted in `lines_rejected` as it is reached. Nobody else
    // sends a bad line, so that counter follows this request's progress.
    const LINES: u64 = 200_000;
    let lines = vec!["x"; LINES as usize];
    let request = json!({"jsonrpc": "2.0", "method": "metric.send", "params": lines}).to_string();
    let mut hostile = Client::connect(&server.socket()).await;
    hostile.send_raw(format!("{request}\n").as_bytes()).await;

    // Answers while the request is under way (neither none of it nor all
    // of it refused yet) prove the one runtime thread was not held.
    let mut answered_meanwhile = 0;
    let watch = async {
        loop {
            let stats = observer.call("server.stats", json!(null)).await["result"].clone();
            let done = stats["lines_rejected"].as_u64().unwrap();
            if done == LINES {
                break;
            }
            if done > 0 {
                answered_meanwhile += 1;
            }
        }
    };
    tokio::time::timeout(BOUND, watch)
        .await
        .expect("the request is worked through");
    eprintln!("answered while the huge request was worked through: {answered_meanwhile}");
    assert!(
        answered_meanwhile > 0,
        "no other request was answered while the huge one was worked through"
    );
    hostile.ping().await;
    steady.finish_exact(&server.socket()).await;
}
