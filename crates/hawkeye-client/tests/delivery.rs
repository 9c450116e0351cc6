//! The client against a real server: what is recorded arrives exactly, across
//! a server restart too; a full queue drops and counts; a missing socket is
//! no problem.

mod common;

use std::time::Duration;

use common::{query, query_value, TestServer};
use hawkeye_client::{Client, ClientConfig, FlushError};

fn config(server: &TestServer) -> ClientConfig {
    ClientConfig::new(server.socket_path()).flush_interval(Duration::from_millis(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_exactly() {
    let server = TestServer::start().await;
    let client = Client::new(config(&server)).unwrap();

    // Counters from several threads, some tagged.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..5_000 {
                    client.incr("test.hits", &[]);
                    if i % 10 == 0 {
                        client.count(
                            "test.tagged",
                            2,
                            &[("shard", if t % 2 == 0 { "a" } else { "b" })],
                        );
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for i in 0..1_000 {
        client.timing_ms("test.latency", f64::from(i % 100), &[]);
    }
    for i in 0..500 {
        client.set("test.users", &format!("user{}", i % 50), &[]);
    }
    client.gauge("test.backlog", 10.0, &[]);
    client.gauge_add("test.backlog", -3.0, &[]);
    client.flush().await.expect("flush");

    let socket = server.socket_path();
    assert_eq!(
        query_value(&socket, &query("test.hits", "sum")).await,
        Some(20_000.0)
    );
    assert_eq!(
        query_value(&socket, &query("test.tagged", "sum")).await,
        Some(4_000.0)
    );
    let mut shard_a = query("test.tagged", "sum");
    shard_a.tags = Some([("shard".to_string(), "a".to_string())].into());
    assert_eq!(query_value(&socket, &shard_a).await, Some(2_000.0));
    assert_eq!(
        query_value(&socket, &query("test.latency", "count")).await,
        Some(1_000.0)
    );
    assert_eq!(
        query_value(&socket, &query("test.latency", "max")).await,
        Some(99.0)
    );
    assert_eq!(
        query_value(&socket, &query("test.users", "unique")).await,
        Some(50.0)
    );
    assert_eq!(
        query_value(&socket, &query("test.backlog", "last")).await,
        Some(7.0)
    );

    let stats = client.stats();
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert_eq!(stats.recorded, 20_000 + 2_000 + 1_000 + 500 + 2);
    // Aggregation: far fewer lines than events.
    assert!(stats.lines_written < 1_000, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_keeps_working_across_a_server_restart() {
    let mut server = TestServer::start().await;
    let client = Client::new(config(&server)).unwrap();
    let socket = server.socket_path();

    for _ in 0..100 {
        client.incr("restart.hits", &[]);
    }
    client.flush().await.expect("flush before the restart");

    server.stop().await;
    // Recorded while the server is down: kept by the client.
    for _ in 0..50 {
        client.incr("restart.hits", &[]);
    }
    let down = client.flush().await;
    assert!(
        matches!(down, Err(FlushError::Disconnected { .. })),
        "{down:?}"
    );

    server.restart().await;
    for _ in 0..25 {
        client.incr("restart.hits", &[]);
    }
    client.flush().await.expect("flush after the restart");
    assert_eq!(
        query_value(&socket, &query("restart.hits", "sum")).await,
        Some(175.0)
    );

    let stats = client.stats();
    assert_eq!(stats.connects, 2, "{stats:?}");
    assert_eq!(stats.dropped(), 0, "{stats:?}");
}

/// A current-thread runtime: the sender task cannot run while the test
/// records, so exactly `capacity` events fit and the rest are dropped.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let server = TestServer::start().await;
    let client = Client::new(config(&server).queue_capacity(10)).unwrap();

    for _ in 0..1_000 {
        client.incr("full.hits", &[]);
    }
    let stats = client.stats();
    assert_eq!(stats.recorded, 10);
    assert_eq!(stats.dropped_queue_full, 990);
    assert_eq!(client.dropped(), 990);

    client.flush().await.expect("flush");
    let socket = server.socket_path();
    assert_eq!(
        query_value(&socket, &query("full.hits", "sum")).await,
        Some(10.0)
    );
}

#[tokio::test]
async fn a_missing_socket_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nobody-listens.sock");
    let client = Client::new(ClientConfig::new(&missing)).unwrap();
    client.incr("x", &[("k", "v")]);
    client.gauge("g", 1.0, &[]);
    client.timing("t", Duration::from_millis(3), &[]);
    client.set("s", "m", &[]);
    client.gauge("nan", f64::NAN, &[]);

    match client.flush().await {
        Err(FlushError::Disconnected { path, .. }) => assert_eq!(path, missing),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert!(!client.stats().connected);
    assert_eq!(client.stats().dropped_invalid, 1);
    // Shutting down cannot deliver: the 4 events are counted as dropped.
    assert!(client.shutdown().await.is_err());
    assert_eq!(client.stats().dropped_unreachable, 4);
    // Recording after shutdown is dropped and counted too.
    client.incr("x", &[]);
    assert_eq!(client.stats().dropped_closed, 1);
}

/// Plain synchronous code, no runtime: the client runs its own thread.
#[test]
fn works_from_synchronous_code_without_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(ClientConfig::new(dir.path().join("none.sock"))).unwrap();
    for _ in 0..100 {
        client.incr("sync.hits", &[]);
    }
    assert_eq!(client.stats().recorded, 100);
    drop(client);
}

/// A task records without pause while the server is stopped and started
/// again, several times. Each `metric.send` is a request confirmed on its
/// own, so what a stopping server took is never sent again and what it did
/// not take is: the total is exact. (When a write was several notifications
/// confirmed by one ping, a server stopping between them made the client
/// resend the ones it had already counted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_while_recording_neither_lose_nor_double_count() {
    const EVENTS: u64 = 300_000;
    const SERIES: u64 = 3_000;
    let mut server = TestServer::start().await;
    let socket = server.socket_path();
    // Many series and small requests: a write is many requests, and a
    // server's read often ends between two of them.
    let client = Client::new(
        config(&server)
            .queue_capacity(EVENTS as usize)
            .max_message_bytes(8 * 1024),
    )
    .unwrap();

    let (progress_tx, mut progress) = tokio::sync::mpsc::unbounded_channel();
    let recorder = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 0..EVENTS {
                let shard = (i % SERIES).to_string();
                client.incr("churn.hits", &[("shard", &shard)]);
                if i % 1_000 == 999 {
                    let _ = progress_tx.send(i + 1);
                    tokio::task::yield_now().await;
                }
            }
        })
    };

    let mut restarts = 0;
    let mut stopped = false;
    // Every few thousand events recorded: stop, or start again.
    while let Some(recorded) = progress.recv().await {
        if recorded % 20_000 != 0 {
            continue;
        }
        if stopped {
            server.restart().await;
            restarts += 1;
        } else {
            server.stop().await;
        }
        stopped = !stopped;
    }
    recorder.await.unwrap();
    if stopped {
        server.restart().await;
        restarts += 1;
    }
    assert!(restarts >= 5, "{restarts} restarts");
    client.flush().await.expect("flush after the last restart");

    let stats = client.stats();
    assert_eq!(stats.recorded, EVENTS, "{stats:?}");
    assert_eq!(stats.delivered, EVENTS, "{stats:?}");
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    assert_eq!(
        query_value(&socket, &query("churn.hits", "sum")).await,
        Some(EVENTS as f64),
        "{stats:?}"
    );
}

