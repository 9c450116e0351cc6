//! Events sent over several connections, in both dialects, are read back
//! exactly through `metric.query` from a real Redis.

mod common;

use common::{Client, TestServer};
use serde_json::json;

const EVENTS: usize = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_events_are_counted_exactly() {
    let server = TestServer::start().await;
    // 4 connections send JSON-RPC 2.0 notifications in batches (arrays of
    // requests, each carrying 250 lines); 2 connections send one Go-style
    // Metric.Handle call per event.
    let batched = 80_000 / 4;
    let per_call = (EVENTS - 80_000) / 2;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let socket = server.socket();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&socket).await;
            let lines: Vec<String> = vec!["http.response.400:1|c".to_string(); 250];
            let request = json!({"jsonrpc": "2.0", "method": "metric.send", "params": lines});
            let batch = json!([request, request, request, request]).to_string() + "\n";
            for _ in 0..batched / 1000 {
                c.send_raw(batch.as_bytes()).await;
            }
            c.ping().await;
        }));
    }
    for conn in 0..2 {
        let socket = server.socket();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&socket).await;
            for i in 0..per_call {
                let line = json!({"method": "Metric.Handle", "params": [{"Text": "http.response.400:1|c"}], "id": i}).to_string() + "\n";
                c.send_raw(line.as_bytes()).await;
                let r = c.read().await.unwrap();
                assert_eq!(r, json!({"id": i, "result": 0, "error": null}), "connection {conn}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = server.client().await;
    let total = c
        .query(json!({"metric": "http.response.400", "window": "5m"}))
        .await;
    let stats = c.call("server.stats", json!(null)).await["result"].clone();
    assert_eq!(total, json!(EVENTS as f64), "{stats}");
    assert_eq!(stats["lines_accepted"], json!(EVENTS));
    assert_eq!(stats["lines_rejected"], json!(0));
    // Pre-aggregation: far fewer Redis commands than events.
    let commands: f64 = server
        .redis
        .info_field("total_commands_processed")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        commands < EVENTS as f64 / 10.0,
        "{commands} Redis commands for {EVENTS} events"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gauge_timing_and_set_read_back() {
    let server = TestServer::start().await;
    let mut tasks = Vec::new();
    for conn in 0..4 {
        let socket = server.socket();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&socket).await;
            for chunk in 0..25 {
                let mut lines = Vec::with_capacity(1000);
                for i in 0..1000 {
                    let n = conn * 25_000 + chunk * 1000 + i;
                    // +1 adjustments from four connections: the gauge ends at exactly 100 000.
                    lines.push("queue.depth:+1|g".to_string());
                    // Latencies 1..=100 000 ms, each once.
                    lines.push(format!("http.latency:{}|ms|#route:/checkout", n + 1));
                    // 100 000 distinct users.
                    lines.push(format!("ratelimit.users:user-{n}|s"));
                }
                c.notify("metric.send", json!(lines)).await;
            }
            c.ping().await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = server.client().await;
    assert_eq!(
        c.query(json!({"metric": "queue.depth", "window": "5m"}))
            .await,
        json!(100_000.0)
    );
    assert_eq!(
        c.query(json!({"metric": "queue.depth", "window": "5m", "agg": "max"}))
            .await,
        json!(100_000.0)
    );
    assert_eq!(
        c.query(json!({"metric": "queue.depth", "window": "5m", "agg": "min"}))
            .await,
        json!(1.0)
    );
    let p95 = c
        .query(json!({"metric": "http.latency", "window": "5m", "agg": "p95", "tags": {"route": "/checkout"}}))
        .await
        .as_f64()
        .unwrap();
    let exact = 95_000.0;
    assert!(
        ((p95 - exact) / exact).abs() <= 0.01,
        "p95 {p95}, exact {exact}"
    );
    assert_eq!(
        c.query(json!({"metric": "http.latency", "window": "5m", "agg": "count"}))
            .await,
        json!(100_000.0)
    );
    let unique = c
        .query(json!({"metric": "ratelimit.users", "window": "5m"}))
        .await
        .as_f64()
        .unwrap();
    // HyperLogLog: 0.81% standard error; 2% is two and a half deviations.
    assert!((unique - 100_000.0).abs() <= 2_000.0, "unique {unique}");
}

#[tokio::test]
async fn sample_rates_tags_and_timestamps() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = c
        .call(
            "metric.send",
            json!({"lines": [
                "req:1|c|@0.1|#code:500,route:/a",
                "req:3|c|#route:/a,code:200",
                format!("req:5|c|#route:/b,code:200|T{}", now - 30),
                format!("req:7|c|T{}", now - 120),
            ]}),
        )
        .await;
    assert_eq!(r["result"], json!({"accepted": 4, "rejected": []}), "{r}");
    assert_eq!(
        c.query(json!({"metric": "req", "window": "60s"})).await,
        json!(18.0)
    );
    assert_eq!(
        c.query(json!({"metric": "req", "window": "5m", "tags": {"route": "/a"}}))
            .await,
        json!(13.0)
    );
    assert_eq!(
        c.query(json!({"metric": "req", "window": "5m", "tags": {"code": "200"}}))
            .await,
        json!(8.0)
    );
    assert_eq!(
        c.query(json!({"metric": "req", "window": "10s"})).await,
        json!(13.0)
    );
    assert_eq!(
        c.query(json!({"metric": "req", "window": "5m"})).await,
        json!(25.0)
    );
    assert_eq!(
        c.query(json!({"metric": "req", "window": "5m", "agg": "rate"}))
            .await,
        json!(25.0 / 300.0)
    );
    // Structured form, and a metric nobody sent.
    let r = c
        .call("metric.send", json!({"metrics": [{"name": "jobs", "value": 2, "type": "c", "tags": {"queue": "mail"}}]}))
        .await;
    assert_eq!(r["result"]["accepted"], json!(1), "{r}");
    assert_eq!(
        c.query(json!({"metric": "jobs", "window": 60, "tags": {"queue": "mail"}}))
            .await,
        json!(2.0)
    );
    assert_eq!(
        c.query(json!({"metric": "never.sent", "window": "5m"}))
            .await,
        json!(null)
    );
}

#[tokio::test]
async fn a_datagram_cut_short_loses_only_its_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let dgram = dir.path().join("statsd.sock");
    let path = dgram.clone();
    let server = TestServer::start_with(hawkeye_testkit::RedisServer::start(), move |c| {
        c.dgram_socket_path = Some(path);
        c.dgram_max_bytes = 32;
    })
    .await;
    let sender = tokio::net::UnixDatagram::unbound().unwrap();
    // 38 bytes into a 32-byte buffer: "cut.b:1|c|@0.25" would arrive as
    // "cut.b:1|c|@0" or worse; the server drops that last line.
    sender
        .send_to(b"cut.a:1|c\ncut.a:1|c\ncut.b:1|c|@0.25\n", &dgram)
        .await
        .unwrap();
    let mut c = server.client().await;
    let mut stats = serde_json::Value::Null;
    for _ in 0..500 {
        stats = c.call("server.stats", json!(null)).await["result"].clone();
        if stats["lines_accepted"].as_u64().unwrap() + stats["lines_rejected"].as_u64().unwrap()
            >= 3
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(stats["lines_accepted"], json!(2), "{stats}");
    assert_eq!(stats["lines_rejected"], json!(1), "{stats}");
    assert_eq!(
        c.query(json!({"metric": "cut.a", "window": "5m"})).await,
        json!(2.0)
    );
    assert_eq!(
        c.query(json!({"metric": "cut.b", "window": "5m"})).await,
        json!(null)
    );
}

#[tokio::test]
async fn datagram_socket_takes_statsd_lines() {
    let dir = tempfile::tempdir().unwrap();
    let dgram = dir.path().join("statsd.sock");
    let path = dgram.clone();
    let server = TestServer::start_with(hawkeye_testkit::RedisServer::start(), move |c| {
        c.dgram_socket_path = Some(path);
    })
    .await;
    let sender = tokio::net::UnixDatagram::unbound().unwrap();
    for _ in 0..100 {
        let payload =
            b"dd.requests:1|c|#env:prod\ndd.requests:2|c|#env:prod|c:abc123\nnot a line\n";
        sender.send_to(payload, &dgram).await.unwrap();
    }
    // Datagrams have no answer: wait until the server has counted them all.
    let mut c = server.client().await;
    let mut stats = serde_json::Value::Null;
    for _ in 0..200 {
        stats = c.call("server.stats", json!(null)).await["result"].clone();
        if stats["lines_accepted"].as_u64().unwrap() + stats["lines_rejected"].as_u64().unwrap()
            >= 300
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(stats["lines_accepted"], json!(200), "{stats}");
    assert_eq!(stats["lines_rejected"], json!(100), "{stats}");
    assert_eq!(
        c.query(json!({"metric": "dd.requests", "window": "5m", "tags": {"env": "prod"}}))
            .await,
        json!(300.0)
    );
}
