//! The evaluation engine against the in-memory store, driven check by check
//! with an explicit clock (no sleeping): debounce, `for`, resolve, several
//! agents on one store, restarts, store outages, and batching.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::*;
use hawkeye_agent::state::Notice;
use hawkeye_agent::{parse_monitors, MonitorsFile};
use hawkeye_protocol::MetricKind;
use hawkeye_store::{Aggregate, DistributionStats, Store};

const S: u64 = 1000;

fn file(yaml: &str) -> MonitorsFile {
    parse_monitors(yaml, "test.yaml", std::time::Duration::from_secs(3600)).unwrap()
}

fn notices(report: &hawkeye_agent::TickReport) -> Vec<Notice> {
    report.notices.iter().map(|(_, n)| *n).collect()
}

const COUNTER_10S: &str = "\
version: 1
monitors:
  - metric: http.response.400
    interval: 10s
    subject: '4xx: {{ .count }}'
    triggers:
      - threshold: 3
        run_every: 30s
        send_resolved: true
        text: 'Threshold breached for first degree sla. {{ .count }}'
        to: [oncall@example.com]
";

#[tokio::test]
async fn fires_at_once_repeats_after_run_every_and_resolves() {
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let mut e = engine(&file(COUNTER_10S), store.clone(), &q, t0);

    let mut sent = Vec::new();
    for check in 0..4u64 {
        let now = t0 + check * 10 * S;
        count(&*store, "http.response.400", secs(now), 5.0).await;
        sent.push(notices(&e.tick(now).await));
    }
    // Breach at 0 s mails at once; 10 s and 20 s are inside run_every (30 s);
    // 30 s repeats.
    assert_eq!(
        sent,
        [vec![Notice::Firing], vec![], vec![], vec![Notice::Repeat]]
    );
    // No data at 40 s: a counter's empty window is 0, below 3: resolved.
    assert_eq!(notices(&e.tick(t0 + 40 * S).await), [Notice::Resolved]);
    assert_eq!(notices(&e.tick(t0 + 50 * S).await), []);

    let stats = q.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(stats.sent, 3);
    let mails = mailer.mails.lock().unwrap().clone();
    assert_eq!(mails[0].subject, "4xx: 5");
    assert!(
        mails[0]
            .body
            .starts_with("Threshold breached for first degree sla. 5\n"),
        "{}",
        mails[0].body
    );
    assert_eq!(mails[0].to, ["oncall@example.com"]);
    assert!(
        mails[2].subject.starts_with("[RESOLVED] "),
        "{}",
        mails[2].subject
    );
}

#[tokio::test]
async fn a_tick_between_slots_evaluates_nothing() {
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer);
    let t0 = base_ms();
    let mut e = engine(&file(COUNTER_10S), store.clone(), &q, t0);
    count(&*store, "http.response.400", secs(t0), 5.0).await;
    assert_eq!(e.tick(t0).await.monitors, 1);
    assert_eq!(e.next_due(), Some(t0 + 10 * S));
    assert_eq!(
        e.tick(t0 + 9 * S).await.monitors,
        0,
        "not due before the next slot"
    );
}

#[tokio::test]
async fn for_needs_consecutive_breaching_checks() {
    let yaml = COUNTER_10S.replace("run_every: 30s", "run_every: 30s\n        for: 3");
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(&yaml), store.clone(), &q, t0);
    let mut sent = Vec::new();
    // breach, breach, clear, breach, breach, breach
    for (check, breach) in [true, true, false, true, true, true]
        .into_iter()
        .enumerate()
    {
        let now = t0 + check as u64 * 10 * S;
        if breach {
            count(&*store, "http.response.400", secs(now), 5.0).await;
        }
        sent.extend(notices(&e.tick(now).await).into_iter().map(|n| (check, n)));
    }
    assert_eq!(sent, [(5, Notice::Firing)]);
}

#[tokio::test]
async fn two_agents_on_one_store_send_each_mail_once() {
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let f = file(COUNTER_10S);
    let mut a = engine(&f, store.clone(), &q, t0);
    let mut b = engine(&f, store.clone(), &q, t0);
    let mut per_check = Vec::new();
    for check in 0..4u64 {
        let now = t0 + check * 10 * S;
        count(&*store, "http.response.400", secs(now), 5.0).await;
        // Both agents check the same slot, a little apart.
        let mut n = notices(&a.tick(now).await);
        n.extend(notices(&b.tick(now + 300).await));
        per_check.push(n);
    }
    let mut n = notices(&b.tick(t0 + 40 * S).await);
    n.extend(notices(&a.tick(t0 + 40 * S + 200).await));
    per_check.push(n);
    assert_eq!(
        per_check,
        [
            vec![Notice::Firing],
            vec![],
            vec![],
            vec![Notice::Repeat],
            vec![Notice::Resolved]
        ]
    );
    let stats = q.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(stats.sent, 3);
}

