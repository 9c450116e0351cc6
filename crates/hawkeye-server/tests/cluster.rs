//! Two `hawkeye-server` binaries on a real Redis Cluster (three masters,
//! three replicas) under steady load, through a master killed with
//! `kill -9`, a master frozen with SIGSTOP then resumed, a graceful
//! `CLUSTER FAILOVER` and a slot moved to another master. Each time both
//! servers keep answering `metric.query` (a value or an error, never a
//! hang), both stop on SIGTERM, and every event they answered is counted
//! exactly once. One server knows the cluster by a single seed URL (the node
//! about to fail, with a trailing comma), the other by the full list.
//!
//! Each test breaks its cluster, so each has its own.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hawkeye_store::window::WindowQuery;
use hawkeye_store::{RedisConfig, RedisStore, Store};
use hawkeye_testkit::redis_cluster::NodeInfo;
use hawkeye_testkit::{eventually, send_signal, ClusterOptions, Progress, RedisCluster};
use serde_json::{json, Value};

/// `REDIS_TIMEOUT` of the servers.
const REDIS_TIMEOUT: &str = "1s";
/// An answer that has not come after this will not come: the server hangs.
const ANSWERS_WITHIN: Duration = Duration::from_secs(30);
/// How long the cluster and the servers may take to recover.
const RECOVERS_WITHIN: Duration = Duration::from_secs(90);
/// Metric names sent: enough to land on every master.
const NAMES: usize = 12;

fn name(i: usize) -> String {
    format!("load.{i}")
}

/// A running `hawkeye-server`.
struct Server {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(redis_url: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("hawkeye.sock");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hawkeye-server"))
            .env_clear()
            .env("HAWKEYE_SOCKET", &socket)
            .env("REDIS_URL", redis_url)
            .env("REDIS_TIMEOUT", REDIS_TIMEOUT)
            .env("HAWKEYE_FLUSH_INTERVAL", "100ms")
            .env("RUST_LOG", "info")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start hawkeye-server");
        let stdout = child.stdout.take().unwrap();
        hawkeye_testkit::wait_for_line(stdout, ANSWERS_WITHIN, |line| {
            line.contains("hawkeye server listening").then_some(())
        })
        .expect("server reports listening");
        Server {
            child,
            socket,
            _dir: dir,
        }
    }

