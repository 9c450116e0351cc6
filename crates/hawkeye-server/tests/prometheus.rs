//! `/metrics` (`HAWKEYE_HTTP_ADDR`): the page is valid for `promtool check
//! metrics` and shows the server's own counters and every series as an
//! experienced Prometheus user expects (names and labels made valid,
//! counters `_total`, distributions as summaries, sets as gauges); and a
//! real Prometheus scraping it every second reads a counter back through
//! its HTTP API.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestServer;
use hawkeye_server::ServerConfig;
use hawkeye_testkit::{http_get, Prometheus, RedisServer};
use serde_json::{json, Value};

fn with_http(config: &mut ServerConfig) {
    config.http_addr = Some("127.0.0.1:0".parse().unwrap());
}

/// The page, once the server has flushed what it was sent (a query
/// flushes it, and each flushed batch feeds the page).
async fn metrics_page(t: &TestServer) -> String {
    let mut c = t.client().await;
    c.query(json!({"metric": "anything", "window": "1m"})).await;
    let addr = t.handle().http_addr().unwrap();
    let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, "/metrics"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// `promtool check metrics` on `page`: its complaints, empty when valid.
/// It also lints names (`a_b` "contains an abbreviated unit"): the names
/// sent here are chosen to pass, as the server's own are.
fn promtool(page: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool (apt-get install prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        complaints
    } else {
        format!("exit {}: {complaints}", out.status)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_valid_and_shows_every_kind_of_series() {
    let mut t = TestServer::start_with(RedisServer::start(), with_http).await;
    let mut c = t.client().await;
    let lines = json!([
        "http.response.400:1|c|#team:a,team:b,canary",
        "http.response.400:2|c|#team:a,team:b,canary",
        "http.response.400:1|c|#k8s.pod-name:web-1,__name__:x,quantile:q",
        "queue-depth:7|g|#host:a\"b\\c",
        "latency:10|ms",
        "latency:20|ms",
        "latency:30|ms|@0.5",
        "users:alice|s",
        "users:bob|s",
        "users:alice|s",
        "9lives:1|c",
        // Two series whose names are one once made valid: one is shown.
        "jobs.done:1|g",
        "jobs_done:2|g",
        // A gauge named like the summary's count: it cannot be shown.
        "latency_count:1|g",
    ]);
    let r = c.call("metric.send", lines).await;
    assert_eq!(r["result"]["accepted"], json!(14), "{r}");
    let page = metrics_page(&t).await;
    assert_eq!(promtool(&page), "", "{page}");
    for want in [
        "# TYPE http_response_400_total counter",
        "http_response_400_total{canary=\"true\",team=\"a,b\"} 3.0",
        "http_response_400_total{k8s_pod_name=\"web-1\",tag__name__=\"x\",tag_quantile=\"q\"} 1.0",
        "# TYPE queue_depth gauge",
        "queue_depth{host=\"a\\\"b\\\\c\"} 7.0",
        "# TYPE latency summary",
        "latency{quantile=\"0.99\"} 30.",
        "latency_sum 90.0",
        "latency_count 4.0",
        "users 2.0",
        "_9lives_total 1.0",
        "jobs_done 1.0",
        "hawkeye_metrics_conflicts 2.0",
        "# TYPE hawkeye_lines_accepted_total counter",
        "hawkeye_lines_accepted_total 14.0",
        "# TYPE hawkeye_connections gauge",
        "hawkeye_metrics_series 9.0",
    ] {
        assert!(page.contains(want), "{want:?} not in\n{page}");
    }
    assert!(!page.contains("jobs_done 2.0"), "{page}");
    // Quantiles are within the sketch's 1% (the median of 10, 20, 30, 30).
    let median: f64 = page
        .lines()
        .find_map(|l| l.strip_prefix("latency{quantile=\"0.5\"} "))
        .expect("a median")
        .parse()
        .unwrap();
    assert!((median - 20.0).abs() <= 0.2, "{median}");
    assert!(!page.contains("latency_count 1.0"), "{page}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_a_counter() {
    let mut t = TestServer::start_with(RedisServer::start(), with_http).await;
    let mut c = t.client().await;
    let prometheus = Prometheus::scraping(t.handle().http_addr().unwrap());
    let mut sent = 0;
    for _ in 0..5 {
        let r = c
            .call("metric.send", json!(vec!["scraped.hits:1|c|#team:a"; 40]))
            .await;
        sent += r["result"]["accepted"].as_u64().unwrap();
    }
    c.query(json!({"metric": "scraped.hits", "window": "1m"}))
        .await;
    // Scraped every second: poll the API until the counter is whole.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let value = loop {
        let query = "scraped_hits_total{team=\"a\",job=\"hawkeye\"}";
        let body = tokio::task::block_in_place(|| prometheus.query(query));
        let answer: Value = serde_json::from_str(&body).unwrap();
        let value = answer["data"]["result"][0]["value"][1].clone();
        if value == json!(sent.to_string()) || tokio::time::Instant::now() >= deadline {
            break (value, answer);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(value.0, json!("200"), "{}", value.1);
    let up = tokio::task::block_in_place(|| prometheus.query("up{job=\"hawkeye\"}"));
    assert!(up.contains("\"1\""), "{up}");
    t.shutdown().await;
}
