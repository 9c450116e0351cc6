//! CPU time of this process split into user and system time and by thread,
//! from `/proc/self/task/*/stat`: where the running agent's CPU goes
//! besides the tick (the Redis connection's task, tokio, the kernel).

use std::collections::BTreeMap;
use std::time::Duration;

/// One thread's CPU time so far.
#[derive(Clone, Default)]
struct ThreadCpu {
    name: String,
    user: Duration,
    system: Duration,
}

/// Every thread's CPU time at one moment, by thread id.
pub struct Snapshot(BTreeMap<u32, ThreadCpu>);

/// The kernel's clock ticks per second, the unit of `utime` and `stime`.
fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// `utime` and `stime` of one `stat` line. The thread's name (field 2) may
/// hold spaces and parentheses: the fields are counted after its last `)`.
fn parse_stat(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut fields = rest.split_whitespace().skip(11);
    let user = fields.next()?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some((user, system))
}

impl Snapshot {
    /// Reads every thread of this process; a thread that ended while being
    /// read is left out.
    pub fn take() -> Snapshot {
        let tick = clock_ticks();
        let secs = |t: u64| Duration::from_secs_f64(t as f64 / tick);
        let mut threads = BTreeMap::new();
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return Snapshot(threads);
        };
        for entry in dir.flatten() {
            let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let path = entry.path();
            let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
            let Some((user, system)) = parse_stat(&stat) else {
                continue;
            };
            let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            threads.insert(
                tid,
                ThreadCpu {
                    name: name.trim().to_string(),
                    user: secs(user),
                    system: secs(system),
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
            1000.0 / clock_ticks()
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
