//! SLO monitors through the engine, check by check (explicit ticks): on a
//! real redis-server, and on the in-memory store holding 35 days, where an
//! error budget partly spent ten days ago is read back over the period.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hawkeye_agent::state::Notice;
use hawkeye_agent::{parse_monitors, MonitorsFile, Retention};
use hawkeye_store::{MemoryStore, Store};
use hawkeye_testkit::RedisServer;

const S: u64 = 1000;
const DAY: Duration = Duration::from_secs(86_400);

fn file(yaml: &str) -> MonitorsFile {
    let limits = Retention {
        per_second: Duration::from_secs(3600),
        rollup: 35 * DAY,
    };
    parse_monitors(yaml, "slo.yaml", limits).unwrap()
}

/// The start of a file with one SLO monitor on `api.errors` / `api.requests`.
const API: &str = "version: 1
monitors:
  - metric: api.errors
    ratio_of: api.requests
    interval: 10s
";

/// The three-line SLO with the workbook's triggers, checked every 10 s.
fn slo_file() -> MonitorsFile {
    file(&(API.to_string() + "    slo: {objective: 99.9, period: 30d, page: oncall@example.com}\n"))
}

/// The in-memory store keeping 35 days, a recording mailer and its queue.
fn memory_35d() -> (Arc<dyn Store>, Arc<RecordingMailer>, Queue) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(35 * DAY));
    let mailer = Arc::new(RecordingMailer::default());
    let q = queue(mailer.clone());
    (store, mailer, q)
}

/// `all` requests, `bad` of them errors, in `second`.
async fn traffic(store: &dyn Store, second: i64, all: f64, bad: f64) {
    count(store, "api.requests", second, all).await;
    if bad > 0.0 {
        count(store, "api.errors", second, bad).await;
    }
}

/// (level, notice) of each notice of a tick.
fn notified(report: &hawkeye_agent::TickReport) -> Vec<(usize, Notice)> {
    report
        .notified
        .iter()
        .map(|n| (n.level, n.notice))
        .collect()
}

#[tokio::test]
async fn on_redis_a_30x_burn_fires_the_fast_page_alone_and_half_the_budget_nothing() {
    let redis = RedisServer::start();
    let store = redis_store(&redis).await;
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let mut engine = engine(&slo_file(), store.clone(), &q, t0);
    // 0.05 % errors: half the budget's pace.
    traffic(&*store, secs(t0), 10_000.0, 5.0).await;
    let started = Instant::now();
    let report = engine.tick(t0).await;
    let took = started.elapsed();
    assert!(!report.store_error);
    assert_eq!(
        notified(&report),
        [],
        "0.5x burns too slowly for any trigger"
    );
    assert_eq!(report.transitions, 0);
    // Then 33 % errors on top: 335 / 11 000 over every window, 30.5x.
    traffic(&*store, secs(t0 + 10 * S), 1000.0, 330.0).await;
    let report = engine.tick(t0 + 10 * S).await;
    assert_eq!(notified(&report), [(3, Notice::Firing)], "{report:?}");
    // The ticket (1x) and the slow page (6x) fire too, inhibited: the
    // fast page mails everyone they would.
    assert_eq!(report.muted, 2, "{report:?}");
    assert_eq!(
        report.notices[0].0,
        "[shop/test] api.errors error budget burning >= 14.4x (level 3)"
    );
    // Nothing more while it burns.
    let started = Instant::now();
    let report = engine.tick(t0 + 20 * S).await;
    let steady = started.elapsed();
    assert_eq!(notified(&report), []);
    // Figures for the reader, not assertions (the machine is shared).
    eprintln!("check with the 30d period read: {took:?}; with it cached: {steady:?}");
}

#[tokio::test]
async fn the_mail_states_the_budget_spent_over_the_period_and_when_it_runs_out() {
    let (store, mailer, q) = memory_35d();
    let t0 = base_ms();
    // Ten days ago: a quarter of the budget spent (25 bad in 100 000).
    let ten_days_ago = secs(t0) - 10 * 86_400;
    traffic(&*store, ten_days_ago, 100_000.0, 25.0).await;
    // Now: 3 % errors, 30x.
    traffic(&*store, secs(t0), 1000.0, 30.0).await;
    let mut engine = engine(&slo_file(), store.clone(), &q, t0);
    let report = engine.tick(t0).await;
    assert_eq!(notified(&report), [(3, Notice::Firing)], "{report:?}");
    q.shutdown(Duration::from_secs(5)).await;
    let mails = mailer.mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    let body = &mails[0].body;
    // 55 bad in 101 000 over 30 days: 54.455 % of a 0.1 % budget; the
    // 45.545 % left lasts 30d × 0.45545 / 30 = 10h 55m at 30x.
    for line in [
        "Burn rate:   30x over 1h and 30x over 5m (fires at 14.4x over both)",
        "Budget:      54.455% consumed, 45.545% remaining over 30d (SLI 99.946%)",
        "Exhausted:   in 10h 55m at the 1h burn rate",
    ] {
        assert!(body.contains(line), "{line:?} not in:\n{body}");
    }
}