#[tokio::test]
async fn two_agents_do_not_count_one_check_twice_towards_for() {
    let yaml = COUNTER_10S.replace("run_every: 30s", "run_every: 30s\n        for: 2");
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let f = file(&yaml);
    let mut a = engine(&f, store.clone(), &q, t0);
    let mut b = engine(&f, store.clone(), &q, t0);
    count(&*store, "http.response.400", secs(t0), 5.0).await;
    assert_eq!(notices(&a.tick(t0).await), []);
    assert_eq!(
        notices(&b.tick(t0 + 100).await),
        [],
        "the same slot is one check"
    );
    count(&*store, "http.response.400", secs(t0 + 10 * S), 5.0).await;
    assert_eq!(notices(&b.tick(t0 + 10 * S).await), [Notice::Firing]);
    assert_eq!(notices(&a.tick(t0 + 10 * S + 100).await), []);
}

#[tokio::test]
async fn a_restarted_agent_does_not_resend() {
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let f = file(COUNTER_10S);
    let mut first = engine(&f, store.clone(), &q, t0);
    count(&*store, "http.response.400", secs(t0), 5.0).await;
    assert_eq!(notices(&first.tick(t0).await), [Notice::Firing]);
    drop(first);
    // A new agent (same file, same store) starts 5 s later and checks at once.
    let mut second = engine(&f, store.clone(), &q, t0 + 5 * S);
    count(&*store, "http.response.400", secs(t0 + 5 * S), 5.0).await;
    assert_eq!(notices(&second.tick(t0 + 5 * S).await), []);
    count(&*store, "http.response.400", secs(t0 + 20 * S), 5.0).await;
    assert_eq!(notices(&second.tick(t0 + 20 * S).await), []);
    count(&*store, "http.response.400", secs(t0 + 30 * S), 5.0).await;
    assert_eq!(
        notices(&second.tick(t0 + 30 * S).await),
        [Notice::Repeat],
        "the repeat keeps its schedule"
    );
}

#[tokio::test]
async fn a_store_outage_raises_no_alert_and_changes_no_state() {
    let yaml = "\
version: 1
monitors:
  - metric: redis.health
    type: g
    aggregate: min
    interval: 10s
    triggers:
      - threshold: 1
        op: '<'
        missing: breach
        send_resolved: true
        to: [oncall@example.com]
";
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(yaml), store.clone(), &q, t0);
    gauge(&*store, "redis.health", secs(t0), 1.0).await;
    assert_eq!(notices(&e.tick(t0).await), []);

    store.down.store(true, Ordering::SeqCst);
    for check in 1..4u64 {
        let r = e.tick(t0 + check * 10 * S).await;
        assert!(r.store_error);
        assert_eq!(
            notices(&r),
            [],
            "no data that could not be read is not missing data"
        );
    }
    assert_eq!(e.stats().store_errors, 3);

    store.down.store(false, Ordering::SeqCst);
    gauge(&*store, "redis.health", secs(t0 + 40 * S), 1.0).await;
    let r = e.tick(t0 + 40 * S).await;
    assert!(!r.store_error);
    assert_eq!(notices(&r), []);
    // Real missing data after the outage does breach.
    assert_eq!(notices(&e.tick(t0 + 60 * S).await), [Notice::Firing]);
}

/// A tick lends each monitor's queries and state keys to its reads: a
/// state read that fails after the windows were read gives them all back,
/// so the next checks read the same windows and the same keys.
#[tokio::test]
async fn a_failed_state_read_leaves_every_monitor_its_reads() {
    let yaml = "\
version: 1
monitors:
  - metric: redis.health
    type: g
    aggregate: min
    interval: 10s
    triggers:
      - {threshold: 1, op: '<', missing: breach, to: [oncall@example.com]}
  - metric: api.errors
    ratio_of: api.requests
    interval: 10s
    triggers:
      - {threshold: 0.5, to: [oncall@example.com]}
      - {threshold: 0.9, to: [oncall@example.com]}
";
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(yaml), store.clone(), &q, t0);
    let keys = e.keys();
    gauge(&*store, "redis.health", secs(t0), 1.0).await;
    let r = e.tick(t0).await;
    assert_eq!((r.queries, notices(&r)), (3, vec![]));

    store.alerts_down.store(true, Ordering::SeqCst);
    let r = e.tick(t0 + 10 * S).await;
    assert!(r.store_error);
    assert_eq!(r.queries, 3, "the windows were read");
    store.alerts_down.store(false, Ordering::SeqCst);

    gauge(&*store, "redis.health", secs(t0 + 40 * S), 1.0).await;
    let r = e.tick(t0 + 40 * S).await;
    assert!(!r.store_error);
    assert_eq!((r.queries, r.monitors), (3, 2));
    assert_eq!(e.keys(), keys, "every trigger keeps its key");
    let r = e.tick(t0 + 60 * S).await;
    assert_eq!((r.queries, notices(&r)), (3, vec![Notice::Firing]));
    assert_eq!(e.alert_keys().len(), 3);
}

