//! `hawkeye backtest` against what a live agent really sent: a real
//! redis-server, the `hawkeye-server` and `hawkeye-agent` binaries and a
//! real SMTP server (aiosmtpd). The agent checks every second over a
//! pattern that breaches and recovers (episodes with `for`,
//! `keep_firing_for`, a recovery threshold, two levels with inhibition, a
//! grouped monitor); then the backtest over the same period must list
//! exactly the mail the agent sent (same `Message-ID`s, subjects and
//! recipients) at the slots the agent recorded in its history. The events
//! are paced (that is the scenario); the test waits on the agent's log
//! and on mail, never on fixed sleeps.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::processes::{clean_command, cli_binary};
use common::stack::{ticks, Stack, DEADLINE};
use serde_json::Value;

const MONITORS: &str = "\
version: 1
monitors:
  - id: errors
    metric: errors
    interval: 1s
    window: 1s
    triggers:
      - id: warn
        threshold: 2
        for: 2
        keep_firing_for: 2s
        run_every: 1h
        send_resolved: true
        to: [oncall@example.com, team@example.com]
      - id: page
        threshold: 10
        for: 2
        run_every: 1h
        send_resolved: true
        to: [oncall@example.com]
  - id: routes
    metric: errors
    interval: 2s
    window: 2s
    group_by: [route]
    triggers:
      - threshold: 6
        recovery_threshold: 2
        run_every: 1h
        send_resolved: true
        to: [routes@example.com]
";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// `line` four times a second for `seconds` (the pattern's pace).
fn send_for(stack: &Stack, line: &str, seconds: u64) {
    for _ in 0..seconds * 4 {
        stack.send(&[line]);
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Quiet for `seconds`: the agent's ticks mark the time.
fn quiet(agent: &common::processes::Proc, seconds: usize) {
    ticks(agent, seconds);
}

/// Runs `hawkeye ARGS` with the agent's settings (the same service,
/// environment and flush interval give the same keys and slots).
fn hawkeye(stack: &Stack, args: &[&str]) -> String {
    let out = clean_command(&cli_binary())
        .args(args)
        .env("REDIS_URL", stack.redis.url())
        .env("MONITOR_CONFIG_FILE", &stack.monitors)
        .env("HAWKEYE_FLUSH_INTERVAL", "100ms")
        .env("SERVICE_NAME", "shop")
        .env("ENVIRONMENT", "e2e")
        .env("MAIL_FROM", "hawkeye@example.com")
        .current_dir(stack.dir.path())
        .output()
        .expect("run hawkeye");
    assert!(
        out.status.success(),
        "hawkeye {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A notification as both sides can name it: slot, trigger key, notice,
/// and who was mailed.
type Sent = (u64, String, String, Vec<String>);

fn strings(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    s.sort();
    s
}

#[test]
fn the_backtest_lists_exactly_what_the_live_agent_mailed() {
    let stack = Stack::start(MONITORS);
    let since = now_ms();
    let mut agent = stack.agent("agent");

    // Route /a: level 1 and the route fire, then everything resolves.
    send_for(&stack, "errors:1|c|#route:/a", 5);
    quiet(&agent, 6);
    // Route /b, 16 a second: level 2 fires too (level 1 then mails only
    // team: oncall hears from level 2), and resolves before level 1.
    send_for(&stack, "errors:4|c|#route:/b", 5);
    quiet(&agent, 6);
    // Route /c flapping: a one-second gap is shorter than keep_firing_for.
    send_for(&stack, "errors:1|c|#route:/c", 2);
    quiet(&agent, 1);
    send_for(&stack, "errors:1|c|#route:/c", 2);
    quiet(&agent, 8);
    agent.signal(libc::SIGTERM);
    assert!(agent.wait_exit(DEADLINE).is_some(), "the agent stopped");
    let until = now_ms();

    let out = hawkeye(
        &stack,
        &[
            "backtest",
            "--json",
            "--since",
            &rfc3339(since),
            "--until",
            &rfc3339(until),
        ],
    );
    eprintln!("[backtest]\n{out}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let replayed: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "notification")
        .collect();

    // The mail: every notice the backtest lists was mailed, and nothing else.
    let mails = stack.smtp.wait_for(replayed.len(), DEADLINE);
    let mailed: BTreeMap<String, (String, Vec<String>)> = mails
        .iter()
        .map(|m| {
            let id = m.header("Message-ID").unwrap_or_default();
            let mut to = m.rcpt_to();
            to.sort();
            let id = id.trim_matches(['<', '>']).to_string();
            (id, (m.subject(), to))
        })
        .collect();
    let listed: BTreeMap<String, (String, Vec<String>)> = replayed
        .iter()
        .map(|n| {
            let mut to = strings(&n["to"]);
            to.extend(strings(&n["cc"]));
            to.extend(strings(&n["bcc"]));
            to.sort();
            let id = n["message_id"].as_str().expect("mailed").to_string();
            (id, (n["subject"].as_str().unwrap().to_string(), to))
        })
        .collect();
    let skipped = agent
        .lines()
        .iter()
        .any(|l| l.contains("checks are being skipped"));
    let why = if skipped {
        " (the live agent fell behind and skipped checks: the machine stalled)"
    } else {
        ""
    };
    assert_eq!(mails.len(), mailed.len(), "each Message-ID once");
    assert_eq!(listed, mailed, "backtest vs mail{why}");

    // The slots: those the agent recorded in its history.
    let history: Vec<Value> = serde_json::from_str(&hawkeye(
        &stack,
        &["alerts", "--history", "--since", "1h", "--json"],
    ))
    .expect("the history as JSON");
    let sent = |v: &Value, to: &str| -> Sent {
        (
            v["slot_ms"]
                .as_u64()
                .or_else(|| v["slot"].as_u64())
                .expect("a slot"),
            v["key"].as_str().unwrap().to_string(),
            v["notice"].as_str().unwrap().to_string(),
            strings(&v[to]),
        )
    };
    let mut live: Vec<Sent> = history
        .iter()
        .filter(|h| h["notice"].is_string())
        .map(|h| sent(h, "mail_to"))
        .collect();
    let mut backtest: Vec<Sent> = replayed.iter().map(|n| sent(n, "to")).collect();
    live.sort();
    backtest.sort();
    assert_eq!(backtest, live, "backtest vs the agent's history{why}");

    // The pattern did what it is for.
    let count = |monitor: &str, level: u64, notice: &str| {
        replayed
            .iter()
            .filter(|n| n["monitor"] == monitor && n["level"] == level && n["notice"] == notice)
            .count()
    };
    assert!(count("errors", 1, "firing") >= 3, "{out}");
    assert!(count("errors", 1, "resolved") >= 3, "{out}");
    assert!(count("errors", 2, "firing") >= 1, "{out}");
    assert!(count("errors", 2, "resolved") >= 1, "{out}");
    assert!(count("routes", 1, "firing") >= 3, "{out}");
    assert!(count("routes", 1, "resolved") >= 3, "{out}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["notifications"], replayed.len());
}
