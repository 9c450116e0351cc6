//! Every kind of bad input of docs/failure.md ("Bad input"), on one live server, each answered with
//! its error code, while another client keeps sending and is never refused.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{error_code, Client, TestServer};
use hawkeye_protocol::jsonrpc::code;
use hawkeye_testkit::RedisServer;
use serde_json::json;

/// Sends one event per call until told to stop; returns how many were answered as accepted.
fn steady_client(
    socket: std::path::PathBuf,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut c = Client::connect(&socket).await;
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) || sent < 100 {
            let r = c.call("metric.send", json!(["steady.events:1|c"])).await;
            assert_eq!(r["result"], json!({"accepted": 1, "rejected": []}), "{r}");
            sent += 1;
        }
        sent
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_errors_and_others_keep_sending() {
    let server = TestServer::start_with(RedisServer::start(), |c| {
        c.max_series = 20;
        c.max_connections = 3000;
    })
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let steady = steady_client(server.socket(), stop.clone());
    let mut c = server.client().await;
    // The steady client's series must exist before this test fills the
    // series limit: wait until the server has taken its first event.
    loop {
        let stats = c.call("server.stats", json!(null)).await["result"].clone();
        if stats["lines_accepted"].as_u64().unwrap() > 0 {
            break;
        }
        tokio::task::yield_now().await;
    }

    // Malformed JSON: parse error with id null; the connection stays usable.
    c.send_raw(b"{\"jsonrpc\": \"2.0\", \"method\":\n").await;
    let r = c.read().await.unwrap();
    assert_eq!(error_code(&r), code::PARSE_ERROR);
    assert_eq!(r["id"], json!(null));
    c.ping().await;

    // Binary garbage, including invalid UTF-8 and NUL bytes.
    let mut garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .filter(|b| *b != b'\n')
        .collect();
    garbage.push(b'\n');
    c.send_raw(&garbage).await;
    assert_eq!(error_code(&c.read().await.unwrap()), code::PARSE_ERROR);
    c.send_raw(b"\xff\xfe{\"x\":1}\n").await;
    assert_eq!(error_code(&c.read().await.unwrap()), code::PARSE_ERROR);
    c.ping().await;

    // Valid JSON that is not a request.
    for (line, want) in [
        ("42", code::INVALID_REQUEST),
        ("\"metric.send\"", code::INVALID_REQUEST),
        ("[]", code::INVALID_REQUEST),
        (
            r#"{"jsonrpc":"2.0","method":7,"id":3}"#,
            code::INVALID_REQUEST,
        ),
        (
            r#"{"jsonrpc":"2.0","params":[],"id":3}"#,
            code::INVALID_REQUEST,
        ),
        (
            r#"{"jsonrpc":"3.0","method":"server.ping","id":3}"#,
            code::INVALID_REQUEST,
        ),
    ] {
        c.send_raw(format!("{line}\n").as_bytes()).await;
        let r = c.read().await.unwrap();
        assert_eq!(error_code(&r), want, "{line} -> {r}");
    }

    // Unknown method, wrong parameter types.
    assert_eq!(
        error_code(&c.call("metric.delete", json!([])).await),
        code::METHOD_NOT_FOUND
    );
    assert_eq!(
        error_code(&c.call("metric.send", json!(42)).await),
        code::INVALID_PARAMS
    );
    assert_eq!(
        error_code(&c.call("metric.send", json!([1, 2])).await),
        code::INVALID_PARAMS
    );
    assert_eq!(
        error_code(&c.call("metric.send", json!({"lines": "a:1|c"})).await),
        code::INVALID_PARAMS
    );
    assert_eq!(
        error_code(
            &c.call("metric.query", json!({"metric": 5, "window": "1m"}))
                .await
        ),
        code::INVALID_PARAMS
    );
    assert_eq!(
        error_code(
            &c.call("metric.query", json!({"metric": "x", "window": "forever"}))
                .await
        ),
        code::INVALID_PARAMS
    );
    assert_eq!(
        error_code(
            &c.call(
                "metric.query",
                json!({"metric": "x", "window": "1m", "agg": "median"})
            )
            .await
        ),
        code::INVALID_PARAMS
    );
    assert_eq!(
        error_code(
            &c.call("metric.query", json!({"metric": "x", "window": "40d"}))
                .await
        ),
        code::INVALID_PARAMS
    );

    // Bad metric lines: each rejected with its index and reason; good ones taken.
    let r = c
        .call(
            "metric.send",
            json!([
                "no_value",
                "ok.line:1|c",
                "x:1|q",
                "x:abc|c",
                "bad name!:1|c",
                "x:1|c|@2"
            ]),
        )
        .await;
    let result = &r["result"];
    assert_eq!(result["accepted"], json!(1), "{r}");
    let rejected = result["rejected"].as_array().unwrap();
    let indexes: Vec<u64> = rejected
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, vec![0, 2, 3, 4, 5]);
    let errors: Vec<&str> = rejected
        .iter()
        .map(|x| x["error"].as_str().unwrap())
        .collect();
    assert!(errors[0].contains("missing ':'"), "{errors:?}");
    assert!(errors[1].contains("unknown type \"q\""), "{errors:?}");
    assert!(errors[2].contains("not a finite number"), "{errors:?}");
    assert!(errors[3].contains("invalid name"), "{errors:?}");
    assert!(errors[4].contains("sample rate"), "{errors:?}");
    // Nothing valid at all: an error, with the rejections in `data`.
    let r = c.call("metric.send", json!(["nope"])).await;
    assert_eq!(error_code(&r), code::INVALID_PARAMS);
    assert_eq!(r["error"]["data"]["rejected"][0]["index"], json!(0));
    // Go's dialect gets the error as a string.
    c.send_raw(b"{\"method\":\"Metric.Handle\",\"params\":[{\"Text\":\"oops\"}],\"id\":9}\n")
        .await;
    let r = c.read().await.unwrap();
    assert_eq!(r["id"], json!(9));
    assert_eq!(r["result"], json!(null));
    assert!(r["error"].as_str().unwrap().contains("missing ':'"), "{r}");

    // Values whose aggregate would leave the range the store can add up
    // (±1e200): refused, and the flushes that follow still succeed (Redis
    // would reject "inf" for ever).
    let r = c
        .call("metric.send", json!(["tiny.rate:1|c|@1e-309"]))
        .await;
    assert_eq!(error_code(&r), code::INVALID_PARAMS, "{r}");
    let r = c
        .call(
            "metric.send",
            json!(["huge:6e199|c", "huge:6e199|c", "huge.d:6e199:6e199|ms"]),
        )
        .await;
    let series_before = c.call("server.stats", json!(null)).await["result"]["series"].clone();
    let r2 = c
        .call("metric.send", json!(["never.finite:1e308:1e308|c"]))
        .await;
    assert_eq!(error_code(&r2), code::INVALID_PARAMS, "{r2}");
    let series_after = c.call("server.stats", json!(null)).await["result"]["series"].clone();
    assert_eq!(
        series_before, series_after,
        "a refused line takes no series slot"
    );
    assert_eq!(r["result"]["accepted"], json!(1), "{r}");
    assert!(
        r["result"]["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("out of range"),
        "{r}"
    );
    assert_eq!(
        c.query(json!({"metric": "huge", "window": "5m"})).await,
        json!(6e199)
    );

    // Go's Metric.Handle takes all lines of its text or none.
    c.send_raw(b"{\"method\":\"Metric.Handle\",\"params\":[{\"Text\":\"all.or.none:1|c\\nbad\"}],\"id\":10}\n").await;
    let r = c.read().await.unwrap();
    assert!(r["error"].is_string(), "{r}");
    assert_eq!(
        c.query(json!({"metric": "all.or.none", "window": "5m"}))
            .await,
        json!(null)
    );

    // A batch mixing a good request, a bad one and a notification.
    c.send_raw(b"[{\"jsonrpc\":\"2.0\",\"method\":\"server.ping\",\"id\":1},{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":2},{\"jsonrpc\":\"2.0\",\"method\":\"server.ping\"}]\n").await;
    let r = c.read().await.unwrap();
    let items = r.as_array().unwrap();
    assert_eq!(items.len(), 2, "{r}");
    assert_eq!(items[0]["result"], json!("pong"));
    assert_eq!(error_code(&items[1]), code::METHOD_NOT_FOUND);

    // The series limit: new series are refused, known ones still taken.
    let lines: Vec<String> = (0..40).map(|i| format!("many.series:1|c|#n:{i}")).collect();
    let r = c.call("metric.send", json!(lines)).await;
    let taken = r["result"]["accepted"].as_u64().unwrap();
    assert!(taken < 20, "{r}");
    assert!(
        r["result"]["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .contains("HAWKEYE_MAX_SERIES"),
        "{r}"
    );
    let r = c.call("metric.send", json!(["brand.new:1|c"])).await;
    assert_eq!(error_code(&r), code::TOO_MANY_SERIES, "{r}");
    let r = c.call("metric.send", json!(["many.series:1|c|#n:0"])).await;
    assert_eq!(r["result"]["accepted"], json!(1), "{r}");

    // Thousands of idle connections: the server keeps serving everyone.
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(
            tokio::net::UnixStream::connect(server.socket())
                .await
                .unwrap(),
        );
    }
    let mut fresh = server.client().await;
    fresh.ping().await;
    let stats = fresh.call("server.stats", json!(null)).await["result"].clone();
    assert!(stats["connections"].as_u64().unwrap() >= 2002, "{stats}");
    drop(idle);

    // A line over the 1 MiB limit: an error, then the connection is closed.
    // (It starts as JSON: a connection whose first bytes are not JSON is a
    // plain statsd stream, closed without a word, see plain_streams.rs.)
    let mut huge = server.client().await;
    let mut big = br#"{"jsonrpc":"2.0","method":""#.to_vec();
    big.resize(2 << 20, b'x');
    // The server may close before all of it is written; the write error is expected.
    let _ = huge.try_send_raw(&big).await;
    let r = huge.read().await.expect("an error before the close");
    assert_eq!(error_code(&r), code::LINE_TOO_LONG);
    assert!(huge.read().await.is_none(), "connection should be closed");

    // Meanwhile the steady client was never refused, and every event counts.
    stop.store(true, Ordering::Relaxed);
    let sent = steady.await.unwrap();
    let total = c
        .query(json!({"metric": "steady.events", "window": "5m"}))
        .await;
    assert_eq!(total, json!(sent as f64));
}
