//! The same behaviour asked of every store: the in-memory one, Redis (a real
//! redis-server started per test on a temporary socket) with one and with
//! several shards per name, and a real Redis Cluster (three masters, three
//! replicas, shared by the file) reached through one seed or all nodes.

#[macro_use]
mod common;

use common::*;

async fn counters_sum_across_seconds_series_and_flushes(
    store: &dyn Store,
    _: Option<&RedisServer>,
) {
    let t = now();
    let a = key(
        MetricKind::Counter,
        "http.requests",
        &[("code", "200"), ("route", "/a")],
    );
    let b = key(
        MetricKind::Counter,
        "http.requests",
        &[("code", "500"), ("route", "/a")],
    );
    // Seconds on both sides of a minute boundary (t is hh:mm:30).
    let points = |v: f64| {
        (0..60)
            .map(|i| (t - 59 + i, Aggregate::Counter(v)))
            .collect::<Vec<_>>()
    };
    store
        .write(&batch(
            1,
            vec![SeriesWrite {
                key: a.clone(),
                points: points(1.0),
            }],
        ))
        .await
        .unwrap();
    store
        .write(&batch(
            2,
            vec![
                SeriesWrite {
                    key: a.clone(),
                    points: points(2.0),
                },
                SeriesWrite {
                    key: b.clone(),
                    points: points(0.5),
                },
            ],
        ))
        .await
        .unwrap();
    assert_eq!(
        value(store, query("http.requests", None, 60, t)).await,
        Some(60.0 * 3.5)
    );
    assert_eq!(
        value(store, query("http.requests", Some("rate"), 60, t)).await,
        Some(3.5)
    );
    // The window's edges are inclusive of `end` and exclude `end - window`.
    assert_eq!(
        value(store, query("http.requests", None, 10, t)).await,
        Some(35.0)
    );
    assert_eq!(
        value(store, query("http.requests", None, 1, t - 59)).await,
        Some(3.5)
    );
    assert_eq!(
        value(store, query("http.requests", None, 10, t - 60)).await,
        None
    );
    let mut q = query("http.requests", None, 60, t);
    q.tags = TagFilter(BTreeMap::from([("code".to_string(), "500".to_string())]));
    assert_eq!(value(store, q.clone()).await, Some(30.0));
    q.tags.0.insert("route".into(), "/b".into());
    assert_eq!(value(store, q).await, None);
    assert_eq!(value(store, query("nothing.here", None, 60, t)).await, None);
}
every_store!(counters, counters_sum_across_seconds_series_and_flushes);

async fn a_retried_flush_counts_once(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    let k = key(MetricKind::Counter, "retried", &[]);
    let b = batch(
        5,
        vec![SeriesWrite {
            key: k.clone(),
            points: vec![(t, Aggregate::Counter(10.0))],
        }],
    );
    store.write(&b).await.unwrap();
    store.write(&b).await.unwrap();
    assert_eq!(
        value(store, query("retried", None, 60, t)).await,
        Some(10.0)
    );
    // Another server's flush with the same sequence number is its own.
    let mut other = b.clone();
    other.server_id = 8;
    store.write(&other).await.unwrap();
    assert_eq!(
        value(store, query("retried", None, 60, t)).await,
        Some(20.0)
    );
}
every_store!(retries, a_retried_flush_counts_once);

async fn gauges_last_min_max_avg(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    let k = key(MetricKind::Gauge, "queue.depth", &[("queue", "q1")]);
    let mut first = GaugeStats::new(10.0);
    first.observe(30.0);
    let mut second = GaugeStats::new(5.0);
    second.observe(7.0);
    store
        .write(&batch(
            1,
            vec![SeriesWrite {
                key: k.clone(),
                points: vec![
                    (t - 2, Aggregate::Gauge(first)),
                    (t - 1, Aggregate::Gauge(second)),
                ],
            }],
        ))
        .await
        .unwrap();
    // A later flush of the same second: last wins, min/max/sum merge.
    store
        .write(&batch(
            2,
            vec![SeriesWrite {
                key: k.clone(),
                points: vec![(t - 1, Aggregate::Gauge(GaugeStats::new(6.0)))],
            }],
        ))
        .await
        .unwrap();
    let other = key(MetricKind::Gauge, "queue.depth", &[("queue", "q2")]);
    store
        .write(&batch(
            3,
            vec![SeriesWrite {
                key: other,
                points: vec![(t - 5, Aggregate::Gauge(GaugeStats::new(100.0)))],
            }],
        ))
        .await
        .unwrap();
    let mut q1 = query("queue.depth", None, 60, t);
    q1.tags = TagFilter(BTreeMap::from([("queue".to_string(), "q1".to_string())]));
    assert_eq!(value(store, q1.clone()).await, Some(6.0));
    q1.aggregation = Some(Aggregation::Min);
    assert_eq!(value(store, q1.clone()).await, Some(5.0));
    q1.aggregation = Some(Aggregation::Max);
    assert_eq!(value(store, q1.clone()).await, Some(30.0));
    q1.aggregation = Some(Aggregation::Avg);
    assert_eq!(
        value(store, q1).await,
        Some((10.0 + 30.0 + 5.0 + 7.0 + 6.0) / 5.0)
    );
    // Without a filter the series' last values add up.
    assert_eq!(
        value(store, query("queue.depth", None, 60, t)).await,
        Some(106.0)
    );
    assert_eq!(
        value(store, query("queue.depth", Some("max"), 60, t)).await,
        Some(100.0)
    );
}
every_store!(gauges, gauges_last_min_max_avg);

