//! A real hawkeye server in this process (in-memory store) and a way to read
//! what it counted.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hawkeye_client::rpc::RpcConnection;
use hawkeye_protocol::jsonrpc::QueryParams;
use hawkeye_server::{ServerConfig, ServerHandle};
use hawkeye_store::{MemoryStore, Store};

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub handle: Option<ServerHandle>,
    /// Applied to the server's configuration at every (re)start.
    pub adjust: fn(&mut ServerConfig),
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server whose configuration `adjust` changes (e.g. `max_series`).
    pub async fn start_with(adjust: fn(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let mut server = TestServer {
            dir,
            store,
            handle: None,
            adjust,
        };
        server.restart().await;
        server
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("hawkeye.sock")
    }

    /// Starts a (new) server on the same socket and store.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut config = ServerConfig {
            socket_path: self.socket_path(),
            flush_interval: Duration::from_millis(20),
            ..Default::default()
        };
        (self.adjust)(&mut config);
        let handle = hawkeye_server::start(config, Arc::clone(&self.store))
            .await
            .expect("start the hawkeye server");
        self.handle = Some(handle);
    }

    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown().await.expect("server shutdown");
        }
    }
}

pub fn query(metric: &str, agg: &str) -> QueryParams {
    QueryParams {
        metric: metric.to_string(),
        window: serde_json::json!("1h"),
        agg: Some(agg.to_string()),
        tags: None,
        kind: None,
    }
}

/// The value of one `metric.query`. No polling: the server writes
/// everything it holds before it answers a query (docs/client.md), so once
/// `flush` or `shutdown` returned, every confirmed event is in the value.
pub async fn query_value(socket: &Path, params: &QueryParams) -> Option<f64> {
    let mut conn = RpcConnection::connect(socket)
        .await
        .expect("connect for a query");
    conn.query(params).await.expect("metric.query").value
}
