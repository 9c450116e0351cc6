//! Which tier answers which part of a window: the per-second aggregates
//! (kept for `HAWKEYE_RETENTION`) or the per-minute rollups (kept for
//! `HAWKEYE_ROLLUP_RETENTION`). Both stores split a window here, so they
//! cannot disagree on what a long window reads (docs/storage.md, "Tiers").
//!
//! A window the per-second tier still holds whole is read from it alone,
//! exact to the second, as before rollups existed. A longer one reads its
//! whole minutes from the rollups, and its partial minutes from the
//! per-second tier where it still holds them. A partial minute it no longer
//! holds is counted whole in the window that holds the minute's first
//! second: the window's start moves forward to the next minute, its end to
//! the end of its minute. Adjacent windows (the steps of a range read)
//! therefore share no minute and miss none.

use std::time::Duration;

/// `HAWKEYE_ROLLUP_RETENTION` when unset: 35 days, enough for a 30-day SLO
/// period read a few days late.
pub const DEFAULT_ROLLUP_RETENTION: Duration = Duration::from_secs(35 * 86_400);

/// The wall clock in unix seconds: when the per-second tier's retention
/// starts, as a reader or a writer sees it.
pub(crate) fn wall_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The seconds of one window each tier answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Seconds read from the per-second tier: `(first, last)`, inclusive.
    pub seconds: Option<(i64, i64)>,
    /// Minutes (unix seconds / 60) read from the rollups, inclusive.
    pub minutes: Option<(i64, i64)>,
}

/// The oldest second the per-second tier still holds at `now` (unix
/// seconds): a key expires `retention` after its last write, which is no
/// earlier than its newest second.
pub fn seconds_held_from(now: i64, retention_secs: u64) -> i64 {
    now - retention_secs.min(i64::MAX as u64 / 2) as i64 + 1
}

/// Splits the window `[start, end]` between the tiers, given the oldest
/// second the per-second tier holds.
pub fn split(start: i64, end: i64, held_from: i64) -> Split {
    if start >= held_from || start > end {
        return Split {
            seconds: Some((start, end)),
            minutes: None,
        };
    }
    // Minutes whose first second is in the window.
    let first = start.div_euclid(60) + i64::from(start.rem_euclid(60) != 0);
    let mut last = end.div_euclid(60);
    let mut seconds = None;
    let last_start = last * 60;
    if end - last_start < 59 && last_start >= held_from {
        // The end edge is a partial minute the per-second tier holds.
        seconds = Some((last_start, end));
        last -= 1;
    }
    Split {
        seconds,
        minutes: (first <= last).then_some((first, last)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;

    #[test]
    fn a_window_the_seconds_hold_is_read_from_them() {
        let now = 100 * HOUR + 30;
        let held = seconds_held_from(now, 3600);
        assert_eq!(held, now - 3599);
        // A one-hour window: exactly what is held.
        let s = split(now - 3599, now, held);
        assert_eq!(s.seconds, Some((now - 3599, now)));
        assert_eq!(s.minutes, None);
    }

    #[test]
    fn a_long_window_reads_whole_minutes_and_the_held_edge() {
        let now = 100 * HOUR + 30; // hh:00:30
        let held = seconds_held_from(now, 3600);
        let start = now - 2 * 86_400 + 1; // hh:00:31 two days ago
        let s = split(start, now, held);
        // The start moves forward to hh:01:00; the end edge hh:00:00..30
        // comes from the seconds.
        assert_eq!(s.minutes, Some((start.div_euclid(60) + 1, now / 60 - 1)));
        assert_eq!(s.seconds, Some((now - 30, now)));
    }

    #[test]
    fn old_windows_count_each_minute_once() {
        let held = 1_000_000;
        // Steps of 30 s, all older than what the seconds hold: each
        // minute is counted by the step holding its first second.
        let a = split(600, 629, held);
        let b = split(630, 659, held);
        assert_eq!(a.minutes, Some((10, 10)));
        assert_eq!(a.seconds, None);
        assert_eq!(b.minutes, None);
        assert_eq!(b.seconds, None);
        // A window inside one minute without its first second: nothing.
        assert_eq!(split(601, 650, held).minutes, None);
        // Whole minutes on both sides.
        assert_eq!(split(600, 779, held).minutes, Some((10, 12)));
    }

    #[test]
    fn a_partly_held_end_minute_is_read_from_the_rollups() {
        // The end minute starts before the held seconds: counted whole.
        let s = split(0, 659, 630);
        assert_eq!(s.minutes, Some((0, 10)));
        let s = split(0, 650, 630);
        assert_eq!(s.minutes, Some((0, 10)));
        assert_eq!(s.seconds, None);
        let s = split(0, 650, 600);
        assert_eq!(s.minutes, Some((0, 9)));
        assert_eq!(s.seconds, Some((600, 650)));
    }
}
