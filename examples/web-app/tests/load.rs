//! The load test: the example app (server and agent embedded, the root
//! monitors.yaml, alert mail written as .eml files) takes
//! `ab -n 20000 -c 50` on `/400`. Every request must be counted exactly, and
//! each breached trigger must mail exactly once.
//!
//! The agent checks every second here instead of every 20 s (the windows and
//! thresholds are the file's), so the test sees many checks of a breaching
//! window, each of which could have sent a duplicate.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hawkeye::embed::EmbedConfig;
use hawkeye_agent::AgentConfig;
use hawkeye_client::rpc::RpcConnection;
use hawkeye_mail::FileMailer;
use hawkeye_protocol::jsonrpc::QueryParams;
use web_app::ab::run_ab;
use web_app::{App, AppConfig, Hawkeye};

const REQUESTS: u64 = 20_000;
const CONCURRENCY: u64 = 50;
const DEADLINE: Duration = Duration::from_secs(60);

fn root_monitors() -> hawkeye_agent::MonitorsFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../monitors.yaml");
    let mut monitors =
        hawkeye_agent::load_monitors(&path, hawkeye_agent::AgentConfig::default().retention)
            .expect("the root monitors.yaml is valid");
    for m in &mut monitors.monitors {
        m.interval = Duration::from_secs(1);
    }
    monitors
}

fn sum_params(metric: &str) -> QueryParams {
    QueryParams {
        metric: metric.to_string(),
        window: serde_json::json!("10m"),
        agg: Some("sum".into()),
        tags: None,
        kind: None,
    }
}

/// Queries until the sum is `expected` or the deadline passes (the server
/// writes to the store every flush interval); returns the last value.
async fn settled_sum(socket: &Path, metric: &str, expected: f64) -> Option<f64> {
    let mut conn = RpcConnection::connect(socket)
        .await
        .expect("connect to the server");
    let params = QueryParams {
        metric: metric.to_string(),
        window: serde_json::json!("10m"),
        agg: Some("sum".into()),
        tags: None,
        kind: None,
    };
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let value = conn.query(&params).await.expect("metric.query").value;
        if value == Some(expected) || tokio::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The mails in `dir`, as text.
fn mails(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the mail directory") {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "eml") {
            out.push(std::fs::read_to_string(&path).expect("read a mail"));
        }
    }
    out
}

fn addressed_to(mails: &[String], to: &str) -> usize {
    let header = format!("To: {to}");
    mails
        .iter()
        .filter(|m| m.lines().any(|l| l.trim_end() == header))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_on_400_is_counted_exactly_and_alerts_once_per_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hawkeye.sock");
    let mail_dir = dir.path().join("mail");
    let mailer = Arc::new(FileMailer::new(&mail_dir).unwrap());
    let app = App::start(AppConfig {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        hawkeye: Hawkeye::Embedded(Box::new(
            EmbedConfig::in_memory(&socket)
                .with_agent(AgentConfig::default().with_monitors(root_monitors()))
                .with_mailer(mailer),
        )),
        client: hawkeye_client::ClientConfig::default(),
    })
    .await
    .expect("start the app");

    let started = std::time::Instant::now();
    let url = format!("http://{}/400", app.local_addr());
    let report = tokio::task::spawn_blocking(move || run_ab(&url, REQUESTS, CONCURRENCY, false))
        .await
        .unwrap()
        .expect("run ab");
    assert_eq!(report.complete, REQUESTS, "{report:?}");
    assert_eq!(report.failed, 0, "{report:?}");
    assert_eq!(
        report.non_2xx, REQUESTS,
        "every answer is a 400: {report:?}"
    );

    eprintln!(
        "ab -n {REQUESTS} -c {CONCURRENCY}: {:.0} requests/s, done after {:?}",
        report.requests_per_second,
        started.elapsed()
    );
    app.client()
        .flush()
        .await
        .expect("the client's events are confirmed");
    assert_eq!(app.client().dropped(), 0, "{:?}", app.client().stats());
    let n = REQUESTS as f64;
    assert_eq!(settled_sum(&socket, "http.response.400", n).await, Some(n));
    assert_eq!(settled_sum(&socket, "http.response.4xx", n).await, Some(n));
    assert_eq!(settled_sum(&socket, "http.requests", n).await, Some(n));
    // Nothing else was counted (the 400s are all in by now).
    let mut conn = RpcConnection::connect(&socket).await.unwrap();
    let fives = conn.query(&sum_params("http.response.5xx")).await.unwrap();
    assert_eq!(fives.value, None);

    // Both triggers of http.response.400 breach (thresholds 3 and 20).
    let hawkeye = app.hawkeye().expect("embedded");
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while mails(&mail_dir).len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{} mails after {:?}",
        mails(&mail_dir).len(),
        started.elapsed()
    );
    // Then several more checks of the still-breaching window: none may mail again.
    let checks_then = hawkeye.agent_stats().unwrap().engine.checks;
    while hawkeye.agent_stats().unwrap().engine.checks < checks_then + 6
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        hawkeye.agent_stats().unwrap().engine.checks >= checks_then + 6,
        "the agent kept checking"
    );
    let sent = mails(&mail_dir);
    eprintln!(
        "{} mails after {:?} and 6 more checks",
        sent.len(),
        started.elapsed()
    );
    assert_eq!(addressed_to(&sent, "oncall@example.com"), 1, "{sent:#?}");
    assert_eq!(
        addressed_to(&sent, "oncall+escalation@example.com"),
        1,
        "{sent:#?}"
    );
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert!(
        sent.iter().all(|m| m.contains("4xx errors exceeded")),
        "{sent:#?}"
    );

    app.shutdown().await;
}
