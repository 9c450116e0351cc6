//! Many hostile clients at once, against small limits: clients that never
//! read answers amplified twenty times, clients that leave large partial
//! lines and fall silent, clients that fill the series table with the
//! longest keys allowed and send keys and tag lists past the limits,
//! batches past the limit, and clients that send a burst and then sit idle
//! on their connection. The server's peak RSS stays within the bound the
//! limits imply (README, "Limits and bounds"), `server.stats` says what was
//! refused and why, and a well-behaved client is counted exactly throughout.

mod common;

use std::time::Duration;

use common::process::ServerProcess;
use common::steady::Steady;
use common::Client;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};

const KIB: u64 = 1024;
const MAX_LINE: u64 = 256 * KIB;
const MAX_PENDING: u64 = 2048 * KIB;
const MAX_OUTPUT: u64 = 16 * KIB;
const MAX_CONNECTIONS: u64 = 200;
const MAX_SERIES: u64 = 1000;
const MAX_KEY: u64 = 1024;
const MAX_BUFFERED: u64 = 10_000;
/// The server's runtime threads (TOKIO_WORKER_THREADS below).
const THREADS: u64 = 2;
/// Clients of each hostile kind.
const EACH: usize = 40;

/// The bound of README "Limits and bounds", over the idle server's RSS.
fn bound_kib() -> u64 {
    let lines_held = MAX_PENDING + THREADS * (MAX_LINE + MAX_LINE / 4);
    let connections = MAX_CONNECTIONS * (MAX_OUTPUT + 16 * KIB);
    // The series table, and one flush's batch and Redis commands.
    let series = MAX_SERIES * (300 + 4 * MAX_KEY);
    let buffered = MAX_BUFFERED * 100;
    // What the allocator keeps of freed memory (glibc's per-thread arenas).
    let slack = 16 * 1024 * KIB;
    (lines_held + connections + series + buffered + slack) / KIB
}

async fn stats(c: &mut Client) -> Value {
    c.call("server.stats", json!(null)).await["result"].clone()
}

/// Sends `requests` and never reads; ends only when aborted.
fn never_reads(socket: std::path::PathBuf, requests: Vec<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut c = Client::connect(&socket).await;
        for r in requests {
            if c.try_send_raw(r.as_bytes()).await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_follows_the_limits_under_many_hostile_clients() {
    let redis = RedisServer::start();
    let n = |v: u64| v.to_string();
    let server = ServerProcess::start(
        &redis,
        &[
            ("TOKIO_WORKER_THREADS", &n(THREADS)),
            ("HAWKEYE_MAX_LINE_BYTES", &n(MAX_LINE)),
            ("HAWKEYE_MAX_PENDING_BYTES", &n(MAX_PENDING)),
            ("HAWKEYE_MAX_OUTPUT_BYTES", &n(MAX_OUTPUT)),
            ("HAWKEYE_MAX_CONNECTIONS", &n(MAX_CONNECTIONS)),
            ("HAWKEYE_MAX_SERIES", &n(MAX_SERIES)),
            ("HAWKEYE_MAX_KEY_BYTES", &n(MAX_KEY)),
            ("HAWKEYE_MAX_TAGS", "20"),
            ("HAWKEYE_MAX_BATCH", "100"),
            ("HAWKEYE_MAX_BUFFERED", &n(MAX_BUFFERED)),
            ("HAWKEYE_LINE_TIMEOUT", "1h"),
        ],
    );
    let socket = server.socket();
    let steady = Steady::start(socket.clone(), "steady.resources");
    steady.running().await;
    let mut observer = Client::connect(&socket).await;
    let baseline = server.status_kib("VmHWM");

    // The idle clients' series exists before the long-key clients fill the
    // series table: which of them the server reads first is not this
    // test's subject.
    let r = observer
        .call("metric.send", json!(["idle.burst:1|c"]))
        .await;
    assert_eq!(r["result"]["accepted"], json!(1), "{r}");

    let mut hostile = Vec::new();
    // Non-readers: a line of 60 000 refused lines is a 5 MB answer.
    let amplifying =
        json!({"jsonrpc": "2.0", "method": "metric.send", "params": vec!["x"; 60_000], "id": 1})
            .to_string()
            + "\n";
    assert!((amplifying.len() as u64) < MAX_LINE);
    // Silent partial lines of 200 KB.
    let partial = "x".repeat(200_000);
    // Batches past HAWKEYE_MAX_BATCH.
    let batch = format!("[{}1]\n", "1,".repeat(100_000));
    for i in 0..EACH {
        hostile.push(never_reads(
            socket.clone(),
            vec![amplifying.clone(), amplifying.clone()],
        ));
        hostile.push(never_reads(socket.clone(), vec![partial.clone()]));
        hostile.push(never_reads(socket.clone(), vec![batch.clone()]));
        // Long keys: 50 new series of 1 000-byte keys, a key past the
        // limit, a line of 21 tags.
        let mut lines: Vec<String> = (0..50)
            .map(|j| format!("long.keys:1|c|#k:{:0>988}", i * 50 + j))
            .collect();
        lines.push(format!("long.keys:1|c|#k:{}", "v".repeat(1100)));
        let tags: Vec<String> = (0..21).map(|t| format!("t{t}")).collect();
        lines.push(format!("many.tags:1|c|#{}", tags.join(",")));
        let request =
            json!({"jsonrpc": "2.0", "method": "metric.send", "params": lines}).to_string() + "\n";
        hostile.push(never_reads(socket.clone(), vec![request]));
    }
    // Clients that send a burst of 60 KB, are answered, and sit idle: their
    // connections must not keep the burst's buffers.
    let burst = json!({"jsonrpc": "2.0", "method": "metric.send", "params": vec!["idle.burst:1|c"; 4000], "id": 1}).to_string() + "\n";
    let mut idle = Vec::new();
    for _ in 0..30 {
        let mut c = Client::connect(&socket).await;
        c.send_raw(burst.as_bytes()).await;
        let r = c.read().await.unwrap();
        let accepted = &r["result"]["accepted"];
        assert_eq!(
            accepted,
            &json!(4000),
            "{}",
            r.to_string().get(..600).unwrap_or("")
        );
        idle.push(c);
    }
    // Wait until every kind has hit its limit. (Some hostile clients of
    // every kind are closed by the pending budget while their line is still
    // arriving: each counter need not reach EACH.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let s = loop {
        let s = stats(&mut observer).await;
        let at = |k: &str| s[k].as_u64().unwrap();
        if at("connections_closed_input_budget") > 0
            && at("output_waits") > 0
            && at("batches_refused") > 0
            && at("lines_rejected_key_bytes") > 0
            && at("lines_rejected_tags") > 0
            && at("series") == MAX_SERIES
        {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the limits were never all reached: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(s["pending_bytes"].as_u64().unwrap() <= MAX_PENDING, "{s}");
    assert!(s["connections"].as_u64().unwrap() <= MAX_CONNECTIONS, "{s}");
    let peak = server.status_kib("VmHWM");
    let bound = bound_kib();
    eprintln!(
        "peak RSS {peak} KiB, baseline {baseline} KiB, growth {} KiB, bound {bound} KiB; {s}",
        peak - baseline
    );
    assert!(
        peak - baseline <= bound,
        "peak RSS grew by {} KiB, past the bound of {bound} KiB the limits imply",
        peak - baseline
    );
    for h in &hostile {
        h.abort();
    }
    drop(idle);
    steady.finish_exact(&socket).await;
}
