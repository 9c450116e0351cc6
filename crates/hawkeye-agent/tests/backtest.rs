//! The backtest as a library (`hawkeye_agent::backtest`), on the in-memory
//! store: what it lists, that silences are off, that nothing reaches the
//! store it reads, its bounds and errors. The comparison with a live agent,
//! with real processes, is in `backtest_e2e.rs`.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use hawkeye_agent::backtest::{backtest, BacktestError, BacktestOptions};
use hawkeye_agent::state::Notice;
use hawkeye_agent::{parse_monitors, MonitorsFile, Silence};
use hawkeye_store::{MemoryStore, Store};
use hawkeye_testkit::monitors::errors_monitor;

const S: u64 = 1000;

fn file(yaml: &str) -> MonitorsFile {
    parse_monitors(yaml, "test.yaml", Duration::from_secs(3600)).unwrap()
}

/// The `errors` monitor, firing after two breaching checks in a row and
/// kept firing 20 s after the last.
fn errors() -> MonitorsFile {
    file(&errors_monitor(&["for: 2", "keep_firing_for: 20s"]))
}

/// Half an hour ago, on a minute: slots of 10 s start there.
fn start() -> u64 {
    base_ms() - 30 * 60 * S
}

/// 5 errors in the windows of the checks at 10 s, 20 s and 30 s after
/// `t0`, nothing else.
async fn three_breaches(store: &dyn Store, t0: u64) {
    for k in 0..3 {
        count(store, "errors", (t0 / S) as i64 + 10 * k + 5, 5.0).await;
    }
}

fn options(t0: u64, until: u64) -> BacktestOptions {
    BacktestOptions::new(t0, until, settings())
}

#[tokio::test]
async fn lists_the_firing_and_the_resolved_at_their_slots_with_silences_off() {
    let store = memory();
    let t0 = start();
    three_breaches(&*store, t0).await;
    // A silence of the monitor in the store: the live agent would mail
    // nothing; the backtest shows what the rule itself does.
    let silence = Silence::new("errors", Default::default(), None, "test", t0, 3_600_000).unwrap();
    store
        .put_silence(&silence.id, &silence.to_json(), wall_ms() + 3_600_000)
        .await
        .unwrap();

    let report = backtest(&errors(), store.clone(), &options(t0, t0 + 120 * S))
        .await
        .unwrap();
    let got: Vec<(u64, &str, Notice, Option<f64>)> = report
        .notifications
        .iter()
        .map(|n| {
            (
                n.slot_ms - t0,
                n.trigger.as_deref().unwrap(),
                n.notice,
                n.value,
            )
        })
        .collect();
    // Breaching checks at 10 s and 20 s (`for: 2`): firing at 20 s. The
    // condition is false from 40 s; 20 s later (`keep_firing_for`) it
    // resolves.
    assert_eq!(
        got,
        [
            (20 * S, "warn", Notice::Firing, Some(5.0)),
            (60 * S, "warn", Notice::Resolved, Some(0.0)),
        ]
    );
    let firing = &report.notifications[0];
    assert_eq!(firing.monitor, "errors");
    assert_eq!(firing.to, ["oncall@example.com"]);
    assert!(
        firing
            .message_id
            .as_deref()
            .is_some_and(|id| id.ends_with(".firing@hawkeye")),
        "{:?}",
        firing.message_id
    );
    assert_eq!(report.checks, 13, "slots 0 s to 120 s");
    assert_eq!(report.per_monitor()[0].1.firing, 1);
    assert_eq!(report.per_monitor()[0].1.resolved, 1);
}

