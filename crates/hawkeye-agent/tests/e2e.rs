//! End to end with real processes: redis-server, the `hawkeye-server`
//! binary, the `hawkeye-agent` binary with `MAILER=smtp`, and a real SMTP
//! server (aiosmtpd). Metric events sent over the server's JSON-RPC socket
//! must produce, at the SMTP server: one alert mail with the rendered text,
//! nothing more inside `run_every`, a repeat after it, and a resolved mail
//! when the breach ends (`send_resolved`).
//!
//! Nothing here waits on a fixed sleep: the test waits for the lines the
//! programs print and for messages to appear in the SMTP server's directory,
//! each with a generous deadline, and asserts on what arrived, not on how
//! fast.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::processes::{agent_binary, clean_command, server_binary, Proc};
use hawkeye_testkit::smtp_server::{ReceivedMail, SmtpServer};
use hawkeye_testkit::RedisServer;

const DEADLINE: Duration = Duration::from_secs(60);

/// Interval 2 s, window 10 s: one burst of events breaches five checks in a
/// row, then the window moves past it and the alert resolves.
const MONITORS: &str = "\
version: 1
monitors:
  - metric: http.response.400
    type: c
    interval: 2
    window: 10s
    notifier: email
    subject: 4xx errors exceeded
    triggers:
      - threshold: 3
        run_every: \"3s\"
        send_resolved: true
        text: \"Threshold breached for first degree sla. {{ .count }}\"
        to:
          - oncall@example.com
";

const RUN_EVERY_MS: f64 = 3000.0;

fn send_metrics(socket: &Path, lines: &[&str]) -> serde_json::Value {
    let mut stream = UnixStream::connect(socket).expect("connect to hawkeye-server");
    let request =
        serde_json::json!({"jsonrpc": "2.0", "method": "metric.send", "params": lines, "id": 1});
    writeln!(stream, "{request}").unwrap();
    let mut response = String::new();
    BufReader::new(&stream).read_line(&mut response).unwrap();
    serde_json::from_str(&response).expect("a JSON-RPC response line")
}

/// The agent's "Checked at" line: when the check that sent the mail ran.
fn checked_at_ms(mail: &ReceivedMail) -> f64 {
    let body = mail.body();
    let line = body
        .lines()
        .find_map(|l| l.strip_prefix("Checked at:"))
        .unwrap_or_else(|| panic!("no Checked at line in {body}"));
    let t = humantime::parse_rfc3339(line.trim()).expect("rfc3339");
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

#[test]
fn events_breaching_a_threshold_mail_once_repeat_and_resolve() {
    let redis = RedisServer::start();
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let monitors = dir.path().join("monitors.yaml");
    std::fs::write(&monitors, MONITORS).unwrap();
    let socket = dir.path().join("hawkeye.sock");

    let mut server_cmd = clean_command(&server_binary());
    server_cmd
        .env("HAWKEYE_SOCKET", &socket)
        .env("REDIS_URL", redis.url())
        .env("HAWKEYE_FLUSH_INTERVAL", "100ms")
        .env("RUST_LOG", "info")
        .current_dir(dir.path());
    let mut server = Proc::spawn("server", server_cmd);
    assert!(
        server.wait_for_line("listening", DEADLINE),
        "hawkeye-server did not start"
    );

    let mut agent_cmd = clean_command(&agent_binary());
    agent_cmd
        .env("MONITOR_CONFIG_FILE", &monitors)
        .env("REDIS_URL", redis.url())
        .env("HAWKEYE_FLUSH_INTERVAL", "100ms")
        .env("MAILER", "smtp")
        .env("SMTP_HOST", smtp.host())
        .env("SMTP_PORT", smtp.port().to_string())
        .env("SMTP_TLS", "none")
        .env("MAIL_FROM", "hawkeye@example.com")
        .env("SERVICE_NAME", "shop")
        .env("ENVIRONMENT", "e2e")
        .env("RUST_LOG", "info")
        .current_dir(dir.path());
    let mut agent = Proc::spawn("agent", agent_cmd);
    assert!(
        agent.wait_for_line("agent started", DEADLINE),
        "hawkeye-agent did not start"
    );

    let sent_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let response = send_metrics(&socket, &["http.response.400:1|c"; 5]);
    assert_eq!(response["result"]["accepted"], 5, "{response}");

    // The whole story: firing, repeats while the burst is in the window,
    // resolved once it has left it.
    let resolved =
        |mails: &[ReceivedMail]| mails.iter().any(|m| m.subject().starts_with("[RESOLVED]"));
    let until = std::time::Instant::now() + DEADLINE;
    let mut mails = smtp.messages();
    while !resolved(&mails) && std::time::Instant::now() < until {
        mails = smtp.wait_for(
            mails.len() + 1,
            until.saturating_duration_since(std::time::Instant::now()),
        );
    }
    assert!(
        resolved(&mails),
        "no resolved mail; got {:#?}",
        mails.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );

    let first = &mails[0];
    assert_eq!(first.subject(), "4xx errors exceeded");
    let body = first.body();
    assert!(
        body.starts_with("Threshold breached for first degree sla. 5\n"),
        "{body}"
    );
    assert_eq!(first.rcpt_to(), ["oncall@example.com"]);
    assert_eq!(first.header("From").as_deref(), Some("hawkeye@example.com"));
    if let Some(received) = first.received_at() {
        eprintln!(
            "alert latency: {:.3} s from sending the events",
            received - sent_at
        );
    }

    // Then repeats, then exactly one resolved mail, last.
    let (last, alerts) = mails.split_last().unwrap();
    assert!(
        last.subject().starts_with("[RESOLVED] 4xx errors exceeded"),
        "{}",
        last.subject()
    );
    assert!(last.body().starts_with("Resolved: "), "{}", last.body());
    assert!(
        alerts.len() >= 2,
        "a repeat after run_every: {:#?}",
        mails.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    for repeat in &alerts[1..] {
        assert_eq!(repeat.subject(), "[REPEAT] 4xx errors exceeded");
        assert!(
            repeat.body().contains("Still firing since"),
            "{}",
            repeat.body()
        );
    }
    // No mail inside run_every: the checks that sent consecutive alerts are
    // at least run_every apart (the agent's own clock, not delivery times).
    for pair in alerts.windows(2) {
        let gap = checked_at_ms(&pair[1]) - checked_at_ms(&pair[0]);
        assert!(
            gap >= RUN_EVERY_MS,
            "two alerts {gap} ms apart, inside run_every"
        );
    }

    // Both programs stop cleanly.
    agent.signal(libc::SIGTERM);
    server.signal(libc::SIGTERM);
    assert!(agent.wait_exit(DEADLINE).expect("agent exits").success());
    assert!(server.wait_exit(DEADLINE).expect("server exits").success());
    assert!(!socket.exists(), "the server removes its socket");
    assert_eq!(smtp.messages().len(), mails.len(), "nothing more was sent");
}
