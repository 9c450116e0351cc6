//! The `hawkeye` binary against a real server embedded in the test.

use std::process::{Command, Output};

use hawkeye::embed::{self, EmbedConfig};

fn hawkeye(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .args(args)
        .env_remove("HAWKEYE_SOCKET")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the hawkeye binary")
}

/// A server on the in-memory store, without an agent, listening in `dir`.
async fn server_in(dir: &std::path::Path) -> (embed::Embedded, std::path::PathBuf) {
    let socket = dir.join("hawkeye.sock");
    let server = embed::start(EmbedConfig::in_memory(&socket).without_agent())
        .await
        .unwrap();
    (server, socket)
}

/// The current unix second.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sends `lines` to the server on `socket`; returns how many it accepted.
async fn send_lines(socket: &std::path::Path, lines: &[String]) -> usize {
    let mut conn = hawkeye_client::rpc::RpcConnection::connect(socket)
        .await
        .unwrap();
    conn.send_lines(lines).await.unwrap().accepted
}

/// `hawkeye <command> --socket <socket> <args>`, run off the runtime (the
/// server under test runs on it).
async fn run_on(command: &str, socket: &std::path::Path, args: &[&str]) -> Output {
    let mut all = vec![command.to_string(), "--socket".to_string()];
    all.push(socket.to_str().unwrap().to_string());
    all.extend(args.iter().map(|a| a.to_string()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        hawkeye(&args)
    })
    .await
    .unwrap()
}

/// `hawkeye query --socket <socket> <args>`, off the runtime.
async fn query(socket: &std::path::Path, args: &[&str]) -> Output {
    run_on("query", socket, args).await
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_query_and_stats() {
    let dir = tempfile::tempdir().unwrap();
    let (server, socket) = server_in(dir.path()).await;

    let sent = ["cli.hits:2|c", "cli.hits:3|c|#route:/a", "bad line"];
    let out = run_on("send", &socket, &sent).await;
    assert!(!out.status.success(), "a rejected line fails the command");
    let t = text(&out);
    assert!(t.contains("accepted 2, rejected 1"), "{t}");
    assert!(t.contains("rejected line 3"), "{t}");

    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        let args = ["cli.hits", "--window", "5m", "--agg", "sum", "--json"];
        let out = query(&socket, &args).await;
        assert!(out.status.success(), "{}", text(&out));
        last = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if last == r#"{"value":5.0,"window_secs":300}"# {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(last, r#"{"value":5.0,"window_secs":300}"#);

    let out = query(
        &socket,
        &["cli.hits", "--window", "5m", "--tag", "route=/a"],
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "cli.hits over 300s: 3"
    );

    let out = run_on("stats", &socket, &["--json"]).await;
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
    assert_eq!(stats["lines_accepted"], 2);
    assert_eq!(stats["lines_rejected"], 1);

    server.shutdown().await;
}

#[test]
fn a_missing_server_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let out = hawkeye(&["stats", "--socket", socket.to_str().unwrap()]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(
        t.starts_with("error: cannot connect to the hawkeye server at"),
        "{t}"
    );
    assert_eq!(t.trim().lines().count(), 1, "{t}");
}

#[test]
fn check_reports_problems_with_line_and_column() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../monitors.yaml");
    let out = hawkeye(&["check", root]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("ok (2 monitors, 4 triggers)"),
        "{}",
        text(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("monitors.yaml");
    std::fs::write(
        &bad,
        "version: 1\nmonitors:\n  - metric: x\n    triggers:\n      - threshold: lots\n        to: [a@example.com]\n",
    )
    .unwrap();
    let out = hawkeye(&["check", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains(&format!("{}:5:", bad.display())), "{t}");
}

#[test]
fn the_demo_shows_the_alert_email_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    // From a directory without monitors.yaml: the built-in copy is used.
    let out = Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .arg("demo")
        .current_dir(dir.path())
        .env_remove("HAWKEYE_SOCKET")
        .env_remove("MONITOR_CONFIG_FILE")
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("To:      oncall@example.com"), "{t}");
    assert!(t.contains("Subject: 4xx errors exceeded"), "{t}");
    assert!(
        t.contains("Threshold breached for first degree sla. 5"),
        "{t}"
    );
}

/// A chunk of 1000 lines that are all rejected (the server answers it with
/// an error) is reported line by line, and the next chunks are still sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_goes_on_after_a_chunk_rejected_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (server, socket) = server_in(dir.path()).await;

    let mut lines: Vec<String> = (0..1000).map(|i| format!("bad line {i}")).collect();
    lines.extend((0..500).map(|_| "chunked.hits:1|c".to_string()));
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = run_on("send", &socket, &lines).await;
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("accepted 500, rejected 1000"), "{t}");
    assert!(t.contains("rejected line 1000: \"bad line 999\""), "{t}");

    let mut conn = hawkeye_client::rpc::RpcConnection::connect(&socket)
        .await
        .unwrap();
    let value = conn
        .query(&hawkeye_protocol::jsonrpc::QueryParams {
            metric: "chunked.hits".into(),
            window: serde_json::json!("1h"),
            agg: Some("sum".into()),
            tags: None,
            kind: None,
        })
        .await
        .unwrap()
        .value;
    assert_eq!(value, Some(500.0));
    server.shutdown().await;
}

