//! Kernel counters per call, beside the CPU time: with
//! `HAWKEYE_BENCH_PERF=1`, each lockstep phase runs `perf stat` on the server
//! it measures (hawkeye's process, or the floor's thread) and prints the
//! context switches, CPU migrations and system calls (by kind) per call.
//! They do not move with the load of a shared machine as CPU time does.
//! Hardware events (instructions) are asked for too; a virtual machine
//! without a PMU reports them "not supported" and they are left out.

use std::process::{Child, Command, Stdio};

const EVENTS: &[&str] = &[
    "instructions:u",
    "instructions:k",
    "task-clock",
    "context-switches",
    "cpu-migrations",
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_epoll_wait",
    "syscalls:sys_enter_recvfrom",
    "syscalls:sys_enter_read",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_write",
    "syscalls:sys_enter_futex",
];

/// Which tasks `perf stat` follows.
pub enum Target {
    /// Every thread of a process.
    Process(u32),
    /// One thread.
    Thread(i32),
}

/// A running `perf stat`, or nothing when the counters were not asked for
/// (or perf could not start).
pub struct Counters {
    perf: Option<(Child, tempfile::NamedTempFile)>,
}

impl Counters {
    pub fn start(target: Target) -> Counters {
        if std::env::var_os("HAWKEYE_BENCH_PERF").is_none() {
            return Counters { perf: None };
        }
        let out = tempfile::NamedTempFile::new().expect("a file for perf's output");
        let (flag, id) = match target {
            Target::Process(pid) => ("-p", pid.to_string()),
            Target::Thread(tid) => ("-t", tid.to_string()),
        };
        let child = Command::new("perf")
            .args(["stat", "-x", ",", "-e", &EVENTS.join(","), flag, &id, "-o"])
            .arg(out.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match child {
            Ok(child) => {
                // perf attaches within milliseconds; the counts start then.
                std::thread::sleep(std::time::Duration::from_millis(300));
                Counters {
                    perf: Some((child, out)),
                }
            }
            Err(e) => {
                println!("  (no counters: cannot run perf: {e})");
                Counters { perf: None }
            }
        }
    }

    /// Stops perf and prints each counter divided by `calls`.
    pub fn finish(self, calls: usize) {
        let Some((mut child, out)) = self.perf else {
            return;
        };
        // SAFETY: plain syscall on a child this process started.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let _ = child.wait();
        let text = std::fs::read_to_string(out.path()).unwrap_or_default();
        let per_call: Vec<String> = text
            .lines()
            .filter_map(|l| {
                let fields: Vec<&str> = l.split(',').collect();
                let value: f64 = fields.first()?.parse().ok()?;
                let name = fields.get(2)?;
                let name = name.trim_start_matches("syscalls:sys_enter_");
                let name = if name == "raw_syscalls:sys_enter" {
                    "syscalls"
                } else {
                    name
                };
                let unit = if *fields.get(1)? == "msec" {
                    // task-clock, in µs per call
                    return Some(format!("{name} {:.2} µs", value * 1e3 / calls as f64));
                } else {
                    ""
                };
                Some(format!("{name} {:.3}{unit}", value / calls as f64))
            })
            .collect();
        println!("  perf stat per call: {}", per_call.join(", "));
    }
}