/// Monitors on different intervals are not all due at every tick: the
/// ticks that read some of them lend those reads only, and every read
/// goes back to its own monitor, through a store error too (a mix-up
/// would fire the wrong monitor).
#[tokio::test]
async fn mixed_intervals_read_each_monitor_its_own_window() {
    let yaml = "\
version: 1
monitors:
  - {metric: a, type: g, aggregate: max, interval: 10s, triggers: [{threshold: 5, to: [a@example.com]}]}
  - {metric: b, ratio_of: b.all, interval: 20s, triggers: [{threshold: 0.5, to: [b@example.com]}]}
  - {metric: c, type: g, aggregate: max, interval: 10s, triggers: [{threshold: 5, to: [c@example.com]}]}
";
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    // A minute: a slot of both intervals.
    let t0 = base_ms();
    let mut e = engine(&file(yaml), store.clone(), &q, t0);
    let fired = |r: &hawkeye_agent::TickReport| -> Vec<Option<usize>> {
        let firing = r.notified.iter().filter(|n| n.notice == Notice::Firing);
        firing.map(|n| n.monitor).collect()
    };
    let r = e.tick(t0).await;
    assert_eq!((r.monitors, r.queries, fired(&r)), (3, 4, vec![]));

    store.down.store(true, Ordering::SeqCst);
    let r = e.tick(t0 + 10 * S).await;
    assert!(r.store_error);
    assert_eq!(r.queries, 2, "a and c due, not b");
    store.down.store(false, Ordering::SeqCst);
    // Windows overlapping the outage (and its grace) are not evaluated.
    for (at, due) in [(20, 3), (30, 2)] {
        let r = e.tick(t0 + at * S).await;
        assert_eq!(
            (r.monitors, r.outage_skipped, fired(&r)),
            (due, due, vec![])
        );
    }

    gauge(&*store, "c", secs(t0 + 40 * S), 9.0).await;
    let r = e.tick(t0 + 40 * S).await;
    assert_eq!((r.monitors, r.queries), (3, 4), "every monitor due");
    assert_eq!(fired(&r), [Some(2)], "c breaches, not a");

    gauge(&*store, "a", secs(t0 + 50 * S), 9.0).await;
    let r = e.tick(t0 + 50 * S).await;
    assert_eq!((r.monitors, r.queries), (2, 2), "a and c due, not b");
    assert_eq!(fired(&r), [Some(0)], "a breaches, not c");

    count(&*store, "b", secs(t0 + 60 * S), 8.0).await;
    count(&*store, "b.all", secs(t0 + 60 * S), 10.0).await;
    let r = e.tick(t0 + 60 * S).await;
    assert_eq!((r.monitors, r.queries), (3, 4));
    assert_eq!(fired(&r), [Some(1)], "b breaches");
}

#[tokio::test]
async fn one_read_per_tick_whatever_the_number_of_monitors() {
    let mut yaml = String::from("version: 1\nmonitors:\n");
    for i in 0..50 {
        yaml.push_str(&format!(
            "  - metric: m{i}\n    interval: 10s\n    ratio_of: all{i}\n    triggers:\n      - {{threshold: 3, to: [a@example.com]}}\n      - {{threshold: 5, to: [b@example.com]}}\n"
        ));
    }
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(&yaml), store.clone(), &q, t0);
    let r = e.tick(t0).await;
    assert_eq!(r.monitors, 50);
    assert_eq!(r.queries, 100, "two windows per ratio monitor, in one call");
    assert_eq!(store.query_many.load(Ordering::SeqCst), 1);
    assert_eq!(store.alert_states.load(Ordering::SeqCst), 1);
    assert_eq!(
        store.swaps.load(Ordering::SeqCst),
        0,
        "steady OK writes nothing"
    );
    // The first tick after a start also looks once for states under the
    // old key format (migration); later ticks do not.
    assert_eq!(r.store_calls, 3);
    let r = e.tick(t0 + 10 * S).await;
    assert_eq!(r.store_calls, 2);
    assert_eq!(store.query_many.load(Ordering::SeqCst), 2);
}