#[tokio::test]
async fn templates_name_the_budget() {
    let (store, _, q) = memory_35d();
    let t0 = base_ms();
    traffic(&*store, secs(t0), 1000.0, 20.0).await;
    let yaml = API.to_string()
        + "    slo: {objective: 99, period: 7d}
    subject: 'burning {{ burn_rate }}x, {{ budget_remaining }}% left, out {{ budget_exhausted_in }}'
    triggers:
      - {burn_rate: 2, long_window: 1h, short_window: 5m, to: oncall@example.com}
";
    let mut engine = engine(&file(&yaml), store.clone(), &q, t0);
    let report = engine.tick(t0).await;
    // 2 % errors against a 1 % budget: 2x, the whole budget spent twice.
    assert_eq!(report.notices[0].0, "burning 2x, -100% left, out exhausted");
}

#[tokio::test]
async fn the_period_is_read_in_full_once_a_minute_and_topped_up_in_between() {
    let (store, _, q) = memory_35d();
    let t0 = base_ms();
    // Firing all along (2 % errors against 1 %: 2x), with a repeat at each
    // check whose subject shows the budget.
    let yaml = API.to_string()
        + "    slo: {objective: 99, period: 7d}
    subject: 'consumed {{ budget_consumed }}%'
    triggers:
      - {burn_rate: 2, long_window: 1h, short_window: 5m, run_every: 10s, to: oncall@example.com}
";
    traffic(&*store, secs(t0), 1000.0, 20.0).await;
    let mut engine = engine(&file(&yaml), store.clone(), &q, t0);
    let subject = |r: &hawkeye_agent::TickReport| r.notices[0].0.clone();
    assert_eq!(subject(&engine.tick(t0).await), "consumed 200%");
    // Two days ago, outside every window but the period: 1000 good events,
    // so the budget spent is 20 / 2000 = 100 %, once the period is read.
    traffic(&*store, secs(t0) - 2 * 86_400, 1000.0, 0.0).await;
    // And new events since the full read, counted at once.
    traffic(&*store, secs(t0 + 10 * S), 1000.0, 50.0).await;
    // 10 s later: the last full read (20 of 1000) plus the seconds since
    // (50 of 1000): 70 of 2000, 350 %; the old events are not seen yet.
    assert_eq!(
        subject(&engine.tick(t0 + 10 * S).await),
        "[REPEAT] consumed 350%"
    );
    // A minute after the full read, the period is read again: 70 of 3000.
    assert_eq!(
        subject(&engine.tick(t0 + 60 * S).await),
        "[REPEAT] consumed 233.333%"
    );
}

/// An SLO monitor reads its burn-rate windows and its period, each for
/// `metric` and `ratio_of`, and not the plain `window` of other monitors,
/// which it would not use.
#[tokio::test]
async fn a_tick_of_an_slo_monitor_reads_only_its_burn_windows_and_period() {
    let store = Arc::new(Probe::new(MemoryStore::new(35 * DAY)));
    let q = queue(Arc::new(RecordingMailer::default()));
    let t0 = base_ms();
    let yaml = API.to_string()
        + "    slo: {objective: 99, period: 7d}
    triggers:
      - {burn_rate: 2, long_window: 1h, short_window: 5m, to: oncall@example.com}
";
    traffic(&*store, secs(t0), 1000.0, 20.0).await;
    let mut engine = engine(&file(&yaml), store.clone(), &q, t0);
    let report = engine.tick(t0).await;
    assert_eq!(notified(&report).len(), 1, "the SLO still fires");
    // 1h, 5m and the period (7d), each as errors and requests.
    assert_eq!(store.queries.load(Ordering::SeqCst), 6);
    assert_eq!(report.queries, 6);
}

#[tokio::test]
async fn when_the_fast_burn_stops_the_page_resolves_and_the_slow_page_tells_oncall() {
    let (store, _, q) = memory_35d();
    let t0 = base_ms();
    traffic(&*store, secs(t0), 1000.0, 30.0).await;
    let mut engine = engine(&slo_file(), store.clone(), &q, t0);
    assert_eq!(notified(&engine.tick(t0).await), [(3, Notice::Firing)]);
    // Six minutes on, nothing new: the 5m window burns nothing, the 30m
    // and 6h windows still 30x. The fast page resolves (the defaults send
    // resolved mail); the slow page, inhibited until now, tells oncall;
    // the ticket stays inhibited by it.
    let mut report = engine.tick(t0 + 360 * S).await;
    report.notified.sort_by_key(|n| n.level);
    assert_eq!(
        notified(&report),
        [(2, Notice::Firing), (3, Notice::Resolved)],
        "{report:?}"
    );
    let subjects: Vec<&str> = report.notified.iter().map(|n| n.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "[shop/test] api.errors error budget burning >= 6x (level 2)",
            "[RESOLVED] [shop/test] api.errors error budget burning >= 14.4x (level 3)"
        ]
    );
}
