//! End-to-end ingest benchmark: the real `hawkeye-server` binary over a real
//! redis-server, driven over its Unix socket. Prints, from one run:
//! events/s and server CPU per event for batched notifications; server CPU
//! per call for one `Metric.Handle` call per event in lockstep over 8
//! connections (as Go's net/rpc client sends them), beside a minimal
//! single-threaded epoll server's CPU per call for the same calls (the
//! floor), on a thread of this process and again in a process of its own
//! (as hawkeye is), in three interleaved rounds with their medians; Redis
//! commands per event; the server's peak RSS at 100 000 and at 1 000 000
//! series.
//!
//! Run: `cargo bench -p hawkeye-server --bench ingest`
//! (scale with HAWKEYE_BENCH_EVENTS, default 5 000 000 batched events, and
//! HAWKEYE_BENCH_SERIES, default 1 000 000 for the memory phase). Name
//! phases to run only those: `-- batched`, `-- calls` (lockstep, pipelined
//! and the floor), `-- series` (memory; then the server's peak RSS is that
//! phase's alone).
//! CPU is read from /proc/<pid>/task/*/schedstat (nanoseconds on a CPU,
//! every thread of the server), so it does not depend on the machine being
//! otherwise idle; events/s does. With `HAWKEYE_BENCH_PERF=1` the lockstep
//! phases also print `perf stat`'s counters per call (system calls by kind,
//! context switches) for hawkeye and for the floor.

#[path = "support/counters.rs"]
mod counters;
#[path = "support/epoll_floor.rs"]
mod epoll_floor;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader};
use tokio::net::UnixStream;

const CONNECTIONS: usize = 8;
const LINES_PER_REQUEST: usize = 1000;
/// Events per series in the batched phase: 1000 to 1.
const SERIES: usize = 100;
/// Calls a connection keeps in flight in the pipelined phase (as Go's net/rpc
/// client does when several goroutines share one connection).
const IN_FLIGHT: usize = 64;

/// Calls per connection in each lockstep measurement (hawkeye, the floors).
const LOCKSTEP_CALLS: usize = 20_000;
/// Rounds of the lockstep comparison, each measuring hawkeye and the floors.
const ROUNDS: usize = 3;

/// Set in the environment of the benchmark's own binary started again as
/// the floor server in a process of its own: the socket path.
const FLOOR_PROCESS: &str = "HAWKEYE_BENCH_FLOOR_PROCESS";

