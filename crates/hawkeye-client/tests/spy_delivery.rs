//! The client's delivery logic against a spy server in memory (no server
//! process): the test plays the server and misbehaves on cue. Each
//! `metric.send` is confirmed by its own answer; only unanswered requests
//! go again after a reconnect; rejected lines are counted, never resent;
//! bounds drop the oldest and count them; a faulty server crashes nothing.
//! The real-server tests beside this file check the same promises end to end.

use std::time::Duration;

use hawkeye_client::spy::{SpyConnection, SpyRequest, SpyServer};
use hawkeye_client::{Client, ClientConfig, ClientStats, FlushError};
use hawkeye_protocol::jsonrpc::{code, Rejected, RpcError, SendResult};
use hawkeye_testkit::eventually;
use tokio::task::JoinHandle;

/// How long a test waits for something the client does on its own.
const DEADLINE: Duration = Duration::from_secs(20);

/// Requests are written when a test flushes: the first tick comes before
/// anything is recorded and the next not within a test.
fn config() -> ClientConfig {
    ClientConfig::new("/spy/has/no/socket.sock").flush_interval(Duration::from_secs(3600))
}

fn spy(config: ClientConfig) -> (Client, SpyServer) {
    Client::with_spy(config).expect("a client")
}

/// One increment in each of `series` series of `name` (tag `i`).
fn incr_series(client: &Client, name: &str, series: usize) {
    for i in 0..series {
        client.incr(name, &[("i", &i.to_string())]);
    }
}

fn flush_in_background(client: &Client) -> JoinHandle<Result<(), FlushError>> {
    let client = client.clone();
    tokio::spawn(async move { client.flush().await })
}

async fn accept(spy: &mut SpyServer) -> SpyConnection {
    spy.accept().await.expect("the client connects")
}

/// Requests off `conn` until they carry `lines` metric lines in all.
async fn requests(conn: &mut SpyConnection, lines: usize) -> Vec<SpyRequest> {
    let mut out: Vec<SpyRequest> = Vec::new();
    while out.iter().map(|r| r.lines.len()).sum::<usize>() < lines {
        let request = conn.request().await.expect("a request");
        out.push(request.expect("the connection stays open"));
    }
    assert_eq!(out.iter().map(|r| r.lines.len()).sum::<usize>(), lines);
    out
}

async fn accept_all(conn: &mut SpyConnection, requests: &[SpyRequest]) {
    for r in requests {
        conn.accept_all(r).await.expect("answer");
    }
}

fn ids(requests: &[SpyRequest]) -> Vec<u64> {
    requests.iter().map(|r| r.id).collect()
}

/// Checks that exactly `events` were delivered and none dropped; returns
/// the stats for the test's own checks.
fn assert_all_delivered(client: &Client, events: u64) -> ClientStats {
    let stats = client.stats();
    assert_eq!(stats.delivered, events, "{stats:?}");
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    stats
}

