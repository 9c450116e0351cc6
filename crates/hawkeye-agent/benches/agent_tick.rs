//! The agent's cost per tick and its alert latency, with real processes.
//!
//! ```text
//! cargo bench -p hawkeye-agent --bench agent_tick
//! HAWKEYE_BENCH_MONITORS=100000 cargo bench -p hawkeye-agent --bench agent_tick
//! HAWKEYE_BENCH_GROUPED=0 cargo bench -p hawkeye-agent --bench agent_tick   # without the grouped case
//! # instructions, every thread: dump 1 the engine driven through Redis (5
//! # ticks at fixed times, the same work in every run), dump 2 the running agent:
//! HAWKEYE_BENCH_CALLGRIND=1 valgrind --tool=callgrind --instr-atstart=no \
//!     target/release/deps/agent_tick-<hash> --bench
//! ```
//!
//! Setup: redis-server on a Unix socket, the `hawkeye-server` binary (built
//! in release if needed), an SMTP server (aiosmtpd), and the agent in this
//! process with `SmtpMailer`. 10 000 monitors (`HAWKEYE_BENCH_MONITORS`;
//! counters, interval 1 s, one trigger each, not breaching: the steady
//! state), each with data in Redis, plus a few probe monitors for latency.
//! The grouped case: 1 000 monitors with `group_by: [route]`, each over a
//! name with 100 routes (100 000 series), read in memory and through Redis.
//!
//! Prints:
//! 1. store round trips and Redis commands per tick, and CPU per tick, with
//!    the engine driven tick by tick;
//! 2. the running agent (its own scheduler, real time): CPU per tick and as
//!    a share of one core, measured with getrusage over several seconds,
//!    and split into user and system time and by thread (/proc);
//! 3. alert latency: from sending a breaching event to hawkeye-server until
//!    the SMTP server has the mail (its own receive timestamp);
//! 4. the grouped case: CPU per tick of the engine, in memory and through
//!    Redis, and the groups checked per tick.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "agent_tick/thread_cpu.rs"]
mod thread_cpu;

// The allocator of the `hawkeye-agent` program, so that the running agent
// measured here is the one the program runs.
#[global_allocator]
static GLOBAL: hawkeye_agent::Allocator = hawkeye_agent::ALLOCATOR;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::processes::{clean_command, server_binary, Proc};
use common::Probe;
use hawkeye_agent::{parse_monitors, AgentConfig, Engine, EngineSettings};
use hawkeye_mail::{SmtpMailer, SmtpSettings, SmtpTls};
use hawkeye_protocol::{MetricKind, SeriesKey};
use hawkeye_store::{
    Aggregate, MemoryStore, RedisConfig, RedisStore, SeriesWrite, Store, WriteBatch,
};
use hawkeye_testkit::smtp_server::SmtpServer;
use hawkeye_testkit::RedisServer;

