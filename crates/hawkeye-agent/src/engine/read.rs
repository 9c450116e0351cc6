//! Step 2 of a tick: the reads. The windows first (one call for the
//! monitors without `group_by`, one for those with it), then, once the
//! groups are known, the states of every trigger checked, the store's
//! marker and the silences in one call.
//!
//! Nothing is copied per monitor and tick: the monitors' window reads sit
//! in one vector lent whole, and their state keys are lent whole as the
//! copies of `due_keys.rs` (or moved out of the monitors and back, when the
//! monitors due change). At 100 000 monitors, copies or moves of each
//! monitor's things at every tick were a large part of a tick.

use hawkeye_store::{AlertRead, AlertSnapshot, GroupedOutcome, QueryOutcome, StoreError};

use super::{plan, Engine, TickReport};
use crate::state::UnixMillis;

/// What step 2 read: each query's outcome (the groups' appended), the
/// state keys read (lent: see [`Engine::give_back_keys`]) and their states.
pub(super) type Read = (Vec<QueryOutcome>, Vec<String>, AlertSnapshot);

impl Engine {
    /// The windows of `plan` (its groups then join it), then the states of
    /// every trigger it checks. The plan's queries are given back to their
    /// monitors, and on failure the keys too.
    pub(super) async fn read(
        &mut self,
        plan: &mut plan::Plan,
        now: UnixMillis,
        report: &mut TickReport,
    ) -> Result<Read, StoreError> {
        let windows = self.read_windows(plan, report).await;
        plan.give_back(&mut self.monitors, &mut self.own_queries);
        let (mut outcomes, grouped) = windows?;
        self.expand_groups(plan, &mut outcomes, &grouped);
        let keys = self.lend_keys(plan);
        let (snapshot, keys) = self.read_states(keys, now, report).await;
        match snapshot {
            Ok(snapshot) => Ok((outcomes, keys, snapshot)),
            Err(e) => {
                self.give_back_keys(plan, keys);
                Err(e)
            }
        }
    }

    /// Every due trigger's key (see `DueKeys::lend`), then the retired
    /// ones', then the old keys of pending renames (copies: few).
    fn lend_keys(&mut self, plan: &plan::Plan) -> Vec<String> {
        let mut keys = self.due_keys.lend(&plan.due, &mut self.monitors);
        keys.extend(self.retired.iter().map(|r| r.key.clone()));
        keys.extend(self.renames.iter().map(|(old, _)| old.clone()));
        keys
    }

    /// Returns the keys [`Engine::lend_keys`] took (see
    /// `DueKeys::give_back`). Calling it again does nothing.
    pub(super) fn give_back_keys(&mut self, plan: &plan::Plan, keys: Vec<String>) {
        self.due_keys.give_back(&plan.due, &mut self.monitors, keys);
    }

    /// The windows of the plan: one call for those of monitors without
    /// `group_by`, one for the grouped ones (when there are any).
    async fn read_windows(
        &mut self,
        plan: &plan::Plan,
        report: &mut TickReport,
    ) -> Result<(Vec<QueryOutcome>, Vec<GroupedOutcome>), StoreError> {
        let store = self.store.clone();
        let count = |got: usize, asked: usize| {
            (got == asked)
                .then_some(())
                .ok_or_else(|| StoreError::Protocol(format!("{got} outcomes for {asked} queries")))
        };
        let mut outcomes = Vec::new();
        if !plan.queries.is_empty() || plan.grouped_queries.is_empty() {
            self.store_call(report);
            outcomes = store.query_many(&plan.queries).await?;
            count(outcomes.len(), plan.queries.len())?;
        }
        let mut grouped = Vec::new();
        if !plan.grouped_queries.is_empty() {
            self.store_call(report);
            grouped = store.query_grouped(&plan.grouped_queries).await?;
            count(grouped.len(), plan.grouped_queries.len())?;
        }
        Ok((outcomes, grouped))
    }

    /// The states of `keys`, the store's marker and the silences; `keys`
    /// back, whatever the outcome (moved into the read, not copied).
    async fn read_states(
        &mut self,
        keys: Vec<String>,
        now: UnixMillis,
        report: &mut TickReport,
    ) -> (Result<AlertSnapshot, StoreError>, Vec<String>) {
        let store = self.store.clone();
        self.store_call(report);
        let read = AlertRead {
            keys,
            // A new one each time: a store that lost its data takes it,
            // and it differs from the one held before.
            marker: format!("{:016x}", rand::random::<u64>()),
            marker_ttl: self.settings.state_ttl,
            now_ms: now,
        };
        let snapshot = store.read_alerts(&read).await;
        (snapshot, read.keys)
    }
}