async fn distributions_quantiles_within_one_percent(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    let k = key(
        MetricKind::Distribution,
        "http.latency",
        &[("route", "/checkout")],
    );
    let mut all: Vec<f64> = Vec::new();
    let mut points = Vec::new();
    for s in 0..20 {
        let mut d = DistributionStats::default();
        for i in 0..500 {
            let v = 1.0 + ((s * 500 + i) as f64 * 7.3) % 2500.0;
            d.observe(v, 1.0);
            all.push(v);
        }
        points.push((t - s, Aggregate::Distribution(Box::new(d))));
    }
    store
        .write(&batch(1, vec![SeriesWrite { key: k, points }]))
        .await
        .unwrap();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for (agg, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
        let want = all[((all.len() - 1) as f64 * q) as usize];
        let got = value(store, query("http.latency", Some(agg), 60, t))
            .await
            .unwrap();
        assert!(
            ((got - want) / want).abs() <= 0.01,
            "{agg}: want {want}, got {got}"
        );
    }
    assert_eq!(
        value(store, query("http.latency", Some("count"), 60, t)).await,
        Some(10_000.0)
    );
    assert_eq!(
        value(store, query("http.latency", Some("min"), 60, t)).await,
        Some(all[0])
    );
    assert_eq!(
        value(store, query("http.latency", Some("max"), 60, t)).await,
        Some(*all.last().unwrap())
    );
    let avg = value(store, query("http.latency", Some("avg"), 60, t))
        .await
        .unwrap();
    let want_avg = all.iter().sum::<f64>() / all.len() as f64;
    assert!((avg - want_avg).abs() < 1e-6, "avg {avg} vs {want_avg}");
}
every_store!(distributions, distributions_quantiles_within_one_percent);

async fn sets_count_distinct_members_over_the_window(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    let k = key(MetricKind::Set, "ratelimit.users", &[]);
    // 1000 distinct users over 10 seconds, each seen in two seconds.
    let points = (0..10)
        .map(|s| {
            let members: HashSet<String> = (0..200)
                .map(|i| format!("user-{}", (s * 100 + i) % 1000))
                .collect();
            (t - s, Aggregate::Set(Box::new(members)))
        })
        .collect();
    store
        .write(&batch(1, vec![SeriesWrite { key: k, points }]))
        .await
        .unwrap();
    let unique = value(store, query("ratelimit.users", None, 60, t))
        .await
        .unwrap();
    // Redis counts with HyperLogLog (0.81% standard error); memory is exact.
    assert!((unique - 1000.0).abs() <= 10.0, "unique {unique}");
}
every_store!(sets, sets_count_distinct_members_over_the_window);

async fn bad_queries_are_errors_not_values(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    store
        .write(&batch(
            1,
            vec![
                SeriesWrite {
                    key: key(MetricKind::Counter, "mixed", &[]),
                    points: vec![(t, Aggregate::Counter(1.0))],
                },
                SeriesWrite {
                    key: key(MetricKind::Gauge, "mixed", &[]),
                    points: vec![(t, Aggregate::Gauge(GaugeStats::new(2.0)))],
                },
            ],
        ))
        .await
        .unwrap();
    let err = store
        .query(&query("mixed", None, 60, t))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, QueryError::AmbiguousKind { .. }), "{err}");
    let mut q = query("mixed", Some("p95"), 60, t);
    q.kind = Some(MetricKind::Counter);
    let err = store.query(&q).await.unwrap().unwrap_err();
    assert!(matches!(err, QueryError::WrongAggregation { .. }), "{err}");
    q.kind = Some(MetricKind::Gauge);
    q.aggregation = None;
    assert_eq!(value(store, q).await, Some(2.0));
}
every_store!(bad_queries, bad_queries_are_errors_not_values);

fn commit(key: &str, expected: Option<&str>, new: Option<&str>, mail: &[&str]) -> AlertCommit {
    AlertCommit {
        key: key.to_string(),
        expected: expected.map(str::to_string),
        new: new.map(str::to_string),
        ttl: Duration::from_secs(3600),
        outbox: mail
            .iter()
            .map(|id| OutboxEntry {
                id: id.to_string(),
                body: format!("mail {id}"),
            })
            .collect(),
    }
}

fn read(keys: &[&str], marker: &str) -> AlertRead {
    AlertRead {
        keys: keys.iter().map(|k| k.to_string()).collect(),
        marker: marker.to_string(),
        marker_ttl: Duration::from_secs(3600),
        now_ms: now() as u64 * 1000,
    }
}

