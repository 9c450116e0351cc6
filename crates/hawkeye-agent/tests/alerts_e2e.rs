//! End to end, one test per promise of `docs/alerts.md`, each with its own
//! real redis-server, `hawkeye-server`, SMTP server (aiosmtpd) and
//! `hawkeye-agent` processes (so the tests run in parallel). Agents check
//! every second; tests wait for mails to arrive and for agents to log the
//! ticks they evaluate, never on fixed sleeps. Where a test paces the
//! events it sends, the pacing is the scenario (a gauge reported every 3
//! s), not synchronisation.

mod common;

use std::time::Duration;

use common::stack::{subjects, ticks, Stack, DEADLINE};
use hawkeye_testkit::smtp_server::{SmtpServer, StallingRelay};

fn gauge_monitor(metric: &str, threshold: u32) -> String {
    format!(
        "version: 1
monitors:
  - metric: {metric}
    type: g
    interval: 1s
    triggers:
      - threshold: {threshold}
        run_every: 1h
        send_resolved: true
        to: [oncall@example.com]
"
    )
}

fn counter_monitor(extra_monitor: &str, extra_trigger: &str, window: &str) -> String {
    format!(
        "version: 1
monitors:
  - metric: errors
    interval: 1s
    window: {window}
{extra_monitor}    subject: errors {{{{ value }}}}
    triggers:
      - threshold: 1
        run_every: 1h
        send_resolved: true
{extra_trigger}        to: [oncall@example.com]
"
    )
}

#[test]
fn a_sparse_gauge_sends_one_mail() {
    let stack = Stack::start(&gauge_monitor("queue.depth", 100));
    let agent = stack.agent("agent");
    // Reported every 3 s, checked every second: most windows hold no sample.
    for _ in 0..4 {
        stack.send(&["queue.depth:500|g"]);
        std::thread::sleep(Duration::from_secs(3));
    }
    ticks(&agent, 3);
    let mails = stack.smtp.messages();
    assert_eq!(
        subjects(&mails).len(),
        1,
        "one breach, one mail: {:?}",
        subjects(&mails)
    );
    assert!(!mails[0].subject().starts_with("[RESOLVED]"));
}

#[test]
fn editing_the_threshold_keeps_the_alert() {
    let mut stack = Stack::start(&gauge_monitor("temperature", 30));
    let agent = stack.agent("agent");
    stack.send(&["temperature:50|g"]);
    assert_eq!(stack.mails(1).len(), 1);
    // Still breaching the new threshold: the same alert, no second mail.
    std::fs::write(&stack.monitors, gauge_monitor("temperature", 40)).unwrap();
    agent.signal(libc::SIGHUP);
    assert!(agent.wait_for_lines("monitors reloaded", 1, DEADLINE));
    ticks(&agent, 3);
    assert_eq!(
        stack.smtp.messages().len(),
        1,
        "{:?}",
        subjects(&stack.smtp.messages())
    );
    // No longer breaching: resolved, once.
    std::fs::write(&stack.monitors, gauge_monitor("temperature", 100)).unwrap();
    agent.signal(libc::SIGHUP);
    assert!(agent.wait_for_lines("monitors reloaded", 2, DEADLINE));
    let mails = stack.mails(2);
    ticks(&agent, 3);
    let all = subjects(&stack.smtp.messages());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[1].starts_with("[RESOLVED]"), "{all:?}");
    assert!(
        mails[1].body().contains("no longer >= 100"),
        "{}",
        mails[1].body()
    );
    stack.smtp.stop();
}

#[test]
fn a_flapping_value_with_keep_firing_for_mails_once_and_resolves_once() {
    let stack = Stack::start(&counter_monitor("", "        keep_firing_for: 4s\n", "1s"));
    let agent = stack.agent("agent");
    // One event every 2 s: the one-second windows alternate between 1 and 0.
    for _ in 0..6 {
        stack.send(&["errors:1|c"]);
        std::thread::sleep(Duration::from_secs(2));
    }
    let mails = stack.mails(2);
    ticks(&agent, 3);
    let all = subjects(&stack.smtp.messages());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all[0].starts_with("errors "), "{all:?}");
    assert!(all[1].starts_with("[RESOLVED]"), "{all:?}");
    assert!(mails[1].body().contains("fired for"), "{}", mails[1].body());
}