const SPARSE_GAUGE: &str = "\
version: 1
monitors:
  - metric: queue.depth
    type: g
    interval: 2s
    triggers:
      - threshold: 100
        run_every: 1h
        send_resolved: true
        to: [oncall@example.com]
";

#[tokio::test]
async fn a_sparse_gauge_keeps_its_value_until_stale() {
    // Reported every 5 s, checked every 2 s: most windows hold no sample,
    // yet the gauge still has its last value: one firing mail, no flapping.
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let mut e = engine(&file(SPARSE_GAUGE), store.clone(), &q, t0);
    let mut sent = Vec::new();
    for check in 0..15u64 {
        let now = t0 + check * 2 * S;
        for s in [0u64, 5, 10, 15, 20, 25] {
            if t0 / S + s == now / S - 1 {
                gauge(&*store, "queue.depth", secs(now), 500.0).await;
            }
        }
        sent.extend(notices(&e.tick(now).await));
    }
    assert_eq!(sent, [Notice::Firing], "one mail for one breach");
    // The reporter dies: after gauge_stale_after (default 5 m) it is
    // missing data, which resolves (missing: ok).
    assert_eq!(notices(&e.tick(t0 + 200 * S).await), []);
    assert_eq!(notices(&e.tick(t0 + 400 * S).await), [Notice::Resolved]);
}

#[tokio::test]
async fn ratio_of_with_percent() {
    let yaml = "\
version: 1
monitors:
  - metric: http.response.5xx
    ratio_of: http.requests
    percent: true
    interval: 10s
    subject: '5xx rate {{ value }}%'
    triggers:
      - threshold: 1
        op: '>'
        send_resolved: true
        to: [oncall@example.com]
";
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let mut e = engine(&file(yaml), store.clone(), &q, t0);
    count(&*store, "http.response.5xx", secs(t0), 1.0).await;
    count(&*store, "http.requests", secs(t0), 200.0).await;
    assert_eq!(notices(&e.tick(t0).await), [], "0.5% is not above 1%");
    let t1 = t0 + 10 * S;
    count(&*store, "http.response.5xx", secs(t1), 3.0).await;
    count(&*store, "http.requests", secs(t1), 200.0).await;
    assert_eq!(notices(&e.tick(t1).await), [Notice::Firing]);
    // No requests at all: no data, which is `ok` by default.
    assert_eq!(notices(&e.tick(t1 + 10 * S).await), [Notice::Resolved]);
    q.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(mailer.subjects()[0], "5xx rate 1.5%");
}

#[tokio::test]
async fn tags_filter_and_distributions() {
    let yaml = "\
version: 1
monitors:
  - metric: http.latency
    type: ms
    tags: {route: /checkout}
    aggregate: p95
    interval: 10s
    triggers:
      - threshold: 2000
        op: '>'
        to: [oncall@example.com]
";
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(yaml), store.clone(), &q, t0);
    let dist = |values: &[f64]| {
        let mut d = DistributionStats::default();
        for v in values {
            d.observe(*v, 1.0);
        }
        Aggregate::Distribution(Box::new(d))
    };
    // Slow, but on another route: filtered out.
    write(
        &*store,
        MetricKind::Distribution,
        "http.latency",
        &[("route", "/ping")],
        secs(t0),
        dist(&[5000.0; 20]),
    )
    .await;
    write(
        &*store,
        MetricKind::Distribution,
        "http.latency",
        &[("route", "/checkout")],
        secs(t0),
        dist(&[100.0; 20]),
    )
    .await;
    assert_eq!(notices(&e.tick(t0).await), []);
    let t1 = t0 + 10 * S;
    write(
        &*store,
        MetricKind::Distribution,
        "http.latency",
        &[("route", "/checkout"), ("az", "b")],
        secs(t1),
        dist(&[2500.0; 20]),
    )
    .await;
    assert_eq!(notices(&e.tick(t1).await), [Notice::Firing]);
}

#[tokio::test]
async fn missing_keep_holds_the_state() {
    let yaml = "\
version: 1
monitors:
  - metric: queue.depth
    type: g
    interval: 10s
    gauge_stale_after: 1s
    triggers:
      - threshold: 1000
        op: '>'
        missing: keep
        send_resolved: true
        run_every: 10s
        to: [oncall@example.com]
";
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(yaml), store.clone(), &q, t0);
    gauge(&*store, "queue.depth", secs(t0), 5000.0).await;
    assert_eq!(notices(&e.tick(t0).await), [Notice::Firing]);
    // No data: nothing happens (no resolve, no repeat).
    assert_eq!(notices(&e.tick(t0 + 10 * S).await), []);
    assert_eq!(notices(&e.tick(t0 + 20 * S).await), []);
    gauge(&*store, "queue.depth", secs(t0 + 30 * S), 10.0).await;
    assert_eq!(notices(&e.tick(t0 + 30 * S).await), [Notice::Resolved]);
}

