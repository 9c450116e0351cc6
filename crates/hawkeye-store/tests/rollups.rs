//! Per-minute rollups and long windows (docs/storage.md, "Tiers"), asked of
//! every store: two days of one point a minute, read back exactly over two
//! days, over the last hour, by range, and at the rounded old edges.

#[macro_use]
mod common;

use common::*;

const DAY: i64 = 86_400;
/// One point a minute for two days: minutes `M - 2879 ..= M`.
const POINTS: i64 = 2 * DAY / 60;

/// Writes one point a minute, at second 30 of each minute, for two days
/// before `t` (hh:mm:30), of a counter (1 each), a gauge (the minute's
/// index), a distribution (the minute's index, count 1) and a set (member
/// `u<index % 100>`).
async fn write_two_days(store: &dyn Store, t: i64) {
    let points = |make: &dyn Fn(i64) -> Aggregate| {
        (0..POINTS)
            .map(|k| (t - (POINTS - 1 - k) * 60, make(k)))
            .collect::<Vec<_>>()
    };
    let counter = points(&|_| Aggregate::Counter(1.0));
    let gauge = points(&|k| Aggregate::Gauge(GaugeStats::new(k as f64)));
    let dist = points(&|k| {
        let mut d = DistributionStats::default();
        d.observe(k as f64 + 1.0, 1.0);
        Aggregate::Distribution(Box::new(d))
    });
    let set = points(&|k| Aggregate::Set(Box::new(HashSet::from([format!("u{}", k % 100)]))));
    // Written in flushes of six hours, oldest first, as a backfill would.
    let all = [
        (MetricKind::Counter, "bf.count", counter),
        (MetricKind::Gauge, "bf.level", gauge),
        (MetricKind::Distribution, "bf.latency", dist),
        (MetricKind::Set, "bf.users", set),
    ];
    let mut seq = 0;
    for chunk in 0..8 {
        seq += 1;
        let series = all
            .iter()
            .map(|(kind, name, points)| SeriesWrite {
                key: key(*kind, name, &[("host", "a")]),
                points: points[chunk * 360..(chunk + 1) * 360].to_vec(),
            })
            .collect();
        store.write(&batch(seq, series)).await.unwrap();
    }
}

fn window(name: &str, agg: &str, window_secs: u64, end: i64) -> WindowQuery {
    query(name, Some(agg), window_secs, end)
}

async fn two_days_read_back_exactly(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    write_two_days(store, t).await;
    let two_days = 2 * DAY as u64;
    let n = POINTS as f64;
    assert_eq!(
        value(store, window("bf.count", "sum", two_days, t)).await,
        Some(n)
    );
    assert_eq!(
        value(store, window("bf.count", "rate", two_days, t)).await,
        Some(n / two_days as f64)
    );
    assert_eq!(
        value(store, window("bf.level", "last", two_days, t)).await,
        Some(n - 1.0)
    );
    assert_eq!(
        value(store, window("bf.level", "min", two_days, t)).await,
        Some(0.0)
    );
    assert_eq!(
        value(store, window("bf.level", "avg", two_days, t)).await,
        Some((n - 1.0) / 2.0)
    );
    assert_eq!(
        value(store, window("bf.latency", "count", two_days, t)).await,
        Some(n)
    );
    assert_eq!(
        value(store, window("bf.latency", "max", two_days, t)).await,
        Some(n)
    );
    let p50 = value(store, window("bf.latency", "p50", two_days, t))
        .await
        .unwrap();
    assert!((p50 - n / 2.0).abs() <= n / 2.0 * 0.011, "p50 {p50}");
    let unique = value(store, window("bf.users", "unique", two_days, t))
        .await
        .unwrap();
    assert!((unique - 100.0).abs() <= 2.0, "unique {unique}");

    // The last hour: 60 points, read from the per-second tier.
    assert_eq!(
        value(store, window("bf.count", "sum", 3600, t)).await,
        Some(60.0)
    );
    assert_eq!(
        value(store, window("bf.level", "min", 3600, t)).await,
        Some(n - 60.0)
    );
    // A 7-day window holds the same two days.
    assert_eq!(
        value(store, window("bf.count", "sum", 7 * DAY as u64, t)).await,
        Some(n)
    );
}
every_store!(two_days, two_days_read_back_exactly);

