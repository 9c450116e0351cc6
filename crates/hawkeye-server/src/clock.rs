//! The server's one notion of "now": wall-clock seconds for the second an
//! event belongs to.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds; 0 if the clock is before 1970.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix microseconds; 0 if the clock is before 1970.
pub(crate) fn wall_clock_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
