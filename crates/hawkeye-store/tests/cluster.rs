//! The Redis store on a real Redis Cluster (three masters, three replicas)
//! through the faults of production: a master killed with `kill -9`, frozen
//! with SIGSTOP then resumed, a graceful `CLUSTER FAILOVER`, and a slot moved
//! to another master while it is written. Two writers act as two servers
//! (retrying a failed flush whole, as the server does) while a reader
//! queries. Each time: every call returns (no hang), and every flush that
//! succeeded is counted exactly once. Through the failover, two agents race
//! for the same alert transitions: never do both win one.
//!
//! Each test kills or moves things, so each has its own cluster.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hawkeye_protocol::{MetricKind, SeriesKey, TagFilter};
use hawkeye_store::aggregate::Aggregate;
use hawkeye_store::window::WindowQuery;
use hawkeye_store::{
    AlertCommit, AlertRead, RedisConfig, RedisStore, SeriesWrite, Store, WriteBatch,
};
use hawkeye_testkit::{Progress, RedisCluster};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// `REDIS_TIMEOUT` of the stores under test.
const TIMEOUT: Duration = Duration::from_secs(1);
/// `HAWKEYE_REDIS_WAIT_TIMEOUT` of the stores that wait for a replica.
const WAIT_TIMEOUT: Duration = Duration::from_millis(500);
/// A call that has not returned after this is hung (a store call may take a
/// few times `TIMEOUT`: connecting, then a round trip or two).
const RETURNS_WITHIN: Duration = Duration::from_secs(20);
/// How long the whole test may wait for the cluster to take writes again.
const RECOVERS_WITHIN: Duration = Duration::from_secs(90);
/// Metric names written: enough to land on every master.
const NAMES: usize = 12;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn name(i: usize) -> String {
    format!("load.{i}")
}

fn store(url: &str, shards: u32) -> Arc<RedisStore> {
    Arc::new(RedisStore::new(config(url, shards)).unwrap())
}

fn config(url: &str, shards: u32) -> RedisConfig {
    let mut config = RedisConfig::new(url, "hawkeye", Duration::from_secs(3600));
    config.timeout = TIMEOUT;
    config.shards_per_name = shards;
    config
}

/// A store whose flushes wait for one replica (`HAWKEYE_REDIS_WAIT_REPLICAS=1`).
fn waiting_store(url: &str) -> Arc<RedisStore> {
    let mut config = config(url, 1);
    config.wait_replicas = 1;
    config.wait_timeout = Some(WAIT_TIMEOUT);
    Arc::new(RedisStore::new(config).unwrap())
}

async fn returns<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(RETURNS_WITHIN, call)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {RETURNS_WITHIN:?}: hung"))
}

/// Two writers and a reader running against the cluster.
struct Load {
    stop: Arc<AtomicBool>,
    done: Progress,
    writers: Vec<JoinHandle<HashMap<String, f64>>>,
    reader: JoinHandle<u64>,
}

impl Load {
    /// Writers whose flushes do not wait for replicas: a master that dies
    /// may take the last writes it answered with it (docs/cluster.md).
    fn start(urls: [&str; 2]) -> Load {
        Load::start_with(urls, |url| store(url, 1))
    }

    /// Writers whose flushes wait for a replica: nothing answered is lost.
    fn start_waiting(urls: [&str; 2]) -> Load {
        Load::start_with(urls, waiting_store)
    }

