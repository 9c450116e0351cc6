//! The server's one notion of "now": wall-clock seconds for the second an
//! event belongs to, and the coarse monotonic milliseconds the registry
//! stamps connections with.
//!
//! Read once per call (per lock hold), so it is on the hot path. On Linux
//! the coarse realtime clock is read: it is a plain memory read in the vDSO
//! (no hardware counter), and its resolution of a few milliseconds is far
//! finer than the one-second buckets it picks.

/// Unix seconds; 0 if the clock is before 1970.
#[cfg(target_os = "linux")]
pub(crate) fn now_secs() -> i64 {
    match coarse(libc::CLOCK_REALTIME_COARSE) {
        // `time_t` is 32 bits on some Linux targets.
        #[allow(clippy::unnecessary_cast)]
        Some(ts) => (ts.tv_sec as i64).max(0),
        None => precise_now_secs(),
    }
}

/// Reads a coarse clock: a plain memory read in the vDSO (no hardware
/// counter). `None` if the kernel refused it.
#[cfg(target_os = "linux")]
fn coarse(clock: libc::clockid_t) -> Option<libc::timespec> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the coarse clocks exist
    // on every Linux since 2.6.32 and the call cannot fail with them.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then_some(ts)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn now_secs() -> i64 {
    precise_now_secs()
}

fn precise_now_secs() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Milliseconds on a monotonic clock that may lag the true time by up to
/// [`monotonic_lag_ms`]: on Linux the coarse monotonic clock, a memory read
/// in the vDSO where a precise `Instant` reads the hardware counter. For
/// the registry, which stamps every call's end (registry.rs).
#[cfg(target_os = "linux")]
pub(crate) fn monotonic_ms() -> u64 {
    match coarse(libc::CLOCK_MONOTONIC_COARSE) {
        #[allow(clippy::unnecessary_cast)]
        Some(ts) => ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000,
        None => precise_monotonic_ms(),
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn monotonic_ms() -> u64 {
    precise_monotonic_ms()
}

/// How far [`monotonic_ms`] may be behind the true time, in milliseconds,
/// with the millisecond it truncates: the coarse clock's resolution (one
/// kernel tick, 1 to 10 ms) rounded up, plus one.
#[cfg(target_os = "linux")]
pub(crate) fn monotonic_lag_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    if rc != 0 {
        // The precise clock was read instead: it only truncates.
        return 1;
    }
    #[allow(clippy::unnecessary_cast)]
    let res_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    res_ns.div_ceil(1_000_000) + 1
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn monotonic_lag_ms() -> u64 {
    1
}

/// Milliseconds since this process first asked.
fn precise_monotonic_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// Unix microseconds; 0 if the clock is before 1970.
pub(crate) fn wall_clock_us() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_agrees_with_the_precise_one() {
        // The coarse clock lags by at most a tick (a few ms): the two
        // readings are the same second or neighbours.
        let coarse = now_secs();
        let precise = precise_now_secs();
        assert!(
            (precise - coarse).abs() <= 1,
            "coarse {coarse}, precise {precise}"
        );
        assert!(coarse > 1_600_000_000);
    }

    #[test]
    fn the_coarse_monotonic_clock_lags_by_at_most_its_lag() {
        let start = std::time::Instant::now();
        let coarse_start = monotonic_ms();
        let lag = monotonic_lag_ms();
        assert!((1..=20).contains(&lag), "lag {lag} ms");
        std::thread::sleep(std::time::Duration::from_millis(30));
        let coarse = monotonic_ms() - coarse_start;
        let precise = start.elapsed().as_millis() as u64;
        // Each reading is behind by at most `lag`, never ahead.
        assert!(
            coarse <= precise + lag && coarse + lag >= 30,
            "coarse {coarse} ms, precise {precise} ms, lag {lag} ms"
        );
    }
}