async fn alert_state_compare_and_swap_with_its_mail(store: &dyn Store, _: Option<&RedisServer>) {
    let snap = store
        .read_alerts(&read(&["m1/t1", "m1/t2"], "first"))
        .await
        .unwrap();
    assert_eq!(snap.states, vec![None, None]);
    assert_eq!(snap.marker, "first", "a fresh store takes the marker given");
    assert!(store
        .commit_alert(&commit("m1/t1", None, Some("firing"), &["e1.firing"]))
        .await
        .unwrap());
    // A second agent that read "absent" loses the race, and its mail is
    // not recorded.
    assert!(!store
        .commit_alert(&commit("m1/t1", None, Some("firing"), &["e2.firing"]))
        .await
        .unwrap());
    assert!(!store
        .commit_alert(&commit("m1/t1", Some("ok"), Some("x"), &[]))
        .await
        .unwrap());
    assert!(store
        .commit_alert(&commit(
            "m1/t1",
            Some("firing"),
            Some("ok"),
            &["e1.resolved"]
        ))
        .await
        .unwrap());
    let snap = store
        .read_alerts(&read(&["m1/t1", "m1/t2"], "second"))
        .await
        .unwrap();
    assert_eq!(snap.states, vec![Some("ok".to_string()), None]);
    assert_eq!(snap.marker, "first", "the marker is set once");
    let now_ms = now() as u64 * 1000;
    let mut ids: Vec<String> = store
        .claim_outbox(now_ms, Duration::from_secs(60), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["e1.firing", "e1.resolved"]);
    // Deleting a state.
    assert!(store
        .commit_alert(&commit("m1/t1", Some("ok"), None, &[]))
        .await
        .unwrap());
    let snap = store.read_alerts(&read(&["m1/t1"], "x")).await.unwrap();
    assert_eq!(snap.states, vec![None]);
}
every_store!(alert_state, alert_state_compare_and_swap_with_its_mail);

async fn outbox_entries_are_leased_and_settled(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now() as u64 * 1000;
    let lease = Duration::from_secs(30);
    assert!(store
        .commit_alert(&commit("k", None, Some("firing"), &["a", "b"]))
        .await
        .unwrap());
    // The same notice recorded again (by a retried commit) stays one entry.
    assert!(store
        .commit_alert(&commit("k", Some("firing"), Some("firing2"), &["a"]))
        .await
        .unwrap());
    let first = store.claim_outbox(t, lease, 1).await.unwrap();
    assert_eq!(first.len(), 1, "at most max");
    let second = store.claim_outbox(t, lease, 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].id, second[0].id);
    assert_eq!(second[0].body, format!("mail {}", second[0].id));
    assert!(
        store
            .claim_outbox(t + 1000, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "both leased"
    );
    store
        .settle_outbox(&first[0].id, Settle::Done)
        .await
        .unwrap();
    store
        .settle_outbox(&second[0].id, Settle::RetryAt(t + 5_000))
        .await
        .unwrap();
    assert!(store
        .claim_outbox(t + 4_000, lease, 10)
        .await
        .unwrap()
        .is_empty());
    let again = store.claim_outbox(t + 5_000, lease, 10).await.unwrap();
    assert_eq!(again, second, "due again after its retry time");
    // A lease that runs out makes the entry claimable by someone else.
    let after_lease = store
        .claim_outbox(t + 5_000 + 30_000, lease, 10)
        .await
        .unwrap();
    assert_eq!(after_lease, second);
    store
        .settle_outbox(&second[0].id, Settle::Done)
        .await
        .unwrap();
    assert!(store
        .claim_outbox(t + 999_000, lease, 10)
        .await
        .unwrap()
        .is_empty());
}
every_store!(outbox, outbox_entries_are_leased_and_settled);

async fn silences_run_until_they_end_or_expire(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now() as u64 * 1000;
    store
        .put_silence("s2", "second", t + 120_000)
        .await
        .unwrap();
    store.put_silence("s1", "first", t + 60_000).await.unwrap();
    store.put_silence("old", "ended", t - 1).await.unwrap();
    assert_eq!(store.silences(t).await.unwrap(), ["first", "second"]);
    let snap = store.read_alerts(&read(&[], "m")).await.unwrap();
    assert_eq!(snap.silences, ["first", "second"], "read with the states");
    assert_eq!(store.silences(t + 60_000).await.unwrap(), ["second"]);
    assert!(store.expire_silence("s2").await.unwrap());
    assert!(!store.expire_silence("s2").await.unwrap(), "already ended");
    assert!(!store.expire_silence("nope").await.unwrap());
    // s1 ended at t + 60 s (and was forgotten then), s2 was expired.
    assert!(store.silences(t).await.unwrap().is_empty());
}
every_store!(silences, silences_run_until_they_end_or_expire);

/// The watermark is the oldest of the live servers' newest flushed
/// seconds; a server removed, or not heard of for its `live_for`, no longer
/// holds it back.
async fn the_watermark_is_the_slowest_live_server(store: &dyn Store, _: Option<&RedisServer>) {
    let long = Duration::from_secs(60);
    assert_eq!(store.watermark().await.unwrap(), None, "no server yet");
    store.put_watermark(1, 1_000, long).await.unwrap();
    store.put_watermark(2, 990, long).await.unwrap();
    let w = store.watermark().await.unwrap().unwrap();
    assert_eq!((w.second, w.servers), (990, 2));
    store.put_watermark(2, 1_005, long).await.unwrap();
    let w = store.watermark().await.unwrap().unwrap();
    assert_eq!((w.second, w.servers), (1_000, 2));
    store.remove_watermark(1).await.unwrap();
    let w = store.watermark().await.unwrap().unwrap();
    assert_eq!((w.second, w.servers), (1_005, 1));
    // A server that stops writing: its entry runs out.
    store
        .put_watermark(3, 900, Duration::from_millis(1))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let w = store.watermark().await.unwrap().unwrap();
        if w.servers == 1 {
            assert_eq!(w.second, 1_005);
            break;
        }
        assert_eq!(w.second, 900, "{w:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "server 3 never expired"
        );
        tokio::task::yield_now().await;
    }
    store.remove_watermark(2).await.unwrap();
    assert_eq!(store.watermark().await.unwrap(), None);
}
every_store!(watermark, the_watermark_is_the_slowest_live_server);

