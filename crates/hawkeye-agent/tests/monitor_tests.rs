//! `monitor_tests`: the unit tests of monitors files run the real
//! evaluation on a simulated clock (docs/monitor-tests.md).

mod common;

use std::time::Duration;

use hawkeye_agent::monitor_tests::{run_file, TestFileError, TestReport};

const HOUR: Duration = Duration::from_secs(3600);

const MONITORS: &str = "\
version: 1
monitors:
  - id: queue
    metric: queue.depth
    type: g
    interval: 10s
    tags: {queue: mail}
    subject: 'queue {{ value }}'
    triggers:
      - {threshold: 100, for: 2, send_resolved: true, to: [a@example.com]}
  - metric: checkout.latency
    type: ms
    aggregate: max
    interval: 10s
    notifier: log
    triggers:
      - {threshold: 500, op: '>', to: [a@example.com]}
";

async fn run(test: &str) -> Result<TestReport, TestFileError> {
    common::monitor_tests(MONITORS, test).await
}

#[tokio::test]
async fn gauges_for_and_send_resolved_follow_the_agent() {
    let report = run("\
service: shop
tests:
  - interval: 10s
    input:
      - {metric: queue.depth, type: g, tags: {queue: mail}, values: '150 150 150 50'}
      - {metric: queue.depth, type: g, tags: {queue: other}, values: '9999x3'}
    expect:
      - {at: 10s, alerts: [], mails: []}
      - {at: 20s, alerts: [{monitor: queue}], mails: ['queue 150']}
      - {at: 30s, alerts: [{monitor: queue.depth}]}
      - {at: 40s, alerts: [{monitor: queue, status: resolved}], mails: ['[RESOLVED] queue 50']}
")
    .await
    .unwrap();
    assert!(report.passed(), "{}", report.render());
}

#[tokio::test]
async fn a_wrong_expectation_fails_and_says_how() {
    let report = run("\
tests:
  - name: latency
    interval: 10s
    input:
      - {metric: checkout.latency, type: ms, values: '_ 700 100'}
    expect:
      - {at: 20s, alerts: [], mails: ['[hawkeye/dev] checkout.latency > 500 (level 1)']}
      - {at: 30s, alerts: [{monitor: checkout.latency, status: resolved}], mails: []}
")
    .await
    .unwrap();
    assert!(!report.passed());
    let text = report.render();
    assert!(
        text.contains(
            "FAIL  latency  (- expected, not got; + got, not expected)\n    at 20s, alerts:\n      + checkout.latency level 1 firing\n"
        ),
        "{text}"
    );
    assert!(
        !text.contains("at 20s, mails"),
        "the mail was right: {text}"
    );
    assert!(!text.contains("at 30s"), "{text}");
    assert!(text.ends_with("1 tests, 0 passed, 1 failed\n"), "{text}");
}

#[tokio::test]
async fn files_that_make_no_sense_are_errors_naming_the_place() {
    let cases = [
        (
            "tests:\n  - expect: [{at: 1m}]\n    inputs: []\n",
            "unknown field `inputs`",
        ),
        (
            "tests:\n  - expect: [{at: 1m, alerts: [{monitor: nope}]}]\n",
            "test 1: at 1m: no monitor has the id or metric \"nope\"",
        ),
        (
            "tests:\n  - expect: [{at: 1m, alerts: [{monitor: queue, level: 3}]}]\n",
            "queue: level 3, but it has 1 trigger",
        ),
        (
            "tests:\n  - {name: long, interval: 10s, expect: [{at: 1000d}]}\n",
            "long: the expectations run 17280002 checks, more than 1000000",
        ),
        (
            "tests:\n  - input: [{metric: s, type: s, values: '1e12'}]\n    expect: [{at: 1m}]\n",
            "a set's value is its number of members",
        ),
        (
            "tests:\n  - {interval: 1500ms, expect: [{at: 1m}]}\n",
            "is not a whole number of seconds",
        ),
        (
            "tests:\n  - input: [{metric: x, type: q, values: '1'}]\n    expect: [{at: 1m}]\n",
            "type \"q\" is none of c, g, ms, h, d, s",
        ),
    ];
    for (test, message) in cases {
        let e = run(test).await.unwrap_err().to_string();
        assert!(e.contains(message), "{test}\n→ {e}");
    }
}

#[tokio::test]
async fn an_invalid_monitors_file_is_reported_as_the_agent_would() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("monitors.yaml"),
        "version: 1\nmonitors:\n  - metric: x\n    triggers: [{threshhold: 1, to: [a@b.c]}]\n",
    )
    .unwrap();
    let path = dir.path().join("t.yaml");
    std::fs::write(&path, "monitors: monitors.yaml\ntests: []\n").unwrap();
    let e = run_file(&path, HOUR).await.unwrap_err().to_string();
    assert!(e.contains("monitors.yaml:4"), "{e}");
    assert!(e.contains("threshhold"), "{e}");
}
