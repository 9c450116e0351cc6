//! A `redis-server` on a temporary Unix socket, persistence off.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// How long a redis-server may take to say it is ready before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct RedisServer {
    dir: TempDir,
    child: Option<Child>,
    /// Append-only file with fsync on every write: what Redis acknowledged
    /// survives a kill and restart.
    persistent: bool,
}

impl RedisServer {
    /// Starts a redis-server; panics with the reason if it cannot.
    pub fn start() -> RedisServer {
        RedisServer::start_with(false)
    }

    /// Starts a redis-server whose acknowledged writes survive [`stop`] and
    /// [`restart`] (append-only file, fsync always).
    ///
    /// [`stop`]: RedisServer::stop
    /// [`restart`]: RedisServer::restart
    pub fn start_persistent() -> RedisServer {
        RedisServer::start_with(true)
    }

    fn start_with(persistent: bool) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("hawkeye-redis")
            .tempdir()
            .expect("create a temporary directory for redis");
        let mut server = RedisServer {
            dir,
            child: None,
            persistent,
        };
        server.spawn();
        server
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The URL to give hawkeye (`REDIS_URL`).
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket_path().display())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server. Unless it is persistent, its data is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket_path());
    }

    /// Starts the server again on the same socket (empty unless persistent).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Runs `redis-cli` against this server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-s")
            .arg(self.socket_path())
            .args(args)
            .output()
            .expect("run redis-cli (apt-get install redis-server)");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// SIGSTOP: the server hangs with its socket open, as a frozen node does.
    pub fn pause(&self) {
        crate::signal::send_signal(self.pid(), "STOP");
    }

    /// SIGCONT after [`RedisServer::pause`].
    pub fn resume(&self) {
        crate::signal::send_signal(self.pid(), "CONT");
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    /// A field of `INFO` (for example `total_commands_processed`).
    pub fn info_field(&self, field: &str) -> Option<String> {
        let info = self.cli(&["INFO", "all"]);
        info.lines().find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
    }

    /// How many times `command` (lower case, as `INFO commandstats`
    /// names it) ran, scripts' calls included; 0 if never.
    pub fn command_calls(&self, command: &str) -> u64 {
        let stats = self.cli(&["INFO", "commandstats"]);
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    fn spawn(&mut self) {
        let mut child = Command::new("redis-server")
            .arg("--port")
            .arg("0")
            .arg("--unixsocket")
            .arg(self.socket_path())
            .arg("--unixsocketperm")
            .arg("700")
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg(if self.persistent { "yes" } else { "no" })
            .arg("--appendfsync")
            .arg("always")
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        let stdout = child.stdout.take().expect("redis-server stdout");
        let ready = crate::ready_line::wait_for_line(stdout, READY_TIMEOUT, |line| {
            line.to_ascii_lowercase()
                .contains("ready to accept connections")
                .then_some(())
        });
        if ready.is_none() {
            let _ = child.kill();
            panic!("redis-server did not report ready within {READY_TIMEOUT:?}");
        }
        self.child = Some(child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