#[tokio::test]
async fn reload_keeps_the_state_of_unchanged_monitors() {
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let mut e = engine(&file(COUNTER_10S), store.clone(), &q, t0);
    count(&*store, "http.response.400", secs(t0), 5.0).await;
    assert_eq!(notices(&e.tick(t0).await), [Notice::Firing]);
    // Same monitor with a new text, plus a new monitor.
    let edited = COUNTER_10S.replace("first degree", "level one")
        + "  - metric: other\n    interval: 10s\n    triggers:\n      - {threshold: 1, to: [a@example.com]}\n";
    e.reload(&file(&edited), t0 + 10 * S);
    count(&*store, "http.response.400", secs(t0 + 10 * S), 5.0).await;
    let r = e.tick(t0 + 10 * S).await;
    assert_eq!(r.monitors, 2);
    assert_eq!(
        notices(&r),
        [],
        "still firing, inside run_every: no resend after reload"
    );
    // A recipient added while it fires is told, alone; the others are not
    // mailed again.
    let edited = edited.replace(
        "to: [oncall@example.com]",
        "to: [oncall@example.com, other@example.com]",
    );
    e.reload(&file(&edited), t0 + 20 * S);
    count(&*store, "http.response.400", secs(t0 + 20 * S), 5.0).await;
    assert_eq!(notices(&e.tick(t0 + 20 * S).await), [Notice::Firing]);
    count(&*store, "http.response.400", secs(t0 + 30 * S), 5.0).await;
    assert_eq!(notices(&e.tick(t0 + 30 * S).await), [Notice::Repeat]);
    q.shutdown(std::time::Duration::from_secs(5)).await;
    let mut to: Vec<Vec<String>> = mailer
        .mails
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.to.clone())
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            vec!["oncall@example.com".to_string()],
            vec![
                "oncall@example.com".to_string(),
                "other@example.com".to_string()
            ],
            vec!["other@example.com".to_string()],
        ]
    );
}

#[tokio::test]
async fn notifier_log_sends_no_mail() {
    let yaml = COUNTER_10S.replace("    subject:", "    notifier: log\n    subject:");
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let mut e = engine(&file(&yaml), store.clone(), &q, t0);
    count(&*store, "http.response.400", secs(t0), 5.0).await;
    assert_eq!(notices(&e.tick(t0).await), [Notice::Firing]);
    let stats = q.shutdown(std::time::Duration::from_secs(5)).await;
    assert_eq!(stats.queued, 0);
    assert!(mailer.subjects().is_empty());
}

#[tokio::test]
async fn the_store_keys_do_not_collide_for_identical_monitors() {
    let yaml = format!(
        "{COUNTER_10S}{}",
        COUNTER_10S.split_once("monitors:\n").unwrap().1
    );
    let f = file(&yaml);
    let keys = hawkeye_agent::state_key::state_keys(&f, "shop", "test");
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
}

/// Counts the outage and recovery log lines.
#[derive(Clone, Default)]
struct OutageLog {
    down: Arc<std::sync::atomic::AtomicUsize>,
    up: Arc<std::sync::atomic::AtomicUsize>,
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for OutageLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        if m.0.starts_with("store unavailable") {
            self.down.fetch_add(1, Ordering::SeqCst);
        }
        if m.0.starts_with("store available again") {
            self.up.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn an_outage_is_logged_once_and_its_end_once() {
    use tracing_subscriber::layer::SubscriberExt;
    let log = OutageLog::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(log.clone()));
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(COUNTER_10S), store.clone(), &q, t0);
    store.down.store(true, Ordering::SeqCst);
    for check in 0..5u64 {
        e.tick(t0 + check * 10 * S).await;
    }
    assert_eq!(e.stats().store_errors, 5);
    assert_eq!(log.down.load(Ordering::SeqCst), 1);
    assert_eq!(log.up.load(Ordering::SeqCst), 0);
    store.down.store(false, Ordering::SeqCst);
    e.tick(t0 + 50 * S).await;
    e.tick(t0 + 60 * S).await;
    assert_eq!(log.up.load(Ordering::SeqCst), 1);
    store.down.store(true, Ordering::SeqCst);
    e.tick(t0 + 70 * S).await;
    assert_eq!(
        log.down.load(Ordering::SeqCst),
        2,
        "a new outage is logged again"
    );
}

