//! Step 2 of a tick: the reads. The windows first (one call for the
//! monitors without `group_by`, one for those with it), then, once the
//! groups are known, the states of every trigger checked, the store's
//! marker and the silences in one call.

use hawkeye_store::{AlertRead, AlertSnapshot, GroupedOutcome, QueryOutcome, StoreError};

use super::{plan, Engine, TickReport};
use crate::state::UnixMillis;

impl Engine {
    /// The windows of the plan: one call for those of monitors without
    /// `group_by`, one for the grouped ones (when there are any).
    pub(super) async fn read_windows(
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
    /// back (moved into the read, not copied: one per trigger checked).
    pub(super) async fn read_states(
        &mut self,
        keys: Vec<String>,
        now: UnixMillis,
        report: &mut TickReport,
    ) -> Result<(AlertSnapshot, Vec<String>), StoreError> {
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
        let snapshot = store.read_alerts(&read).await?;
        Ok((snapshot, read.keys))
    }
}
