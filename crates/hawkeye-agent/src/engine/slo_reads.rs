//! What the SLO reads of a tick are and what they found: the types the
//! tick (`mod.rs`), `decide` and `slo.rs` share, in a file of their own so
//! that none of those imports another both ways.

use std::collections::{BTreeMap, HashMap};

use crate::error_budget::{BurnCheck, Counts};
use crate::monitors::{Missing, Trigger};
use crate::state::{Observation, UnixMillis};

/// An SLO's period counts as last read, and the slot that read them.
pub(crate) struct CachedPeriod {
    pub(super) slot: UnixMillis,
    pub(super) counts: Counts,
}

/// Where the period counts of a check come from.
pub(super) enum PeriodRead {
    /// The counts of the last full read, and the index of the `metric`
    /// query of the seconds since (`ratio_of`'s is next; none when no
    /// second passed).
    Cached(Counts, Option<usize>),
    /// The index of the `metric` query in the plan; `ratio_of`'s is next.
    Query(usize),
}

/// A due SLO monitor's reads in the plan's queries.
pub(super) struct SloEntry {
    pub(super) slot: UnixMillis,
    /// Each distinct window (seconds) and its `metric` query's index;
    /// `ratio_of`'s is next.
    pub(super) windows: BTreeMap<u64, usize>,
    pub(super) period: PeriodRead,
}

/// The SLO reads of a tick, by monitor index.
#[derive(Default)]
pub(crate) struct SloReads {
    pub(super) entries: HashMap<usize, SloEntry>,
}

/// What a check of an SLO monitor found: each trigger's [`BurnCheck`].
#[derive(Debug, Clone, PartialEq)]
pub struct SloReading {
    pub(super) checks: Vec<Option<BurnCheck>>,
}

impl SloReading {
    /// Trigger `j`'s check (`None`: it is not a burn-rate trigger).
    pub fn check(&self, j: usize) -> Option<BurnCheck> {
        self.checks.get(j).copied().flatten()
    }

    /// What trigger `j` makes of its windows, and the value to report (the
    /// long window's burn rate). `firing`: its recovery threshold applies.
    pub fn observe(&self, j: usize, trigger: &Trigger, firing: bool) -> (Observation, Option<f64>) {
        let Some(check) = self.check(j) else {
            return (Observation::Skip, None);
        };
        let rate = match trigger.recovery_threshold {
            Some(recovery) if firing => recovery,
            _ => trigger.threshold,
        };
        // A window without events burns nothing, unless `missing` says
        // what the trigger's author wants of a silent service.
        let silent = check.long.all <= 0.0 || check.short.all <= 0.0;
        let obs = match (silent, trigger.missing) {
            (true, Some(Missing::Breach)) => Observation::Breach,
            (true, Some(Missing::Keep)) => Observation::Skip,
            _ if check.breaches(rate) => Observation::Breach,
            _ => Observation::Clear,
        };
        (obs, Some(check.long_burn()))
    }
}