/// Waits (on a multi-thread runtime) until the client's stats satisfy `done`.
fn wait_for_stats(client: &Client, what: &str, done: impl Fn(&ClientStats) -> bool) {
    tokio::task::block_in_place(|| eventually(what, DEADLINE, || done(&client.stats())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_confirmed_by_its_own_answer() {
    let (client, mut spy) = spy(config().max_message_bytes(1024));
    incr_series(&client, "spy.hits", 100);
    let flush = flush_in_background(&client);
    let mut conn = accept(&mut spy).await;
    let requests = requests(&mut conn, 100).await;
    let n = requests.len();
    assert!(n > 2, "{n} requests");
    assert!(
        ids(&requests).windows(2).all(|w| w[0] < w[1]),
        "{:?}",
        ids(&requests)
    );
    for line in requests.iter().flat_map(|r| &r.lines) {
        assert!(line.starts_with("spy.hits:1|c|#i:"), "{line}");
    }

    accept_all(&mut conn, &requests[..n - 1]).await;
    wait_for_stats(&client, "all but one request confirmed", |s| {
        s.batches_confirmed == n as u64 - 1
    });
    assert!(!flush.is_finished(), "the flush waits for the last answer");
    assert_eq!(
        client.stats().delivered,
        100 - requests[n - 1].lines.len() as u64
    );

    accept_all(&mut conn, &requests[n - 1..]).await;
    flush.await.unwrap().expect("flush");
    let stats = assert_all_delivered(&client, 100);
    assert_eq!(stats.batches_confirmed, n as u64, "{stats:?}");
    assert_eq!(stats.lines_written, 100, "{stats:?}");
}

#[tokio::test]
async fn only_unanswered_requests_go_again_after_a_reconnect() {
    let (client, mut spy) = spy(config().max_message_bytes(1024));
    incr_series(&client, "spy.hits", 200);
    let flush = flush_in_background(&client);
    let mut first = accept(&mut spy).await;
    let sent = requests(&mut first, 200).await;
    assert!(sent.len() > 3, "{} requests", sent.len());

    // Two answered, out of order, then the server goes away (a restart):
    // the answers it wrote before closing still count.
    first.accept_all(&sent[2]).await.unwrap();
    first.accept_all(&sent[0]).await.unwrap();
    drop(first);

    let mut second = accept(&mut spy).await;
    let unanswered: Vec<SpyRequest> = [&sent[1..2], &sent[3..]].concat();
    let lines = unanswered.iter().map(|r| r.lines.len()).sum();
    let again = requests(&mut second, lines).await;
    assert_eq!(
        again, unanswered,
        "the same requests, ids and lines, oldest first"
    );
    accept_all(&mut second, &again).await;
    flush.await.unwrap().expect("flush after the reconnect");

    let stats = assert_all_delivered(&client, 200);
    assert_eq!(stats.connects, 2, "{stats:?}");
}

#[tokio::test]
async fn rejected_lines_are_counted_with_their_reason_and_never_resent() {
    let (client, mut spy) = spy(config());
    for _ in 0..3 {
        client.incr("spy.kept", &[]);
    }
    for _ in 0..2 {
        client.incr("spy.refused", &[]);
    }
    let flush = flush_in_background(&client);
    let mut conn = accept(&mut spy).await;
    let request = requests(&mut conn, 2).await.remove(0);
    let index = request
        .lines
        .iter()
        .position(|l| l.starts_with("spy.refused:2|c"))
        .expect("the refused line");
    let result = SendResult {
        accepted: 1,
        rejected: vec![Rejected {
            index,
            error: "too many series".into(),
        }],
    };
    conn.answer(request.id, Ok(result)).await.unwrap();
    flush.await.unwrap().expect("flush");

    let stats = client.stats();
    assert_eq!(stats.delivered, 3, "{stats:?}");
    assert_eq!(stats.dropped_rejected, 2, "{stats:?}");
    assert_eq!(stats.last_rejection.as_deref(), Some("too many series"));

    // The next request carries only what was recorded since.
    client.incr("spy.after", &[]);
    let flush = flush_in_background(&client);
    let next = requests(&mut conn, 1).await;
    assert_eq!(next[0].lines, ["spy.after:1|c"]);
    accept_all(&mut conn, &next).await;
    flush.await.unwrap().expect("second flush");
    assert_eq!(client.stats().dropped_rejected, 2);
}

#[tokio::test]
async fn an_error_answer_rejects_the_whole_request() {
    let (client, mut spy) = spy(config());
    client.count("spy.a", 4, &[]);
    client.gauge("spy.b", 1.0, &[]);
    let flush = flush_in_background(&client);
    let mut conn = accept(&mut spy).await;
    let request = requests(&mut conn, 2).await.remove(0);
    let error = RpcError::new(code::BUFFER_FULL, "buffer full");
    conn.answer(request.id, Err(error)).await.unwrap();
    flush.await.unwrap().expect("an answered request is done");

    let stats = client.stats();
    assert_eq!(stats.dropped_rejected, 2, "{stats:?}");
    assert_eq!(stats.delivered, 0, "{stats:?}");
    assert_eq!(stats.batches_confirmed, 1, "{stats:?}");
    assert_eq!(stats.last_rejection.as_deref(), Some("buffer full"));
}

#[tokio::test]
async fn a_request_refused_as_too_long_is_dropped_and_the_rest_goes_again() {
    let (client, mut spy) = spy(config().max_message_bytes(1024));
    let pad = "p".repeat(900);
    // Counters are written before set members: the long line comes first.
    client.incr("spy.huge", &[("a", &pad), ("b", &pad), ("c", &pad)]);
    for i in 0..100 {
        client.set("spy.users", &format!("user{i}"), &[]);
    }
    let flush = flush_in_background(&client);
    let mut first = accept(&mut spy).await;
    let sent = requests(&mut first, 101).await;
    assert!(
        sent[0].lines[0].starts_with("spy.huge:1|c"),
        "{:?}",
        sent[0]
    );
    assert_eq!(sent[0].lines.len(), 1, "a line over the bound goes alone");
    assert!(sent.len() > 2, "{} requests", sent.len());

    // What the server does with a line over its limit: an error without
    // id, then it closes.
    let error = RpcError::new(code::LINE_TOO_LONG, "line too long");
    first.answer_unidentified(error).await.unwrap();
    drop(first);

    let mut second = accept(&mut spy).await;
    let again = requests(&mut second, 100).await;
    assert_eq!(again, sent[1..], "every other request goes again");
    accept_all(&mut second, &again).await;
    flush.await.unwrap().expect("flush");

    let stats = client.stats();
    assert_eq!(stats.dropped_too_large, 1, "{stats:?}");
    assert_eq!(stats.delivered, 100, "{stats:?}");
    assert_eq!(stats.dropped(), 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_reading_loses_the_connection_not_the_events() {
    let config = ClientConfig {
        write_timeout: Duration::from_millis(200),
        ..config()
    };
    let (client, mut spy) = spy(config.max_message_bytes(8 * 1024));
    // Far more than the in-memory pipe holds.
    let pad = "p".repeat(200);
    for i in 0..2_000 {
        client.incr("spy.stall", &[("i", &i.to_string()), ("pad", &pad)]);
    }
    let flush = flush_in_background(&client);
    // Accepted and never read: the client's write stalls, and its
    // write_timeout drops the connection.
    let stalled = accept(&mut spy).await;
    let mut second = accept(&mut spy).await;
    drop(stalled);
    // The resend is large too: the server answers while the client writes.
    let again = requests(&mut second, 2_000).await;
    accept_all(&mut second, &again).await;
    flush
        .await
        .unwrap()
        .expect("flush over the second connection");

    let stats = assert_all_delivered(&client, 2_000);
    assert_eq!(stats.connects, 2, "{stats:?}");
}

#[tokio::test]
async fn an_unreachable_server_costs_nothing_until_it_is_back() {
    let (client, mut spy) = spy(config());
    spy.set_listening(false);
    for _ in 0..10 {
        client.incr("spy.down", &[]);
    }
    match client.flush().await {
        Err(FlushError::Disconnected { reason, .. }) => {
            assert!(reason.contains("not listening"), "{reason}")
        }
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(!client.stats().connected);

    spy.set_listening(true);
    for _ in 0..5 {
        client.incr("spy.down", &[]);
    }
    let flush = flush_in_background(&client);
    let mut conn = accept(&mut spy).await;
    let sent = requests(&mut conn, 1).await;
    assert_eq!(
        sent[0].lines,
        ["spy.down:15|c"],
        "kept and merged while down"
    );
    accept_all(&mut conn, &sent).await;
    flush.await.unwrap().expect("flush");
    let stats = assert_all_delivered(&client, 15);
    assert!(stats.connected, "{stats:?}");
}

#[tokio::test]
async fn the_unconfirmed_bound_drops_the_oldest_requests_and_counts_them() {
    let mut config = config().max_message_bytes(1024);
    config.max_unconfirmed_bytes = 2048;
    let (client, mut spy) = spy(config);
    incr_series(&client, "spy.bound", 200);
    let flush = flush_in_background(&client);
    let mut conn = accept(&mut spy).await;
    // The bound is applied before anything is written: what it dropped is
    // counted by the time the first request arrives, and never written.
    let first = conn.request().await.unwrap().expect("a request");
    let dropped = client.stats().dropped_unreachable;
    assert!(dropped > 0, "{:?}", client.stats());
    let rest = 200 - dropped as usize - first.lines.len();
    let mut kept = vec![first];
    kept.extend(requests(&mut conn, rest).await);
    let kept_ids = ids(&kept);
    assert!(kept_ids[0] > 1, "the oldest were dropped: {kept_ids:?}");
    assert!(
        kept_ids.windows(2).all(|w| w[1] == w[0] + 1),
        "{kept_ids:?}"
    );
    let bytes: usize = kept.iter().map(|r| r.lines.concat().len()).sum();
    assert!(bytes <= 2048, "{bytes} bytes kept");
    accept_all(&mut conn, &kept).await;
    flush
        .await
        .unwrap()
        .expect("dropped requests are not waited for");
    let stats = client.stats();
    assert_eq!(stats.dropped_unreachable, dropped, "{stats:?}");
    assert_eq!(stats.delivered + dropped, 200, "{stats:?}");
}

#[tokio::test]
async fn a_faulty_server_crashes_nothing_and_loses_no_count() {
    let (client, mut spy) = spy(config());
    client.incr("spy.faulty", &[]);
    client.incr("spy.other", &[]);
    let flush = flush_in_background(&client);
    let mut conn = accept(&mut spy).await;
    let request = requests(&mut conn, 2).await.remove(0);
    let id = request.id;
    conn.write_raw(b"not json at all\n").await.unwrap();
    conn.write_raw(b"[1,2,3]\n").await.unwrap();
    conn.write_raw(b"{\"jsonrpc\":\"2.0\",\"id\":\"7\",\"result\":{}}\n")
        .await
        .unwrap();
    conn.answer(id + 1000, Ok(SendResult::default()))
        .await
        .unwrap();
    conn.answer_unidentified(RpcError::new(code::INTERNAL_ERROR, "oops"))
        .await
        .unwrap();
    // The same line listed three times, and one that does not exist: each
    // line counts once (it used to make `delivered` underflow and the
    // background task panic).
    let twice = |index| Rejected {
        index,
        error: "bad".into(),
    };
    let result = SendResult {
        accepted: 1,
        rejected: vec![twice(0), twice(0), twice(0), twice(9)],
    };
    conn.answer(id, Ok(result)).await.unwrap();
    flush.await.unwrap().expect("the client still works");

    let stats = client.stats();
    assert_eq!(stats.dropped_rejected, 1, "{stats:?}");
    assert_eq!(stats.delivered, 1, "{stats:?}");
    assert_eq!(stats.batches_confirmed, 1, "{stats:?}");
}

#[tokio::test]
async fn a_flush_that_times_out_keeps_the_events_for_the_answer() {
    let (client, mut spy) = spy(config().flush_timeout(Duration::from_millis(100)));
    client.incr("spy.slow", &[]);
    let flush = flush_in_background(&client);
    let mut conn = accept(&mut spy).await;
    let sent = requests(&mut conn, 1).await;
    let timed_out = flush.await.unwrap();
    assert!(
        matches!(timed_out, Err(FlushError::Timeout(_))),
        "{timed_out:?}"
    );

    accept_all(&mut conn, &sent).await;
    client.flush().await.expect("confirmed by the late answer");
    assert_all_delivered(&client, 1);
}

#[tokio::test]
async fn shutdown_waits_for_the_last_answers_and_ends_the_task() {
    let (client, mut spy) = spy(config());
    for _ in 0..7 {
        client.incr("spy.last", &[]);
    }
    let shutdown = {
        let client = client.clone();
        tokio::spawn(async move { client.shutdown().await })
    };
    let mut conn = accept(&mut spy).await;
    let sent = requests(&mut conn, 1).await;
    accept_all(&mut conn, &sent).await;
    shutdown.await.unwrap().expect("shutdown");
    assert_eq!(client.stats().delivered, 7);
    // The task is gone: the spy sees no more connections, and the
    // client closed this one.
    assert!(spy.accept().await.is_none());
    assert!(conn.request().await.unwrap().is_none());
    client.incr("spy.late", &[]);
    assert_eq!(client.stats().dropped_closed, 1);
}
