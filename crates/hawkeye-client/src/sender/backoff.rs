//! When to try connecting again: exponential backoff between `min_backoff`
//! and `max_backoff`. Pure: every step takes the current time.

use std::time::Duration;

use tokio::time::Instant;

/// How long "never" is when a delay does not fit in an [`Instant`].
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

#[derive(Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    /// The wait after the next failure.
    delay: Duration,
    next_attempt: Instant,
}

impl Backoff {
    /// A backoff that allows an attempt at once.
    pub(crate) fn new(min: Duration, max: Duration, now: Instant) -> Backoff {
        Backoff {
            min,
            max,
            delay: min,
            next_attempt: now,
        }
    }

    /// Whether an attempt may be made at `now`.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        now >= self.next_attempt
    }

    /// An attempt failed at `now`: the next waits the current delay, and the
    /// delay doubles up to the maximum. Saturates: a huge delay means
    /// "about a year", never an overflow.
    pub(crate) fn failed(&mut self, now: Instant) {
        self.next_attempt = later(now, self.delay);
        self.delay = self.delay.saturating_mul(2).min(self.max);
    }

    /// An attempt worked: the next failure waits the minimum again.
    pub(crate) fn succeeded(&mut self) {
        self.delay = self.min;
    }
}

/// `now + d`, or far in the future when that does not fit.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).unwrap_or_else(|| now + FAR)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_delay_doubles_up_to_the_maximum_and_starts_over() {
        let start = Instant::now();
        let mut b = Backoff::new(10 * MS, 35 * MS, start);
        assert!(b.ready(start), "the first attempt is immediate");
        let mut now = start;
        let mut waits = Vec::new();
        for _ in 0..5 {
            b.failed(now);
            let mut waited = Duration::ZERO;
            while !b.ready(now + waited) {
                waited += MS;
            }
            waits.push(waited);
            now += waited;
        }
        assert_eq!(waits, [10 * MS, 20 * MS, 35 * MS, 35 * MS, 35 * MS]);
        b.succeeded();
        b.failed(now);
        assert!(!b.ready(now + 9 * MS));
        assert!(b.ready(now + 10 * MS));
    }

    #[test]
    fn a_huge_delay_saturates_instead_of_overflowing() {
        let now = Instant::now();
        let mut b = Backoff::new(Duration::MAX, Duration::MAX, now);
        for _ in 0..3 {
            b.failed(now);
        }
        assert!(!b.ready(now + FAR / 2));
        assert!(b.ready(now + FAR));
    }
}
