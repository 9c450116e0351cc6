//! Shutdown with a hung Redis (stopped with SIGSTOP: it accepts
//! connections and never answers) ends within `HAWKEYE_SHUTDOWN_TIMEOUT`:
//! the last flush is abandoned at its deadline, the answered events it
//! could not write are logged and counted, and the exit status says so.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::ServerProcess;
use common::steady::Steady;
use common::Client;
use hawkeye_store::window::WindowQuery;
use hawkeye_store::Store;
use hawkeye_testkit::RedisServer;
use serde_json::json;

fn signal(pid: &str, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, pid])
        .status()
        .unwrap()
        .success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_store_cannot_hold_the_shutdown_up() {
    let redis = RedisServer::start();
    let redis_pid = redis.info_field("process_id").expect("redis pid");
    let mut server = ServerProcess::start(&redis, &[("HAWKEYE_SHUTDOWN_TIMEOUT", "2s")]);
    let socket = server.socket();
    // The steady client's events are all written before Redis hangs.
    let steady = Steady::start(socket.clone(), "steady.hung");
    let sent = steady.finish_exact(&socket).await;

    signal(&redis_pid, "-STOP");
    // Ten events answered while Redis hangs: they can only wait in memory.
    let mut c = Client::connect(&socket).await;
    for _ in 0..10 {
        let r = c.call("metric.send", json!(["hung.events:1|c"])).await;
        assert_eq!(r["result"]["accepted"], json!(1), "{r}");
    }
    drop(c);
    // Bounded, not timed: the old server took 57 s here; 2 s are configured.
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate(Duration::from_secs(30));
        (status, server)
    })
    .await
    .unwrap();
    let (status, server) = status;
    signal(&redis_pid, "-CONT");
    let status = status.expect("the server stopped within the bound");
    assert!(!status.success(), "events were lost: the exit says so");
    let log = server.log.text();
    assert!(log.contains("events_lost=10"), "{log}");
    assert!(!socket.exists());

    // What was written before the hang is all there, exactly.
    let store = common::redis_store(&redis).await;
    let query = |name: &str| WindowQuery {
        name: name.into(),
        kind: None,
        tags: Default::default(),
        aggregation: None,
        window_secs: 300,
        end: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        stale_after: None,
    };
    let stored = store.query(&query("steady.hung")).await.unwrap().unwrap();
    assert_eq!(stored, Some(sent as f64));
}