async fn a_gauge_keeps_its_last_value_until_stale(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    let g = |name: &str| key(MetricKind::Gauge, name, &[]);
    store
        .write(&batch(
            1,
            vec![
                SeriesWrite {
                    key: g("sparse"),
                    points: vec![
                        (t - 200, Aggregate::Gauge(GaugeStats::new(3.0))),
                        (t - 100, Aggregate::Gauge(GaugeStats::new(7.0))),
                    ],
                },
                SeriesWrite {
                    key: key(MetricKind::Gauge, "sparse2", &[("a", "1")]),
                    points: vec![(t - 100, Aggregate::Gauge(GaugeStats::new(1.0)))],
                },
                SeriesWrite {
                    key: key(MetricKind::Gauge, "sparse2", &[("a", "2")]),
                    points: vec![(t - 2, Aggregate::Gauge(GaugeStats::new(10.0)))],
                },
            ],
        ))
        .await
        .unwrap();
    let q = |name: &str, agg: Option<&str>, stale: Option<u64>| WindowQuery {
        kind: Some(MetricKind::Gauge),
        stale_after: stale,
        ..query(name, agg, 10, t)
    };
    assert_eq!(
        value(store, q("sparse", None, None)).await,
        None,
        "not in the window"
    );
    assert_eq!(
        value(store, q("sparse", None, Some(300))).await,
        Some(7.0),
        "the latest value"
    );
    assert_eq!(
        value(store, q("sparse", Some("last"), Some(150))).await,
        Some(7.0)
    );
    assert_eq!(
        value(store, q("sparse", None, Some(100))).await,
        None,
        "stale"
    );
    assert_eq!(
        value(store, q("sparse", Some("max"), Some(300))).await,
        None,
        "only `last` looks back"
    );
    // Series add their last values; each looks back on its own.
    assert_eq!(
        value(store, q("sparse2", None, Some(300))).await,
        Some(11.0)
    );
    assert_eq!(value(store, q("sparse2", None, None)).await, Some(10.0));
    // Without a type given, the same.
    let mut untyped = q("sparse", None, Some(300));
    untyped.kind = None;
    assert_eq!(value(store, untyped).await, Some(7.0));
}
every_store!(stale_gauges, a_gauge_keeps_its_last_value_until_stale);

fn grouped(q: WindowQuery, by: &[&str]) -> GroupedQuery {
    GroupedQuery {
        query: q,
        group_by: by.iter().map(|s| s.to_string()).collect(),
    }
}

/// `(group values joined by ",", value)` of each group, in order.
fn groups(outcome: &GroupedOutcome) -> Vec<(String, f64)> {
    outcome
        .as_ref()
        .expect("valid query")
        .iter()
        .map(|g| (g.values.join(","), g.value))
        .collect()
}

