//! The client against a real server: what is recorded arrives exactly, across
//! a server restart too; a full queue drops and counts; a missing socket is
//! no problem.

mod common;

use std::time::Duration;

use common::{query, settled_value, TestServer};
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
        settled_value(&socket, &query("test.hits", "sum"), 20_000.0).await,
        Some(20_000.0)
    );
    assert_eq!(
        settled_value(&socket, &query("test.tagged", "sum"), 4_000.0).await,
        Some(4_000.0)
    );
    let mut shard_a = query("test.tagged", "sum");
    shard_a.tags = Some([("shard".to_string(), "a".to_string())].into());
    assert_eq!(
        settled_value(&socket, &shard_a, 2_000.0).await,
        Some(2_000.0)
    );
    assert_eq!(
        settled_value(&socket, &query("test.latency", "count"), 1_000.0).await,
        Some(1_000.0)
    );
    assert_eq!(
        settled_value(&socket, &query("test.latency", "max"), 99.0).await,
        Some(99.0)
    );
    assert_eq!(
        settled_value(&socket, &query("test.users", "unique"), 50.0).await,
        Some(50.0)
    );
    assert_eq!(
        settled_value(&socket, &query("test.backlog", "last"), 7.0).await,
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
        settled_value(&socket, &query("restart.hits", "sum"), 175.0).await,
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
        settled_value(&socket, &query("full.hits", "sum"), 10.0).await,
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