    fn start_with(urls: [&str; 2], writer: impl Fn(&str) -> Arc<RedisStore>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut done = Progress::default();
        let mut writers = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let counter = done.counter();
            writers.push(tokio::spawn(write_until_stopped(
                writer(url),
                i as u64 + 1,
                stop.clone(),
                counter,
            )));
        }
        let reader = tokio::spawn(query_until_stopped(store(urls[0], 1), stop.clone()));
        Load {
            stop,
            done,
            writers,
            reader,
        }
    }

    /// Waits until every writer has completed `n` more flushes.
    async fn progress(&self, n: u64) {
        let done = self.done.clone();
        tokio::task::spawn_blocking(move || {
            done.wait_for(n, RECOVERS_WITHIN, "the writers to make progress")
        })
        .await
        .unwrap();
    }

    /// Stops, and checks every flush that succeeded is counted exactly once.
    async fn stop_and_check(self, url: &str) {
        self.stop.store(true, Ordering::SeqCst);
        let mut expected: HashMap<String, f64> = HashMap::new();
        for writer in self.writers {
            for (name, n) in writer.await.unwrap() {
                *expected.entry(name).or_default() += n;
            }
        }
        let queries = self.reader.await.unwrap();
        assert!(queries > 0, "the reader never got an answer");
        let reader = store(url, 1);
        let deadline = Instant::now() + RECOVERS_WITHIN;
        for (name, want) in expected {
            let q = WindowQuery::new(name.clone(), 900, now() + 1);
            let got = loop {
                match returns("query", reader.query(&q)).await {
                    Ok(outcome) => break outcome.unwrap(),
                    Err(e) => assert!(Instant::now() < deadline, "{name}: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            assert_eq!(got, Some(want), "{name}");
        }
    }
}

/// Flushes one counter increment per name, retrying a failed flush whole
/// with the same sequence number, until stopped. Returns what succeeded.
async fn write_until_stopped(
    store: Arc<RedisStore>,
    server_id: u64,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> HashMap<String, f64> {
    let mut written: HashMap<String, f64> = HashMap::new();
    let mut seq = 0;
    while !stop.load(Ordering::SeqCst) {
        seq += 1;
        let t = now();
        let series = (0..NAMES)
            .map(|i| SeriesWrite {
                key: Arc::new(SeriesKey::new(
                    MetricKind::Counter,
                    &name(i),
                    &[("server", &server_id.to_string())],
                )),
                points: vec![(t, Aggregate::Counter(1.0))],
            })
            .collect();
        let batch = WriteBatch {
            server_id,
            seq,
            series,
        };
        let deadline = Instant::now() + RECOVERS_WITHIN;
        while let Err(e) = returns("write", store.write(&batch)).await {
            assert!(Instant::now() < deadline, "writes never recovered: {e}");
            // The server's backoff between attempts.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for i in 0..NAMES {
            *written.entry(name(i)).or_default() += 1.0;
        }
        done.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    written
}

/// Queries all names until stopped; every query must return (an answer or
/// an error). Returns how many answered.
async fn query_until_stopped(store: Arc<RedisStore>, stop: Arc<AtomicBool>) -> u64 {
    let mut answered = 0;
    while !stop.load(Ordering::SeqCst) {
        let queries: Vec<WindowQuery> = (0..NAMES)
            .map(|i| WindowQuery::new(name(i), 60, now()))
            .collect();
        if returns("query_many", store.query_many(&queries))
            .await
            .is_ok()
        {
            answered += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    answered
}

/// The master serving name 0, and a single-seed URL naming it.
fn victim(cluster: &RedisCluster) -> (hawkeye_testkit::redis_cluster::NodeInfo, String) {
    let master = cluster.master_of_slot(cluster.key_slot("{load.0}"));
    let seed = format!("redis://127.0.0.1:{}", master.port);
    (master, seed)
}

/// With the flushes waiting for a replica, a master killed under load
/// loses nothing it answered (without the wait, Redis's asynchronous
/// replication can lose its last writes). Its replica, promoted, has none
/// of its own: flushes to it fail until one is added, as an operator would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_killed_under_load_loses_nothing_answered() {
    let mut cluster = RedisCluster::start();
    let (master, seed) = victim(&cluster);
    // One writer knows only the node about to die: it must find the others.
    let list = cluster.url_list();
    let load = Load::start_waiting([&seed, &list]);
    load.progress(20).await;
    cluster.kill(master.port);
    tokio::task::block_in_place(|| {
        cluster.wait_healthy();
        let promoted = cluster.master_of_slot(cluster.key_slot("{load.0}"));
        cluster.add_replica(promoted.port);
    });
    load.progress(20).await;
    load.stop_and_check(&list).await;
}

/// A flush whose replica does not answer fails (its writes are on the
/// master, unconfirmed); retried once the replica is back, it succeeds and
/// counts once. A store that does not wait is not held up meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flush_waiting_for_a_frozen_replica_fails_and_its_retry_counts_once() {
    let mut cluster = RedisCluster::start();
    let url = cluster.url_list();
    let master = cluster.master_of_slot(cluster.key_slot("{waited}"));
    let replica = cluster.replica_of(&master.id);
    let t = now();
    let flush = |name: &str| WriteBatch {
        server_id: 1,
        seq: 1,
        series: vec![SeriesWrite {
            key: Arc::new(SeriesKey::new(MetricKind::Counter, name, &[])),
            points: vec![(t, Aggregate::Counter(1.0))],
        }],
    };
    let waiting = waiting_store(&url);
    let plain = store(&url, 1);
    let sum = |name: &str| WindowQuery::new(name, 60, t);
    waiting.write(&flush("waited")).await.unwrap();
    // Connected before the pause: a cluster connection made while a node
    // is frozen waits for it.
    let got = plain.query(&sum("waited")).await.unwrap().unwrap();
    assert_eq!(got, Some(1.0));
    cluster.pause(replica.port);
    let mut next = flush("waited");
    next.seq = 2;
    for _ in 0..2 {
        let err = returns("write", waiting.write(&next)).await.unwrap_err();
        assert!(err.to_string().contains("0 of 1 replicas"), "{err}");
        // Applied on the master, not confirmed: the retry must not add it again.
        let got = plain.query(&sum("waited")).await.unwrap().unwrap();
        assert_eq!(got, Some(2.0));
    }
    // Another server, not waiting: its flush to the same master goes through.
    let mut other = flush("waited");
    other.server_id = 2;
    returns("write", plain.write(&other)).await.unwrap();
    cluster.resume(replica.port);
    let deadline = Instant::now() + RECOVERS_WITHIN;
    while let Err(e) = returns("write", waiting.write(&next)).await {
        assert!(Instant::now() < deadline, "the retry never succeeded: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = plain.query(&sum("waited")).await.unwrap().unwrap();
    assert_eq!(got, Some(3.0), "the retried flush counted twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_master_is_replaced_and_its_late_answers_ignored() {
    let mut cluster = RedisCluster::start();
    let (master, seed) = victim(&cluster);
    let list = cluster.url_list();
    let load = Load::start([&seed, &list]);
    load.progress(20).await;
    cluster.pause(master.port);
    // Frozen long enough for its replica to take over…
    tokio::task::block_in_place(|| cluster.wait_healthy());
    load.progress(20).await;
    // …then back: it must rejoin as a replica, discarding what it took
    // while frozen, and nobody may have counted its answers.
    cluster.resume(master.port);
    tokio::task::block_in_place(|| {
        cluster.wait_rejoined_as_replica(master.port);
    });
    load.progress(20).await;
    load.stop_and_check(&list).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_failover_under_load_loses_nothing_answered() {
    let cluster = RedisCluster::start();
    let (master, seed) = victim(&cluster);
    let list = cluster.url_list();
    let load = Load::start([&seed, &list]);
    // Two agents racing for the same alert transitions meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let agents: Vec<_> = [&seed, &list]
        .iter()
        .map(|url| tokio::spawn(race_for_transitions(store(url, 1), stop.clone())))
        .collect();
    load.progress(20).await;
    let replica = cluster.replica_of(&master.id);
    tokio::task::block_in_place(|| {
        cluster.failover(replica.port);
        cluster.wait_healthy();
    });
    load.progress(20).await;
    stop.store(true, Ordering::SeqCst);
    let mut won: HashMap<String, u32> = HashMap::new();
    for agent in agents {
        for key in agent.await.unwrap() {
            *won.entry(key).or_default() += 1;
        }
    }
    assert!(!won.is_empty(), "no transition was ever won");
    for (key, n) in won {
        assert_eq!(n, 1, "{key}: both agents won the same transition");
    }
    load.stop_and_check(&list).await;
}

fn alert_read(key: String) -> AlertRead {
    AlertRead {
        keys: vec![key],
        marker: "m".into(),
        marker_ttl: Duration::from_secs(3600),
        now_ms: 0,
    }
}

/// Plays an agent: for trigger after trigger, reads the state and swaps it
/// from absent to firing. Returns the triggers whose swap it won.
async fn race_for_transitions(store: Arc<RedisStore>, stop: Arc<AtomicBool>) -> Vec<String> {
    let mut won = Vec::new();
    let mut trigger = 0;
    while !stop.load(Ordering::SeqCst) {
        trigger += 1;
        let key = format!("monitor/{trigger}");
        let commit = AlertCommit {
            key: key.clone(),
            expected: None,
            new: Some("firing".into()),
            ttl: Duration::from_secs(3600),
            outbox: Vec::new(),
        };
        if let Ok(true) = returns("commit", store.commit_alert(&commit)).await {
            won.push(key.clone());
        }
        let _ = returns("read_alerts", store.read_alerts(&alert_read(key))).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    won
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_moved_under_load_loses_nothing_answered() {
    let cluster = RedisCluster::start();
    let (master, seed) = victim(&cluster);
    let list = cluster.url_list();
    let slot = cluster.key_slot("{load.0}");
    let target = cluster.other_master(&master.id);
    let load = Load::start([&seed, &list]);
    load.progress(20).await;
    cluster.begin_migration(slot, target.port);
    // One key at a time while the load runs: writes to the slot meet ASK
    // and TRYAGAIN (a script's keys on both sides) until it has moved.
    loop {
        let moved =
            tokio::task::block_in_place(|| cluster.migrate_keys(slot, master.port, target.port, 1));
        if moved == 0 {
            break;
        }
        // Pacing, so the load runs between moves (not a synchronisation).
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::block_in_place(|| {
        cluster.finish_migration(slot, target.port);
        cluster.wait_healthy();
    });
    assert_eq!(cluster.master_of_slot(slot).port, target.port);
    load.progress(20).await;
    load.stop_and_check(&list).await;
}

/// `HAWKEYE_SHARDS_PER_NAME` spreads a hot name over several masters, one
/// script call per shard per flush, and any reader reads it all back, also
/// after the shard count changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_name_spreads_over_masters_and_reads_back_whole() {
    let cluster = RedisCluster::start();
    let url = cluster.url_list();
    let t = now();
    let flush = |seq: u64, value: f64| WriteBatch {
        server_id: 1,
        seq,
        series: (0..200)
            .map(|i| SeriesWrite {
                key: Arc::new(SeriesKey::new(
                    MetricKind::Counter,
                    "hot",
                    &[("id", &i.to_string())],
                )),
                points: vec![(t, Aggregate::Counter(value))],
            })
            .collect(),
    };
    let wide = store(&url, 8);
    wide.write(&flush(1, 1.0)).await.unwrap();

    let evalsha = |c: &RedisCluster| -> u64 {
        c.live_ports()
            .iter()
            .map(|p| {
                let stats = c.cli(*p, &["INFO", "commandstats"]);
                stats
                    .lines()
                    .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
                    .and_then(|r| r.split(',').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            })
            .sum()
    };
    let before = evalsha(&cluster);
    wide.write(&flush(2, 1.0)).await.unwrap();
    let mut tags = BTreeSet::new();
    let mut masters = BTreeSet::new();
    for port in cluster.live_ports() {
        for key in cluster
            .cli(port, &["--scan", "--pattern", "hawkeye:{hot*}:flushes"])
            .lines()
        {
            tags.insert(key.to_string());
            masters.insert(port);
        }
    }
    assert_eq!(tags.len(), 8, "{tags:?}");
    assert!(masters.len() >= 2, "one master holds every shard");
    assert_eq!(evalsha(&cluster) - before, 8, "one script call per shard");

    // A reader set to one shard finds the count the writer recorded.
    let q = WindowQuery::new("hot", 60, t);
    let narrow = store(&url, 1);
    assert_eq!(narrow.query(&q).await.unwrap().unwrap(), Some(400.0));
    // The Go hawkeye's address form, host:port without a scheme (one node,
    // a trailing comma): cluster mode is detected and the count read back.
    let bare = format!("127.0.0.1:{},", cluster.ports()[0]);
    assert_eq!(
        store(&bare, 1).query(&q).await.unwrap().unwrap(),
        Some(400.0)
    );
    // Fewer shards now: series move, and a series in two shards adds up.
    store(&url, 3).write(&flush(3, 10.0)).await.unwrap();
    assert_eq!(narrow.query(&q).await.unwrap().unwrap(), Some(2400.0));
    let mut one = q.clone();
    one.tags = TagFilter([("id".to_string(), "7".to_string())].into());
    assert_eq!(wide.query(&one).await.unwrap().unwrap(), Some(12.0));
}