async fn grouped_reads_split_by_tag_values(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    let c = |tags: &[(&str, &str)]| key(MetricKind::Counter, "grouped.errors", tags);
    let points = |v: f64| {
        (0..20)
            .map(|i| (t - 19 + i, Aggregate::Counter(v)))
            .collect::<Vec<_>>()
    };
    let timing = |v: f64| {
        let mut d = DistributionStats::default();
        d.observe(v, 1.0);
        Aggregate::Distribution(Box::new(d))
    };
    let set = |members: &[&str]| {
        Aggregate::Set(Box::new(members.iter().map(|m| m.to_string()).collect()))
    };
    let series = vec![
        SeriesWrite {
            key: c(&[("route", "/a"), ("code", "500")]),
            points: points(1.0),
        },
        SeriesWrite {
            key: c(&[("route", "/a"), ("code", "502")]),
            points: points(2.0),
        },
        SeriesWrite {
            key: c(&[("route", "/b"), ("code", "500")]),
            points: points(0.5),
        },
        SeriesWrite {
            key: c(&[("code", "500")]),
            points: points(4.0),
        },
        SeriesWrite {
            key: key(
                MetricKind::Distribution,
                "grouped.latency",
                &[("route", "/a")],
            ),
            points: vec![(t - 1, timing(100.0)), (t - 2, timing(300.0))],
        },
        SeriesWrite {
            key: key(
                MetricKind::Distribution,
                "grouped.latency",
                &[("route", "/b")],
            ),
            points: vec![(t - 1, timing(900.0))],
        },
        SeriesWrite {
            key: key(MetricKind::Set, "grouped.users", &[("route", "/a")]),
            points: vec![(t - 1, set(&["u1", "u2"])), (t - 2, set(&["u2", "u3"]))],
        },
        SeriesWrite {
            key: key(MetricKind::Set, "grouped.users", &[("route", "/b")]),
            points: vec![(t - 1, set(&["u1"]))],
        },
        SeriesWrite {
            key: key(MetricKind::Gauge, "grouped.depth", &[("queue", "q1")]),
            points: vec![(t - 100, Aggregate::Gauge(GaugeStats::new(7.0)))],
        },
        SeriesWrite {
            key: key(MetricKind::Gauge, "grouped.depth", &[("queue", "q2")]),
            points: vec![(t - 1, Aggregate::Gauge(GaugeStats::new(3.0)))],
        },
    ];
    store.write(&batch(1, series)).await.unwrap();
    let mut filtered = query("grouped.errors", None, 20, t);
    filtered.tags = TagFilter(BTreeMap::from([("code".to_string(), "500".to_string())]));
    let mut stale = query("grouped.depth", None, 10, t);
    stale.stale_after = Some(300);
    stale.kind = Some(MetricKind::Gauge);
    let queries = [
        grouped(query("grouped.errors", None, 20, t), &["route"]),
        grouped(query("grouped.errors", None, 20, t), &["route", "code"]),
        grouped(filtered, &["route"]),
        grouped(query("grouped.latency", Some("max"), 20, t), &["route"]),
        grouped(query("grouped.users", None, 20, t), &["route"]),
        grouped(stale, &["queue"]),
        grouped(query("grouped.depth", None, 10, t), &["queue"]),
        grouped(query("grouped.nothing", None, 20, t), &["route"]),
        grouped(query("grouped.errors", Some("p99"), 20, t), &["route"]),
        grouped(query("grouped.errors", None, 1, t - 30), &["route"]),
    ];
    let out = store.query_grouped(&queries).await.expect("store answers");
    assert_eq!(out.len(), queries.len());
    // A series without the tag is the group of the empty value.
    assert_eq!(
        groups(&out[0]),
        [("".into(), 80.0), ("/a".into(), 60.0), ("/b".into(), 10.0)]
    );
    assert_eq!(
        groups(&out[1]),
        [
            (",500".into(), 80.0),
            ("/a,500".into(), 20.0),
            ("/a,502".into(), 40.0),
            ("/b,500".into(), 10.0),
        ]
    );
    assert_eq!(
        groups(&out[2]),
        [("".into(), 80.0), ("/a".into(), 20.0), ("/b".into(), 10.0)],
        "the monitor's tag filter applies first"
    );
    assert_eq!(
        groups(&out[3]),
        [("/a".into(), 300.0), ("/b".into(), 900.0)]
    );
    assert_eq!(groups(&out[4]), [("/a".into(), 3.0), ("/b".into(), 1.0)]);
    assert_eq!(
        groups(&out[5]),
        [("q1".into(), 7.0), ("q2".into(), 3.0)],
        "a gauge keeps its last value until stale, per group"
    );
    assert_eq!(groups(&out[6]), [("q2".into(), 3.0)]);
    assert_eq!(groups(&out[7]), []);
    assert!(
        matches!(out[8], Err(QueryError::WrongAggregation { .. })),
        "{:?}",
        out[8]
    );
    assert_eq!(groups(&out[9]), [], "no data in the window: no groups");
    // The same values as the plain reads of each group.
    let mut a = query("grouped.errors", None, 20, t);
    a.tags = TagFilter(BTreeMap::from([("route".to_string(), "/a".to_string())]));
    assert_eq!(value(store, a).await, Some(60.0));
}
every_store!(grouped, grouped_reads_split_by_tag_values);

async fn alert_states_are_listed_and_history_is_capped(store: &dyn Store, _: Option<&RedisServer>) {
    let ttl = Duration::from_secs(60);
    let write = |key: &str, new: Option<&str>, expected: Option<&str>| AlertCommit {
        key: key.to_string(),
        expected: expected.map(str::to_string),
        new: new.map(str::to_string),
        ttl,
        outbox: vec![],
    };
    for key in [
        "v2|s|e|m=a|#1",
        "v2|s|e|m=b|#1|g=route=/x",
        "v2|s|other|m=a|#1",
    ] {
        assert!(store
            .commit_alert(&write(key, Some("firing"), None))
            .await
            .unwrap());
    }
    let short = AlertCommit {
        ttl: Duration::from_millis(1),
        ..write("v2|s|e|m=short|#1", Some("ok"), None)
    };
    assert!(store.commit_alert(&short).await.unwrap());
    assert!(store
        .commit_alert(&write("v2|s|e|m=a|#1", None, Some("firing")))
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        store.alert_states("v2|s|e|").await.unwrap(),
        [("v2|s|e|m=b|#1|g=route=/x".to_string(), "firing".to_string())],
        "deleted and expired states are not listed; the prefix selects"
    );
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let entries: Vec<String> = (0..50).map(|i| format!("entry {i}")).collect();
    store.append_history("prod", &entries, 10).await.unwrap();
    store
        .append_history("staging", &entries[..1], 10)
        .await
        .unwrap();
    let history = store
        .history("prod", start.saturating_sub(5_000))
        .await
        .unwrap();
    assert_eq!(history.len(), 10, "the latest 10");
    assert_eq!(history[0].1, "entry 40");
    assert_eq!(history.last().map(|(_, e)| e.as_str()), Some("entry 49"));
    assert!(
        history.iter().all(|(at, _)| *at + 5_000 >= start),
        "{history:?}"
    );
    assert_eq!(store.history("staging", 0).await.unwrap().len(), 1);
    assert_eq!(store.history("prod", u64::MAX / 2).await.unwrap(), []);
    assert_eq!(store.history("none", 0).await.unwrap(), []);
}
every_store!(alert_listing, alert_states_are_listed_and_history_is_capped);

