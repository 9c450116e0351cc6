//! What one series flush costs, on one Redis and on a Redis Cluster, in one
//! run: bytes clients send into Redis, CPU of the writing process (the
//! server's share of a flush), CPU of Redis (all nodes: replicas apply the
//! writes too), and Redis memory per series (masters).
//!
//! `cargo bench -p hawkeye-store --bench flush`
//!
//! A real redis-server on a Unix socket and a real 3 + 3 Redis Cluster on
//! loopback TCP (testkit). Each flush writes every series once (one second
//! of data), as a server with that many active series does every
//! `HAWKEYE_FLUSH_INTERVAL`. The figures are deltas of `INFO` counters and
//! of this process's CPU time over the measured flushes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hawkeye_protocol::{MetricKind, SeriesKey};
use hawkeye_store::aggregate::{Aggregate, DistributionStats, GaugeStats};
use hawkeye_store::{RedisConfig, RedisStore, SeriesWrite, Store, WriteBatch};
use hawkeye_testkit::{proc_cpu, RedisCluster, RedisServer};

/// Metric names, and series per name.
const NAMES: usize = 100;
const SERIES_PER_NAME: usize = 100;
/// Flushes measured (after one that loads the script and connects).
const FLUSHES: u64 = 20;

/// This process's CPU time (user + system), from `/proc/self/stat`.
fn process_cpu() -> Duration {
    let (user, system) = proc_cpu::read_stat_times(std::path::Path::new("/proc/self/stat"))
        .expect("read /proc/self/stat");
    user + system
}

/// Counters of one Redis or of every node of a cluster, summed.
#[derive(Debug, Clone, Copy, Default)]
struct RedisCounters {
    bytes_in: f64,
    cpu_secs: f64,
    memory: f64,
}

impl RedisCounters {
    /// From one node's `INFO all`. Bytes count what clients sent (not the
    /// replication stream a replica receives); memory counts masters only
    /// (a replica holds a copy).
    fn from_info(info: &str) -> RedisCounters {
        let number = |f: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("{f}:")))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let master = info.lines().any(|l| l.trim() == "role:master");
        RedisCounters {
            bytes_in: number("total_net_input_bytes") - number("total_net_repl_input_bytes"),
            cpu_secs: number("used_cpu_user") + number("used_cpu_sys"),
            memory: if master { number("used_memory") } else { 0.0 },
        }
    }

    fn add(self, other: RedisCounters) -> RedisCounters {
        RedisCounters {
            bytes_in: self.bytes_in + other.bytes_in,
            cpu_secs: self.cpu_secs + other.cpu_secs,
            memory: self.memory + other.memory,
        }
    }
}

#[derive(Clone, Copy)]
enum Shape {
    Counter,
    Gauge,
    Distribution,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Shape::Counter => "counter",
            Shape::Gauge => "gauge",
            Shape::Distribution => "distribution (10 values)",
        }
    }

    fn kind(self) -> MetricKind {
        match self {
            Shape::Counter => MetricKind::Counter,
            Shape::Gauge => MetricKind::Gauge,
            Shape::Distribution => MetricKind::Distribution,
        }
    }

    fn aggregate(self, i: usize) -> Aggregate {
        match self {
            Shape::Counter => Aggregate::Counter(1.0),
            Shape::Gauge => Aggregate::Gauge(GaugeStats::new(i as f64)),
            Shape::Distribution => {
                let mut d = DistributionStats::default();
                for v in 0..10 {
                    d.observe((i % 50 + v * 7) as f64, 1.0);
                }
                Aggregate::Distribution(Box::new(d))
            }
        }
    }
}

/// The batches of one run: every series in every flush, one second each.
fn batches(shape: Shape, first_seq: u64, count: u64, second: i64) -> Vec<WriteBatch> {
    let keys: Vec<Arc<SeriesKey>> = (0..NAMES)
        .flat_map(|n| {
            (0..SERIES_PER_NAME).map(move |s| {
                Arc::new(SeriesKey::new(
                    shape.kind(),
                    &format!("bench.{}.{n}", shape.label().split(' ').next().unwrap()),
                    &[("host", &format!("host-{s}")), ("route", "/api/items")],
                ))
            })
        })
        .collect();
    (0..count)
        .map(|f| WriteBatch {
            server_id: 42,
            seq: first_seq + f,
            series: keys
                .iter()
                .enumerate()
                .map(|(i, key)| SeriesWrite {
                    key: key.clone(),
                    points: vec![(second, shape.aggregate(i))],
                })
                .collect(),
        })
        .collect()
}

struct Figures {
    bytes_in: f64,
    client_cpu_us: f64,
    redis_cpu_us: f64,
    wall_ms_per_flush: f64,
    memory_per_series: f64,
}