/// `hawkeye query --range`: a sparkline with a blank for the minute
/// without data, min, max and last; `--json` prints the points; a range
/// of too many steps is a one-line error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_range_draws_a_sparkline_and_prints_points() {
    let dir = tempfile::tempdir().unwrap();
    let (server, socket) = server_in(dir.path()).await;
    // 1, 2 and 4 a second in three past minutes, none in the one between.
    let m0 = (unix_now() / 60 - 5) * 60;
    let lines: Vec<String> = [(m0, 1), (m0 + 60, 2), (m0 + 180, 4)]
        .iter()
        .flat_map(|(minute, n)| (0..60).map(move |s| format!("cli.range:{n}|c|T{}", minute + s)))
        .collect();
    assert_eq!(send_lines(&socket, &lines).await, lines.len());

    let range = |extra: &[&'static str]| [&["cli.range", "--range", "10m"], extra].concat();
    let out = query(&socket, &range(&["--step", "1m"])).await;
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0], "cli.range over 10m, one point per 60s", "{t}");
    // From the first minute with data to the last: 60, 120, gap, 240.
    assert_eq!(lines[1], "▁▃ █", "{t}");
    assert!(
        lines[2].starts_with("min 60  max 240  last 240 (at "),
        "{t}"
    );

    let out = query(&socket, &range(&["--step", "60", "--json"])).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        json,
        serde_json::json!({
            "points": [[m0, 60.0], [m0 + 60, 120.0], [m0 + 180, 240.0]],
            "step_secs": 60
        })
    );

    let out = query(&socket, &range(&["--step", "1s", "--agg", "rate"])).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = query(&socket, &range(&["--step", "0"])).await;
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("step: must be at least 1s"), "{t}");
    assert_eq!(t.trim().lines().count(), 1, "{t}");
    server.shutdown().await;
}

/// `hawkeye query --window 7d`: a window longer than the per-second
/// retention reads the per-minute rollups, here of a point backfilled
/// three days ago (docs/storage.md, "Tiers").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_reads_a_week_back() {
    let dir = tempfile::tempdir().unwrap();
    let (server, socket) = server_in(dir.path()).await;
    let lines = vec![
        format!("cli.week:7|c|T{}", unix_now() - 3 * 86_400),
        "cli.week:1|c".to_string(),
    ];
    assert_eq!(send_lines(&socket, &lines).await, 2);
    let out = query(&socket, &["cli.week", "--window", "7d", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"value":8.0,"window_secs":604800}"#
    );
    server.shutdown().await;
}