#[tokio::test]
async fn redis_alert_keys_share_one_slot_and_expire() {
    let server = RedisServer::start();
    let store = redis_store(&server, "hk", 120).await;
    store.read_alerts(&read(&["a"], "m")).await.unwrap();
    let mut c = commit("a b/{c}", None, Some("firing"), &["id1"]);
    c.ttl = Duration::from_secs(50);
    assert!(store.commit_alert(&c).await.unwrap());
    store
        .put_silence("s", "x", now() as u64 * 1000 + 60_000)
        .await
        .unwrap();
    let keys = server.cli(&["--scan", "--pattern", "*"]);
    let mut keys: Vec<&str> = keys.lines().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "hk:{alerts}:marker",
            "hk:{alerts}:outbox",
            "hk:{alerts}:outbox:due",
            "hk:{alerts}:silences",
            "hk:{alerts}:silences:ends",
            "hk:{alerts}:state:a b/{c}",
            "hk:{alerts}:states",
        ]
    );
    for k in keys {
        let ttl: i64 = server.cli(&["TTL", k]).parse().unwrap();
        assert!(ttl > 0 && ttl <= 3600, "{k} ttl {ttl}");
    }
}

#[tokio::test]
async fn redis_legacy_states_are_read_and_deleted() {
    let server = RedisServer::start();
    let store = redis_store(&server, "hawkeye", 3600).await;
    server.cli(&[
        "SET",
        "hawkeye:alert:{shop:dev:m:00ff}",
        "{\"status\":\"firing\"}",
    ]);
    let keys = vec!["shop:dev:m:00ff".to_string(), "other".to_string()];
    assert_eq!(
        store.legacy_alert_states(&keys).await.unwrap(),
        vec![Some("{\"status\":\"firing\"}".to_string()), None]
    );
    store.delete_legacy_alert_states(&keys).await.unwrap();
    assert_eq!(
        store.legacy_alert_states(&keys).await.unwrap(),
        vec![None, None]
    );
}

#[tokio::test]
async fn memory_legacy_states_are_read_and_deleted() {
    let store = MemoryStore::new(Duration::from_secs(3600));
    store.put_legacy_alert_state("old", "s");
    let keys = vec!["old".to_string()];
    assert_eq!(
        store.legacy_alert_states(&keys).await.unwrap(),
        vec![Some("s".to_string())]
    );
    store.delete_legacy_alert_states(&keys).await.unwrap();
    assert_eq!(store.legacy_alert_states(&keys).await.unwrap(), vec![None]);
}

async fn queries_in_one_call_keep_their_order(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    let writes = (0..50)
        .map(|i| SeriesWrite {
            key: key(MetricKind::Counter, &format!("m{i}"), &[]),
            points: vec![(t, Aggregate::Counter(i as f64))],
        })
        .collect();
    store.write(&batch(1, writes)).await.unwrap();
    let queries: Vec<WindowQuery> = (0..50)
        .rev()
        .map(|i| query(&format!("m{i}"), None, 5, t))
        .collect();
    let outcomes = store.query_many(&queries).await.unwrap();
    let values: Vec<Option<f64>> = outcomes.into_iter().map(|o| o.unwrap()).collect();
    let want: Vec<Option<f64>> = (0..50).rev().map(|i| Some(i as f64)).collect();
    assert_eq!(values, want);
}
every_store!(query_many, queries_in_one_call_keep_their_order);

#[tokio::test]
async fn redis_keys_share_a_hash_tag_and_expire() {
    let server = RedisServer::start();
    let store = redis_store(&server, "hk", 120).await;
    let t = now();
    // A TTL read later has counted down by the seconds since the write.
    let written = std::time::Instant::now();
    store
        .write(&batch(
            1,
            vec![
                SeriesWrite {
                    key: key(MetricKind::Counter, "a.b", &[("x", "1")]),
                    points: vec![(t, Aggregate::Counter(1.0))],
                },
                SeriesWrite {
                    key: key(MetricKind::Set, "a.b", &[]),
                    points: vec![(
                        t,
                        Aggregate::Set(Box::new(HashSet::from(["u".to_string()]))),
                    )],
                },
            ],
        ))
        .await
        .unwrap();
    let keys = server.cli(&["--scan", "--pattern", "*"]);
    let (changes, mut keys): (Vec<&str>, Vec<&str>) =
        keys.lines().partition(|k| k.starts_with("hk:{alerts}:"));
    keys.sort();
    // The name's new series are recorded for readers' index caches, in
    // a stream that expires with the data.
    assert_eq!(changes, ["hk:{alerts}:index_changes"]);
    let recorded = server.cli(&["XRANGE", changes[0], "-", "+"]);
    assert!(recorded.lines().any(|l| l == "a.b"), "{recorded}");
    let ttl: i64 = server.cli(&["TTL", changes[0]]).parse().unwrap();
    assert!(ttl > 0 && ttl <= 120, "ttl {ttl}");
    // Data (per second and rolled up per hour, or per minute for a set),
    // index, and the flush markers of the name.
    // `c:#` a minute hash, `c:h` an hour rollup; `s:#` a second's
    // HyperLogLog, `s:m` a minute's.
    let shape = |k: &&str| {
        let parts: Vec<&str> = k.split(':').collect();
        match parts[2] {
            "c" | "s" => {
                let bucket = parts[3].trim_start_matches(|c: char| c.is_ascii_digit());
                format!("{}:{}", parts[2], bucket.chars().next().unwrap_or('#'))
            }
            other => other.to_string(),
        }
    };
    assert_eq!(
        keys.iter().map(shape).collect::<Vec<_>>(),
        [
            "c:#",
            "c:h",
            "flush_times",
            "flushes",
            "hours",
            "s:#",
            "s:m",
            "series"
        ],
        "{keys:?}"
    );
    // Rollups and the index live for the rollup retention (35 days by
    // default) from their data's hour; the rest for the retention.
    let rollup = 35 * 86_400 + 3600;
    for k in keys {
        assert!(k.starts_with("hk:{a.b}:"), "{k}");
        let ttl: i64 = server.cli(&["TTL", k]).parse().unwrap();
        let long = k.contains(":h") || k.contains(":s:m") || k.ends_with(":series");
        // (`:h` also matches the open hours, `P:{name}:hours`.)
        let most = if long { rollup } else { 120 };
        // Whole seconds since the write, and one for the TTL's rounding:
        // a loaded machine may take more than a second to get here.
        let since = written.elapsed().as_secs() as i64 + 1;
        assert!(ttl >= 120.min(most) - since && ttl <= most, "{k} ttl {ttl}");
        if long {
            assert!(ttl > 35 * 86_400 - 3600, "{k} ttl {ttl}");
        }
    }
}

