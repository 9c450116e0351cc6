//! Go's `Metric.Handle` answers one error or `0` for a whole text: an
//! error must mean nothing of it was counted, whatever refused it (the
//! parser, a timestamp out of range, a value out of range, the series
//! limit), or a Go client that retries counts the good lines twice.

mod common;

use common::process::ServerProcess;
use common::steady::Steady;
use common::Client;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};

/// A call written byte for byte as Go's net/rpc/jsonrpc client writes it
/// (its members in this order, no spaces): the server reads a one-line text
/// of this shape without its JSON parser, and must answer the same.
async fn handle(c: &mut Client, id: u64, text: &str) -> Value {
    let text = serde_json::to_string(text).unwrap();
    let call = format!(r#"{{"method":"Metric.Handle","params":[{{"Text":{text}}}],"id":{id}}}"#);
    c.send_raw(format!("{call}\n").as_bytes()).await;
    let r = c.read().await.unwrap();
    assert_eq!(r["id"], json!(id), "{r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_text_counts_nothing_even_when_retried() {
    let redis = RedisServer::start();
    let server = ServerProcess::start(&redis, &[("HAWKEYE_MAX_SERIES", "8")]);
    let steady = Steady::start(server.socket(), "steady.atomic");
    steady.running().await;
    let mut go = Client::connect(&server.socket()).await;
    // Known series, with values to compare against afterwards.
    let r = handle(&mut go, 1, "a:1|c\ng:10|g\nd:5|ms\ns:u1|s").await;
    assert_eq!(r["result"], json!(0), "{r}");

    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let refused = [
        // The issue's case: a timestamp out of range.
        "a:1|c\nb:1|c|T1".to_string(),
        format!("a:1|c\ng:+5|g\nb:1|c|T{future}"),
        // A value out of range after good lines of every kind.
        "a:1|c\ng:+5|g\nd:7|ms\ns:u2|s\na:1e250|c".to_string(),
        // New series past HAWKEYE_MAX_SERIES (5 taken, 8 allowed).
        "a:1|c\nn1:1|c\nn2:1|c\nn3:1|c\nn4:1|c".to_string(),
        // A line the parser refuses, last.
        "a:1|c\ns:u3|s\nnot a line".to_string(),
        // One line (no escape: read without the JSON parser), refused by
        // the aggregator and by the parser.
        "a:1e250|c".to_string(),
        "g:+5|g|T1".to_string(),
        "a:1|x".to_string(),
    ];
    for (i, text) in refused.iter().enumerate() {
        // A Go client retries a failed call: twice here.
        for attempt in 0..2 {
            let r = handle(&mut go, 10 + 2 * i as u64 + attempt, text).await;
            assert!(r["error"].is_string(), "{text:?} -> {r}");
            assert_eq!(r["result"], json!(null));
        }
    }
    let r = handle(&mut go, 99, "g:+1|g").await;
    assert_eq!(r["result"], json!(0), "{r}");

    let mut c = Client::connect(&server.socket()).await;
    let q = |metric: &str, agg: &str| json!({"metric": metric, "window": "5m", "agg": agg});
    assert_eq!(c.query(q("a", "sum")).await, json!(1.0));
    assert_eq!(c.query(q("b", "sum")).await, json!(null));
    assert_eq!(c.query(q("n1", "sum")).await, json!(null));
    assert_eq!(
        c.query(q("g", "last")).await,
        json!(11.0),
        "the +5s were undone"
    );
    assert_eq!(c.query(q("g", "max")).await, json!(11.0));
    assert_eq!(c.query(q("d", "count")).await, json!(1.0));
    assert_eq!(c.query(q("s", "unique")).await, json!(1.0));
    let s = c.call("server.stats", json!(null)).await["result"].clone();
    assert_eq!(s["series"], json!(5), "only the series taken: {s}");
    steady.finish_exact(&server.socket()).await;
}
