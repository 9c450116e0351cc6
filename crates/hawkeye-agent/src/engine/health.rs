//! What the engine remembers between ticks about checks it could not
//! evaluate: store outages (windows overlapping one are not evaluated, as
//! their data may still be on its way from the server, or lost), and per
//! trigger the run of unevaluated checks that ends at the next check (such
//! checks neither count towards `for` nor break a run of breaches).

use hawkeye_store::StoreError;

use crate::state::UnixMillis;

/// How long after the store answers again the server may still be writing
/// the aggregates it held during the outage (its flush backoff is at most
/// 5 s). Windows that overlap the outage up to then are not evaluated.
pub const RECOVERY_GRACE_MS: u64 = 5_000;

/// Slots `[start, end)` of checks not evaluated, ending at `end`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Run {
    start: UnixMillis,
    end: UnixMillis,
}

impl Run {
    /// The check at `slot` was evaluated: a run of unevaluated checks ends.
    pub(crate) fn evaluated(&mut self, slot: UnixMillis, interval_ms: u64) {
        let next = slot.saturating_add(interval_ms);
        *self = Run {
            start: next,
            end: next,
        };
    }

    /// The check at `slot` was not evaluated: it extends the run that ends
    /// just before it, or starts a new one.
    pub(crate) fn not_evaluated(&mut self, slot: UnixMillis, interval_ms: u64) {
        let next = slot.saturating_add(interval_ms);
        if self.end == slot {
            self.end = next;
        } else {
            *self = Run {
                start: slot,
                end: next,
            };
        }
    }

    /// The first slot of the unevaluated run that ends just before `slot`.
    pub(crate) fn continues_from(&self, slot: UnixMillis) -> UnixMillis {
        if self.end == slot {
            self.start
        } else {
            slot
        }
    }
}

/// Store outages as the engine saw them.
#[derive(Debug, Default)]
pub(crate) struct Outages {
    down: bool,
    /// When the current outage began (first failed read, less the
    /// evaluation delay).
    start: Option<UnixMillis>,
    /// Past outages `[start, end)`, `end` being recovery + grace.
    past: Vec<(UnixMillis, UnixMillis)>,
}

impl Outages {
    /// The store failed at `now`; logged once per outage.
    pub(crate) fn failed(&mut self, e: &StoreError, now: UnixMillis, delay_ms: u64) {
        if self.start.is_none() {
            self.start = Some(now.saturating_sub(delay_ms));
        }
        if !self.down {
            self.down = true;
            tracing::error!(error = %e, "store unavailable: alert evaluation suspended until it answers (no alerts are raised from data that could not be read)");
        }
    }

    /// The store answered at `now`; outages older than `keep_ms` are
    /// forgotten (no window reaches back to them).
    pub(crate) fn answered(&mut self, now: UnixMillis, keep_ms: u64) {
        if let Some(start) = self.start.take() {
            self.past
                .push((start, now.saturating_add(RECOVERY_GRACE_MS)));
        }
        if self.down {
            self.down = false;
            tracing::info!("store available again: alert evaluation resumed");
        }
        self.past.retain(|o| o.1.saturating_add(keep_ms) >= now);
    }

    /// Whether an outage is remembered (a window might overlap one).
    pub(crate) fn any(&self) -> bool {
        !self.past.is_empty()
    }

    /// Whether the window `[start, end)` overlaps an outage.
    pub(crate) fn overlaps(&self, start: UnixMillis, end: UnixMillis) -> bool {
        self.past.iter().any(|&(os, oe)| start < oe && end > os)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_unevaluated_checks() {
        let mut run = Run::default();
        run.evaluated(10, 10);
        assert_eq!(run.continues_from(20), 20);
        run.not_evaluated(20, 10);
        run.not_evaluated(30, 10);
        assert_eq!(run.continues_from(40), 20, "20 and 30 not evaluated");
        assert_eq!(run.continues_from(50), 50, "40 is a hole");
        run.not_evaluated(60, 10);
        assert_eq!(run.continues_from(70), 60);
    }

    #[test]
    fn outages_cover_recovery_plus_grace() {
        let mut o = Outages::default();
        let e = StoreError::Unavailable("down".into());
        o.failed(&e, 10_000, 500);
        o.failed(&e, 20_000, 500);
        assert!(!o.any(), "not over yet: no past outage");
        o.answered(30_000, 60_000);
        assert!(o.any());
        assert!(o.overlaps(0, 9_600));
        assert!(!o.overlaps(0, 9_500));
        assert!(o.overlaps(34_000, 40_000), "within the grace");
        assert!(!o.overlaps(35_000, 40_000));
        o.answered(200_000, 60_000);
        assert!(!o.overlaps(0, 40_000), "forgotten");
        assert!(!o.any());
    }
}
