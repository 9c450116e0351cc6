//! Real processes for the end-to-end tests: the binaries under test, with
//! their output captured line by line so tests wait on what they print.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Output lines of a process, with a condition variable to wait on.
#[derive(Default)]
struct Output {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

pub struct Proc {
    name: String,
    child: Child,
    output: Arc<Output>,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr captured (and echoed to the
    /// test's stderr, prefixed with `name`, for diagnosis).
    /// `NO_COLOR=1` is set unless the command sets or removes it itself.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        if !cmd.get_envs().any(|(key, _)| key == "NO_COLOR") {
            cmd.env("NO_COLOR", "1");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let output = Arc::new(Output::default());
        let pipes: Vec<Box<dyn Read + Send>> = vec![
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for pipe in pipes {
            let output = output.clone();
            let name = name.to_string();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    eprintln!("[{name}] {line}");
                    output.lines.lock().unwrap().push(line);
                    output.changed.notify_all();
                }
            });
        }
        Proc {
            name: name.to_string(),
            child,
            output,
        }
    }

    /// Waits until a line containing `needle` was printed; false at the
    /// deadline.
    pub fn wait_for_line(&self, needle: &str, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        let mut lines = self.output.lines.lock().unwrap();
        loop {
            if lines.iter().any(|l| l.contains(needle)) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            lines = self.output.changed.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Every line printed so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lines.lock().unwrap().clone()
    }

    pub fn count_lines(&self, needle: &str) -> usize {
        self.output
            .lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits until at least `n` lines containing `needle` were printed;
    /// false at the deadline.
    pub fn wait_for_lines(&self, needle: &str, n: usize, deadline: Duration) -> bool {
        let until = Instant::now() + deadline;
        let mut lines = self.output.lines.lock().unwrap();
        loop {
            if lines.iter().filter(|l| l.contains(needle)).count() >= n {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            lines = self.output.changed.wait_timeout(lines, left).unwrap().0;
        }
    }

    pub fn signal(&self, signal: i32) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with the pid of a child this test started.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "signal {signal} to {}", self.name);
    }

    /// Waits for the process to exit; `None` at the deadline.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + deadline;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A binary of another package of the workspace, built if needed. Cargo
/// gives a test the path of its own package's binaries only, so this one is
/// built with the cargo running the tests (a no-op when it is up to date)
/// into the same target directory, and found next to the test executable.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("target/<profile> directory")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-p", package, "--bin", bin]);
    // Cargo gives this test its package's `CARGO_PKG_NAME`,
    // `CARGO_MANIFEST_DIR`…; build scripts that read them (ring's does)
    // ask to be rerun when they change, so a nested build seeing this
    // package's values rebuilt ring and everything above it, and the next
    // `cargo test` rebuilt them back: minutes per test binary.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_BIN_")
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
            ]
            .contains(&&*key)
        {
            build.env_remove(&*key);
        }
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    let path = profile_dir.join(bin);
    assert!(
        status.success() && path.exists(),
        "could not build {} (cargo build -p {package})",
        path.display()
    );
    path
}

/// The `hawkeye-server` binary, built if needed.
pub fn server_binary() -> PathBuf {
    workspace_binary("hawkeye-server", "hawkeye-server")
}

/// The `hawkeye` command line, built if needed.
pub fn cli_binary() -> PathBuf {
    workspace_binary("hawkeye", "hawkeye")
}

pub fn agent_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hawkeye-agent"))
}

/// A command with a clean environment (only PATH and HOME kept), so
/// settings of the developer's shell cannot leak into the test.
pub fn clean_command(program: &std::path::Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for var in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    cmd
}
