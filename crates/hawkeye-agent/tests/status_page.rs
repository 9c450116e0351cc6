//! The agent's HTTP endpoint (`AGENT_HTTP_ADDR`) on a real Redis: the
//! status page lists every monitor and trigger and shows a firing one,
//! with the monitors file's text escaped; `/api/alerts` and `/metrics`
//! agree; a store that does not answer is a 503, not an empty page; an
//! address in use is a clear start-up error. The page is rendered in real
//! headless Chromium (Debian's `chromium`), which also saves a screenshot
//! to `target/tmp/status-page.png`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hawkeye_agent::{parse_monitors, AgentConfig, AgentHandle};
use hawkeye_mail::LogMailer;
use hawkeye_protocol::{MetricKind, SeriesKey};
use hawkeye_store::aggregate::{Aggregate, DistributionStats};
use hawkeye_store::{RedisConfig, RedisStore, SeriesWrite, Store, WriteBatch};
use hawkeye_testkit::RedisServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEADLINE: Duration = Duration::from_secs(60);

/// A monitor that fires at its first check (its window holds 10 errors a
/// second), with a tag value that is HTML; one that stays ok.
const MONITORS: &str = r#"
version: 1
monitors:
  - id: checkout-errors
    metric: status.errors
    type: c
    interval: 1s
    window: 10s
    tags: {route: "<script>alert(1)</script>&co"}
    triggers:
      - threshold: 5
        to: [oncall@example.com]
      - threshold: 1000000
        to: [manager@example.com]
  - metric: status.latency
    type: ms
    aggregate: p95
    interval: 1s
    window: 10s
    triggers:
      - threshold: 500
        to: [oncall@example.com]
"#;

fn now() -> i64 {
    common::wall_ms() as i64 / 1000
}

/// An hour of data, and a minute ahead so that every check of the test
/// sees the last of it: a trickle of errors (at most 3 per window) until ten
/// minutes ago, 10 a second since; a latency between 100 and 340 ms.
async fn write_data(store: &dyn Store) {
    let (recent, seconds) = (now() - 600, now() - 3600..now() + 60);
    let errors = SeriesKey::new(
        MetricKind::Counter,
        "status.errors",
        &[("route", "<script>alert(1)</script>&co")],
    );
    let latency = SeriesKey::new(MetricKind::Distribution, "status.latency", &[]);
    let per_second = |s: i64| match s >= recent {
        true => 10.0,
        false => (s.div_euclid(60) % 7) as f64 * 0.05,
    };
    let ms = |s: i64| {
        let mut d = DistributionStats::default();
        d.observe(100.0 + (s.div_euclid(60) % 13) as f64 * 20.0, 1.0);
        Aggregate::Distribution(Box::new(d))
    };
    let batch = WriteBatch {
        server_id: 1,
        seq: 1,
        series: vec![
            SeriesWrite {
                key: Arc::new(errors),
                points: seconds
                    .clone()
                    .map(|s| (s, Aggregate::Counter(per_second(s))))
                    .collect(),
            },
            SeriesWrite {
                key: Arc::new(latency),
                points: seconds.map(|s| (s, ms(s))).collect(),
            },
        ],
    };
    store.write(&batch).await.expect("write");
}

async fn start_agent(
    store: Arc<dyn Store>,
    addr: &str,
) -> Result<AgentHandle, hawkeye_agent::AgentError> {
    let monitors = parse_monitors(MONITORS, "monitors.yaml", Duration::from_secs(3600)).unwrap();
    let config = AgentConfig {
        http_addr: Some(addr.parse().unwrap()),
        ..AgentConfig::default()
    }
    .with_service("shop", "test")
    .with_monitors(monitors);
    hawkeye_agent::start(config, store, Arc::new(LogMailer::new())).await
}

/// One HTTP/1.1 GET: the status code, the headers and the body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut response))
        .await
        .expect("an answer in time")
        .expect("read the answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers end");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head.to_string(), body.to_string())
}

