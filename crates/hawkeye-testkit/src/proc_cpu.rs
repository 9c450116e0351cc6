//! The CPU time the kernel counts for a process or one of its threads,
//! from `/proc/<pid>/stat` or `/proc/<pid>/task/<tid>/stat`: what the
//! benchmarks report as a process's or a thread's CPU.

use std::path::Path;
use std::time::Duration;

/// The kernel's clock ticks per second, the unit of `utime` and `stime`.
pub fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// User and system time of a `stat` file's text; `None` if it is not one.
/// The name (field 2) may hold spaces and parentheses: the fields are
/// counted after its last `)`.
pub fn stat_times(stat: &str) -> Option<(Duration, Duration)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, utime field 14, stime field 15.
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    let tick = clock_ticks_per_second();
    let secs = |t: u64| Duration::from_secs_f64(t as f64 / tick);
    Some((secs(user), secs(system)))
}

/// [`stat_times`] of the `stat` file at `path`; `None` if it cannot be
/// read (a thread that ended) or parsed.
pub fn read_stat_times(path: &Path) -> Option<(Duration, Duration)> {
    stat_times(&std::fs::read_to_string(path).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_spaces_and_parentheses_is_skipped() {
        let tick = clock_ticks_per_second();
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        let (user, system) = stat_times(stat).unwrap();
        assert_eq!(user, Duration::from_secs_f64(250.0 / tick));
        assert_eq!(system, Duration::from_secs_f64(50.0 / tick));
        assert_eq!(stat_times("no name here"), None);
    }

    #[test]
    fn this_process_has_a_stat() {
        assert!(read_stat_times(Path::new("/proc/self/stat")).is_some());
    }
}
