//! Server ids in the store: stable across restarts (a restarted server
//! replaces its own flush markers instead of adding one per run), different
//! for two servers on one host, configurable with `HAWKEYE_SERVER_ID`, and a
//! restarted server's new flushes are never taken for ones already applied.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{redis_store, Client};
use hawkeye_server::{ServerConfig, ServerHandle};
use hawkeye_store::{Store, WindowQuery};
use hawkeye_testkit::RedisServer;
use serde_json::json;

async fn start(socket: &Path, id: Option<&str>, store: &Arc<dyn Store>) -> ServerHandle {
    let config = ServerConfig {
        socket_path: socket.to_path_buf(),
        flush_interval: Duration::from_millis(50),
        server_id: id.map(str::to_string),
        ..ServerConfig::default()
    };
    hawkeye_server::start(config, store.clone()).await.unwrap()
}

/// Sends `n` increments of `name` and stops the server, which writes them.
async fn send_and_stop(server: ServerHandle, name: &str, n: usize) {
    let mut client = Client::connect(server.socket_path()).await;
    let lines: Vec<String> = (0..n).map(|_| format!("{name}:1|c")).collect();
    let r = client.call("metric.send", json!(lines)).await;
    assert_eq!(r["result"]["rejected"], json!([]), "{r}");
    drop(client);
    server.shutdown().await.unwrap();
}

async fn total(store: &Arc<dyn Store>, name: &str) -> Option<f64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    store
        .query(&WindowQuery::new(name, 600, now + 1))
        .await
        .unwrap()
        .unwrap()
}

/// The servers that have flush markers on `name`.
fn markers(redis: &RedisServer, name: &str) -> Vec<String> {
    let out = redis.cli(&["HKEYS", &format!("hawkeye:{{{name}}}:flushes")]);
    let mut ids: Vec<String> = out.lines().map(str::to_string).collect();
    ids.sort();
    ids
}

struct Setup {
    redis: RedisServer,
    store: Arc<dyn Store>,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Setup {
        let redis = RedisServer::start();
        let store: Arc<dyn Store> = Arc::new(redis_store(&redis).await);
        Setup {
            redis,
            store,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn socket(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }
}

/// A restart on the same socket is the same server: one marker, and every
/// flush of the second run counted (its flush numbers start above the
/// first run's, which the store recorded as applied).
#[tokio::test]
async fn a_restarted_server_keeps_its_id_and_counts_everything() {
    let s = Setup::new().await;
    let socket = s.socket("hawkeye.sock");
    for run in 0..3 {
        let server = start(&socket, None, &s.store).await;
        send_and_stop(server, "restarts", 10 + run).await;
    }
    assert_eq!(total(&s.store, "restarts").await, Some(33.0));
    assert_eq!(markers(&s.redis, "restarts").len(), 1);
}

/// Two servers on one host differ by their socket: two markers, both
/// servers' events counted.
#[tokio::test]
async fn two_servers_on_one_host_have_two_ids() {
    let s = Setup::new().await;
    let a = start(&s.socket("a.sock"), None, &s.store).await;
    let b = start(&s.socket("b.sock"), None, &s.store).await;
    send_and_stop(a, "two", 4).await;
    send_and_stop(b, "two", 5).await;
    assert_eq!(total(&s.store, "two").await, Some(9.0));
    assert_eq!(markers(&s.redis, "two").len(), 2);
}

/// `HAWKEYE_SERVER_ID` names the server whatever its socket: a server moved
/// to another socket (or host) keeps its marker, and still counts all.
#[tokio::test]
async fn a_configured_id_survives_a_new_socket() {
    let s = Setup::new().await;
    let first = start(&s.socket("old.sock"), Some("web-1"), &s.store).await;
    send_and_stop(first, "moved", 3).await;
    let second = start(&s.socket("new.sock"), Some("web-1"), &s.store).await;
    send_and_stop(second, "moved", 6).await;
    let other = start(&s.socket("new.sock"), Some("web-2"), &s.store).await;
    send_and_stop(other, "moved", 1).await;
    assert_eq!(total(&s.store, "moved").await, Some(10.0));
    assert_eq!(markers(&s.redis, "moved").len(), 2);
}

/// The in-memory store keeps the same per-server record: a restart with the
/// same id counts everything there too.
#[tokio::test]
async fn a_restart_on_the_memory_store_counts_everything() {
    let store: Arc<dyn Store> = Arc::new(hawkeye_store::MemoryStore::default());
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hawkeye.sock");
    for _ in 0..2 {
        let server = start(&socket, Some("embedded"), &store).await;
        send_and_stop(server, "mem", 5).await;
    }
    assert_eq!(total(&store, "mem").await, Some(10.0));
}