async fn old_edges_round_to_the_minute(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    write_two_days(store, t).await;
    let minute = (t - DAY) - (t - DAY).rem_euclid(60); // a day ago, hh:mm:00
                                                       // A window older than the per-second tier counts a minute whole when
                                                       // it holds the minute's first second, and not at all otherwise.
    assert_eq!(
        value(store, window("bf.count", "sum", 30, minute + 29)).await,
        Some(1.0)
    );
    assert_eq!(
        value(store, window("bf.count", "sum", 30, minute + 59)).await,
        None
    );
    assert_eq!(
        value(store, window("bf.count", "sum", 90, minute + 89)).await,
        Some(2.0)
    );
    // A window ending in the seconds tier keeps its end exact: the point
    // at second 30 of the current minute is out of a window ending at 29.
    assert_eq!(
        value(store, window("bf.count", "sum", 2 * DAY as u64, t - 1)).await,
        Some(POINTS as f64 - 1.0)
    );
}
every_store!(old_edges, old_edges_round_to_the_minute);

async fn range_reads_reach_the_rollups(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    write_two_days(store, t).await;
    let q = window("bf.count", "sum", 2 * DAY as u64, t);
    let points = range_checked(store, q, 3600).await;
    let total: f64 = points.iter().map(|(_, v)| v).sum();
    assert_eq!(total, POINTS as f64, "no minute twice, none missed");
    // Every whole hour inside holds its 60 points.
    assert!(points[1..points.len() - 1].iter().all(|(_, v)| *v == 60.0));
    // Steps shorter than a minute, in the past: each minute in one step.
    let old = t - DAY - 600;
    let q = window("bf.count", "sum", 600, old);
    let points = range_checked(store, q, 20).await;
    assert_eq!(points.iter().map(|(_, v)| v).sum::<f64>(), 10.0);
    assert!(points.iter().all(|(s, _)| s.rem_euclid(60) == 0));
}
every_store!(range_rollups, range_reads_reach_the_rollups);

async fn grouped_reads_reach_the_rollups(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    write_two_days(store, t).await;
    let grouped = GroupedQuery {
        query: window("bf.count", "sum", 2 * DAY as u64, t),
        group_by: vec!["host".to_string()],
    };
    let outcome = store.query_grouped(&[grouped]).await.unwrap();
    let groups = outcome[0].as_ref().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].value, POINTS as f64);
}
every_store!(grouped_rollups, grouped_reads_reach_the_rollups);

/// Points older than the rollup retention are dropped; the seconds tier
/// keeps only its retention and the rollups answer the rest.
#[tokio::test]
async fn memory_rollups_keep_their_own_retention() {
    let store = MemoryStore::with_rollup_retention(
        Duration::from_secs(3600),
        Duration::from_secs(DAY as u64),
    );
    let t = now();
    write_two_days(&store, t).await;
    assert_eq!(
        value(&store, window("bf.count", "sum", 2 * DAY as u64, t)).await,
        Some((DAY / 60 + 1) as f64),
        "the minutes of the last day, the one a day ago included"
    );
}

// Compaction (docs/storage.md, "Compaction"): Redis only.

/// The sum of `bf.count` over two days and over one old minute.
async fn sums(store: &dyn Store, t: i64, old_minute: i64) -> (Option<f64>, Option<f64>) {
    (
        value(store, window("bf.count", "sum", 2 * DAY as u64, t)).await,
        value(store, window("bf.count", "sum", 60, old_minute + 59)).await,
    )
}

