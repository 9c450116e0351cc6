//! Grouped reads ([`crate::grouped`]): the first round trip finds each
//! query's series as for a plain read; they are split by group, and each
//! group is read as a query of its own in the same second round trip(s).

use std::collections::BTreeMap;

use std::sync::Arc;

use super::read_plan::Planned;
use super::RedisStore;
use crate::error::StoreError;
use crate::grouped::{group_of, GroupValue, GroupedOutcome, GroupedQuery};
use crate::window::WindowQuery;

impl RedisStore {
    pub(super) async fn read_grouped(
        &self,
        grouped: &[GroupedQuery],
    ) -> Result<Vec<GroupedOutcome>, StoreError> {
        let bases: Vec<WindowQuery> = grouped.iter().map(|g| g.query.clone()).collect();
        let plans = self.plan(&bases).await?;
        // One query per group; `owners` says whose group each is.
        let mut queries = Vec::new();
        let mut group_plans: Vec<Planned> = Vec::new();
        let mut owners: Vec<(usize, Vec<String>)> = Vec::new();
        let mut outcomes: Vec<GroupedOutcome> = Vec::with_capacity(grouped.len());
        for (gi, (g, plan)) in grouped.iter().zip(plans).enumerate() {
            let plan = match plan {
                Err(e) => {
                    outcomes.push(Err(e));
                    continue;
                }
                Ok(None) => {
                    outcomes.push(Ok(Vec::new()));
                    continue;
                }
                Ok(Some(plan)) => plan,
            };
            outcomes.push(Ok(Vec::new()));
            let mut groups: BTreeMap<Vec<String>, Vec<_>> = BTreeMap::new();
            for s in &plan.series {
                groups
                    .entry(group_of(plan.tags(s), &g.group_by))
                    .or_default()
                    .push(*s);
            }
            for (values, series) in groups {
                queries.push(g.query.clone());
                group_plans.push(Ok(Some(Arc::new(plan.with_series(series)))));
                owners.push((gi, values));
            }
        }
        let values = self.read_planned(&queries, &group_plans).await?;
        for ((gi, values), value) in owners.into_iter().zip(values) {
            // The index finds series written since the window began, also
            // those with data only after it: a group without a value is
            // not in the window.
            if let (Ok(Some(value)), Ok(groups)) = (value, &mut outcomes[gi]) {
                groups.push(GroupValue { values, value });
            }
        }
        Ok(outcomes)
    }
}