    /// SIGTERM, then the exit status; a server still running after the
    /// deadline fails the test.
    fn terminate(mut self) {
        send_signal(self.child.id(), "TERM");
        let mut status = None;
        eventually("hawkeye-server to obey SIGTERM", RECOVERS_WITHIN, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let status = status.unwrap();
        assert!(status.success(), "hawkeye-server exited with {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking JSON-RPC 2.0 connection whose every call must be answered
/// within [`ANSWERS_WITHIN`].
struct Rpc {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Rpc {
    fn connect(socket: &PathBuf) -> Rpc {
        let stream = UnixStream::connect(socket).expect("connect to hawkeye-server");
        stream.set_read_timeout(Some(ANSWERS_WITHIN)).unwrap();
        Rpc {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            next_id: 1,
        }
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let mut line =
            json!({"jsonrpc": "2.0", "method": method, "params": params, "id": self.next_id})
                .to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).unwrap();
        let mut answer = String::new();
        match self.reader.read_line(&mut answer) {
            Ok(n) if n > 0 => serde_json::from_str(&answer).unwrap(),
            other => panic!("{method}: no answer within {ANSWERS_WITHIN:?} ({other:?}): hung"),
        }
    }
}

/// Steady load on both servers: one thread per server sends one event per
/// name per request and counts what the server accepted; one thread per
/// server queries.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Progress,
    senders: Vec<JoinHandle<HashMap<String, u64>>>,
    queriers: Vec<JoinHandle<u64>>,
}

impl Load {
    fn start(servers: &[&Server]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (mut sent, mut senders, mut queriers) = (Progress::default(), Vec::new(), Vec::new());
        for server in servers {
            let count = sent.counter();
            let (socket, stop1) = (server.socket.clone(), stop.clone());
            senders.push(std::thread::spawn(move || send(socket, stop1, count)));
            let (socket, stop2) = (server.socket.clone(), stop.clone());
            queriers.push(std::thread::spawn(move || query(socket, stop2)));
        }
        Load {
            stop,
            sent,
            senders,
            queriers,
        }
    }

    /// Waits until every sender has had `n` more requests answered.
    fn progress(&self, n: u64) {
        self.sent
            .wait_for(n, RECOVERS_WITHIN, "the servers to answer more sends");
    }

    /// Stops the load and returns the events answered, per name.
    fn stop(self) -> HashMap<String, u64> {
        self.stop.store(true, Ordering::SeqCst);
        let mut answered: HashMap<String, u64> = HashMap::new();
        for sender in self.senders {
            for (name, n) in sender.join().unwrap() {
                *answered.entry(name).or_default() += n;
            }
        }
        for querier in self.queriers {
            assert!(querier.join().unwrap() > 0, "no query was ever answered");
        }
        answered
    }
}

fn send(socket: PathBuf, stop: Arc<AtomicBool>, count: Arc<AtomicU64>) -> HashMap<String, u64> {
    let mut rpc = Rpc::connect(&socket);
    let mut answered: HashMap<String, u64> = HashMap::new();
    let lines: Vec<String> = (0..NAMES).map(|i| format!("{}:1|c", name(i))).collect();
    while !stop.load(Ordering::SeqCst) {
        let reply = rpc.call("metric.send", json!(lines));
        let rejected: Vec<u64> = reply["result"]["rejected"]
            .as_array()
            .map(|r| r.iter().filter_map(|x| x["index"].as_u64()).collect())
            .unwrap_or_else(|| (0..NAMES as u64).collect());
        for i in (0..NAMES).filter(|i| !rejected.contains(&(*i as u64))) {
            *answered.entry(name(i)).or_default() += 1;
        }
        count.fetch_add(1, Ordering::SeqCst);
        // Pacing: a steady load, not a flood.
        std::thread::sleep(Duration::from_millis(5));
    }
    answered
}

fn query(socket: PathBuf, stop: Arc<AtomicBool>) -> u64 {
    let mut rpc = Rpc::connect(&socket);
    let mut answered = 0;
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        // A value or an error (-32003 while a master is away): an answer.
        let reply = rpc.call(
            "metric.query",
            json!({"metric": name(i % NAMES), "window": "10m"}),
        );
        assert!(reply.get("result").is_some() || reply.get("error").is_some());
        answered += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    answered
}

/// Reads every name's total from the cluster and compares it with what the
/// servers answered.
fn check_counts(cluster: &RedisCluster, answered: HashMap<String, u64>) {
    assert_eq!(answered.len(), NAMES);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = RedisStore::new(RedisConfig::new(
        cluster.url_list(),
        "hawkeye",
        Duration::from_secs(3600),
    ))
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for (name, want) in answered {
        let q = WindowQuery::new(name.clone(), 900, now + 1);
        let got = rt.block_on(store.query(&q)).unwrap().unwrap();
        assert_eq!(got, Some(want as f64), "{name}: counted vs answered");
    }
}

/// The master of name 0's slot, and servers on the cluster: the first knows
/// only that master (one seed, trailing comma), the second every node.
fn servers(cluster: &RedisCluster) -> (NodeInfo, Server, Server) {
    let master = cluster.master_of_slot(cluster.key_slot("{load.0}"));
    let seed = format!("redis://127.0.0.1:{},", master.port);
    (
        master,
        Server::start(&seed),
        Server::start(&cluster.url_list()),
    )
}

fn finish(cluster: &RedisCluster, load: Load, a: Server, b: Server) {
    load.progress(20);
    let answered = load.stop();
    a.terminate();
    b.terminate();
    check_counts(cluster, answered);
}

#[test]
fn two_servers_through_a_killed_master() {
    let mut cluster = RedisCluster::start();
    let (master, a, b) = servers(&cluster);
    let load = Load::start(&[&a, &b]);
    load.progress(20);
    cluster.kill(master.port);
    cluster.wait_healthy();
    finish(&cluster, load, a, b);
}

/// A master frozen (SIGSTOP) until its replica has taken over, then woken,
/// on a cluster set as docs/cluster.md recommends (`min-replicas-to-write
/// 1`): the servers' flushes to its slots time out and are retried against
/// the promoted replica (refused with `NOREPLICAS` until the old master
/// rejoins as its replica, and retried again); the old master, woken,
/// refuses writes instead of acknowledging what it would then discard.
/// Nothing answered is lost: counts are exact and both servers exit 0
/// (a server that could not write answered events exits 1).
#[test]
fn two_servers_through_a_frozen_master() {
    let mut cluster = RedisCluster::start_with(ClusterOptions {
        extra_args: [
            "--min-replicas-to-write",
            "1",
            "--min-replicas-max-lag",
            "5",
        ]
        .map(String::from)
        .to_vec(),
        ..ClusterOptions::default()
    });
    let (master, a, b) = servers(&cluster);
    let load = Load::start(&[&a, &b]);
    load.progress(20);
    cluster.pause(master.port);
    cluster.wait_healthy();
    load.progress(20);
    cluster.resume(master.port);
    cluster.wait_rejoined_as_replica(master.port);
    for server in [&a, &b] {
        let stats = Rpc::connect(&server.socket).call("server.stats", Value::Null);
        let errors = stats["result"]["store_errors"].as_u64().unwrap();
        assert!(
            errors > 0,
            "the frozen master never failed a flush: {stats}"
        );
    }
    finish(&cluster, load, a, b);
}

#[test]
fn two_servers_through_a_graceful_failover() {
    let cluster = RedisCluster::start();
    let (master, a, b) = servers(&cluster);
    let load = Load::start(&[&a, &b]);
    load.progress(20);
    let replica = cluster.replica_of(&master.id);
    cluster.failover(replica.port);
    cluster.wait_healthy();
    finish(&cluster, load, a, b);
}

#[test]
fn two_servers_through_a_slot_migration() {
    let cluster = RedisCluster::start();
    let (master, a, b) = servers(&cluster);
    let slot = cluster.key_slot("{load.0}");
    let target = cluster.other_master(&master.id);
    let load = Load::start(&[&a, &b]);
    load.progress(20);
    cluster.begin_migration(slot, target.port);
    while cluster.migrate_keys(slot, master.port, target.port, 1) > 0 {
        // Pacing, so the load runs between moves (not a synchronisation).
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.finish_migration(slot, target.port);
    cluster.wait_healthy();
    assert_eq!(cluster.master_of_slot(slot).port, target.port);
    finish(&cluster, load, a, b);
}