#[tokio::test]
async fn nothing_is_written_to_the_store_it_reads() {
    let store = memory();
    let t0 = start();
    three_breaches(&*store, t0).await;
    let report = backtest(&errors(), store.clone(), &options(t0, t0 + 120 * S))
        .await
        .unwrap();
    assert_eq!(report.notifications.len(), 2, "it did fire and resolve");
    assert_eq!(store.swaps.load(Ordering::SeqCst), 0, "no state written");
    assert_eq!(
        store.alert_states.load(Ordering::SeqCst),
        0,
        "no state read"
    );
    assert!(store.inner.alert_states("").await.unwrap().is_empty());
    let outbox = store
        .inner
        .claim_outbox(wall_ms() + 3_600_000, Duration::from_secs(1), 100)
        .await
        .unwrap();
    assert!(outbox.is_empty(), "{outbox:?}");
    assert!(store.inner.history("test", 0).await.unwrap().is_empty());
    assert!(store.inner.silences(wall_ms()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_step_checks_every_monitor_at_it_and_keeps_for_as_a_duration() {
    let store = memory();
    let t0 = start();
    three_breaches(&*store, t0).await;
    let mut o = options(t0, t0 + 120 * S);
    o.step = Some(Duration::from_secs(5));
    let report = backtest(&errors(), store.clone(), &o).await.unwrap();
    // Twice the checks; `for: 2` at 10 s is 4 checks at 5 s: the windows
    // of 10 s of the checks at 10, 15, 20, 25 s breach, firing at 25 s.
    assert_eq!(report.checks, 25);
    let firing = &report.notifications[0];
    assert_eq!(
        (firing.slot_ms - t0, firing.notice),
        (25 * S, Notice::Firing)
    );
    assert!(report.partial_windows.is_empty());
    o.step = Some(Duration::from_secs(20));
    let coarse = backtest(&errors(), store.clone(), &o).await.unwrap();
    assert_eq!(
        coarse.partial_windows,
        ["errors"],
        "10 s windows, 20 s step"
    );
}

#[tokio::test]
async fn the_end_is_the_last_slot_the_servers_have_flushed() {
    let store = memory();
    let t0 = start();
    // A server has flushed up to 40 s after the start: the check of the
    // slot at 41 s reads up to 40 s, the one at 50 s would read more.
    let flushed = (t0 / S) as i64 + 40;
    store
        .put_watermark(1, flushed, Duration::from_secs(60))
        .await
        .unwrap();
    let report = backtest(&errors(), store.clone(), &options(t0, t0 + 120 * S))
        .await
        .unwrap();
    assert_eq!(report.until_ms, t0 + 41 * S);
    assert_eq!(report.checks, 5, "slots 0 s to 40 s");
}

#[tokio::test]
async fn bounds_and_errors_are_clear() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(Duration::from_secs(3600)));
    let t0 = start();
    let f = errors();
    let err = |r: Result<_, BacktestError>| r.unwrap_err().to_string();

    let mut o = options(t0, t0 + 3600 * S);
    o.max_checks = 100;
    let e = err(backtest(&f, store.clone(), &o).await);
    // 30 minutes are flushed (no server: up to now), at 10 s.
    assert!(
        e.contains("more than the limit of 100") && e.contains("18"),
        "{e}"
    );

    let e = err(backtest(&f, store.clone(), &options(t0, t0)).await);
    assert!(e.contains("is not after the start"), "{e}");

    let mut o = options(t0 - 2 * 3600 * S, t0);
    o.max_lookback = Duration::from_secs(3600);
    let e = err(backtest(&f, store.clone(), &o).await);
    assert!(
        e.contains("HAWKEYE_ROLLUP_RETENTION") && e.contains("1h"),
        "{e}"
    );

    let mut o = options(t0, t0 + 60 * S);
    o.step = Some(Duration::from_millis(1500));
    let e = err(backtest(&f, store.clone(), &o).await);
    assert!(e.contains("whole number of seconds"), "{e}");
}

#[tokio::test]
async fn a_store_that_fails_stops_the_backtest_saying_when() {
    let store = memory();
    let t0 = start();
    store.down.store(true, Ordering::SeqCst);
    let e = backtest(&errors(), store.clone(), &options(t0, t0 + 60 * S))
        .await
        .unwrap_err();
    assert!(matches!(e, BacktestError::Store { .. }), "{e}");
    assert!(e.to_string().contains("connection refused (test)"), "{e}");
}

#[test]
fn monitors_that_are_not_whole_minutes_are_named() {
    let f = file(
        "\
version: 1
monitors:
  - {id: minutes, metric: a, interval: 1m, window: 5m, notifier: log, triggers: [{threshold: 1}]}
  - {id: seconds, metric: b, interval: 10s, window: 10m, notifier: log, triggers: [{threshold: 1}]}
  - {id: short-window, metric: c, interval: 1m, window: 30s, notifier: log, triggers: [{threshold: 1}]}
",
    );
    use hawkeye_agent::backtest::not_whole_minutes;
    assert_eq!(not_whole_minutes(&f, None), ["seconds", "short-window"]);
    let step = Some(Duration::from_secs(60));
    assert_eq!(not_whole_minutes(&f, step), ["short-window"]);
    let step = Some(Duration::from_secs(90));
    assert_eq!(
        not_whole_minutes(&f, step),
        ["minutes", "seconds", "short-window"]
    );
}

#[tokio::test]
async fn groups_past_the_limit_stop_the_backtest() {
    let store = memory();
    let t0 = start();
    for route in ["/a", "/b", "/c", "/d", "/e"] {
        for k in 0..10 {
            let second = (t0 / S) as i64 + 10 * k + 5;
            write(
                &*store,
                hawkeye_protocol::MetricKind::Counter,
                "errors",
                &[("route", route)],
                second,
                hawkeye_store::Aggregate::Counter(1.0),
            )
            .await;
        }
    }
    let grouped = file(
        "\
version: 1
monitors:
  - {metric: errors, interval: 10s, group_by: [route], notifier: log, triggers: [{threshold: 5}]}
",
    );
    let mut o = options(t0, t0 + 100 * S);
    o.max_checks = 20;
    // 11 slots were counted; five groups a slot are many more checks.
    let e = backtest(&grouped, store.clone(), &o).await.unwrap_err();
    assert!(matches!(e, BacktestError::TooManyGroupChecks { .. }), "{e}");
    assert!(e.to_string().contains("limit of 20 checks"), "{e}");
    o.max_checks = 1000;
    let report = backtest(&grouped, store.clone(), &o).await.unwrap();
    assert_eq!(
        report.checks, 50,
        "five groups at each of the 10 slots with data"
    );
}

#[tokio::test]
async fn a_stale_group_resolved_names_its_monitor() {
    let store = memory();
    let t0 = start();
    for k in 0..2 {
        let second = (t0 / S) as i64 + 10 * k + 5;
        write(
            &*store,
            hawkeye_protocol::MetricKind::Gauge,
            "queue.depth",
            &[("host", "a")],
            second,
            hawkeye_store::Aggregate::Gauge(hawkeye_store::GaugeStats::new(100.0)),
        )
        .await;
    }
    let f = file(
        "\
version: 1
monitors:
  - id: queues
    metric: queue.depth
    type: g
    interval: 10s
    group_by: [host]
    gauge_stale_after: 10s
    group_stale_after: 30s
    triggers:
      - {threshold: 50, missing: keep, send_resolved: true, to: [oncall@example.com]}
",
    );
    let report = backtest(&f, store.clone(), &options(t0, t0 + 120 * S))
        .await
        .unwrap();
    let got: Vec<(&str, Option<usize>, Notice)> = report
        .notifications
        .iter()
        .map(|n| (n.monitor.as_str(), n.monitor_index, n.notice))
        .collect();
    assert_eq!(
        got,
        [
            ("queues", Some(0), Notice::Firing),
            ("queues", Some(0), Notice::Resolved)
        ],
        "{:?}",
        report.notifications
    );
    let resolved = &report.notifications[1];
    assert_eq!(resolved.group, [("host".to_string(), "a".to_string())]);
    assert!(resolved.slot_ms > report.notifications[0].slot_ms);
    assert_eq!(report.per_monitor()[0].1.resolved, 1);
}