const PROBES: usize = 5;
const RUN_SECONDS: u64 = 10;
/// The grouped case: monitors, and groups (routes) of each.
const GROUPED_MONITORS: usize = 1_000;
const GROUPS: usize = 100;

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Under `valgrind --tool=callgrind --instr-atstart=no` with
/// `HAWKEYE_BENCH_CALLGRIND=1`: switches counting on (`-i on`) or dumps and
/// stops it (`-d`, then `-i off`), so that each dump holds one measured
/// phase alone, every thread (the tick, the Redis connection's task,
/// tokio), and the setup runs at near full speed. `callgrind_control` returns once
/// valgrind has done it.
fn callgrind(actions: &[&[&str]]) {
    if std::env::var("HAWKEYE_BENCH_CALLGRIND").as_deref() != Ok("1") {
        return;
    }
    let pid = std::process::id().to_string();
    for action in actions {
        let status = std::process::Command::new("callgrind_control")
            .args(*action)
            .arg(&pid)
            .stdout(std::process::Stdio::null())
            .status();
        println!("callgrind_control {action:?}: {status:?}");
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn monitors_yaml(n: usize) -> String {
    let mut y = String::from("version: 1\nmonitors:\n");
    for i in 0..n {
        y.push_str(&format!(
            "  - metric: bench.m{i}\n    interval: 1s\n    triggers:\n      - {{threshold: 1000000, to: [oncall@example.com]}}\n"
        ));
    }
    for k in 0..PROBES {
        y.push_str(&format!(
            "  - metric: bench.probe{k}\n    interval: 1s\n    subject: 'probe {k}'\n    triggers:\n      - {{threshold: 1, run_every: 1h, to: [oncall@example.com]}}\n"
        ));
    }
    y
}

async fn redis_store(redis: &RedisServer) -> RedisStore {
    let mut config = RedisConfig::new(redis.url(), "hawkeye", Duration::from_secs(3600));
    // The bench measures CPU: a loaded machine's slow round trip at 100 000
    // monitors is not a failure here.
    config.timeout = Duration::from_secs(60);
    RedisStore::new(config).expect("redis store")
}

fn redis_commands(redis: &RedisServer) -> u64 {
    redis
        .info_field("total_commands_processed")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn send_event(socket: &std::path::Path, line: &str) {
    let mut s = UnixStream::connect(socket).expect("connect to hawkeye-server");
    let req =
        serde_json::json!({"jsonrpc": "2.0", "method": "metric.send", "params": [line], "id": 1});
    writeln!(s, "{req}").unwrap();
    let mut resp = String::new();
    BufReader::new(&s).read_line(&mut resp).unwrap();
    assert!(resp.contains("\"accepted\":1"), "{resp}");
}

fn settings() -> EngineSettings {
    EngineSettings {
        service: "bench".into(),
        environment: "bench".into(),
        mail_from: "hawkeye@localhost".into(),
        evaluation_delay_ms: 0,
        state_ttl: hawkeye_agent::engine::DEFAULT_STATE_TTL,
    }
}

/// Data for every monitor in every second of the run, so each window read
/// finds a series (the realistic, more expensive case). Returns the seconds
/// written.
async fn write_data(store: &dyn Store, n: usize) -> i64 {
    let seconds = 3 * RUN_SECONDS as i64 + 10;
    let series = (0..n).map(|i| SeriesKey::new(MetricKind::Counter, &format!("bench.m{i}"), &[]));
    write_series(store, series, seconds).await;
    seconds
}

/// The grouped case's data: `GROUPS` routes of each grouped monitor's name,
/// over the seconds the engine is driven through. Returns the first second.
async fn write_grouped_data(store: &dyn Store) -> i64 {
    let series = (0..GROUPED_MONITORS).flat_map(|i| {
        (0..GROUPS).map(move |r| {
            let route = format!("/r{r}");
            SeriesKey::new(
                MetricKind::Counter,
                &format!("bench.g{i}"),
                &[("route", &route)],
            )
        })
    });
    write_series(store, series, 12).await
}

/// Writes 1 a second to every series, from two seconds ago on, in flushes
/// of 1000 series. Returns the first second written.
async fn write_series(
    store: &dyn Store,
    series: impl Iterator<Item = SeriesKey>,
    seconds: i64,
) -> i64 {
    let start_s = (now_ms() / 1000) as i64 - 2;
    let series: Vec<Arc<SeriesKey>> = series.map(Arc::new).collect();
    for (seq, chunk) in series.chunks(1000).enumerate() {
        let batch = WriteBatch {
            server_id: 99,
            seq: seq as u64 + 1,
            series: chunk
                .iter()
                .map(|key| SeriesWrite {
                    key: Arc::clone(key),
                    points: (start_s..start_s + seconds)
                        .map(|s| (s, Aggregate::Counter(1.0)))
                        .collect(),
                })
                .collect(),
        };
        store.write(&batch).await.expect("write bench data");
    }
    start_s
}

fn grouped_yaml() -> String {
    let mut y = String::from("version: 1\nmonitors:\n");
    for i in 0..GROUPED_MONITORS {
        y.push_str(&format!(
            "  - metric: bench.g{i}\n    interval: 1s\n    group_by: [route]\n    triggers:\n      - {{threshold: 1000000, to: [oncall@example.com]}}\n"
        ));
    }
    y
}

/// The grouped case: the engine driven tick by tick over `store`, through
/// the seconds that have data from `first` on; prints its CPU per tick.
async fn grouped_ticks(store: Arc<dyn Store>, first: i64, label: &str) {
    let file = parse_monitors(&grouped_yaml(), "grouped.yaml", Duration::from_secs(3600))
        .expect("grouped monitors");
    let t0 = (first as u64 + 2) * 1000;
    let mut engine = Engine::new(&file, store, settings(), t0);
    // The first tick finds the groups; warm-up.
    engine.tick(t0).await;
    let ticks = 5u64;
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let mut checked = 0;
    for k in 1..=ticks {
        let r = engine.tick(t0 + k * 1000).await;
        assert!(!r.store_error);
        checked = r.monitors;
    }
    assert_eq!(checked, GROUPED_MONITORS * GROUPS, "every group checked");
    println!(
        "grouped, {GROUPED_MONITORS} monitors x {GROUPS} groups, {label}: CPU {:.1} ms per tick (wall {:.1} ms), {checked} groups checked per tick",
        (cpu_time() - cpu0).as_secs_f64() * 1000.0 / ticks as f64,
        wall0.elapsed().as_secs_f64() * 1000.0 / ticks as f64
    );
}

/// The grouped case, in memory and through `redis`.
async fn grouped_case(redis: &RedisServer) {
    let t = Instant::now();
    let memory = Arc::new(MemoryStore::new(Duration::from_secs(3600)));
    let in_memory = write_grouped_data(&*memory).await;
    let through_redis = Arc::new(redis_store(redis).await);
    let in_redis = write_grouped_data(&*through_redis).await;
    println!(
        "grouped setup: {} series written to each store in {:.1} s",
        GROUPED_MONITORS * GROUPS,
        t.elapsed().as_secs_f64()
    );
    grouped_ticks(memory, in_memory, "in-memory store").await;
    grouped_ticks(through_redis, in_redis, "through Redis").await;
}

fn main() {
    let n: usize = std::env::var("HAWKEYE_BENCH_MONITORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(n));
}

async fn run(n: usize) {
    let server_bin = server_binary();
    let redis = RedisServer::start();
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hawkeye.sock");
    let mut server_cmd = clean_command(&server_bin);
    server_cmd
        .env("HAWKEYE_SOCKET", &socket)
        .env("REDIS_URL", redis.url())
        .env("RUST_LOG", "warn,hawkeye_server=info")
        .current_dir(dir.path());
    let server = Proc::spawn("server", server_cmd);
    assert!(server.wait_for_line("listening", Duration::from_secs(120)));

    let file = parse_monitors(&monitors_yaml(n), "bench.yaml", Duration::from_secs(3600))
        .expect("bench monitors");
    let t = Instant::now();
    let seconds = write_data(&redis_store(&redis).await, n).await;
    println!(
        "setup: {n} monitors, data for {seconds} s written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 0. The engine alone, on the in-memory store: the agent's own cost.
    let memory = Arc::new(MemoryStore::new(Duration::from_secs(3600)));
    write_data(&*memory, n).await;
    {
        let t0 = now_ms() / 1000 * 1000;
        let mut engine = Engine::new(&file, memory, settings(), t0);
        engine.tick(t0).await;
        let ticks = 5u64;
        let (cpu0, wall0) = (cpu_time(), Instant::now());
        for k in 1..=ticks {
            let r = engine.tick(t0 + k * 1000).await;
            assert_eq!(r.monitors, n + PROBES);
        }
        println!(
            "engine on the in-memory store ({} monitors): CPU {:.1} ms per tick (wall {:.1} ms)",
            n + PROBES,
            (cpu_time() - cpu0).as_secs_f64() * 1000.0 / ticks as f64,
            wall0.elapsed().as_secs_f64() * 1000.0 / ticks as f64
        );
        drop(engine);
    }

    // 1. The engine driven tick by tick.
    let probe = Arc::new(Probe::new(redis_store(&redis).await));
    let t0 = now_ms() / 1000 * 1000;
    let mut engine = Engine::new(&file, probe.clone(), settings(), t0);
    engine.tick(t0).await; // warm-up: connections, first state read
    let ticks = 5u64;
    let (q0, a0, s0) = (
        probe.query_many.load(Ordering::SeqCst),
        probe.alert_states.load(Ordering::SeqCst),
        probe.swaps.load(Ordering::SeqCst),
    );
    let cmds0 = redis_commands(&redis);
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    callgrind(&[&["-i", "on"]]);
    for k in 1..=ticks {
        let r = engine.tick(t0 + k * 1000).await;
        assert_eq!(r.monitors, n + PROBES);
        assert!(!r.store_error);
    }
    callgrind(&[&["-d"], &["-i", "off"]]);
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    // The INFO call itself is one command.
    let cmds = redis_commands(&redis).saturating_sub(cmds0 + 1);
    let per = |x: usize| x as f64 / ticks as f64;
    let qm = per(probe.query_many.load(Ordering::SeqCst) - q0);
    let st = per(probe.alert_states.load(Ordering::SeqCst) - a0);
    let sw = per(probe.swaps.load(Ordering::SeqCst) - s0);
    println!(
        "engine, {} monitors per tick: store calls per tick: query_many {qm}, read_alerts {st}, commit_alert {sw} \
         => {} round trips to Redis (query_many is 2: the index changes and indexes not held, then data); {:.0} Redis commands per tick (with those scripts run)",
        n + PROBES,
        qm * 2.0 + st + sw,
        cmds as f64 / ticks as f64
    );
    println!(
        "engine: CPU {:.1} ms per tick (wall {:.1} ms)",
        cpu.as_secs_f64() * 1000.0 / ticks as f64,
        wall.as_secs_f64() * 1000.0 / ticks as f64
    );
    drop(engine);

    // 2 and 3. The running agent, with real time and real SMTP.
    let mailer = Arc::new(
        SmtpMailer::new(SmtpSettings::new(smtp.host(), smtp.port(), SmtpTls::None)).unwrap(),
    );
    let config = AgentConfig::default()
        .with_monitors(file)
        .with_service("bench", "bench");
    let agent = hawkeye_agent::start(config, Arc::new(redis_store(&redis).await), mailer)
        .await
        .expect("start the agent");
    // Let it settle (first ticks, connections) before measuring.
    let settle = agent.stats().engine.ticks + 2;
    while agent.stats().engine.ticks < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ticks0 = agent.stats().engine.ticks;
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let threads0 = thread_cpu::Snapshot::take();
    callgrind(&[&["-i", "on"]]);

    let mut latencies = Vec::new();
    let mut missed = 0;
    for k in 0..PROBES {
        // Spread the events over the second, as real events are.
        let offset = (k as u64 * 1000 / PROBES as u64 + 137) % 1000;
        let wait = (1000 - now_ms() % 1000 + offset) % 1000;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let sent = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        send_event(&socket, &format!("bench.probe{k}:5|c"));
        let subject = format!("probe {k}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let received = loop {
            let got = smtp.messages().into_iter().find(|m| m.subject() == subject);
            if let Some(m) = got {
                break m.received_at();
            }
            if Instant::now() >= deadline {
                println!("alert latency: no mail for {subject} within 30 s");
                missed += 1;
                break None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if let Some(r) = received {
            latencies.push(r - sent);
        }
    }
    // Measure over whole seconds of running.
    let elapsed = wall0.elapsed();
    if elapsed < Duration::from_secs(RUN_SECONDS) {
        tokio::time::sleep(Duration::from_secs(RUN_SECONDS) - elapsed).await;
    }
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    callgrind(&[&["-d"], &["-i", "off"]]);
    let threads = thread_cpu::Snapshot::take();
    let ticks = agent.stats().engine.ticks - ticks0;
    let stats = agent.shutdown().await;
    println!(
        "running agent: {ticks} ticks in {:.1} s, CPU {:.1} ms per tick, {:.1}% of one core (target < 20%); \
         mails sent {}",
        wall.as_secs_f64(),
        cpu.as_secs_f64() * 1000.0 / ticks.max(1) as f64,
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
        stats.mail.sent
    );
    threads.print_since(&threads0, ticks);
    latencies.sort_by(f64::total_cmp);
    let fmt = |v: f64| format!("{v:.3} s");
    println!(
        "alert latency (event sent to hawkeye-server -> mail at the SMTP server), {} samples ({missed} missed): \
         min {}, median {}, max {} (target <= interval + 1 s = 2 s)",
        latencies.len(),
        latencies.first().copied().map(fmt).unwrap_or_default(),
        latencies.get(latencies.len() / 2).copied().map(fmt).unwrap_or_default(),
        latencies.last().copied().map(fmt).unwrap_or_default(),
    );
    drop(server);
    if std::env::var("HAWKEYE_BENCH_GROUPED").as_deref() != Ok("0") {
        grouped_case(&redis).await;
    }
}