#[tokio::test]
async fn redis_down_is_an_error_and_recovers_after_restart() {
    let mut server = RedisServer::start();
    let store = redis_store(&server, "hawkeye", 3600).await;
    let t = now();
    let k = key(MetricKind::Counter, "c", &[]);
    store
        .write(&batch(
            1,
            vec![SeriesWrite {
                key: k.clone(),
                points: vec![(t, Aggregate::Counter(1.0))],
            }],
        ))
        .await
        .unwrap();
    server.stop();
    let b2 = batch(
        2,
        vec![SeriesWrite {
            key: k.clone(),
            points: vec![(t, Aggregate::Counter(2.0))],
        }],
    );
    assert!(store.write(&b2).await.is_err());
    assert!(store.query(&query("c", None, 5, t)).await.is_err());
    server.restart();
    // The connection comes back on its own; the restarted Redis is empty and
    // has not seen the write script (SCRIPT LOAD goes first in every flush).
    let mut result = store.write(&b2).await;
    for _ in 0..50 {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        result = store.write(&b2).await;
    }
    result.expect("write after restart");
    assert_eq!(value(&store, query("c", None, 5, t)).await, Some(2.0));
}

/// A reader that read a name before (the Redis store then holds its index)
/// finds a series added since, and one written again after an idle spell,
/// in plain and grouped reads.
async fn series_added_or_back_from_idle_are_found_at_the_next_read(
    store: &dyn Store,
    _: Option<&RedisServer>,
) {
    let t = now();
    let c = |id: &str, second: i64| SeriesWrite {
        key: key(MetricKind::Counter, "joiners", &[("id", id)]),
        points: vec![(second, Aggregate::Counter(1.0))],
    };
    // "idle" was last written long before any window read below.
    store
        .write(&batch(1, vec![c("idle", t - 300), c("a", t)]))
        .await
        .unwrap();
    let q = || query("joiners", None, 10, t);
    let by_id = || grouped(q(), &["id"]);
    assert_eq!(value(store, q()).await, Some(1.0));
    assert_eq!(value(store, q()).await, Some(1.0), "read again, unchanged");
    store.write(&batch(2, vec![c("b", t)])).await.unwrap();
    assert_eq!(value(store, q()).await, Some(2.0), "a new series");
    store
        .write(&batch(3, vec![c("idle", t - 1)]))
        .await
        .unwrap();
    assert_eq!(value(store, q()).await, Some(3.0), "an idle series again");
    store.write(&batch(4, vec![c("c", t - 2)])).await.unwrap();
    let outcome = store.query_grouped(&[by_id()]).await.unwrap().remove(0);
    assert_eq!(
        groups(&outcome),
        [
            ("a".to_string(), 1.0),
            ("b".to_string(), 1.0),
            ("c".to_string(), 1.0),
            ("idle".to_string(), 1.0)
        ]
    );
}
every_store!(
    joiners,
    series_added_or_back_from_idle_are_found_at_the_next_read
);

async fn large_reads_and_writes_span_several_round_trips(
    store: &dyn Store,
    _: Option<&RedisServer>,
) {
    // More than 10 000 commands each way: 12 000 counter series over two
    // minutes, and a set spread over 12 000 per-second keys.
    let t = now();
    let writes: Vec<SeriesWrite> = (0..12_000)
        .map(|i| SeriesWrite {
            key: key(MetricKind::Counter, "wide", &[("id", &i.to_string())]),
            points: vec![
                (t - 40, Aggregate::Counter(1.0)),
                (t, Aggregate::Counter(2.0)),
            ],
        })
        .collect();
    store.write(&batch(1, writes)).await.unwrap();
    assert_eq!(
        value(store, query("wide", None, 60, t)).await,
        Some(36_000.0)
    );
    let mut one = query("wide", None, 60, t);
    one.tags = TagFilter(BTreeMap::from([("id".to_string(), "11999".to_string())]));
    assert_eq!(value(store, one).await, Some(3.0));

    let sets: Vec<SeriesWrite> = (0..4_000)
        .map(|i| SeriesWrite {
            key: key(MetricKind::Set, "wide.users", &[("shard", &i.to_string())]),
            points: (0..3)
                .map(|s| {
                    (
                        t - s,
                        Aggregate::Set(Box::new(HashSet::from([format!("u{}", (i + s) % 5_000)]))),
                    )
                })
                .collect(),
        })
        .collect();
    store.write(&batch(2, sets)).await.unwrap();
    let unique = value(store, query("wide.users", None, 10, t))
        .await
        .unwrap();
    assert!((unique - 4_002.0).abs() <= 40.0, "unique {unique}");
}
every_store!(large, large_reads_and_writes_span_several_round_trips);