#[tokio::test]
async fn no_false_resolve_while_the_server_may_still_flush_the_outage() {
    // FIRING; Redis goes away; when it answers again the server may still
    // hold the outage's aggregates for up to 5 s: windows overlapping the
    // outage until then are not evaluated (no resolved mail from them).
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(COUNTER_10S), store.clone(), &q, t0);
    count(&*store, "http.response.400", secs(t0), 5.0).await;
    assert_eq!(notices(&e.tick(t0).await), [Notice::Firing]);
    store.down.store(true, Ordering::SeqCst);
    assert!(e.tick(t0 + 10 * S).await.store_error);
    store.down.store(false, Ordering::SeqCst);
    // Recovered; the outage's events are not in the store yet.
    let r = e.tick(t0 + 20 * S).await;
    assert!(!r.store_error);
    assert_eq!((notices(&r), r.outage_skipped), (vec![], 1));
    // [20 s, 30 s) overlaps recovery + 5 s: still not evaluated.
    let r = e.tick(t0 + 30 * S).await;
    assert_eq!((notices(&r), r.outage_skipped), (vec![], 1));
    // The server has flushed; the alert is still on and repeats.
    count(&*store, "http.response.400", secs(t0 + 40 * S), 5.0).await;
    let r = e.tick(t0 + 40 * S).await;
    assert_eq!((notices(&r), r.outage_skipped), (vec![Notice::Repeat], 0));
    assert_eq!(notices(&e.tick(t0 + 50 * S).await), [Notice::Resolved]);
}

#[tokio::test]
async fn for_counts_across_an_outage_but_not_across_a_gap() {
    let yaml = COUNTER_10S.replace("run_every: 30s", "run_every: 30s\n        for: 2");
    let breach_at = |store: Arc<Probe<hawkeye_store::MemoryStore>>, now: u64| async move {
        count(&*store, "http.response.400", secs(now), 5.0).await;
    };
    // Breach at check 0, nothing evaluated until check 60 (agent down):
    // one breach there is the first of a new run.
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut e = engine(&file(&yaml), store.clone(), &q, t0);
    breach_at(store.clone(), t0).await;
    assert_eq!(notices(&e.tick(t0).await), []);
    let later = t0 + 60 * 10 * S;
    let mut e = engine(&file(&yaml), store.clone(), &q, later);
    breach_at(store.clone(), later).await;
    assert_eq!(notices(&e.tick(later).await), [], "not consecutive");
    breach_at(store.clone(), later + 10 * S).await;
    assert_eq!(notices(&e.tick(later + 10 * S).await), [Notice::Firing]);

    // Checks the store could not answer (and the windows overlapping the
    // outage) neither count nor break the run.
    let yaml2 = yaml.replace("http.response.400", "http.response.401");
    let store = memory();
    let mut e = engine(&file(&yaml2), store.clone(), &q, t0);
    count(&*store, "http.response.401", secs(t0), 5.0).await;
    assert_eq!(notices(&e.tick(t0).await), []);
    store.down.store(true, Ordering::SeqCst);
    assert!(e.tick(t0 + 10 * S).await.store_error);
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(e.tick(t0 + 20 * S).await.outage_skipped, 1);
    assert_eq!(e.tick(t0 + 30 * S).await.outage_skipped, 1);
    count(&*store, "http.response.401", secs(t0 + 40 * S), 5.0).await;
    assert_eq!(notices(&e.tick(t0 + 40 * S).await), [Notice::Firing]);
}

#[tokio::test]
async fn an_absurd_stored_state_is_treated_as_absent() {
    // A state with times no agent writes (past year 9999, or u64::MAX):
    // formatting them as dates for the resolved mail used to panic and end
    // the evaluation task.
    let store = memory();
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let f = file(COUNTER_10S);
    let mut e = engine(&f, store.clone(), &q, t0);
    let key = e.keys()[0][0].clone();
    let absurd = r#"{"v":2,"status":"firing","breaches":1,"check":1,"since":18446744073709551615,"last_sent":18446744073709551615}"#;
    let commit = hawkeye_store::AlertCommit {
        key,
        expected: None,
        new: Some(absurd.to_string()),
        ttl: std::time::Duration::from_secs(3600),
        outbox: vec![],
    };
    assert!(store.commit_alert(&commit).await.unwrap());
    // No data: a FIRING state would resolve (and mail `since`).
    assert_eq!(notices(&e.tick(t0).await), []);
    count(&*store, "http.response.400", secs(t0 + 10 * S), 5.0).await;
    assert_eq!(notices(&e.tick(t0 + 10 * S).await), [Notice::Firing]);
}

/// A store whose reads panic: the evaluation task dies on its first tick.
struct PanickingStore;

