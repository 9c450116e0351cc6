//! The `hawkeye-server` binary as a child process, configured through its
//! environment: the tests of the server's bounds drive it as an operator
//! would, read its logs, its `server.stats` and its peak memory.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hawkeye_testkit::RedisServer;

/// How long the binary may take to say it listens.
const READY: Duration = Duration::from_secs(30);

/// Every line the process printed, with a signal for each new one.
#[derive(Clone, Default)]
pub struct Log(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Log {
    fn collect(&self, output: impl Read + Send + 'static) {
        let log = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                let (lines, changed) = &*log.0;
                lines.lock().unwrap().push(line);
                changed.notify_all();
            }
        });
    }

    /// Waits until a line satisfies `want`, up to `timeout`; that line.
    pub fn wait_for(&self, timeout: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lines, changed) = &*self.0;
        let mut guard = lines.lock().unwrap();
        loop {
            if let Some(line) = guard.iter().find(|l| want(l)) {
                return Some(line.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            guard = changed.wait_timeout(guard, left).unwrap().0;
        }
    }

    pub fn text(&self) -> String {
        self.0 .0.lock().unwrap().join("\n")
    }
}

pub struct ServerProcess {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub log: Log,
}

impl ServerProcess {
    /// Starts the binary on a temporary socket over `redis`, with `env` on
    /// top of a small flush interval, and waits until it listens.
    pub fn start(redis: &RedisServer, env: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::start_with_url(&redis.url(), env)
    }

    pub fn start_with_url(url: &str, env: &[(&str, &str)]) -> ServerProcess {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawkeye-server"));
        cmd.env_clear()
            .env("HAWKEYE_SOCKET", dir.path().join("hawkeye.sock"))
            .env("REDIS_URL", url)
            .env("HAWKEYE_FLUSH_INTERVAL", "50ms")
            .env("RUST_LOG", "info")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start hawkeye-server");
        let log = Log::default();
        log.collect(child.stdout.take().unwrap());
        log.collect(child.stderr.take().unwrap());
        let server = ServerProcess {
            child: Some(child),
            dir,
            log,
        };
        if server
            .log
            .wait_for(READY, |l| l.contains("hawkeye server listening"))
            .is_none()
        {
            panic!("the server did not start:\n{}", server.log.text());
        }
        server
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("hawkeye.sock")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// A field of /proc/<pid>/status in KiB (`VmHWM` is the peak RSS).
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Sends SIGTERM and waits for the exit, at most `timeout` (then kills).
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
