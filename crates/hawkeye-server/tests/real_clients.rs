//! Unmodified statsd clients from PyPI read back exactly: the `statsd`
//! package over UDP and TCP, and Datadog's official `datadog` package over UDP and
//! over the Unix datagram socket with `DD_CARDINALITY` and `DD_EXTERNAL_ENV`
//! set (so every line carries `|card:` and `|e:`), including an event, a
//! service check and a negative gauge (DogStatsD's "set to"). Nothing is
//! rejected; and npm's hot-shots over the datagram socket. Needs
//! `python3 -m pip install statsd datadog` and `npm ci` in .ci/node (.ci/run
//! does both).

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::ServerProcess;
use common::Client;
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};

const SENDS: u32 = 200;

const SCRIPT: &str = r#"
import os, socket, sys
import statsd
from datadog.dogstatsd import DogStatsd

port, dgram, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

# This datadog version takes the cardinality as a setting (newer ones also
# read DD_CARDINALITY, which the test sets too); DD_EXTERNAL_ENV it reads.
card = os.environ["DD_CARDINALITY"]

# What the Datadog client puts on the wire with these settings.
capture = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
capture.bind(("127.0.0.1", 0))
probe = DogStatsd(host="127.0.0.1", port=capture.getsockname()[1], disable_telemetry=True, disable_buffering=True, cardinality=card)
probe.increment("probe")
print("wire:", capture.recv(65536).decode())

plain = statsd.StatsClient("127.0.0.1", port)
for _ in range(n):
    plain.incr("py.statsd.hits")
plain.gauge("py.statsd.temp", 5)
plain.timing("py.statsd.latency", 12)

udp = DogStatsd(host="127.0.0.1", port=port, disable_telemetry=True, cardinality=card)
for _ in range(n):
    udp.increment("py.dd.hits", tags=["team:a", "team:b"])
udp.gauge("py.dd.temp", -3)
udp.event("Deploy", "rolled | out", alert_type="success", tags=["env:prod"])
udp.service_check("py.dd.check", 2, tags=["env:prod"], message="down")
udp.flush()

# A blocking send (socket_timeout): by default this client sends without
# blocking and silently drops what does not fit the socket's queue
# (net.unix.max_dgram_qlen datagrams), which no server can count.
uds = DogStatsd(socket_path=dgram, disable_telemetry=True, cardinality=card, socket_timeout=5)
for _ in range(n):
    uds.increment("py.dd.uds", tags=["env:prod"])
uds.flush()
print("sent")
"#;

/// Queries `q` until it answers `want` (datagrams are not answered, and
/// the Datadog client adds counts up before sending: the stored values are
/// the only signal), then returns what it answered last.
async fn eventually(c: &mut Client, q: Value, want: Value) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got = c.query(q.clone()).await;
        if got == want || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `metric.query` of `metric` over 5 minutes, with `extra` params.
fn q(metric: &str, extra: Value) -> Value {
    let mut q = json!({"metric": metric, "window": "5m"});
    q.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    q
}