fn main() {
    if let Some(path) = std::env::var_os(FLOOR_PROCESS) {
        epoll_floor::serve_in_this_process(Path::new(&path));
        return;
    }
    let batched_events = env_count("HAWKEYE_BENCH_EVENTS", 5_000_000);
    let max_series = env_count("HAWKEYE_BENCH_SERIES", 1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hawkeye.sock");
    let server = ServerProcess(spawn_server(&socket, &redis, max_series));
    let pid = server.0.id();
    println!(
        "hawkeye ingest benchmark: {} cores, {CONNECTIONS} connections, server pid {pid}",
        num_cores()
    );
    let phases: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |phase: &str| phases.is_empty() || phases.iter().any(|p| p == phase);
    rt.block_on(async {
        if run("batched") {
            batched(&socket, &redis, pid, batched_events).await;
        }
        if run("calls") {
            lockstep_rounds(&socket, pid, dir.path()).await;
            pipelined(&socket, pid).await;
        }
        if run("series") {
            series_memory(&socket, &redis, pid, max_series).await;
            busy_series(&socket, &redis).await;
        }
    });
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Batched notifications, 1000 lines per request, 100 series.
async fn batched(socket: &Path, redis: &RedisServer, pid: u32, batched_events: usize) {
    let before = redis_commands(redis);
    let per_conn = batched_events / CONNECTIONS / LINES_PER_REQUEST;
    let events = per_conn * CONNECTIONS * LINES_PER_REQUEST;
    let cpu = process_cpu_ns(pid);
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let socket = socket.to_path_buf();
            tokio::spawn(async move {
                let lines: Vec<String> = (0..LINES_PER_REQUEST)
                    .map(|i| {
                        format!(
                            "bench.batched:1|c|#s:{}",
                            (c * LINES_PER_REQUEST + i) % SERIES
                        )
                    })
                    .collect();
                let request = json!({"jsonrpc": "2.0", "method": "metric.send", "params": lines})
                    .to_string()
                    + "\n";
                let mut conn = Conn::connect(&socket).await;
                for _ in 0..per_conn {
                    conn.write(request.as_bytes()).await;
                }
                conn.ping().await;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let cpu = process_cpu_ns(pid) - cpu;
    let total = query_sum(socket, "bench.batched").await;
    let elapsed = started.elapsed();
    assert_eq!(total, events as f64, "every batched event is counted");
    let after = redis_commands(redis);
    report(
        "batched notifications (1000 lines/request)",
        events,
        elapsed,
    );
    println!(
        "  server CPU per batched event: {:.1} ns (until the last request was answered)",
        cpu as f64 / events as f64
    );
    println!("  server memory: {}", memory(pid));
    println!(
        "  Redis: {} commands from the server = {:.5} per event ({} events per series); {} commands inside scripts = {:.5} per event",
        after.0 - before.0,
        (after.0 - before.0) as f64 / events as f64,
        events / SERIES,
        after.1 - before.1,
        (after.1 - before.1) as f64 / events as f64,
    );
}

/// One call per event (Go's `Metric.Handle`), pipelined: `IN_FLIGHT` calls
/// in flight per connection.
async fn pipelined(socket: &Path, pid: u32) {
    let metric = format!("bench.calls.{IN_FLIGHT}");
    let label = "one call per event, pipelined (64 in flight per connection)";
    hawkeye_calls(socket, pid, &metric, IN_FLIGHT, 100_000, label, None).await;
}

/// The lockstep comparison, in [`ROUNDS`] rounds: in each, hawkeye, the
/// floor on a thread of this process and the floor in a process of its own
/// each answer the same lockstep calls, one after the other (the order
/// turning from round to round), so that a change in the machine's load
/// weighs on all three. Prints each round and the medians.
async fn lockstep_rounds(socket: &Path, pid: u32, dir: &Path) {
    let floor_path = dir.join("floor.sock");
    let floor = epoll_floor::EpollFloor::start(&floor_path);
    let (_floor_process, process_path, process_pid) = start_floor_process(dir);
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        let mut cpu = [0.0; 3];
        for k in 0..3 {
            let which = (round + k) % 3;
            cpu[which] = match which {
                0 => hawkeye_lockstep(socket, pid, round).await,
                1 => {
                    let target = counters::Target::Thread(floor.tid());
                    let label = "minimal epoll server, lockstep (parses the id only)";
                    floor_lockstep(&floor_path, target, || floor.cpu_ns(), label).await
                }
                _ => {
                    let target = counters::Target::Process(process_pid);
                    let label = "minimal epoll server in a process of its own, lockstep";
                    floor_lockstep(&process_path, target, || process_cpu_ns(process_pid), label)
                        .await
                }
            };
        }
        let [hawkeye, thread, process] = cpu;
        println!(
            "round {} of {ROUNDS}: hawkeye {:.2} µs per lockstep call; the floor {:.2} µs on a thread ({:.2}×), {:.2} µs in a process ({:.2}×)",
            round + 1,
            hawkeye / 1e3,
            thread / 1e3,
            hawkeye / thread,
            process / 1e3,
            hawkeye / process,
        );
        rounds.push(cpu);
    }
    let median_of = |f: &dyn Fn(&[f64; 3]) -> f64| median(rounds.iter().map(f).collect());
    let per_call = median_of(&|r| r[0]);
    println!(
        "medians of {ROUNDS} interleaved rounds (the ratios are each round's, then their median):"
    );
    println!(
        "server CPU per lockstep call: hawkeye {:.2} µs, minimal epoll server {:.2} µs: {:.2}× the floor",
        per_call / 1e3,
        median_of(&|r| r[1]) / 1e3,
        median_of(&|r| r[0] / r[1])
    );
    println!(
        "the floor in a process of its own: {:.2} µs: hawkeye is {:.2}× that",
        median_of(&|r| r[2]) / 1e3,
        median_of(&|r| r[0] / r[2])
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Hawkeye's CPU per lockstep call, in nanoseconds (each round on a metric
/// of its own).
async fn hawkeye_lockstep(socket: &Path, pid: u32, round: usize) -> f64 {
    let metric = format!("bench.calls.1.r{round}");
    let label = "one call per event, lockstep (1 in flight per connection)";
    let target = Some(counters::Target::Process(pid));
    hawkeye_calls(socket, pid, &metric, 1, LOCKSTEP_CALLS, label, target).await
}

/// Hawkeye's CPU per call for `per_conn` calls a connection, `window` in
/// flight, each checked counted; with `perf stat` on it when a target is
/// given (and the counters asked for).
async fn hawkeye_calls(
    socket: &Path,
    pid: u32,
    metric: &str,
    window: usize,
    per_conn: usize,
    label: &str,
    counted: Option<counters::Target>,
) -> f64 {
    let cpu_ns = || process_cpu_ns(pid);
    let run = Run {
        path: socket,
        metric,
        window,
        per_conn,
        label,
    };
    let (calls, per_call) = run.measure(cpu_ns, counted).await;
    assert_eq!(query_sum(socket, metric).await, calls as f64);
    println!("  server memory: {}", memory(pid));
    per_call
}

/// A floor server's CPU per lockstep call, in nanoseconds.
async fn floor_lockstep(
    path: &Path,
    target: counters::Target,
    cpu_ns: impl Fn() -> u64,
    label: &str,
) -> f64 {
    let run = Run {
        path,
        metric: "floor",
        window: 1,
        per_conn: LOCKSTEP_CALLS,
        label,
    };
    run.measure(cpu_ns, Some(target)).await.1
}

/// One measured run of Go-shaped calls against the server at `path`.
struct Run<'a> {
    path: &'a Path,
    metric: &'a str,
    window: usize,
    per_conn: usize,
    label: &'a str,
}

impl Run<'_> {
    /// Makes the calls and prints their rate and the server's CPU per call
    /// (`cpu_ns` read before and after), with `perf stat` on `counted`
    /// when given. Returns the calls made and the CPU per call in ns.
    async fn measure(
        &self,
        cpu_ns: impl Fn() -> u64,
        counted: Option<counters::Target>,
    ) -> (usize, f64) {
        let counters = counted.map(counters::Counters::start);
        let cpu = cpu_ns();
        let started = Instant::now();
        let calls = go_calls(self.path, self.metric, self.window, self.per_conn).await;
        let elapsed = started.elapsed();
        let per_call = (cpu_ns() - cpu) as f64 / calls as f64;
        report(self.label, calls, elapsed);
        println!("  server CPU per call: {:.2} µs", per_call / 1e3);
        if let Some(counters) = counters {
            counters.finish(calls);
        }
        (calls, per_call)
    }
}

/// `per_conn` calls on each of [`CONNECTIONS`] connections, `window` in
/// flight at a time, each answered `0`, written as Go's net/rpc/jsonrpc
/// client writes them. Returns the number of calls.
async fn go_calls(socket: &Path, metric: &str, window: usize, per_conn: usize) -> usize {
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let socket = socket.to_path_buf();
            let metric = metric.to_string();
            tokio::spawn(async move {
                let mut conn = Conn::connect(&socket).await;
                let mut sent = 0;
                let mut chunk = Vec::new();
                while sent < per_conn {
                    let n = window.min(per_conn - sent);
                    chunk.clear();
                    for i in 0..n {
                        let id = sent + i;
                        let call = format!("{{\"method\":\"Metric.Handle\",\"params\":[{{\"Text\":\"{metric}:1|c\"}}],\"id\":{id}}}\n");
                        chunk.extend_from_slice(call.as_bytes());
                    }
                    conn.write(&chunk).await;
                    for _ in 0..n {
                        let r = conn.read().await;
                        assert_eq!(r["result"], json!(0), "{r}");
                    }
                    sent += n;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    per_conn * CONNECTIONS
}

/// The floor in a process of its own (this binary started again), as
/// hawkeye is: the process (stopped when dropped), its socket and its pid.
fn start_floor_process(dir: &Path) -> (ServerProcess, std::path::PathBuf, u32) {
    let path = dir.join("floor-process.sock");
    let mut child = ServerProcess(
        Command::new(std::env::current_exe().unwrap())
            .env(FLOOR_PROCESS, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the floor server's process"),
    );
    let stdout = child.0.stdout.take().unwrap();
    hawkeye_testkit::wait_for_line(stdout, Duration::from_secs(30), |line| {
        line.contains("floor listening").then_some(())
    })
    .expect("floor server listening");
    let pid = child.0.id();
    (child, path, pid)
}

/// Series in steps up to `max_series`, each flushed, with the server's
/// memory after each step of interest.
async fn series_memory(socket: &Path, redis: &RedisServer, pid: u32, max_series: usize) {
    let redis_before = redis_used_memory(redis);
    let mut conn = Conn::connect(socket).await;
    let mut held = 0;
    for target in [100_000, max_series] {
        if target <= held {
            continue;
        }
        for chunk in held / LINES_PER_REQUEST..target / LINES_PER_REQUEST {
            let lines: Vec<String> = (0..LINES_PER_REQUEST)
                .map(|i| format!("bench.series:1|c|#id:{}", chunk * LINES_PER_REQUEST + i))
                .collect();
            conn.write(
                (json!({"jsonrpc": "2.0", "method": "metric.send", "params": lines}).to_string()
                    + "\n")
                    .as_bytes(),
            )
            .await;
        }
        conn.ping().await;
        held = target;
        // Wait for the flusher to write them all (no query: it would flush itself).
        let mut stats = conn.call("server.stats").await;
        while stats["result"]["buffered"] != json!(0) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            stats = conn.call("server.stats").await;
        }
        println!(
            "{} series held, ingested and flushed: server memory {}",
            stats["result"]["series"],
            memory(pid)
        );
        if target == 100_000 {
            println!(
                "Redis memory per series with one second of data: {:.0} bytes",
                (redis_used_memory(redis) - redis_before) as f64 / target as f64
            );
        }
    }
    println!(
        "server peak RSS (VmHWM) over the whole run: {}",
        peak_rss(pid)
    );
}

/// One counter series with data in every second of the last hour.
async fn busy_series(socket: &Path, redis: &RedisServer) {
    let mut conn = Conn::connect(socket).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let lines: Vec<String> = (1..3590)
        .map(|i| format!("bench.busy:1|c|#route:/checkout|T{}", now - i))
        .collect();
    conn.write(
        (json!({"jsonrpc": "2.0", "method": "metric.send", "params": lines}).to_string() + "\n")
            .as_bytes(),
    )
    .await;
    conn.ping().await;
    assert_eq!(query_sum_over(socket, "bench.busy", "1h").await, 3589.0);
    let keys = redis.cli(&["--scan", "--pattern", "hawkeye:{bench.busy}:*"]);
    let bytes: u64 = keys
        .lines()
        .map(|k| {
            redis
                .cli(&["MEMORY", "USAGE", k])
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum();
    println!("Redis memory of one counter series with data in every second of an hour: {bytes} bytes in {} keys", keys.lines().count());
}

/// CPU time every thread of process `pid` has used, in nanoseconds.
fn process_cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .map(|t| epoll_floor::task_cpu_ns(&format!("{}/schedstat", t.path().display())))
        .sum()
}

/// Stops the server even when the benchmark panics, so that no orphan keeps running.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

fn report(label: &str, events: usize, elapsed: Duration) {
    println!(
        "{label}: {events} events in {:.2} s = {:.0} events/s (end to end: until a query read them all back from Redis)",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );
}

fn num_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn spawn_server(socket: &Path, redis: &RedisServer, max_series: usize) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hawkeye-server"))
        .env("HAWKEYE_SOCKET", socket)
        .env("REDIS_URL", redis.url())
        .env("HAWKEYE_MAX_SERIES", (max_series + 1000).to_string())
        .env(
            "HAWKEYE_MAX_BUFFERED",
            (2 * max_series + 100_000).to_string(),
        )
        .env("RUST_LOG", "warn,hawkeye_server=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hawkeye-server");
    let stdout = child.stdout.take().unwrap();
    hawkeye_testkit::wait_for_line(stdout, Duration::from_secs(30), |line| {
        line.contains("hawkeye server listening").then_some(())
    })
    .expect("server listening");
    child
}

/// (commands the server sent, commands run inside scripts), from INFO.
fn redis_commands(redis: &RedisServer) -> (u64, u64) {
    let total: u64 = redis
        .info_field("total_commands_processed")
        .unwrap()
        .parse()
        .unwrap();
    let stats = redis.cli(&["INFO", "commandstats"]);
    let in_scripts: u64 = stats
        .lines()
        .filter(|l| {
            [
                "cmdstat_hincrbyfloat",
                "cmdstat_hset",
                "cmdstat_hget",
                "cmdstat_expire",
                "cmdstat_zadd",
            ]
            .iter()
            .any(|c| l.starts_with(c))
        })
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    (total, in_scripts)
}

fn memory(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l[name.len() + 1..].trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    format!("RSS {} (peak {})", field("VmRSS"), field("VmHWM"))
}

fn redis_used_memory(redis: &RedisServer) -> u64 {
    redis.info_field("used_memory").unwrap().parse().unwrap()
}

fn peak_rss(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

async fn query_sum(socket: &Path, metric: &str) -> f64 {
    query_sum_over(socket, metric, "10m").await
}

async fn query_sum_over(socket: &Path, metric: &str, window: &str) -> f64 {
    let mut conn = Conn::connect(socket).await;
    let r = conn
        .call_with(
            "metric.query",
            json!({"metric": metric, "window": window, "agg": "sum"}),
        )
        .await;
    r["result"]["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("query {metric}: {r}"))
}

struct Conn {
    reader: TokioBufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
    line: String,
}

impl Conn {
    async fn connect(path: &Path) -> Conn {
        let (r, w) = UnixStream::connect(path).await.unwrap().into_split();
        Conn {
            reader: TokioBufReader::with_capacity(256 * 1024, r),
            writer: w,
            line: String::new(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    async fn read(&mut self) -> Value {
        self.line.clear();
        self.reader.read_line(&mut self.line).await.unwrap();
        serde_json::from_str(&self.line).unwrap()
    }

    async fn call_with(&mut self, method: &str, params: Value) -> Value {
        let req = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
            .to_string()
            + "\n";
        self.write(req.as_bytes()).await;
        self.read().await
    }

    async fn call(&mut self, method: &str) -> Value {
        self.call_with(method, Value::Null).await
    }

    async fn ping(&mut self) {
        assert_eq!(self.call("server.ping").await["result"], json!("pong"));
    }
}