#[async_trait::async_trait]
impl Store for PanickingStore {
    async fn write(&self, _: &hawkeye_store::WriteBatch) -> Result<(), hawkeye_store::StoreError> {
        Ok(())
    }
    async fn query_many(
        &self,
        _: &[hawkeye_store::WindowQuery],
    ) -> Result<Vec<hawkeye_store::QueryOutcome>, hawkeye_store::StoreError> {
        panic!("store bug (test)")
    }
    async fn read_alerts(
        &self,
        read: &hawkeye_store::AlertRead,
    ) -> Result<hawkeye_store::AlertSnapshot, hawkeye_store::StoreError> {
        Ok(hawkeye_store::AlertSnapshot {
            states: vec![None; read.keys.len()],
            marker: read.marker.clone(),
            silences: vec![],
        })
    }
    async fn commit_alert(
        &self,
        _: &hawkeye_store::AlertCommit,
    ) -> Result<bool, hawkeye_store::StoreError> {
        Ok(true)
    }
    async fn claim_outbox(
        &self,
        _: u64,
        _: std::time::Duration,
        _: usize,
    ) -> Result<Vec<hawkeye_store::OutboxEntry>, hawkeye_store::StoreError> {
        Ok(vec![])
    }
    async fn settle_outbox(
        &self,
        _: &str,
        _: hawkeye_store::Settle,
    ) -> Result<(), hawkeye_store::StoreError> {
        Ok(())
    }
    async fn put_silence(&self, _: &str, _: &str, _: u64) -> Result<(), hawkeye_store::StoreError> {
        Ok(())
    }
    async fn expire_silence(&self, _: &str) -> Result<bool, hawkeye_store::StoreError> {
        Ok(false)
    }
    async fn alert_states(
        &self,
        _: &str,
    ) -> Result<Vec<(String, String)>, hawkeye_store::StoreError> {
        Ok(vec![])
    }
    async fn append_history(
        &self,
        _: &str,
        _: &[String],
        _: usize,
    ) -> Result<(), hawkeye_store::StoreError> {
        Ok(())
    }
    async fn history(
        &self,
        _: &str,
        _: u64,
    ) -> Result<Vec<(u64, String)>, hawkeye_store::StoreError> {
        Ok(vec![])
    }
    async fn query_grouped(
        &self,
        _: &[hawkeye_store::GroupedQuery],
    ) -> Result<Vec<hawkeye_store::GroupedOutcome>, hawkeye_store::StoreError> {
        panic!("store bug (test)")
    }
    async fn silences(&self, _: u64) -> Result<Vec<String>, hawkeye_store::StoreError> {
        Ok(vec![])
    }
    async fn legacy_alert_states(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, hawkeye_store::StoreError> {
        Ok(vec![None; keys.len()])
    }
    async fn delete_legacy_alert_states(
        &self,
        _: &[String],
    ) -> Result<(), hawkeye_store::StoreError> {
        Ok(())
    }
    async fn ping(&self) -> Result<(), hawkeye_store::StoreError> {
        Ok(())
    }
}

#[tokio::test]
async fn the_handle_reports_an_evaluation_task_that_died() {
    let config = hawkeye_agent::AgentConfig::default().with_monitors(file(COUNTER_10S));
    let mut agent = hawkeye_agent::start(
        config,
        Arc::new(PanickingStore),
        Arc::new(RecordingMailer::default()),
    )
    .await
    .unwrap();
    // Resolves because the task ended (the timeout only guards a hang).
    let why = tokio::time::timeout(std::time::Duration::from_secs(30), agent.evaluation_ended())
        .await
        .expect("the end of the evaluation task is reported");
    assert!(why.contains("panicked: store bug (test)"), "{why}");
    // Shutting down after that still works.
    agent.shutdown().await;
}

#[tokio::test]
async fn a_reload_with_a_window_past_the_retention_is_refused() {
    let config = hawkeye_agent::AgentConfig::default().with_monitors(file(COUNTER_10S));
    assert_eq!(
        config.rollup_retention,
        std::time::Duration::from_secs(35 * 86_400)
    );
    let agent = hawkeye_agent::start(config, memory(), Arc::new(RecordingMailer::default()))
        .await
        .unwrap();
    let mut bigger = file(COUNTER_10S);
    bigger.monitors[0].window = std::time::Duration::from_secs(40 * 86_400);
    let e = agent.reload(bigger.clone()).unwrap_err().to_string();
    assert!(
        e.contains("monitor http.response.400: window 40d is longer than the data retention 35d (HAWKEYE_ROLLUP_RETENTION)"),
        "{e}"
    );
    agent.shutdown().await;
    // Nor may an agent start with it.
    let config = hawkeye_agent::AgentConfig::default().with_monitors(bigger);
    let e = hawkeye_agent::start(config, memory(), Arc::new(RecordingMailer::default()))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("window 40d is longer"), "{e}");
}

