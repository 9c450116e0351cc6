//! CPU time of this process split into user and system time and by thread,
//! from `/proc/self/task/*/stat`: where the running agent's CPU goes
//! besides the tick (the Redis connection's task, tokio, the kernel).

use std::collections::BTreeMap;
use std::time::Duration;

use hawkeye_testkit::proc_cpu;

/// One thread's CPU time so far.
#[derive(Clone, Default)]
struct ThreadCpu {
    name: String,
    user: Duration,
    system: Duration,
}

/// Every thread's CPU time at one moment, by thread id.
pub struct Snapshot(BTreeMap<u32, ThreadCpu>);

impl Snapshot {
    /// Reads every thread of this process; a thread that ended while being
    /// read is left out.
    pub fn take() -> Snapshot {
        let mut threads = BTreeMap::new();
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return Snapshot(threads);
        };
        for entry in dir.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let path = entry.path();
            let Some((user, system)) = proc_cpu::read_stat_times(&path.join("stat")) else {
                continue;
            };
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            threads.insert(
                tid,
                ThreadCpu {
                    name: name.trim().to_string(),
                    user,
                    system,
                },
            );
        }
        Snapshot(threads)
    }

    /// Prints the CPU used since `earlier`, per `ticks`: the process's user
    /// and system time, then each thread that used any (the threads of one
    /// name together, with how many there were).
    pub fn print_since(&self, earlier: &Snapshot, ticks: u64) {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0 / ticks.max(1) as f64;
        let mut by_name: BTreeMap<&str, (usize, Duration, Duration)> = BTreeMap::new();
        for (tid, now) in &self.0 {
            let before = earlier.0.get(tid).cloned().unwrap_or_default();
            let (user, system) = (now.user - before.user, now.system - before.system);
            let e = by_name.entry(now.name.as_str()).or_default();
            *e = (e.0 + 1, e.1 + user, e.2 + system);
        }
        let user: Duration = by_name.values().map(|e| e.1).sum();
        let system: Duration = by_name.values().map(|e| e.2).sum();
        println!(
            "running agent, CPU per tick by kind: user {:.1} ms, system {:.1} ms (clock ticks of {:.0} ms)",
            ms(user),
            ms(system),
            1000.0 / proc_cpu::clock_ticks_per_second()
        );
        let mut rows: Vec<_> = by_name
            .into_iter()
            .filter(|(_, e)| e.1 + e.2 > Duration::ZERO)
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1 .1 + r.1 .2));
        for (name, (threads, user, system)) in rows {
            println!(
                "running agent, CPU per tick, thread {name:?} (x{threads}): user {:.1} ms, system {:.1} ms",
                ms(user),
                ms(system)
            );
        }
    }
}
