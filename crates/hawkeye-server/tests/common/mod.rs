//! What the server's integration tests share: a server on a temporary socket
//! over a real redis-server, and a line-based JSON-RPC client.

#![allow(dead_code)]

pub mod faulty;
pub mod process;
pub mod steady;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hawkeye_server::{ServerConfig, ServerHandle};
use hawkeye_store::{RedisConfig, RedisStore, Store};
use hawkeye_testkit::RedisServer;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

pub struct TestServer {
    pub redis: RedisServer,
    pub dir: tempfile::TempDir,
    pub handle: Option<ServerHandle>,
    pub store: Arc<dyn Store>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(RedisServer::start(), |_| {}).await
    }

    pub async fn start_with(
        redis: RedisServer,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            socket_path: dir.path().join("hawkeye.sock"),
            flush_interval: Duration::from_millis(50),
            ..ServerConfig::default()
        };
        tweak(&mut config);
        let store: Arc<dyn Store> = Arc::new(redis_store(&redis).await);
        let handle = hawkeye_server::start(config, store.clone()).await.unwrap();
        TestServer {
            redis,
            dir,
            handle: Some(handle),
            store,
        }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("hawkeye.sock")
    }

    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().unwrap()
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.socket()).await
    }

    pub async fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await.unwrap();
        }
    }
}

pub async fn redis_store(redis: &RedisServer) -> RedisStore {
    RedisStore::new(RedisConfig::new(
        redis.url(),
        "hawkeye",
        Duration::from_secs(3600),
    ))
    .unwrap()
}

pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

impl Client {
    pub async fn connect(path: &Path) -> Client {
        let stream = UnixStream::connect(path).await.unwrap();
        let (r, w) = stream.into_split();
        Client {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
        }
    }

    /// Sends raw bytes (a newline is not added).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
    }

    /// Sends raw bytes, reporting a write error instead of panicking (the
    /// server may close the connection part-way, as it does for huge lines).
    pub async fn try_send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await
    }

    /// Reads one response line; `None` at end of stream.
    pub async fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line).await {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("bad response {line:?}: {e}")),
            ),
        }
    }

    /// A JSON-RPC 2.0 call; returns the whole response.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut line =
            json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}).to_string();
        line.push('\n');
        self.send_raw(line.as_bytes()).await;
        let response = self.read().await.expect("a response");
        assert_eq!(response["id"], json!(id), "{response}");
        response
    }

    /// A 2.0 notification (no response).
    pub async fn notify(&mut self, method: &str, params: Value) {
        let mut line = json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string();
        line.push('\n');
        self.send_raw(line.as_bytes()).await;
    }

    /// `server.ping`: once answered, everything sent before on this
    /// connection has been taken by the server.
    pub async fn ping(&mut self) {
        let r = self.call("server.ping", Value::Null).await;
        assert_eq!(r["result"], json!("pong"), "{r}");
    }

    /// Polls `server.stats` until `done` holds of it (for states the server
    /// signals no other way: a flush failed, lines were taken), at most
    /// 60 s; the stats that satisfied it.
    pub async fn stats_when(&mut self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.call("server.stats", json!(null)).await["result"].clone();
            if done(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "server.stats never got there: {s}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn query(&mut self, params: Value) -> Value {
        let r = self.call("metric.query", params).await;
        assert!(r.get("error").is_none(), "query failed: {r}");
        r["result"]["value"].clone()
    }
}

/// The error code of a response, or a panic saying there was none.
pub fn error_code(response: &Value) -> i64 {
    response["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error, got {response}"))
}