#[tokio::test]
async fn editing_a_threshold_evaluates_the_new_rule_on_the_same_state() {
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let mut e = engine(&file(COUNTER_10S), store.clone(), &q, t0);
    let breach = |n: u64| {
        let store = store.clone();
        async move { count(&*store, "http.response.400", secs(t0 + n * 10 * S), 5.0).await }
    };
    breach(0).await;
    assert_eq!(notices(&e.tick(t0).await), [Notice::Firing]);
    // 3 → 4: 5 still breaches; same alert, no second firing mail.
    e.reload(
        &file(&COUNTER_10S.replace("threshold: 3", "threshold: 4")),
        t0 + 10 * S,
    );
    breach(1).await;
    assert_eq!(notices(&e.tick(t0 + 10 * S).await), []);
    // 4 → 50: no longer breaching: resolved, once.
    e.reload(
        &file(&COUNTER_10S.replace("threshold: 3", "threshold: 50")),
        t0 + 20 * S,
    );
    breach(2).await;
    assert_eq!(notices(&e.tick(t0 + 20 * S).await), [Notice::Resolved]);
    breach(3).await;
    assert_eq!(notices(&e.tick(t0 + 30 * S).await), []);
    // Back to 3: a new episode, a new firing mail (not a stale resolved).
    e.reload(&file(COUNTER_10S), t0 + 40 * S);
    breach(4).await;
    assert_eq!(notices(&e.tick(t0 + 40 * S).await), [Notice::Firing]);
}

#[tokio::test]
async fn a_trigger_removed_by_a_reload_is_resolved_and_deleted() {
    let two = format!(
        "{COUNTER_10S}      - threshold: 4\n        send_resolved: true\n        to: [escalation@example.com]\n"
    );
    let store = memory();
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    let t0 = base_ms();
    let mut e = engine(&file(&two), store.clone(), &q, t0);
    count(&*store, "http.response.400", secs(t0), 5.0).await;
    assert_eq!(notices(&e.tick(t0).await), [Notice::Firing, Notice::Firing]);
    let removed_key = e.keys()[0][1].clone();
    e.reload(&file(COUNTER_10S), t0 + 10 * S);
    count(&*store, "http.response.400", secs(t0 + 10 * S), 5.0).await;
    let r = e.tick(t0 + 10 * S).await;
    assert_eq!(
        notices(&r),
        [Notice::Resolved],
        "the removed level resolves"
    );
    let read = hawkeye_store::AlertRead {
        keys: vec![removed_key],
        marker: "m".into(),
        marker_ttl: std::time::Duration::from_secs(60),
        now_ms: t0,
    };
    assert_eq!(
        store.read_alerts(&read).await.unwrap().states,
        vec![None],
        "deleted"
    );
    count(&*store, "http.response.400", secs(t0 + 20 * S), 5.0).await;
    assert!(
        e.tick(t0 + 20 * S).await.notices.is_empty(),
        "resolved once"
    );
    q.shutdown(std::time::Duration::from_secs(5)).await;
    let mails = mailer.mails.lock().unwrap().clone();
    let resolved = mails
        .iter()
        .find(|m| m.subject.starts_with("[RESOLVED]"))
        .unwrap();
    assert_eq!(resolved.to, ["escalation@example.com"]);
    assert!(
        resolved.body.contains("was removed from the monitors file"),
        "{}",
        resolved.body
    );
}

#[tokio::test]
async fn states_under_the_old_keys_are_migrated_at_start() {
    let inner = hawkeye_store::MemoryStore::new(std::time::Duration::from_secs(3600));
    let f = file(COUNTER_10S);
    let legacy = hawkeye_agent::state_key::legacy_keys(&f, "shop", "test");
    // As the agent before versioned keys wrote it: FIRING since check 5.
    let t0 = base_ms();
    let slot = t0 / (10 * S) - 1;
    inner.put_legacy_alert_state(
        &legacy[0][0],
        &format!(
            r#"{{"status":"firing","breaches":1,"check":{slot},"since":{t0},"last_sent":{t0}}}"#
        ),
    );
    let store = Arc::new(Probe::new(inner));
    let q = queue(Arc::new(RecordingMailer::default()));
    let mut e = engine(&f, store.clone(), &q, t0);
    count(&*store, "http.response.400", secs(t0), 5.0).await;
    assert_eq!(
        notices(&e.tick(t0).await),
        [],
        "still the same episode: no second firing"
    );
    assert_eq!(
        store.legacy_alert_states(&legacy[0]).await.unwrap(),
        vec![None],
        "the old key is gone"
    );
    assert_eq!(notices(&e.tick(t0 + 10 * S).await), [Notice::Resolved]);
}