/// A late point in an hour that may be compacted already.
async fn late_write(store: &dyn Store, seq: u64, second: i64) {
    let series = vec![SeriesWrite {
        key: key(MetricKind::Counter, "bf.count", &[("host", "a")]),
        points: vec![(second, Aggregate::Counter(10.0))],
    }];
    store.write(&batch(seq, series)).await.unwrap();
}

async fn compaction_is_exact_and_idempotent(store: &RedisStore, server: Option<&RedisServer>) {
    let t = now();
    write_two_days(store, t).await;
    let old_minute = (t - DAY) - (t - DAY).rem_euclid(60);
    let before = sums(store, t, old_minute).await;
    assert_eq!(before, (Some(POINTS as f64), Some(1.0)));

    // Stopped between its read and its write: nothing changes.
    let stopped = store.compact_pausing(t, || async { false }).await.unwrap();
    assert_eq!(stopped.compacted, 0);
    assert!(stopped.waiting > 0);
    assert_eq!(sums(store, t, old_minute).await, before);

    // A write lands between the read and the write: that hour is left for
    // the next pass, the others move; nothing is lost or doubled.
    let mut wrote = false;
    let raced = store
        .compact_pausing(t, || {
            let first = !wrote;
            wrote = true;
            async move {
                if first {
                    late_write(store, 100, old_minute + 5).await;
                }
                true
            }
        })
        .await
        .unwrap();
    assert!(raced.compacted > 40, "{raced:?}");
    assert!(raced.retried >= 1, "{raced:?}");
    let after_late = (Some(POINTS as f64 + 10.0), Some(11.0));
    assert_eq!(sums(store, t, old_minute).await, after_late);
    let rest = store.compact(t).await.unwrap();
    assert!(rest.compacted >= 1, "{rest:?}");
    assert_eq!(sums(store, t, old_minute).await, after_late);

    // Again: nothing left; a late write into a compacted hour is read
    // beside the day string, and compacted into it later.
    assert_eq!(store.compact(t).await.unwrap().compacted, 0);
    late_write(store, 101, old_minute + 6).await;
    let after_second = (Some(POINTS as f64 + 20.0), Some(21.0));
    assert_eq!(sums(store, t, old_minute).await, after_second);
    assert_eq!(store.compact(t).await.unwrap().compacted, 1);
    assert_eq!(sums(store, t, old_minute).await, after_second);

    if let Some(server) = server {
        // Closed hours are gone; each day of the counter is one string of
        // at most 3 KB (a point every minute: about 2.9 KB).
        let hours = server.cli(&["--scan", "--pattern", "hawkeye:{bf.count*}:c:h*"]);
        assert!(hours.lines().count() <= 2, "open hours only: {hours}");
        let days = server.cli(&["--scan", "--pattern", "hawkeye:{bf.count*}:c:d*"]);
        assert!((2..=3).contains(&days.lines().count()), "{days}");
        for day in days.lines() {
            let len: usize = server.cli(&["STRLEN", day]).parse().unwrap();
            assert!(len <= 3 * 1024, "{day}: {len} bytes");
        }
    }
    // Every kind still reads back exactly from its day strings.
    let level = value(store, window("bf.level", "avg", 2 * DAY as u64, t)).await;
    assert_eq!(level, Some((POINTS as f64 - 1.0) / 2.0));
    let count = value(store, window("bf.latency", "count", 2 * DAY as u64, t)).await;
    assert_eq!(count, Some(POINTS as f64));
    let max = value(store, window("bf.latency", "max", 2 * DAY as u64, t)).await;
    assert_eq!(max, Some(POINTS as f64));
}

#[tokio::test]
async fn compaction_on_redis() {
    let server = RedisServer::start();
    let store = redis_store(&server, "hawkeye", 3600).await;
    compaction_is_exact_and_idempotent(&store, Some(&server)).await;
}

