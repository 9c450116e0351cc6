//! `group_by`: one read for every group, a state per group, groups named
//! in mail, groups that go away resolved, `max_groups`. Run through the
//! monitor unit tests (the real engine on a simulated clock) and, for
//! what they cannot see, the engine itself.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hawkeye_agent::parse_monitors;
use hawkeye_protocol::MetricKind;
use hawkeye_store::Aggregate;

const HOUR: Duration = Duration::from_secs(3600);

const MONITORS: &str = "\
version: 1
monitors:
  - id: errors
    metric: http.errors
    interval: 10s
    group_by: [route]
    group_stale_after: 30s
    triggers:
      - {threshold: 5, send_resolved: true, to: [oncall@example.com]}
  - id: depth
    metric: queue.depth
    type: g
    interval: 10s
    gauge_stale_after: 10s
    group_by: [queue]
    group_stale_after: 30s
    subject: '{{ labels.queue }} at {{ value }} ({{ group }})'
    triggers:
      - {threshold: 100, missing: breach, send_resolved: true, to: [oncall@example.com]}
  - id: capped
    metric: http.capped
    interval: 10s
    group_by: [route]
    max_groups: 2
    triggers:
      - {threshold: 1, to: [oncall@example.com]}
";

async fn run(test: &str) -> String {
    let report = monitor_tests(MONITORS, &format!("tests:\n{test}"))
        .await
        .unwrap();
    let text = report.render();
    assert!(report.passed(), "{text}");
    text
}

