//! Step 3 of a tick: each due monitor's check, from what was read to what
//! [`decide`] makes of it, and the runs of unevaluated checks it ends or
//! extends.
//!
//! One pass over the monitors due, without a vector of inputs or readings
//! per tick: at 100 000 monitors, buffers of that size built and freed at
//! every tick cost more than deciding steady monitors.

use hawkeye_store::{AlertSnapshot, QueryOutcome};

use super::decide::{self, Context, Decision, MonitorInput, Reading};
use super::{plan, slo_reads, Engine, TickReport};
use crate::silence;
use crate::state::UnixMillis;

impl Engine {
    pub(super) fn decide(
        &mut self,
        plan: &plan::Plan,
        (outcomes, slo_reads): (&[QueryOutcome], &slo_reads::SloReads),
        snapshot: &AlertSnapshot,
        now: UnixMillis,
        report: &mut TickReport,
    ) -> Decision {
        let (silences, bad) = silence::parse_all(&snapshot.silences);
        for s in bad {
            if self.logged.insert(s.clone()) {
                tracing::warn!(silence = %s, "unreadable silence ignored");
            }
        }
        let ctx = Context {
            now,
            silences: &silences,
            state_ttl_ms: self.settings.state_ttl.as_millis() as u64,
        };
        let mut decision = Decision::default();
        decision.evaluated.reserve(snapshot.states.len());
        // One monitor's `continues_from`, per trigger (reused).
        let mut continues: Vec<UnixMillis> = Vec::new();
        let mut offset = 0;
        for (n, &i) in plan.due.iter().enumerate() {
            let slot = plan.slots[n];
            let reading = self.reading(i, slot, plan.query_index[n], outcomes);
            report.outage_skipped += usize::from(reading.is_none());
            let reading = reading.flatten().unwrap_or(Reading::NotEvaluated);
            let (reading, slo) = match self.monitors[i].monitor.slo {
                Some(_) => self.with_slo(i, reading, slo_reads, outcomes),
                None => (reading, None),
            };
            let s = &self.monitors[i];
            let count = s.keys.len();
            continues.clear();
            continues.extend(s.runs.iter().map(|r| r.continues_from(slot)));
            let input = MonitorInput {
                monitor: &s.monitor,
                keys: &s.keys,
                slot,
                interval_ms: s.interval_ms,
                reading,
                states: &snapshot.states[offset..offset + count],
                continues_from: &continues,
                slo: slo.as_ref(),
            };
            let first = decision.evaluated.len();
            decide::decide_monitor(n, &input, &ctx, &mut decision);
            let s = &mut self.monitors[i];
            for (run, &done) in s.runs.iter_mut().zip(&decision.evaluated[first..]) {
                if done {
                    run.evaluated(slot, s.interval_ms);
                } else {
                    run.not_evaluated(slot, s.interval_ms);
                }
            }
            offset += count;
        }
        for (r, retired) in self.retired.iter().enumerate() {
            let stored = &snapshot.states[offset + r];
            let retire = decide::retire(
                r,
                &retired.monitor,
                retired.trigger,
                &retired.key,
                stored,
                &ctx,
                &mut decision,
            );
            decision.transitions.extend(retire);
        }
        self.after_decide(&decision, report);
        decision
    }

    fn after_decide(&mut self, decision: &Decision, report: &mut TickReport) {
        for (key, e) in &decision.unreadable {
            if self.logged.insert(key.clone()) {
                tracing::warn!(key = %key, error = %e, "unreadable alert state; starting from OK");
            }
        }
        report.muted += decision.muted;
        self.stats.muted += decision.muted as u64;
    }

    /// The check of monitor `i` as read: `None` when its window overlaps a
    /// store outage; `Some(None)` when it cannot be evaluated (query error).
    /// An SLO monitor (`query`: `None`) reads no window of its own: its
    /// value comes from its SLO reads (`slo.rs`).
    fn reading(
        &mut self,
        i: usize,
        slot: UnixMillis,
        query: Option<(usize, Option<usize>)>,
        outcomes: &[QueryOutcome],
    ) -> Option<Option<Reading>> {
        let s = &mut self.monitors[i];
        // Without a past outage (nearly always) the window's start, a
        // division of a `Duration`'s u128, is not needed.
        let window_ms = || s.monitor.window_secs().saturating_mul(1000);
        if self.outages.any()
            && self
                .outages
                .overlaps(slot.saturating_sub(window_ms()), slot)
        {
            // Data of the outage may still be on its way from the server
            // (or lost): as if the store could not be read.
            return None;
        }
        let Some((main, other)) = query else {
            return Some(Some(Reading::Value {
                metric: None,
                denominator: None,
            }));
        };
        let value = match (&outcomes[main], other.map(|o| &outcomes[o])) {
            (Ok(v), None) => Ok((*v, None)),
            (Ok(v), Some(Ok(o))) => Ok((*v, Some(*o))),
            (Err(e), _) | (_, Some(Err(e))) => Err(e.to_string()),
        };
        match value {
            Ok((metric, denominator)) => {
                if s.query_error.take().is_some() {
                    tracing::info!(metric = %s.monitor.metric, "monitor can be evaluated again");
                }
                Some(Some(Reading::Value {
                    metric,
                    denominator,
                }))
            }
            Err(e) => {
                if s.query_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(metric = %s.monitor.metric, error = %e, "monitor cannot be evaluated");
                    s.query_error = Some(e);
                }
                Some(None)
            }
        }
    }
}