/// A store remembers the slots it wrote, and finds their closed hours in
/// Redis: a writer that stopped before compacting leaves hours that the
/// next writer of the same name packs once its own hour has closed (a
/// restarted server, another one).
#[tokio::test]
async fn the_next_writer_of_a_name_compacts_what_a_stopped_one_left() {
    let server = RedisServer::start();
    let t = now();
    {
        let stopped = redis_store(&server, "hawkeye", 3600).await;
        write_two_days(&stopped, t).await;
    }
    let next = redis_store(&server, "hawkeye", 3600).await;
    late_write(&next, 200, t).await;
    let old_minute = (t - DAY) - (t - DAY).rem_euclid(60);
    let before = (Some(POINTS as f64 + 10.0), Some(1.0));
    assert_eq!(sums(&next, t, old_minute).await, before);
    // Its pass once the hour it wrote has closed finds the slot's others.
    let done = next.compact(t + 2 * 3600).await.unwrap();
    assert!(done.compacted > 40, "{done:?}");
    assert_eq!(sums(&next, t, old_minute).await, before);
    let hours = server.cli(&["--scan", "--pattern", "hawkeye:{bf.count}:c:h*"]);
    assert!(hours.lines().count() <= 2, "open hours only: {hours}");
}

#[tokio::test]
async fn compaction_on_redis_sharded() {
    let server = RedisServer::start();
    let store = store_at(&server.url(), "hawkeye", 3600, 4);
    compaction_is_exact_and_idempotent(&store, Some(&server)).await;
}

#[tokio::test]
async fn compaction_on_a_cluster() {
    let url = shared_cluster().url_list();
    let store = store_at(&url, "compaction", 3600, 3);
    compaction_is_exact_and_idempotent(&store, None).await;
}

/// At `HAWKEYE_MAX_PENDING_COMPACTIONS`, a store remembers no more
/// slot-hours and says how many it did not (`not_remembered`); those hours
/// stay hashes, still read exactly, and are compacted once their slot is
/// written again with room to remember it.
#[tokio::test]
async fn past_the_pending_compactions_bound_hours_are_counted_and_stay_exact() {
    let server = RedisServer::start();
    let mut config = RedisConfig::new(
        server.url(),
        "hawkeye",
        std::time::Duration::from_secs(3600),
    );
    config.max_pending_compactions = 1;
    let store = RedisStore::new(config).unwrap();
    let t = now();
    // Three hours ago: closed, and older than nothing the store keeps.
    let old = t - 3 * 3600;
    let point = |name: &str, second: i64| SeriesWrite {
        key: key(MetricKind::Counter, name, &[]),
        points: vec![(second, Aggregate::Counter(1.0))],
    };
    let both = vec![point("bound.a", old), point("bound.b", old)];
    store.write(&batch(1, both)).await.unwrap();
    let done = store.compact(t).await.unwrap();
    assert_eq!(done.compacted, 1, "{done:?}");
    assert_eq!(done.not_remembered, 1, "{done:?}");
    assert_eq!(done.waiting, 0, "{done:?}");
    let sum = |name: &str| window(name, "sum", 4 * 3600, t);
    assert_eq!(value(&store, sum("bound.a")).await, Some(1.0));
    assert_eq!(value(&store, sum("bound.b")).await, Some(1.0));
    // Counted once: the next pass reports no more.
    assert_eq!(store.compact(t).await.unwrap().not_remembered, 0);
    // Written again, with room: its hour is compacted, both points in it.
    store
        .write(&batch(2, vec![point("bound.b", old + 1)]))
        .await
        .unwrap();
    let done = store.compact(t).await.unwrap();
    assert_eq!((done.compacted, done.not_remembered), (1, 0), "{done:?}");
    assert_eq!(value(&store, sum("bound.b")).await, Some(2.0));
    let hours = server.cli(&["--scan", "--pattern", "hawkeye:{bound.*}:c:h*"]);
    assert_eq!(hours, "", "every hour compacted");
}
