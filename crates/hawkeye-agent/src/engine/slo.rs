//! SLO monitors in a tick (docs/alerts.md, "SLO burn-rate alerts"): the
//! two windows of each burn-rate trigger are read with every other window,
//! in the same `query_many` call (one query per distinct window and
//! metric: the workbook's defaults read five windows, not six); the
//! period, the longest read, at most once per [`PERIOD_REFRESH_MS`] per
//! SLO: in between, its counts are those of the last full read plus a read
//! of the seconds since (at most a minute), so the budget includes every
//! event up to the check and over-counts at most the minute that left the
//! period's far end since the full read. Each trigger's check is then an
//! [`crate::error_budget::BurnCheck`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hawkeye_protocol::MetricKind;
use hawkeye_store::{Aggregation, QueryOutcome, WindowQuery};

use super::decide::Reading;
use super::plan::Plan;
pub use super::slo_reads::SloReading;
use super::slo_reads::{CachedPeriod, PeriodRead, SloEntry, SloReads};
use super::Engine;
use crate::error_budget::{BurnCheck, Counts};
use crate::monitors::Monitor;

/// How long an SLO's period counts are used before they are read again.
pub const PERIOD_REFRESH_MS: u64 = 60_000;

/// The cache key of an SLO's period: what it reads.
fn period_key(m: &Monitor) -> String {
    let period = m.slo.map_or(0, |s| s.period.as_secs());
    format!(
        "{}|{}|{:?}|{period}",
        m.metric,
        m.ratio_of.as_deref().unwrap_or_default(),
        m.tags.0
    )
}

/// The two queries of an SLO monitor `m` (`metric`: bad events,
/// `ratio_of`: all) over `window_secs` ending with the second `end`.
pub fn window_pair(m: &Monitor, window_secs: u64, end: i64) -> [WindowQuery; 2] {
    let query = |name: &str| WindowQuery {
        name: name.to_string(),
        kind: Some(MetricKind::Counter),
        tags: m.tags.clone(),
        aggregation: Some(Aggregation::Sum),
        window_secs,
        end,
        stale_after: None,
    };
    [
        query(&m.metric),
        query(m.ratio_of.as_deref().unwrap_or(&m.metric)),
    ]
}

/// [`window_pair`] pushed onto `queries`; the first one's index.
fn push_pair(queries: &mut Vec<WindowQuery>, m: &Monitor, window_secs: u64, end: i64) -> usize {
    queries.extend(window_pair(m, window_secs, end));
    queries.len() - 2
}

/// The counts of the pair of queries starting at `at`, or the first error.
fn counts(outcomes: &[QueryOutcome], at: usize) -> Result<Counts, String> {
    match (&outcomes[at], &outcomes[at + 1]) {
        (Ok(bad), Ok(all)) => Ok(Counts::read(*bad, *all)),
        (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
    }
}

impl Engine {
    /// Adds the reads of the due SLO monitors to the plan's queries.
    pub(super) fn plan_slo(&self, plan: &mut Plan) -> SloReads {
        let mut reads = SloReads::default();
        for (&i, &slot) in plan.due.iter().zip(&plan.slots) {
            let m = &self.monitors[i].monitor;
            let Some(slo) = m.slo else { continue };
            // The last whole second before the slot, as every window.
            let end = (slot / 1000) as i64 - 1;
            let mut windows = BTreeMap::new();
            for burn in m.triggers.iter().filter_map(|t| t.burn) {
                for w in [burn.long, burn.short] {
                    let secs = w.as_secs().max(1);
                    windows
                        .entry(secs)
                        .or_insert_with(|| push_pair(&mut plan.queries, m, secs, end));
                }
            }
            let period = match self.slo_periods.get(&period_key(m)) {
                Some(c) if slot >= c.slot && slot - c.slot < PERIOD_REFRESH_MS => {
                    let since = (slot - c.slot) / 1000;
                    let recent = (since > 0).then(|| push_pair(&mut plan.queries, m, since, end));
                    PeriodRead::Cached(c.counts, recent)
                }
                _ => PeriodRead::Query(push_pair(&mut plan.queries, m, slo.period.as_secs(), end)),
            };
            let entry = SloEntry {
                slot,
                windows,
                period,
            };
            reads.entries.insert(i, entry);
        }
        reads
    }

    /// The reading of due monitor `i` if it is an SLO monitor: its checks,
    /// or the error of one of its reads. Keeps the period counts read.
    pub(super) fn slo_reading(
        &mut self,
        i: usize,
        reads: &SloReads,
        outcomes: &[QueryOutcome],
    ) -> Option<Result<SloReading, String>> {
        let entry = reads.entries.get(&i)?;
        let m = &self.monitors[i].monitor;
        let slo = m.slo?;
        let read = || -> Result<SloReading, String> {
            let mut by_window = HashMap::new();
            for (&secs, &at) in &entry.windows {
                by_window.insert(secs, counts(outcomes, at)?);
            }
            let period = match entry.period {
                PeriodRead::Cached(base, None) => base,
                PeriodRead::Cached(base, Some(at)) => {
                    let recent = counts(outcomes, at)?;
                    Counts {
                        bad: base.bad + recent.bad,
                        all: base.all + recent.all,
                    }
                }
                PeriodRead::Query(at) => counts(outcomes, at)?,
            };
            let window = |d: Duration| {
                by_window
                    .get(&d.as_secs().max(1))
                    .copied()
                    .unwrap_or_default()
            };
            let checks = m
                .triggers
                .iter()
                .map(|t| BurnCheck::of(&slo, t, window, period))
                .collect();
            Ok(SloReading { checks })
        };
        let reading = read();
        if let (Ok(r), PeriodRead::Query(_)) = (&reading, &entry.period) {
            let counts = r.checks.iter().flatten().next().map(|c| c.period);
            if let Some(counts) = counts {
                let cached = CachedPeriod {
                    slot: entry.slot,
                    counts,
                };
                self.slo_periods.insert(period_key(m), cached);
            }
        }
        Some(reading)
    }

    /// Due monitor `i`'s reading and, for an SLO monitor, its checks; not
    /// evaluated when one of its reads failed (logged once, as a query error).
    pub(super) fn with_slo(
        &mut self,
        i: usize,
        reading: Reading,
        reads: &SloReads,
        outcomes: &[QueryOutcome],
    ) -> (Reading, Option<SloReading>) {
        match self.slo_reading(i, reads, outcomes) {
            None => (reading, None),
            Some(_) if reading == Reading::NotEvaluated => (reading, None),
            Some(Ok(r)) => (reading, Some(r)),
            Some(Err(e)) => {
                let s = &mut self.monitors[i];
                if s.query_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(metric = %s.monitor.metric, error = %e, "SLO monitor cannot be evaluated");
                    s.query_error = Some(e);
                }
                (Reading::NotEvaluated, None)
            }
        }
    }
}
