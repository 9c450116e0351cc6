//! The server's one notion of "now": wall-clock seconds for the second an
//! event belongs to.
//!
//! Read once per call (per lock hold), so it is on the hot path. On Linux
//! the coarse realtime clock is read: it is a plain memory read in the vDSO
//! (no hardware counter), and its resolution of a few milliseconds is far
//! finer than the one-second buckets it picks.

/// Unix seconds; 0 if the clock is before 1970.
#[cfg(target_os = "linux")]
pub(crate) fn now_secs() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME_COARSE
    // exists on every Linux since 2.6.32 and the call cannot fail with it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    if rc != 0 {
        return precise_now_secs();
    }
    // `time_t` is 32 bits on some Linux targets.
    #[allow(clippy::unnecessary_cast)]
    let secs = ts.tv_sec as i64;
    secs.max(0)
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
}
