//! What DogStatsD clients send beyond plain statsd, read as DogStatsD reads
//! it: a tag key repeated with several values keeps every tag, and the
//! fields about the sender (`card:`, `e:`, a future one-letter field) are
//! accepted and ignored, not counted as rejected lines; events and service
//! checks are taken as the counter `events` and a gauge per check.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::{Client, TestServer};
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};

/// Polls `server.stats` until `lines` lines were taken or refused
/// (datagrams are not answered: the counters are the only signal).
async fn wait_for_lines(c: &mut Client, lines: u64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = c.call("server.stats", json!(null)).await["result"].clone();
        if s["lines_accepted"].as_u64().unwrap() + s["lines_rejected"].as_u64().unwrap() >= lines {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never got there: {s}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_tag_keys_and_sender_fields_are_read_as_dogstatsd_does() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let r = c
        .call(
            "metric.send",
            json!([
                "dd.hits:1|c|#team:a,team:b",
                "dd.hits:1|c|#team:b,team:a|card:orchestrator",
                "dd.hits:1|c|#team:a|e:it-false,cn-app,pu-4f2c|c:ci-1",
                "dd.hits:1|c|#team:a,team:a|x:future",
            ]),
        )
        .await;
    assert_eq!(r["result"], json!({"accepted": 4, "rejected": []}), "{r}");

    let q = |tags| json!({"metric": "dd.hits", "window": "5m", "tags": tags});
    // Two series: {team:a, team:b} (the first two lines, whatever the
    // order) and {team:a} (a tag written twice is one tag).
    assert_eq!(c.query(q(json!({"team": "a"}))).await, json!(4.0));
    assert_eq!(c.query(q(json!({"team": "b"}))).await, json!(2.0));
    assert_eq!(c.query(q(json!({}))).await, json!(4.0));
    let stats = c.call("server.stats", json!(null)).await;
    assert_eq!(stats["result"]["lines_rejected"], json!(0), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_service_checks_over_the_datagram_socket_are_counted_and_stored() {
    let dir = tempfile::tempdir().unwrap();
    let dgram = dir.path().join("statsd.sock");
    let server = TestServer::start_with(RedisServer::start(), |c| {
        c.dgram_socket_path = Some(dgram.clone());
    })
    .await;
    let sender = UnixDatagram::unbound().unwrap();
    let datagrams = [
        // Two events in one datagram, one in another; the text holds a `|`.
        "_e{9,12}:Deploy v2|rolled | out|t:success|s:ci|#env:prod\n_e{4,3}:Disk|90%|t:error|p:low|#env:prod",
        "_e{4,0}:Note||#env:dev",
        // A check that went critical, then recovered: the gauge keeps the last.
        "_sc|app.db|2|#env:prod|m:connection refused",
        "_sc|app.db|0|#env:prod",
    ];
    for d in datagrams {
        sender.send_to(d.as_bytes(), &dgram).unwrap();
    }
    let mut c = server.client().await;
    let stats = wait_for_lines(&mut c, 5).await;
    assert_eq!(stats["dogstatsd_events"], json!(3), "{stats}");
    assert_eq!(stats["service_checks"], json!(2), "{stats}");
    assert_eq!(stats["lines_rejected"], json!(0), "{stats}");

    let events = |tags| json!({"metric": "events", "window": "5m", "tags": tags});
    assert_eq!(c.query(events(json!({}))).await, json!(3.0));
    assert_eq!(c.query(events(json!({"env": "prod"}))).await, json!(2.0));
    assert_eq!(
        c.query(events(json!({"alert_type": "error", "priority": "low"})))
            .await,
        json!(1.0)
    );
    assert_eq!(
        c.query(events(
            json!({"alert_type": "info", "priority": "normal", "env": "dev"})
        ))
        .await,
        json!(1.0)
    );
    assert_eq!(
        c.query(events(json!({"source_type_name": "ci"}))).await,
        json!(1.0)
    );
    let check = json!({"metric": "app.db", "window": "5m", "type": "g", "agg": "last", "tags": {"env": "prod"}});
    assert_eq!(c.query(check).await, json!(0.0));
    let worst = json!({"metric": "app.db", "window": "5m", "type": "g", "agg": "max"});
    assert_eq!(c.query(worst).await, json!(2.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_gauge_sets_on_a_dogstatsd_listener_and_adjusts_on_a_statsd_one() {
    let dir = tempfile::tempdir().unwrap();
    let dgram = dir.path().join("statsd.sock");
    // The stream socket keeps statsd's meaning; the datagram socket, where
    // DogStatsD clients send, reads a sign as DogStatsD does.
    let server = TestServer::start_with(RedisServer::start(), |c| {
        c.dgram_socket_path = Some(dgram.clone());
        c.dgram_gauge_mode = hawkeye_protocol::GaugeMode::DogStatsd;
    })
    .await;
    let mut c = server.client().await;
    let r = c
        .call(
            "metric.send",
            json!(["temp.stream:10|g", "temp.stream:-3|g"]),
        )
        .await;
    assert_eq!(r["result"]["accepted"], json!(2), "{r}");
    let sender = UnixDatagram::unbound().unwrap();
    sender
        .send_to(b"temp.dgram:10|g\ntemp.dgram:-3|g", &dgram)
        .unwrap();
    wait_for_lines(&mut c, 4).await;
    let last = |name| json!({"metric": name, "window": "5m", "type": "g", "agg": "last"});
    assert_eq!(c.query(last("temp.stream")).await, json!(7.0));
    assert_eq!(c.query(last("temp.dgram")).await, json!(-3.0));
}