#[test]
fn a_silence_made_with_the_cli_holds_mail_until_it_is_expired() {
    let stack = Stack::start(&counter_monitor("    id: errors-monitor\n", "", "60s"));
    let out = stack.cli(&[
        "silence",
        "add",
        "--metric",
        "errors",
        "--monitor",
        "errors-monitor",
        "--for",
        "1h",
        "--reason",
        "deploying",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 16, "the id alone: {id:?}");
    let list = stack.cli(&["silence", "list"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains(&id)
            && listed.contains("deploying")
            && listed.contains("monitor=errors-monitor"),
        "{listed}"
    );

    let agent = stack.agent("agent");
    stack.send(&["errors:5|c"]);
    ticks(&agent, 4);
    assert!(
        stack.smtp.messages().is_empty(),
        "silenced: {:?}",
        subjects(&stack.smtp.messages())
    );

    let out = stack.cli(&["silence", "expire", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Still firing when the silence ends: it mails now.
    let mails = stack.mails(1);
    assert_eq!(subjects(&mails), ["errors 5"]);
    let out = stack.cli(&["silence", "expire", &id]);
    assert_eq!(out.status.code(), Some(1), "already expired");
}

#[test]
fn a_stalled_relay_times_out_and_the_mail_is_sent_when_a_relay_answers() {
    let stack = Stack::start(&counter_monitor("", "", "60s"));
    let relay = StallingRelay::start();
    let port = relay.port();
    let agent = stack.agent_on("agent", port, &[("SMTP_TIMEOUT", "1s")]);
    stack.send(&["errors:3|c"]);
    assert!(relay.wait_greeted(1, DEADLINE) >= 1);
    assert!(
        agent.wait_for_line("no answer within 1s (SMTP_TIMEOUT)", DEADLINE),
        "the stalled attempt times out"
    );
    drop(relay);
    let smtp = SmtpServer::start_on(port);
    let mails = smtp.wait_for(1, DEADLINE);
    assert_eq!(subjects(&mails), ["errors 3"]);
    ticks(&agent, 3);
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn mail_left_by_a_killed_agent_is_sent_by_the_next_one() {
    let stack = Stack::start(&counter_monitor("", "", "60s"));
    // The first agent cannot reach its relay: the mail stays in the outbox.
    // Killed while it holds the entry, the entry waits for its lease (made
    // short here) before another agent takes it.
    let mut first = stack.agent_on("first", SmtpServer::unused_port(), &[("MAIL_LEASE", "3s")]);
    stack.send(&["errors:2|c"]);
    assert!(first.wait_for_line("alert recorded in the outbox", DEADLINE));
    assert!(first.wait_for_line("cannot send mail", DEADLINE));
    first.signal(libc::SIGKILL);
    assert!(first.wait_exit(DEADLINE).is_some());
    let second = stack.agent("second");
    let mails = stack.mails(1);
    ticks(&second, 3);
    assert_eq!(
        subjects(&stack.smtp.messages()),
        ["errors 2"],
        "delivered once, not fired again"
    );
    let id = mails[0].header("Message-ID").unwrap_or_default();
    assert!(id.ends_with(".firing@hawkeye>"), "{id}");
}

#[test]
fn two_agents_with_an_outbox_send_each_mail_once() {
    let stack = Stack::start(&counter_monitor("", "", "3s"));
    let a = stack.agent("a");
    let b = stack.agent("b");
    stack.send(&["errors:2|c"]);
    let mails = stack.mails(2);
    ticks(&a, 3);
    ticks(&b, 3);
    let all = subjects(&stack.smtp.messages());
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0], "errors 2");
    assert!(all[1].starts_with("[RESOLVED]"), "{all:?}");
    assert_ne!(mails[0].header("Message-ID"), mails[1].header("Message-ID"));
}

#[test]
fn redis_restarted_empty_does_not_start_the_episode_again() {
    let mut stack = Stack::start(&gauge_monitor("temperature", 30));
    let agent = stack.agent("agent");
    stack.send(&["temperature:50|g"]);
    assert_eq!(stack.mails(1).len(), 1);
    stack.redis.restart();
    // Still breaching: the reporter sends again to the empty Redis.
    stack.send(&["temperature:50|g"]);
    assert!(agent.wait_for_line("the store lost its data", DEADLINE));
    // Past the outage's grace period, with data back: still the same episode.
    ticks(&agent, 8);
    let all = subjects(&stack.smtp.messages());
    assert_eq!(all.len(), 1, "no second firing mail: {all:?}");
}