#[tokio::test]
async fn each_group_fires_and_resolves_on_its_own_naming_its_group() {
    run("  - interval: 10s
    input:
      - {metric: http.errors, tags: {route: /a}, values: '0 10 10'}
      - {metric: http.errors, tags: {route: /b}, values: '0 10 10 10 10 10'}
      - {metric: http.errors, tags: {route: /c}, values: '0 1 1 1 1 1'}
    expect:
      - at: 20s
        alerts:
          - {monitor: errors, group: {route: /a}}
          - {monitor: errors, group: {route: /b}}
        mails:
          - '[hawkeye/dev] http.errors route=/a >= 5 (level 1)'
          - '[hawkeye/dev] http.errors route=/b >= 5 (level 1)'
      - at: 30s
        alerts:
          - {monitor: errors, group: {route: /a}}
          - {monitor: errors, group: {route: /b}}
        mails: []
      - at: 40s
        alerts:
          - {monitor: errors, group: {route: /a}, status: resolved}
          - {monitor: errors, group: {route: /b}}
        mails: ['[RESOLVED] [hawkeye/dev] http.errors route=/a >= 5 (level 1)']
      - at: 1m10s
        alerts: [{monitor: errors, group: {route: /b}, status: resolved}]
")
    .await;
}

#[tokio::test]
async fn a_group_that_goes_away_resolves_after_group_stale_after() {
    // `missing: breach` keeps a group without data firing: only its going
    // stale resolves it.
    run("  - interval: 10s
    input:
      - {metric: queue.depth, type: g, tags: {queue: q1}, values: '150'}
      - {metric: queue.depth, type: g, tags: {queue: q2}, values: '1x9'}
    expect:
      - at: 10s
        alerts: [{monitor: depth, group: {queue: q1}}]
        mails: ['q1 at 150 (queue=q1)']
      - at: 30s
        alerts: [{monitor: depth, group: {queue: q1}}]
        mails: []
      - at: 40s
        alerts: [{monitor: depth, group: {queue: q1}, status: resolved}]
        mails: ['[RESOLVED] [hawkeye/dev] queue.depth queue=q1 >= 100 (level 1)']
      - at: 1m
        alerts: []
        mails: []
")
    .await;
}

/// A group removed once stale, and a new one made after it, change which
/// group each entry of the engine is: the new group reads its own state
/// (not the removed group's or its neighbour's), so it mails its firing
/// while the neighbour keeps firing without mail.
#[tokio::test]
async fn a_new_group_after_a_removed_one_reads_its_own_state() {
    run("  - interval: 10s
    input:
      - {metric: queue.depth, type: g, tags: {queue: q1}, values: '150 150'}
      - {metric: queue.depth, type: g, tags: {queue: q2}, values: '150x14'}
      - {metric: queue.depth, type: g, tags: {queue: q3}, values: '_x9 150x5'}
    expect:
      - at: 10s
        alerts:
          - {monitor: depth, group: {queue: q1}}
          - {monitor: depth, group: {queue: q2}}
        mails: ['q1 at 150 (queue=q1)', 'q2 at 150 (queue=q2)']
      - at: 1m40s
        alerts:
          - {monitor: depth, group: {queue: q2}}
          - {monitor: depth, group: {queue: q3}}
        mails: ['q3 at 150 (queue=q3)']
")
    .await;
}

#[tokio::test]
async fn groups_past_max_groups_are_not_checked() {
    run("  - interval: 10s
    input:
      - {metric: http.capped, tags: {route: /c}, values: '0 5'}
      - {metric: http.capped, tags: {route: /a}, values: '0 5'}
      - {metric: http.capped, tags: {route: /b}, values: '0 5'}
    expect:
      - at: 20s
        alerts:
          - {monitor: capped, group: {route: /a}}
          - {monitor: capped, group: {route: /b}}
")
    .await;
}

/// One window read per tick whatever the number of groups; the states are
/// per group; `max_groups` counts what it leaves out.
#[tokio::test]
async fn one_read_for_all_groups_and_a_count_of_those_left_out() {
    let file = parse_monitors(MONITORS, "m.yaml", HOUR).unwrap();
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file, store.clone(), &q, t0);
    for route in ["/a", "/b", "/c", "/d"] {
        for name in ["http.errors", "http.capped"] {
            let tags = [("route", route)];
            write(
                &*store,
                MetricKind::Counter,
                name,
                &tags,
                secs(t0 + 10_000),
                Aggregate::Counter(9.0),
            )
            .await;
        }
    }
    e.tick(t0).await;
    let before = store.query_many.load(Ordering::SeqCst);
    let report = e.tick(t0 + 10_000).await;
    assert_eq!(
        store.query_many.load(Ordering::SeqCst) - before,
        1,
        "one window read"
    );
    assert_eq!(
        report.store_calls,
        2 + report.transitions + 1,
        "windows, states, one commit per transition, the history: {report:?}"
    );
    assert_eq!(
        report.monitors,
        4 + 2,
        "four error groups and two capped ones"
    );
    assert_eq!(e.stats().groups_dropped, 2, "two capped groups left out");
    let keys: Vec<String> = e.alert_keys().into_iter().map(|k| k.key).collect();
    assert!(
        keys.contains(&"v2|shop|test|id=errors|#1|g=route=/c".to_string()),
        "{keys:?}"
    );
    let firing: Vec<String> = report.notified.iter().map(|n| n.subject.clone()).collect();
    assert_eq!(firing.len(), 6, "{firing:?}");
}

/// On Redis, through a restarted agent: the groups' states are in the
/// store, so a new engine on the same data mails nothing twice and
/// resolves the group that recovers.
#[tokio::test]
async fn group_states_live_in_redis_across_a_restart() {
    let redis = hawkeye_testkit::RedisServer::start();
    let store = redis_store(&redis).await;
    let file = parse_monitors(MONITORS, "m.yaml", HOUR).unwrap();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let errors = |route: &'static str, at: u64, n: f64| {
        let store = store.clone();
        async move {
            let tags = [("route", route)];
            write(
                &*store,
                MetricKind::Counter,
                "http.errors",
                &tags,
                secs(at),
                Aggregate::Counter(n),
            )
            .await;
        }
    };
    for route in ["/a", "/b", "/c"] {
        errors(route, t0 + 10_000, if route == "/c" { 1.0 } else { 9.0 }).await;
    }
    let mut e = engine(&file, store.clone(), &q, t0);
    e.tick(t0).await;
    let firing: Vec<String> = e
        .tick(t0 + 10_000)
        .await
        .notices
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(firing.len(), 2, "{firing:?}");
    drop(e);
    // A new agent: /a still breaches, /b is back to normal.
    errors("/a", t0 + 20_000, 9.0).await;
    errors("/b", t0 + 20_000, 1.0).await;
    let mut e = engine(&file, store.clone(), &q, t0 + 20_000);
    let report = e.tick(t0 + 20_000).await;
    let subjects: Vec<&str> = report.notices.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        ["[RESOLVED] [shop/test] http.errors route=/b >= 5 (level 1)"],
        "no second firing for /a"
    );
    q.shutdown(Duration::from_secs(5)).await;
    let mut mailed = mailer.subjects();
    mailed.sort();
    assert_eq!(
        mailed,
        [
            "[RESOLVED] [shop/test] http.errors route=/b >= 5 (level 1)",
            "[shop/test] http.errors route=/a >= 5 (level 1)",
            "[shop/test] http.errors route=/b >= 5 (level 1)",
        ]
    );
}

#[test]
fn group_settings_are_checked() {
    let bad = "\
version: 1
monitors:
  - metric: x
    group_by: [route, route, 'a:b']
    max_groups: 0
    triggers: [{threshold: 1, to: [a@example.com]}]
";
    let e = parse_monitors(bad, "m.yaml", HOUR).unwrap_err().to_string();
    assert!(e.contains("m.yaml:4:"), "{e}");
    assert!(e.contains("tag \"route\" is named twice"), "{e}");
    assert!(e.contains("invalid tag name \"a:b\""), "{e}");
    assert!(
        e.contains("max_groups must be from 1 to 100000, not 0"),
        "{e}"
    );
}

/// A group that goes away while no agent runs: the agent started later
/// finds its state in the store, checks it without data and resolves it.
#[tokio::test]
async fn a_group_gone_while_the_agent_was_down_resolves_after_a_restart() {
    let file = parse_monitors(MONITORS, "m.yaml", HOUR).unwrap();
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    for route in ["/a", "/b"] {
        let tags = [("route", route)];
        write(
            &*store,
            MetricKind::Counter,
            "http.errors",
            &tags,
            secs(t0),
            Aggregate::Counter(9.0),
        )
        .await;
    }
    let mut e = engine(&file, store.clone(), &q, t0);
    assert_eq!(e.tick(t0).await.notices.len(), 2);
    drop(e);
    // No more errors; a new agent a minute later.
    let later = t0 + 60_000;
    let mut e = engine(&file, store.clone(), &q, later);
    let report = e.tick(later).await;
    let mut subjects: Vec<String> = report.notices.into_iter().map(|(s, _)| s).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "[RESOLVED] [shop/test] http.errors route=/a >= 5 (level 1)",
            "[RESOLVED] [shop/test] http.errors route=/b >= 5 (level 1)",
        ]
    );
}