fn measure(
    rt: &tokio::runtime::Runtime,
    store: &RedisStore,
    shape: Shape,
    counters: &dyn Fn() -> RedisCounters,
) -> Figures {
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let before_any = counters();
    let warm = batches(shape, 1, 1, second);
    rt.block_on(store.write(&warm[0])).expect("first flush");
    let memory_per_series =
        (counters().memory - before_any.memory) / (NAMES * SERIES_PER_NAME) as f64;
    let measured = batches(shape, 2, FLUSHES, second);
    let start = counters();
    let cpu = process_cpu();
    let wall = Instant::now();
    for batch in &measured {
        rt.block_on(store.write(batch)).expect("flush");
    }
    let wall = wall.elapsed();
    let cpu = process_cpu() - cpu;
    let end = counters();
    let n = (NAMES * SERIES_PER_NAME) as f64 * FLUSHES as f64;
    Figures {
        bytes_in: (end.bytes_in - start.bytes_in) / n,
        client_cpu_us: cpu.as_secs_f64() * 1e6 / n,
        redis_cpu_us: (end.cpu_secs - start.cpu_secs) * 1e6 / n,
        wall_ms_per_flush: wall.as_secs_f64() * 1e3 / FLUSHES as f64,
        memory_per_series,
    }
}

fn row(setup: &str, shape: Shape, f: &Figures) {
    println!(
        "| {setup} | {} | {:.0} B | {:.2} µs | {:.2} µs | {:.1} ms | {:.0} B |",
        shape.label(),
        f.bytes_in,
        f.client_cpu_us,
        f.redis_cpu_us,
        f.wall_ms_per_flush,
        f.memory_per_series,
    );
}

fn store(url: &str, prefix: &str) -> RedisStore {
    RedisStore::new(RedisConfig::new(url, prefix, Duration::from_secs(3600))).expect("store")
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let series = NAMES * SERIES_PER_NAME;
    println!(
        "{series} series ({NAMES} names x {SERIES_PER_NAME}), {FLUSHES} flushes each; per series flush:\n"
    );
    println!("| setup | series | bytes into Redis | writer CPU | Redis CPU | wall per flush | Redis memory per series (masters) |");
    println!("|---|---|---|---|---|---|---|");
    let shapes = [Shape::Counter, Shape::Gauge, Shape::Distribution];

    let redis = RedisServer::start();
    for shape in shapes {
        let prefix = format!("bench-{}", shape.label());
        let counters = || RedisCounters::from_info(&redis.cli(&["INFO", "all"]));
        let figures = measure(&rt, &store(&redis.url(), &prefix), shape, &counters);
        row("one Redis (Unix socket)", shape, &figures);
    }
    let hour = hour_of_counters(&rt, &redis);
    drop(redis);

    let cluster = RedisCluster::start();
    for shape in shapes {
        let prefix = format!("bench-{}", shape.label());
        let counters = || {
            cluster
                .live_ports()
                .iter()
                .map(|p| RedisCounters::from_info(&cluster.cli(*p, &["INFO", "all"])))
                .fold(RedisCounters::default(), RedisCounters::add)
        };
        let figures = measure(&rt, &store(&cluster.url_list(), &prefix), shape, &counters);
        row("Redis Cluster, 3 masters (TCP)", shape, &figures);
    }
    println!(
        "\nA counter series with data in every second of an hour: {:.1} KB of Redis memory.",
        hour / 1000.0
    );
}

/// Redis memory per counter series holding every second of an hour.
fn hour_of_counters(rt: &tokio::runtime::Runtime, redis: &RedisServer) -> f64 {
    const SERIES: usize = 100;
    let memory = || RedisCounters::from_info(&redis.cli(&["INFO", "all"])).memory;
    let store = store(&redis.url(), "bench-hour");
    let keys: Vec<Arc<SeriesKey>> = (0..SERIES)
        .map(|s| {
            Arc::new(SeriesKey::new(
                MetricKind::Counter,
                "bench.hour",
                &[("host", &format!("host-{s}"))],
            ))
        })
        .collect();
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let before = memory();
    for minute in 0..60 {
        let first = end - 3600 + minute * 60;
        let batch = WriteBatch {
            server_id: 7,
            seq: minute as u64 + 1,
            series: keys
                .iter()
                .map(|key| SeriesWrite {
                    key: key.clone(),
                    points: (first..first + 60)
                        .map(|t| (t, Aggregate::Counter(1.0)))
                        .collect(),
                })
                .collect(),
        };
        rt.block_on(store.write(&batch)).expect("flush");
    }
    (memory() - before) / SERIES as f64
}
