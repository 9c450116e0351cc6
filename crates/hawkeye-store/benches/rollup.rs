//! Rollups: Redis memory per counter series per day once its hours are
//! closed and compacted, and the time of a 30-day window read over 1 000
//! series.
//!
//! `cargo bench -p hawkeye-store --bench rollup`
//!
//! A real redis-server on a Unix socket (testkit). 1 000 counter series of
//! one name get a point every minute (a count of 1 to 7) for the 30 days
//! before today, written as a backfill would be (one flush a day), each
//! day compacted after it is written. Memory is `used_memory`'s growth over
//! the load, per series and day; the read is `metric.query`'s window read
//! (`sum` over 30 days of all series), timed over a few runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hawkeye_protocol::{MetricKind, SeriesKey};
use hawkeye_store::aggregate::Aggregate;
use hawkeye_store::window::WindowQuery;
use hawkeye_store::{RedisConfig, RedisStore, SeriesWrite, Store, WriteBatch};
use hawkeye_testkit::RedisServer;

const SERIES: usize = 1000;
const DAYS: i64 = 30;
const READS: usize = 5;

fn used_memory(server: &RedisServer) -> f64 {
    let info = server.cli(&["INFO", "memory"]);
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}

fn count_at(series: usize, minute: i64) -> f64 {
    (1 + (minute + series as i64) % 7) as f64
}

fn main() {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut config = RedisConfig::new(server.url(), "bench", Duration::from_secs(3600));
    // A round trip of a backfill carries up to 10 000 full hours.
    config.timeout = Duration::from_secs(120);
    let store = RedisStore::new(config).unwrap();
    let keys: Vec<Arc<SeriesKey>> = (0..SERIES)
        .map(|i| {
            Arc::new(SeriesKey::new(
                MetricKind::Counter,
                "bench.requests",
                &[("id", &i.to_string())],
            ))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let today = now - now.rem_euclid(86_400);
    let first_minute = (today - DAYS * 86_400) / 60;
    let baseline = used_memory(&server);
    let loading = Instant::now();
    rt.block_on(async {
        let mut seq = 0;
        for day in 0..DAYS {
            let minutes = first_minute + day * 1440..first_minute + (day + 1) * 1440;
            for chunk in (0..SERIES).collect::<Vec<_>>().chunks(100) {
                let series = chunk
                    .iter()
                    .map(|&i| SeriesWrite {
                        key: keys[i].clone(),
                        points: minutes
                            .clone()
                            .map(|m| (m * 60 + 30, Aggregate::Counter(count_at(i, m))))
                            .collect(),
                    })
                    .collect();
                seq += 1;
                let batch = WriteBatch {
                    server_id: 1,
                    seq,
                    series,
                };
                store.write(&batch).await.expect("write");
            }
            let done = store.compact(now).await.expect("compact");
            assert_eq!(done.retried, 0, "{done:?}");
        }
    });
    let loaded = loading.elapsed();
    let per_series_day = (used_memory(&server) - baseline) / (SERIES as f64 * DAYS as f64);
    eprintln!("loaded in {loaded:?}: {per_series_day:.0} B per series per day");
    let day_key = server.cli(&["--scan", "--pattern", "bench:*:c:d*"]);
    let sample = day_key.lines().next().expect("a day string").to_string();
    let strlen = server.cli(&["STRLEN", &sample]);
    let usage = server.cli(&["MEMORY", "USAGE", &sample]);
    let hours = server
        .cli(&["--scan", "--pattern", "bench:*:c:h*"])
        .lines()
        .count();

    // The 30-day window ending now: every minute whose first second is in
    // it (docs/storage.md, "Tiers").
    let query = WindowQuery::new("bench.requests", 30 * 86_400, now);
    let first = (query.start() + 59).div_euclid(60);
    let expected: f64 = (0..SERIES)
        .map(|i| {
            (first.max(first_minute)..first_minute + DAYS * 1440)
                .map(|m| count_at(i, m))
                .sum::<f64>()
        })
        .sum();
    let mut times = Vec::new();
    for _ in 0..READS {
        let started = Instant::now();
        let value = rt
            .block_on(store.query(&query))
            .expect("read")
            .expect("valid");
        times.push(started.elapsed());
        assert_eq!(value, Some(expected), "the 30-day sum");
    }
    times.sort();
    println!("rollups: {SERIES} counter series, a point a minute for {DAYS} days, compacted");
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| Redis memory per counter series per day (used_memory growth) | {per_series_day:.0} B |"
    );
    println!("| one day string: bytes / MEMORY USAGE | {strlen} B / {usage} B |");
    println!("| hour hashes left after compaction | {hours} |");
    println!(
        "| 30-day window read over {SERIES} series (`sum`), median of {READS} | {:.0} ms (fastest {:.0} ms) |",
        times[READS / 2].as_secs_f64() * 1000.0,
        times[0].as_secs_f64() * 1000.0
    );
    println!(
        "| load: write + compact {DAYS} days | {:.1} s |",
        loaded.as_secs_f64()
    );
}