// Range reads (issue 10, `metric.range`).

async fn range_reads_match_window_reads_step_by_step(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now(); // hh:mm:30
    let minute = t - 30;
    let a = key(MetricKind::Counter, "range.hits", &[("route", "/a")]);
    let b = key(MetricKind::Counter, "range.hits", &[("route", "/b")]);
    let g = key(MetricKind::Gauge, "range.depth", &[]);
    let d = key(MetricKind::Distribution, "range.latency", &[]);
    let s = key(MetricKind::Set, "range.users", &[]);
    // Every second of minutes mm-3 and mm (up to t), none in mm-2 and mm-1.
    let seconds: Vec<i64> = (minute - 180..minute - 120).chain(minute..=t).collect();
    let write = |k: &Arc<SeriesKey>, f: &dyn Fn(i64) -> Aggregate| SeriesWrite {
        key: k.clone(),
        points: seconds.iter().map(|&sec| (sec, f(sec))).collect(),
    };
    let dist = |sec: i64| {
        let mut d = DistributionStats::default();
        for i in 0..20 {
            d.observe(1.0 + ((sec + i) % 97) as f64, 1.0);
        }
        Aggregate::Distribution(Box::new(d))
    };
    let users = |sec: i64| {
        let m: HashSet<String> = (0..5).map(|i| format!("u{}", (sec + i) % 40)).collect();
        Aggregate::Set(Box::new(m))
    };
    let series = vec![
        write(&a, &|_| Aggregate::Counter(1.0)),
        write(&b, &|_| Aggregate::Counter(2.0)),
        write(&g, &|sec| {
            Aggregate::Gauge(GaugeStats::new((sec % 60) as f64))
        }),
        write(&d, &dist),
        write(&s, &users),
    ];
    store.write(&batch(1, series)).await.unwrap();

    // Four minutes back from hh:mm:30 start at hh:(mm-4):00: five steps,
    // the last one partial; the two empty minutes have no point.
    let points = range_checked(store, query("range.hits", None, 240, t), 60).await;
    assert_eq!(points, vec![(minute - 180, 180.0), (minute, 93.0)]);
    let rates = range_checked(store, query("range.hits", Some("rate"), 240, t), 60).await;
    assert_eq!(rates, vec![(minute - 180, 3.0), (minute, 3.0)]);
    let mut only_b = query("range.hits", None, 240, t);
    only_b.tags = TagFilter(BTreeMap::from([("route".to_string(), "/b".to_string())]));
    let points = range_checked(store, only_b, 60).await;
    assert_eq!(points, vec![(minute - 180, 120.0), (minute, 62.0)]);
    // One-second steps read single fields; 25-second steps cross minutes.
    let points = range_checked(store, query("range.hits", None, 20, t), 1).await;
    assert_eq!(points.len(), 20);
    assert!(points.iter().all(|(_, v)| *v == 3.0), "{points:?}");
    range_checked(store, query("range.hits", None, 240, t), 25).await;
    let maxima = range_checked(store, query("range.depth", Some("max"), 240, t), 60).await;
    assert_eq!(maxima, vec![(minute - 180, 59.0), (minute, 30.0)]);
    range_checked(store, query("range.depth", None, 240, t), 60).await;
    range_checked(store, query("range.latency", Some("p95"), 240, t), 60).await;
    range_checked(store, query("range.latency", Some("count"), 240, t), 30).await;
    let unique = range_checked(store, query("range.users", None, 240, t), 60).await;
    assert_eq!(unique.len(), 2, "{unique:?}");
    assert_eq!(
        range_checked(store, query("range.none", None, 240, t), 60).await,
        vec![]
    );
}
every_store!(range_reads, range_reads_match_window_reads_step_by_step);

async fn bad_range_reads_are_errors_not_points(store: &dyn Store, _: Option<&RedisServer>) {
    let t = now();
    let mixed = vec![
        SeriesWrite {
            key: key(MetricKind::Counter, "range.mixed", &[]),
            points: vec![(t - 100, Aggregate::Counter(1.0))],
        },
        SeriesWrite {
            key: key(MetricKind::Gauge, "range.mixed", &[]),
            points: vec![(t, Aggregate::Gauge(GaugeStats::new(2.0)))],
        },
    ];
    store.write(&batch(1, mixed)).await.unwrap();
    let read = |q: WindowQuery, step_secs: u64| async move {
        let range = RangeQuery {
            query: q,
            step_secs,
        };
        store.query_range(&range).await.expect("store answers")
    };
    // The kind is resolved over the whole range, not step by step (each
    // step alone holds one kind).
    let err = read(query("range.mixed", None, 240, t), 60)
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::AmbiguousKind { .. }), "{err}");
    let mut gauge = query("range.mixed", Some("sum"), 60, t);
    gauge.kind = Some(MetricKind::Gauge);
    let err = read(gauge.clone(), 10).await.unwrap_err();
    assert!(matches!(err, QueryError::WrongAggregation { .. }), "{err}");
    gauge.aggregation = None;
    assert_eq!(read(gauge.clone(), 0).await, Err(QueryError::ZeroStep));
    let err = read(query("range.mixed", None, 86_400, t), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::TooManyPoints { .. }), "{err}");
    assert_eq!(read(gauge, 60).await, Ok(vec![(t - 30, 2.0)]));
}
every_store!(bad_range_reads, bad_range_reads_are_errors_not_points);