/// Lines the server answers it rejected (here: too many series) are counted
/// as dropped with the reason, not taken for delivered, and never resent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_the_server_rejects_are_counted_with_their_reason() {
    let server = TestServer::start_with(|c| c.max_series = 3).await;
    let client = Client::new(config(&server)).unwrap();
    for i in 0..10 {
        let shard = i.to_string();
        client.incr("capped.hits", &[("shard", &shard)]);
        client.incr("capped.hits", &[("shard", &shard)]);
    }
    client.flush().await.expect("flush");

    let stats = client.stats();
    // 3 series taken with their 2 events each, 7 refused.
    assert_eq!(stats.dropped_rejected, 14, "{stats:?}");
    assert_eq!(stats.dropped(), 14, "{stats:?}");
    let reason = stats.last_rejection.clone().expect("a reason");
    assert!(reason.contains("series"), "{reason}");
    assert_eq!(
        query_value(&server.socket_path(), &query("capped.hits", "sum")).await,
        Some(6.0)
    );
    // Nothing is kept to be sent again: a further flush has nothing to do.
    client.flush().await.expect("second flush");
    assert_eq!(client.stats().dropped_rejected, 14);
}

/// A line longer than the server accepts does not jam delivery: the server
/// answers -32004 and closes; the client drops and counts that request and
/// sends the others again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_too_long_for_the_server_is_dropped_and_counted() {
    let server = TestServer::start_with(|c| c.max_line_bytes = 8 * 1024).await;
    let client = Client::new(config(&server).max_message_bytes(4 * 1024)).unwrap();
    let value = "v".repeat(1_000);
    let keys: Vec<String> = (0..300).map(|i| format!("key{i}")).collect();
    let tags: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), value.as_str())).collect();
    for _ in 0..5 {
        client.incr("small.hits", &[]);
    }
    // About 300 KB in one line: far over the server's 8 KiB.
    client.incr("huge.hits", &tags);
    for i in 0..200 {
        client.incr("small.tagged", &[("i", &i.to_string())]);
    }
    client.flush().await.expect("flush");

    let stats = client.stats();
    assert_eq!(stats.dropped_too_large, 1, "{stats:?}");
    assert_eq!(stats.dropped(), 1, "{stats:?}");
    let socket = server.socket_path();
    assert_eq!(
        query_value(&socket, &query("small.hits", "sum")).await,
        Some(5.0)
    );
    assert_eq!(
        query_value(&socket, &query("small.tagged", "sum")).await,
        Some(200.0)
    );
    // Delivery goes on.
    client.incr("small.hits", &[]);
    client.flush().await.expect("flush after");
    assert_eq!(
        query_value(&socket, &query("small.hits", "sum")).await,
        Some(6.0)
    );
}

