//! The Redis store on one real redis-server: deadlines on a frozen server,
//! the connection made again, script calls per flush, `NOSCRIPT`, flush
//! markers and the order of a large flush's chunks; the reader's index
//! cache (commands per read, a writer in another process, bursts, off).

use std::sync::Arc;
use std::time::Duration;

use hawkeye_protocol::{MetricKind, SeriesKey};
use hawkeye_store::aggregate::{Aggregate, DistributionStats, GaugeStats};
use hawkeye_store::redis_store::WRITE_SCRIPT;
use hawkeye_store::window::WindowQuery;
use hawkeye_store::{
    AlertCommit, AlertRead, RedisConfig, RedisStore, SeriesWrite, Store, WriteBatch,
};
use hawkeye_testkit::RedisServer;

/// Long enough for any call against a frozen Redis with a short
/// `REDIS_TIMEOUT` to have returned; a call still running then is hung.
const RETURNS_WITHIN: Duration = Duration::from_secs(20);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn store(server: &RedisServer, retention: Duration, timeout: Duration) -> RedisStore {
    let mut config = RedisConfig::new(server.url(), "hk", retention);
    config.timeout = timeout;
    RedisStore::new(config).unwrap()
}

fn counter(name: &str, tags: &[(&str, &str)], second: i64, value: f64) -> SeriesWrite {
    SeriesWrite {
        key: Arc::new(SeriesKey::new(MetricKind::Counter, name, tags)),
        points: vec![(second, Aggregate::Counter(value))],
    }
}

fn batch(server_id: u64, seq: u64, series: Vec<SeriesWrite>) -> WriteBatch {
    WriteBatch {
        server_id,
        seq,
        series,
    }
}

fn sum_query(name: &str, end: i64) -> WindowQuery {
    WindowQuery::new(name, 300, end)
}

async fn sum(store: &RedisStore, name: &str, end: i64) -> Option<f64> {
    store.query(&sum_query(name, end)).await.unwrap().unwrap()
}

/// Runs `call`, failing the test if it has not returned within [`RETURNS_WITHIN`].
async fn returns<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(RETURNS_WITHIN, call)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return: hung"))
}

