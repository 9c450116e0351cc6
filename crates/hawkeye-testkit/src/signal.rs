//! Sending a signal to a process the test started (`kill -<NAME> <pid>`).

use std::process::Command;

/// Sends `signal` (`STOP`, `CONT`, `KILL`, `TERM`…) to `pid`; panics if
/// `kill` fails (no such process).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -{signal} {pid}"))
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}