fn free_udp_port() -> u16 {
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_statsd_and_datadog_clients_read_back_exactly() {
    let redis = RedisServer::start();
    let port = free_udp_port();
    let dir = tempfile::tempdir().unwrap();
    let dgram = dir.path().join("dsd.sock");
    let addr = format!("127.0.0.1:{port}");
    let server = ServerProcess::start(
        &redis,
        &[
            ("HAWKEYE_UDP_ADDR", addr.as_str()),
            ("HAWKEYE_DGRAM_SOCKET", dgram.to_str().unwrap()),
            ("HAWKEYE_DGRAM_GAUGE_MODE", "dogstatsd"),
        ],
    );
    let out = Command::new("python3")
        .args(["-c", SCRIPT, &port.to_string(), dgram.to_str().unwrap()])
        .arg(SENDS.to_string())
        .env("DD_CARDINALITY", "orchestrator")
        .env("DD_EXTERNAL_ENV", "it-false,cn-app,pu-4f2c")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The client really sends the newer fields.
    let wire = stdout.lines().find(|l| l.starts_with("wire:")).unwrap();
    assert!(wire.contains("|e:it-false,cn-app,pu-4f2c"), "{wire}");
    assert!(wire.contains("|card:orchestrator"), "{wire}");

    let mut c = Client::connect(&server.socket()).await;
    let sends = json!(f64::from(SENDS));
    // The UDS client sent last: once its count is whole, the others are in.
    assert_eq!(
        eventually(&mut c, q("py.dd.uds", json!({})), sends.clone()).await,
        sends
    );
    let stats = c.call("server.stats", json!(null)).await["result"].clone();
    assert_eq!(stats["lines_rejected"], json!(0), "{stats}");
    assert_eq!(stats["udp_drops"], json!(0), "{stats}");
    assert_eq!(stats["dogstatsd_events"], json!(1), "{stats}");
    assert_eq!(stats["service_checks"], json!(1), "{stats}");
    assert_eq!(c.query(q("py.statsd.hits", json!({}))).await, sends);
    assert_eq!(
        c.query(q("py.statsd.temp", json!({"type": "g", "agg": "last"})))
            .await,
        json!(5.0)
    );
    assert_eq!(
        c.query(q("py.statsd.latency", json!({"type": "ms", "agg": "max"})))
            .await,
        json!(12.0)
    );
    for team in ["a", "b"] {
        let tags = json!({"tags": {"team": team}});
        assert_eq!(c.query(q("py.dd.hits", tags)).await, sends);
    }
    assert_eq!(
        c.query(q("py.dd.temp", json!({"type": "g", "agg": "last"})))
            .await,
        json!(-3.0),
        "a negative DogStatsD gauge sets the value"
    );
    assert_eq!(
        c.query(q("events", json!({"tags": {"alert_type": "success"}})))
            .await,
        json!(1.0)
    );
    assert_eq!(
        c.query(q("py.dd.check", json!({"type": "g", "agg": "last"})))
            .await,
        json!(2.0)
    );
}

const TCP_SCRIPT: &str = r#"
import sys
import statsd

port, n = int(sys.argv[1]), int(sys.argv[2])
client = statsd.TCPStatsClient("127.0.0.1", port, timeout=10)
client.connect()
for _ in range(n):
    client.incr("py.tcp.hits")
client.gauge("py.tcp.temp", 5)
client.timing("py.tcp.latency", 12)
with client.pipeline() as pipe:
    for _ in range(n):
        pipe.incr("py.tcp.piped")
client.close()
print("sent")
"#;

/// PyPI's `statsd` over TCP (its `TCPStatsClient`, newline-delimited
/// lines, one send per metric and a pipeline's lines in one send).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_statsd_over_tcp_reads_back_exactly() {
    let mut t = common::TestServer::start_with(RedisServer::start(), |config| {
        config.tcp_addr = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let port = t.handle().tcp_addr().unwrap().port();
    let out = Command::new("python3")
        .args(["-c", TCP_SCRIPT, &port.to_string(), &SENDS.to_string()])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = t.client().await;
    let sends = json!(f64::from(SENDS));
    // The pipeline was sent last, on the same connection: once its count
    // is whole, everything before it is in.
    assert_eq!(
        eventually(&mut c, q("py.tcp.piped", json!({})), sends.clone()).await,
        sends
    );
    assert_eq!(c.query(q("py.tcp.hits", json!({}))).await, sends);
    let gauge = json!({"metric": "py.tcp.temp", "window": "5m", "type": "g"});
    assert_eq!(c.query(gauge).await, json!(5.0));
    let timing = json!({"metric": "py.tcp.latency", "window": "5m", "type": "ms", "agg": "max"});
    assert_eq!(c.query(timing).await, json!(12.0));
    let stats = c.call("server.stats", json!(null)).await["result"].clone();
    assert_eq!(stats["lines_rejected"], json!(0), "{stats}");
    assert_eq!(stats["lines_accepted"], json!(2 * SENDS + 2), "{stats}");
    t.shutdown().await;
}

/// Where .ci/run installs the npm clients (`npm ci` in .ci/node).
fn node_modules() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/node/node_modules");
    assert!(
        dir.join("hot-shots").is_dir(),
        "{} has no hot-shots: run `npm ci` in .ci/node (.ci/run does)",
        dir.display()
    );
    dir
}

/// npm's hot-shots, unmodified, over the Unix datagram socket, its lines
/// packed in 8 KiB datagrams: every count reads back, nothing is rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_hot_shots_over_the_datagram_socket_reads_back_exactly() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let dgram = dir.path().join("dsd.sock");
    let server = ServerProcess::start(&redis, &[("HAWKEYE_DGRAM_SOCKET", dgram.to_str().unwrap())]);
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/hot_shots.js");
    let out = Command::new("node")
        .arg(&script)
        .arg(&dgram)
        .arg(SENDS.to_string())
        .env("NODE_PATH", node_modules())
        .output()
        .expect("run node (apt-get install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sent"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut c = Client::connect(&server.socket()).await;
    // The check was sent last: once it is in, everything before it is.
    let check = q(
        "node.hs.check",
        json!({"type": "g", "tags": {"env": "prod"}}),
    );
    assert_eq!(eventually(&mut c, check, json!(2.0)).await, json!(2.0));
    let tags = json!({"tags": {"team": "a", "service": "node-app"}});
    assert_eq!(
        c.query(q("node.hs.hits", tags)).await,
        json!(f64::from(SENDS))
    );
    let last = |m: &str| q(m, json!({"type": "g", "agg": "last"}));
    assert_eq!(c.query(last("node.hs.temp")).await, json!(21.5));
    let dist = |agg: &str| q("node.hs.size", json!({"type": "d", "agg": agg}));
    assert_eq!(c.query(dist("count")).await, json!(2.0));
    assert_eq!(c.query(dist("max")).await, json!(7.0));
    let latency = q("node.hs.latency", json!({"type": "ms", "agg": "max"}));
    assert_eq!(c.query(latency).await, json!(12.0));
    let users = q("node.hs.users", json!({"type": "s", "agg": "unique"}));
    assert_eq!(c.query(users).await, json!(2.0));
    let events = q("events", json!({"tags": {"alert_type": "success"}}));
    assert_eq!(c.query(events).await, json!(1.0));
    let stats = c.call("server.stats", json!(null)).await["result"].clone();
    assert_eq!(stats["lines_rejected"], json!(0), "{stats}");
    assert_eq!(stats["lines_accepted"], json!(SENDS + 8), "{stats}");
}
