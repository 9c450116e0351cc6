//! The `hawkeye` binary prints the server's own error when the server
//! closes the connection on it (here: too many connections, -32005), not
//! the broken pipe or the close that follows.

use std::process::Command;

use hawkeye::embed::{self, EmbedConfig};
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_prints_the_servers_reason() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hawkeye.sock");
    let mut config = EmbedConfig::in_memory(&socket).without_agent();
    config.server.max_connections = 1;
    let server = embed::start(config).await.unwrap();
    // The one connection allowed, in the middle of a request: not idle.
    let mut busy = tokio::net::UnixStream::connect(&socket).await.unwrap();
    busy.write_all(b"{\"jsonrpc\":\"2.0\",").await.unwrap();

    let s = socket.to_str().unwrap().to_string();
    for args in [
        vec!["stats", "--socket", &s],
        vec!["send", "--socket", &s, "a:1|c"],
    ] {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_hawkeye"))
                .args(&args)
                .env_remove("HAWKEYE_SOCKET")
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("too many connections"), "{stderr}");
        assert!(stderr.contains("-32005"), "{stderr}");
        assert!(!stderr.contains("Broken pipe"), "{stderr}");
    }
    drop(busy);
    server.shutdown().await;
}