/// A tag value or set member of megabytes is cut to `MAX_TAG_BYTES` and
/// counted; the event arrives (it used to make a line the server refused
/// as too long, written again for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_tag_values_and_set_members_are_cut_and_delivered() {
    let server = TestServer::start().await;
    let client = Client::new(config(&server)).unwrap();
    let huge = "x".repeat(2 << 20);
    client.incr("long.tag", &[("k", &huge)]);
    client.set("long.set", &huge, &[]);
    client.flush().await.expect("flush");

    let stats = client.stats();
    assert_eq!(stats.truncated, 2, "{stats:?}");
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    let socket = server.socket_path();
    let mut tagged = query("long.tag", "sum");
    tagged.tags = Some([("k".to_string(), "x".repeat(hawkeye_client::MAX_TAG_BYTES))].into());
    assert_eq!(query_value(&socket, &tagged).await, Some(1.0));
    assert_eq!(
        query_value(&socket, &query("long.set", "unique")).await,
        Some(1.0)
    );
}

/// `flush` while other threads record without pause returns: it sends what
/// was queued when it was called, not everything that keeps arriving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_returns_under_steady_load() {
    let server = TestServer::start().await;
    let client = Client::new(config(&server)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (started_tx, started) = std::sync::mpsc::channel();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            let stop = stop.clone();
            let started = started_tx.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    client.incr("load.hits", &[]);
                    n += 1;
                    if n == 10_000 {
                        let _ = started.send(());
                    }
                }
            })
        })
        .collect();
    // Both threads are recording.
    for _ in 0..2 {
        started.recv().unwrap();
    }
    for _ in 0..5 {
        client.flush().await.expect("flush under load");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    client.flush().await.expect("last flush");
    let stats = client.stats();
    assert_eq!(stats.dropped_unreachable, 0, "{stats:?}");
    assert_eq!(
        query_value(&server.socket_path(), &query("load.hits", "sum")).await,
        Some(stats.recorded as f64),
        "{stats:?}"
    );
}

/// A server that accepts but stops reading (stuck, or stopped with SIGSTOP)
/// can hang neither `flush` (it times out) nor the client (the write
/// deadline drops the connection, and the client connects again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_reading_hangs_neither_flush_nor_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stalled.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let mut config = ClientConfig::new(&path)
        .flush_interval(Duration::from_millis(10))
        .flush_timeout(Duration::from_millis(100))
        .write_timeout(Duration::from_secs(1));
    config.shutdown_timeout = Duration::from_millis(200);
    let client = Client::new(config).unwrap();
    // Several MB: far more than the socket buffers hold.
    let pad = "p".repeat(900);
    for i in 0..5_000 {
        client.incr("stall.hits", &[("i", &i.to_string()), ("pad", &pad)]);
    }
    // A guard against the hang this test is about, not a measurement.
    let guard = Duration::from_secs(60);
    tokio::time::timeout(guard, async {
        let (first, _) = listener.accept().await.unwrap();
        let flushed = client.flush().await;
        assert!(
            matches!(flushed, Err(FlushError::Timeout(_))),
            "{flushed:?}"
        );
        // The write deadline dropped the stuck connection: the client is back.
        let (second, _) = listener.accept().await.unwrap();
        drop(first);
        // Shutting down against a server that still reads nothing ends too.
        let shut = client.shutdown().await;
        assert!(shut.is_err(), "{shut:?}");
        drop(second);
    })
    .await
    .expect("flush, reconnect and shutdown ended");
    let stats = client.stats();
    assert!(stats.dropped_unreachable > 0, "{stats:?}");
}

/// A synchronous program that calls `shutdown_blocking` before returning
/// gets its last events delivered (dropping the handle does not wait).
#[test]
fn shutdown_blocking_delivers_the_last_events_of_a_sync_program() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start());
    let socket = server.socket_path();
    // No runtime on this thread: the client runs its own.
    let client = Client::new(ClientConfig::new(&socket)).unwrap();
    for _ in 0..42 {
        client.incr("sync.tail", &[]);
    }
    client.shutdown_blocking().expect("shutdown_blocking");
    assert_eq!(client.stats().delivered, 42);
    let value = runtime.block_on(query_value(&socket, &query("sync.tail", "sum")));
    assert_eq!(value, Some(42.0));
    runtime.block_on(async move {
        let mut server = server;
        server.stop().await;
    });
}

/// Backoff arithmetic saturates: a huge `max_backoff` cannot make the
/// background task panic (which would leave every flush `Closed`).
#[tokio::test]
async fn a_huge_backoff_does_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ClientConfig::new(dir.path().join("nobody.sock"));
    config.min_backoff = Duration::MAX;
    config.max_backoff = Duration::MAX;
    let client = Client::new(config).unwrap();
    for _ in 0..3 {
        client.incr("x", &[]);
        let flushed = client.flush().await;
        assert!(
            matches!(flushed, Err(FlushError::Disconnected { .. })),
            "{flushed:?}"
        );
    }
}