fn info_u64(server: &RedisServer, field: &str) -> u64 {
    server
        .info_field(field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {field}"))
}

#[tokio::test]
async fn a_frozen_redis_fails_every_call_within_the_timeout_and_the_retry_counts_once() {
    let server = RedisServer::start();
    let store = store(
        &server,
        Duration::from_secs(3600),
        Duration::from_millis(300),
    );
    let t = now();
    store
        .write(&batch(1, 1, vec![counter("frozen", &[], t, 1.0)]))
        .await
        .unwrap();
    let connections = info_u64(&server, "total_connections_received");

    server.pause();
    let second = batch(1, 2, vec![counter("frozen", &[], t, 10.0)]);
    assert!(returns("write", store.write(&second)).await.is_err());
    assert!(returns("query", store.query(&sum_query("frozen", t)))
        .await
        .is_err());
    let read = AlertRead {
        keys: vec!["a".into()],
        marker: "m".into(),
        marker_ttl: Duration::from_secs(60),
        now_ms: 0,
    };
    assert!(returns("read_alerts", store.read_alerts(&read))
        .await
        .is_err());
    let commit = AlertCommit {
        key: "a".into(),
        expected: None,
        new: Some("x".into()),
        ttl: Duration::from_secs(60),
        outbox: Vec::new(),
    };
    assert!(returns("commit", store.commit_alert(&commit))
        .await
        .is_err());
    assert!(returns("ping", store.ping()).await.is_err());
    server.resume();

    // The flusher retries the same batch; Redis may also run the first
    // attempt, still in its socket: the flush marker makes it count once.
    returns("write", store.write(&second)).await.unwrap();
    assert_eq!(sum(&store, "frozen", t).await, Some(11.0));
    assert!(
        info_u64(&server, "total_connections_received") > connections,
        "the timed-out connection was not replaced"
    );
}

#[tokio::test]
async fn one_script_call_per_name_per_flush_and_a_script_load_only_after_noscript() {
    let server = RedisServer::start();
    let store = store(&server, Duration::from_secs(3600), Duration::from_secs(5));
    let t = now();
    let flush = |seq: u64| {
        let mut series = Vec::new();
        for i in 0..40 {
            let host = format!("h{i}");
            series.push(counter("calls.c", &[("host", &host)], t, 1.0));
            let mut d = DistributionStats::default();
            d.observe(i as f64, 1.0);
            series.push(SeriesWrite {
                key: Arc::new(SeriesKey::new(
                    MetricKind::Distribution,
                    "calls.d",
                    &[("host", &host)],
                )),
                points: vec![(t - 61, Aggregate::Distribution(Box::new(d)))],
            });
            series.push(SeriesWrite {
                key: Arc::new(SeriesKey::new(
                    MetricKind::Gauge,
                    "calls.g",
                    &[("host", &host)],
                )),
                points: vec![(t, Aggregate::Gauge(GaugeStats::new(2.0)))],
            });
        }
        batch(1, seq, series)
    };
    // The first flush finds no script on the node: NOSCRIPT, one SCRIPT
    // LOAD, and the calls again.
    store.write(&flush(1)).await.unwrap();
    assert_eq!(server.command_calls("script|load"), 1);
    let evalsha = server.command_calls("evalsha");
    store.write(&flush(2)).await.unwrap();
    assert_eq!(server.command_calls("evalsha") - evalsha, 3, "one per name");
    assert_eq!(server.command_calls("script|load"), 1, "no load per flush");
    assert_eq!(
        server.command_calls("eval"),
        0,
        "the script's text is not sent"
    );

    // The script cache emptied (as on a restarted or promoted node): the
    // next flush loads the script once more and still counts right.
    assert_eq!(server.cli(&["SCRIPT", "FLUSH"]), "OK");
    store.write(&flush(3)).await.unwrap();
    assert_eq!(server.command_calls("script|load"), 2);
    assert_eq!(sum(&store, "calls.c", t).await, Some(120.0));
    assert_eq!(sum(&store, "calls.g", t).await, Some(80.0));
    let mut count = sum_query("calls.d", t);
    count.aggregation = Some("count".parse().unwrap());
    assert_eq!(store.query(&count).await.unwrap().unwrap(), Some(120.0));
}

#[tokio::test]
async fn flush_markers_are_one_per_server_and_name_and_silent_servers_are_forgotten() {
    let server = RedisServer::start();
    let store = store(&server, Duration::from_secs(3600), Duration::from_secs(5));
    let t = now();
    for server_id in 1..=100 {
        store
            .write(&batch(server_id, 7, vec![counter("marked", &[], t, 1.0)]))
            .await
            .unwrap();
    }
    assert_eq!(sum(&store, "marked", t).await, Some(100.0));
    assert_eq!(server.cli(&["HLEN", "hk:{marked}:flushes"]), "100");
    let minute = format!("hk:{{marked}}:c:{}:", t.div_euclid(60));
    assert_eq!(
        server.cli(&["HKEYS", &minute]),
        (t.rem_euclid(60)).to_string(),
        "a minute hash holds data fields only"
    );

    // With a one-second retention, a server that stopped writing loses its
    // marker once another server writes more than a second later.
    let short = store_with_retention(&server, Duration::from_secs(1));
    short
        .write(&batch(1, 1, vec![counter("brief", &[], now(), 1.0)]))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seq = 1;
    loop {
        seq += 1;
        short
            .write(&batch(2, seq, vec![counter("brief", &[], now(), 1.0)]))
            .await
            .unwrap();
        if server.cli(&["HEXISTS", "hk:{brief}:flushes", "1"]) == "0" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "marker never trimmed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.cli(&["HKEYS", "hk:{brief}:flushes"]), "2");
    assert_eq!(server.cli(&["ZCARD", "hk:{brief}:flush_times"]), "1");
}

fn store_with_retention(server: &RedisServer, retention: Duration) -> RedisStore {
    store(server, retention, Duration::from_secs(5))
}

#[tokio::test]
async fn a_large_flush_is_cut_in_chunks_that_apply_in_order_once() {
    let server = RedisServer::start();
    let store = store(&server, Duration::from_secs(3600), Duration::from_secs(5));
    let t = now();
    // 3 000 gauge series of one name: several script calls for one slot.
    let series: Vec<SeriesWrite> = (0..3000)
        .map(|i| SeriesWrite {
            key: Arc::new(SeriesKey::new(
                MetricKind::Gauge,
                "wide.g",
                &[("id", &i.to_string())],
            )),
            points: vec![(t, Aggregate::Gauge(GaugeStats::new(1.0)))],
        })
        .collect();
    let b = batch(9, 4, series);
    store.write(&b).await.unwrap();
    let chunks: u64 = server
        .cli(&["HGET", "hk:{wide.g}:flushes", "9"])
        .strip_prefix("4 ")
        .and_then(|n| n.parse().ok())
        .expect("marker `4 <chunks>`");
    assert!(chunks > 1, "{chunks} chunk(s)");
    store.write(&b).await.unwrap();
    assert_eq!(sum(&store, "wide.g", t).await, Some(3000.0));
}

/// The script itself, called by hand: a chunk whose predecessor has not
/// been applied is refused, an applied one is skipped; a new series, or
/// one idle for `wake` (60 s) written again, is answered 2 (a change of the
/// index for readers).
#[tokio::test]
async fn the_write_script_keeps_chunks_in_order() {
    let server = RedisServer::start();
    let keys = ["i", "f", "t", "h", "d"];
    let score = now().to_string();
    let call_scored = |seq: &str, chunk: &str, value: &str, score: &str| {
        let mut args = vec!["EVAL", WRITE_SCRIPT, "5"];
        args.extend(keys);
        args.extend(["60", "srv", seq, chunk, "0", "60", "3600"]);
        args.extend(["c|", score, "60", "-", "1", "+40", value]);
        server.cli(&args)
    };
    let call = |seq: &str, chunk: &str, value: &str| call_scored(seq, chunk, value, &score);
    let refused = call("5", "1", "1");
    assert!(refused.contains("HAWKEYE_ORDER"), "{refused}");
    assert_eq!(server.cli(&["EXISTS", "d"]), "0");
    assert_eq!(call("5", "0", "1"), "2", "a new series");
    assert_eq!(call("5", "1", "2"), "1");
    assert_eq!(call("5", "0", "100"), "0", "chunk 0 again: skipped");
    assert_eq!(call("5", "1", "100"), "0", "chunk 1 again: skipped");
    assert_eq!(call("4", "0", "100"), "0", "an older flush: skipped");
    assert_eq!(server.cli(&["HGET", "d", "40"]), "3");
    assert_eq!(server.cli(&["HGET", "f", "srv"]), "5 2");
    assert_eq!(call("6", "0", "1"), "1");
    assert_eq!(server.cli(&["HGET", "d", "40"]), "4");
    // The series last scored 200 s ago (idle), then written again.
    let idle = (now() - 200).to_string();
    assert_eq!(server.cli(&["ZADD", "i", "XX", &idle, "c|"]), "0");
    assert_eq!(call("7", "0", "1"), "2", "an idle series written again");
    assert_eq!(
        call_scored("8", "0", "1", &idle),
        "1",
        "scored now: not idle"
    );
}

fn reader(server: &RedisServer, index_cache: usize) -> RedisStore {
    let mut config = RedisConfig::new(server.url(), "hk", Duration::from_secs(3600));
    config.index_cache = index_cache;
    RedisStore::new(config).unwrap()
}

/// Reads 50 names (one series each) in one call: their sum.
async fn read_all(store: &RedisStore, end: i64) -> f64 {
    let queries: Vec<WindowQuery> = (0..50)
        .map(|i| WindowQuery::new(format!("cached.{i}"), 10, end))
        .collect();
    let outcomes = store.query_many(&queries).await.unwrap();
    outcomes
        .into_iter()
        .map(|o| o.unwrap().unwrap_or(0.0))
        .sum()
}

/// A writer (another store: another process, in production) and a reader
/// that holds the index of 50 names written at `t`.
async fn writer_and_holding_reader(server: &RedisServer) -> (RedisStore, RedisStore, i64) {
    let writer = store(server, Duration::from_secs(3600), Duration::from_secs(5));
    let reader = reader(server, 1000);
    let t = now();
    let series = (0..50).map(|i| counter(&format!("cached.{i}"), &[], t, 1.0));
    writer.write(&batch(1, 1, series.collect())).await.unwrap();
    // The first read learns where the change stream is, and holds nothing
    // yet (on a cluster the indexes were read beside it, maybe before a
    // change it lists); the second holds every index.
    assert_eq!(read_all(&reader, t).await, 50.0);
    assert_eq!(read_all(&reader, t).await, 50.0);
    (writer, reader, t)
}

#[tokio::test]
async fn a_reader_reads_the_change_stream_instead_of_every_index() {
    let server = RedisServer::start();
    let (writer, reader, t) = writer_and_holding_reader(&server).await;
    let (indexes, changes) = (
        server.command_calls("zrangebyscore"),
        server.command_calls("xrange"),
    );
    assert_eq!(read_all(&reader, t).await, 50.0);
    assert_eq!(
        server.command_calls("zrangebyscore"),
        indexes,
        "every index held"
    );
    assert_eq!(
        server.command_calls("xrange"),
        changes + 1,
        "one read of the changes"
    );

    // A series added to one name: that index only is read again. (The
    // write script runs ZRANGEBYSCORE too: count around the reads only.)
    let added = counter("cached.7", &[("host", "new")], t, 1.0);
    writer.write(&batch(1, 2, vec![added])).await.unwrap();
    let indexes = server.command_calls("zrangebyscore");
    assert_eq!(read_all(&reader, t).await, 51.0);
    assert_eq!(server.command_calls("zrangebyscore"), indexes + 1);
    // Series already known change nothing.
    let again = (0..50).map(|i| counter(&format!("cached.{i}"), &[], t - 1, 1.0));
    writer.write(&batch(1, 3, again.collect())).await.unwrap();
    let indexes = server.command_calls("zrangebyscore");
    assert_eq!(read_all(&reader, t).await, 101.0);
    assert_eq!(server.command_calls("zrangebyscore"), indexes);
}

#[tokio::test]
async fn a_burst_of_changes_drops_every_held_index_and_reads_stay_right() {
    let server = RedisServer::start();
    let (writer, reader, t) = writer_and_holding_reader(&server).await;
    // More change entries than a read takes (1 000), one of them a new
    // series of a held name.
    for seq in 0..1001 {
        let name = format!("burst.{seq}");
        writer
            .write(&batch(1, 2 + seq, vec![counter(&name, &[], t, 1.0)]))
            .await
            .unwrap();
    }
    let added = counter("cached.3", &[("host", "new")], t, 1.0);
    writer.write(&batch(1, 2000, vec![added])).await.unwrap();
    let indexes = server.command_calls("zrangebyscore");
    assert_eq!(read_all(&reader, t).await, 51.0);
    assert_eq!(
        server.command_calls("zrangebyscore"),
        indexes + 50,
        "every held index read again"
    );
}

#[tokio::test]
async fn with_the_index_cache_off_every_read_reads_every_index() {
    let server = RedisServer::start();
    let reader = reader(&server, 0);
    let t = now();
    let series = (0..50).map(|i| counter(&format!("cached.{i}"), &[], t, 1.0));
    reader.write(&batch(1, 1, series.collect())).await.unwrap();
    assert_eq!(read_all(&reader, t).await, 50.0);
    let indexes = server.command_calls("zrangebyscore");
    assert_eq!(read_all(&reader, t).await, 50.0);
    assert_eq!(server.command_calls("zrangebyscore"), indexes + 50);
    assert_eq!(
        server.command_calls("xrange") + server.command_calls("xrevrange"),
        0
    );
}
