//! The `hawkeye-server` binary's life: SIGTERM under load, a live socket
//! refused, a stale one replaced, the socket's mode.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Client;
use hawkeye_store::window::WindowQuery;
use hawkeye_store::Store;
use hawkeye_testkit::RedisServer;
use serde_json::json;

fn server_command(socket: &Path, redis: &RedisServer) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawkeye-server"));
    cmd.env_clear()
        .env("HAWKEYE_SOCKET", socket)
        .env("REDIS_URL", redis.url())
        .env("HAWKEYE_FLUSH_INTERVAL", "100ms")
        .env("RUST_LOG", "info")
        .current_dir(socket.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts the binary and waits for its "listening" log line.
fn spawn_ready(mut cmd: Command) -> Child {
    let mut child = cmd.spawn().expect("start hawkeye-server");
    let stdout = child.stdout.take().unwrap();
    hawkeye_testkit::wait_for_line(stdout, Duration::from_secs(30), |line| {
        line.contains("hawkeye server listening").then_some(())
    })
    .expect("server reports listening");
    child
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(sig)
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_answered_event_and_removes_the_socket() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hawkeye.sock");
    let mut child = spawn_ready(server_command(&socket, &redis));

    let answered = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (socket, answered, sent) = (socket.clone(), answered.clone(), sent.clone());
        senders.push(tokio::spawn(async move {
            let mut c = Client::connect(&socket).await;
            let lines: Vec<&str> = vec!["shutdown.events:1|c"; 10];
            let line = json!({"jsonrpc": "2.0", "method": "metric.send", "params": lines, "id": 1})
                .to_string()
                + "\n";
            loop {
                sent.fetch_add(10, Ordering::SeqCst);
                if c.try_send_raw(line.as_bytes()).await.is_err() {
                    break;
                }
                match c.read().await {
                    Some(r) if r["result"]["accepted"] == json!(10) => {
                        answered.fetch_add(10, Ordering::SeqCst);
                    }
                    _ => break,
                }
            }
        }));
    }
    // Signal once the load is well under way.
    while answered.load(Ordering::SeqCst) < 20_000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(&child, "-TERM");
    for s in senders {
        s.await.unwrap();
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(!socket.exists(), "the socket file is removed");

    let store = common::redis_store(&redis).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let stored = store
        .query(&WindowQuery {
            name: "shutdown.events".into(),
            kind: None,
            tags: Default::default(),
            aggregation: None,
            window_secs: 300,
            end: now,
            stale_after: None,
        })
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let (answered, sent) = (
        answered.load(Ordering::SeqCst) as f64,
        sent.load(Ordering::SeqCst) as f64,
    );
    assert!(
        stored >= answered,
        "stored {stored} < answered {answered}: answered events were lost"
    );
    assert!(stored <= sent, "stored {stored} > sent {sent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_cannot_hold_up_shutdown() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hawkeye.sock");
    let mut cmd = server_command(&socket, &redis);
    cmd.env("HAWKEYE_SHUTDOWN_TIMEOUT", "1s");
    let mut child = spawn_ready(cmd);
    let mut answered_before = Client::connect(&socket).await;
    let r = answered_before
        .call("metric.send", json!(["before:1|c"]))
        .await;
    assert_eq!(r["result"]["accepted"], json!(1));
    // Pipeline requests and never read a response, until our writes block:
    // by then the server's writes back to us are blocked too.
    let mut stuck = Client::connect(&socket).await;
    let request =
        json!({"jsonrpc": "2.0", "method": "metric.send", "params": ["stuck:1|c"], "id": 1})
            .to_string()
            + "\n";
    let batch = request.repeat(1000);
    for _ in 0..1000 {
        if tokio::time::timeout(Duration::from_secs(2), stuck.try_send_raw(batch.as_bytes()))
            .await
            .is_err()
        {
            break;
        }
    }
    signal(&child, "-TERM");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(!socket.exists());
    // The other client's answered event was flushed.
    let store = common::redis_store(&redis).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let q = WindowQuery {
        name: "before".into(),
        kind: None,
        tags: Default::default(),
        aggregation: None,
        window_secs: 300,
        end: now,
        stale_after: None,
    };
    assert_eq!(store.query(&q).await.unwrap().unwrap(), Some(1.0));
    drop(stuck);
}

#[test]
fn a_live_socket_is_refused_and_a_stale_one_replaced() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hawkeye.sock");

    // A stale socket file, as a killed server leaves it.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let mut cmd = server_command(&socket, &redis);
    cmd.env("HAWKEYE_SOCKET_MODE", "0600");
    let mut first = spawn_ready(cmd);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A second server on the same path refuses to start, saying why.
    let out = server_command(&socket, &redis).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already listening"), "{stderr}");
    // ... and the first one is untouched.
    let mut probe = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    use std::io::Write;
    probe
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"server.ping\",\"id\":1}\n")
        .unwrap();
    let mut reply = String::new();
    BufReader::new(&probe).read_line(&mut reply).unwrap();
    assert!(reply.contains("pong"), "{reply}");

    signal(&first, "-INT");
    assert!(first.wait().unwrap().success());
    assert!(!socket.exists());
}

#[test]
fn a_regular_file_at_the_socket_path_is_not_replaced() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hawkeye.sock");
    std::fs::write(&socket, "precious").unwrap();
    let out = server_command(&socket, &redis).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a socket"));
    assert_eq!(std::fs::read_to_string(&socket).unwrap(), "precious");
}

#[test]
fn bad_settings_are_one_line_errors_naming_the_variable() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("HAWKEYE_MAX_SERIES", "many"),
        ("HAWKEYE_REDIS_WAIT_REPLICAS", "all"),
        // Not shorter than REDIS_TIMEOUT (5s).
        ("HAWKEYE_REDIS_WAIT_TIMEOUT", "10s"),
        ("HAWKEYE_MAX_PENDING_COMPACTIONS", "lots"),
    ] {
        let mut cmd = server_command(&dir.path().join("s.sock"), &redis);
        cmd.env(var, value);
        let out = cmd.output().unwrap();
        assert!(!out.status.success(), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.trim().lines().last().unwrap_or_default();
        assert!(last.contains(var), "{var}={value}: {stderr}");
        assert!(!last.contains("panicked"), "{stderr}");
    }
}

#[test]
fn dotenv_is_read_and_real_environment_wins() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("from-dotenv.sock");
    // .env names ENV and a socket; .prod.env overrides the socket.
    std::fs::write(
        dir.path().join(".env"),
        format!(
            "ENV=prod\nHAWKEYE_SOCKET={}\nHAWKEYE_SOCKET_MODE=0640\n",
            dir.path().join("from-base-dotenv.sock").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".prod.env"),
        format!("HAWKEYE_SOCKET={}\n", from_file.display()),
    )
    .unwrap();
    let mut cmd = server_command(&dir.path().join("ignored.sock"), &redis);
    cmd.env_remove("HAWKEYE_SOCKET");
    cmd.env("HAWKEYE_SOCKET_MODE", "0600");
    let mut child = spawn_ready(cmd);
    assert!(
        from_file.exists(),
        ".prod.env's HAWKEYE_SOCKET wins over .env's"
    );
    let mode = std::fs::metadata(&from_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the real environment wins over .env");
    signal(&child, "-TERM");
    assert!(child.wait().unwrap().success());
}