/// Polls `/api/alerts` until the first trigger of `checkout-errors` fires.
async fn wait_for_firing(addr: SocketAddr) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let (status, _, body) = get(addr, "/api/alerts").await;
        assert_eq!(status, 200, "{body}");
        let rows: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let firing = rows.as_array().unwrap().iter().any(|r| {
            r["monitor"] == "checkout-errors" && r["level"] == 1 && r["status"] == "firing"
        });
        if firing {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never fired: {rows}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs Debian's Chromium headless on `url` with `args` (`--dump-dom`,
/// `--screenshot=...`), with the flags that keep it off the network.
async fn chromium(url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,900",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url)
    .kill_on_drop(true);
    let out = tokio::time::timeout(DEADLINE, cmd.output())
        .await
        .expect("chromium finishes in time")
        .expect("run chromium (Debian package `chromium`, installed by .ci/run)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_lists_every_monitor_and_shows_the_firing_one() {
    let redis = RedisServer::start();
    let store = common::redis_store(&redis).await;
    write_data(store.as_ref()).await;
    let agent = start_agent(store, "127.0.0.1:0").await.expect("start");
    let addr = agent.http_addr().expect("the endpoint is on");
    let rows = wait_for_firing(addr).await;
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["monitor"] == "checkout-errors" && r["level"] == 1)
        .unwrap();
    assert_eq!(row["threshold"], 5.0, "{row}");
    assert_eq!(row["op"], ">=", "{row}");
    assert!(row["since"].is_string(), "{row}");

    let (status, head, page) = get(addr, "/").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        head.to_lowercase().contains("content-type: text/html"),
        "{head}"
    );
    for want in [
        "checkout-errors",
        "status.latency",
        r#"<section class="monitor firing" data-status="firing">"#,
        r#"<section class="monitor ok" data-status="ok">"#,
        "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&amp;co",
        "&gt;= 5",
        "&gt;= 1000000",
        "<svg class=\"spark\"",
        "class=\"threshold\"",
        // The summary counts the rows shown: the second level and the
        // other monitor have no stored state yet, and show `ok`.
        "<span class=\"count-firing\">firing: 1</span>",
        "<span class=\"count-ok\">ok: 2</span>",
    ] {
        assert!(page.contains(want), "no {want:?} in\n{page}");
    }
    assert!(
        !page.contains("<script>"),
        "unescaped text from the file:\n{page}"
    );
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "external assets"
    );

    let (status, head, metrics) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    assert!(value("hawkeye_agent_ticks_total") >= 1.0, "{metrics}");
    assert!(value("hawkeye_agent_checks_total") >= 2.0, "{metrics}");
    assert_eq!(value("hawkeye_agent_monitors"), 2.0);
    assert_eq!(value("hawkeye_agent_triggers"), 3.0);
    assert_eq!(value("hawkeye_agent_alerts{state=\"firing\"}"), 1.0);
    assert_eq!(value("hawkeye_agent_store_up"), 1.0);
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let (series, number) = line.rsplit_once(' ').expect("name value");
        assert!(number.parse::<f64>().is_ok(), "{line}");
        assert!(series.starts_with("hawkeye_agent_"), "{line}");
    }

    // The page as a browser renders it.
    let url = format!("http://{addr}/");
    let dom = chromium(&url, &["--dump-dom"]).await;
    assert!(dom.contains("data-status=\"firing\""), "{dom}");
    assert!(
        dom.contains("checkout-errors") && dom.contains("status.latency"),
        "{dom}"
    );
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&url, &[&format!("--screenshot={}", shot.display())]).await;
    let png = std::fs::read(&shot).expect("chromium saved the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    agent.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_does_not_answer_is_a_503_and_counters_stay_scrapeable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("redis+unix://{}", dir.path().join("none.sock").display());
    let mut config = RedisConfig::new(url, "hawkeye", Duration::from_secs(3600));
    config.timeout = Duration::from_millis(500);
    let store: Arc<dyn Store> = Arc::new(RedisStore::new(config).unwrap());
    let agent = start_agent(store, "127.0.0.1:0").await.expect("start");
    let addr = agent.http_addr().unwrap();
    let (status, _, body) = get(addr, "/").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.starts_with("the store did not answer"), "{body}");
    let (status, _, _) = get(addr, "/api/alerts").await;
    assert_eq!(status, 503);
    let (status, _, metrics) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("\nhawkeye_agent_store_up 0\n"),
        "{metrics}"
    );
    assert!(!metrics.contains("hawkeye_agent_alerts{"), "{metrics}");
    let (status, _, _) = get(addr, "/nothing").await;
    assert_eq!(status, 404);
    agent.shutdown().await;
}

#[tokio::test]
async fn an_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let store: Arc<dyn Store> = Arc::new(hawkeye_store::MemoryStore::default());
    let err = start_agent(store, &addr).await.err().expect("refused");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("AGENT_HTTP_ADDR: cannot listen on {addr}:")),
        "{text}"
    );
}

/// A reload (SIGHUP in the binary) changes what the page and `/metrics`
/// show; a refused reload changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_reloads() {
    let store: Arc<dyn Store> = Arc::new(hawkeye_store::MemoryStore::default());
    let agent = start_agent(store, "127.0.0.1:0").await.expect("start");
    let addr = agent.http_addr().unwrap();
    let one = "version: 1\nmonitors:\n  - id: only-one\n    metric: reloaded.metric\n    triggers:\n      - threshold: 1\n        to: [a@example.com]\n";
    let file = parse_monitors(one, "monitors.yaml", Duration::from_secs(3600)).unwrap();
    agent.reload(file).expect("reloaded");
    let mut bad = parse_monitors(one, "monitors.yaml", Duration::from_secs(3600)).unwrap();
    bad.monitors[0].window = Duration::from_secs(40 * 86_400);
    assert!(
        agent.reload(bad).is_err(),
        "a window past the rollup retention"
    );
    let (_, _, metrics) = get(addr, "/metrics").await;
    assert!(
        metrics.contains("\nhawkeye_agent_monitors 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nhawkeye_agent_triggers 1\n"),
        "{metrics}"
    );
    let (status, _, page) = get(addr, "/").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("only-one") && !page.contains("checkout-errors"),
        "{page}"
    );
    agent.shutdown().await;
}
