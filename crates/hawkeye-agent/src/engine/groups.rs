//! Monitors with `group_by` (docs/alerts.md, "Groups"): one grouped read
//! per monitor gives every group's value; each group is then checked as a
//! monitor of its own (its own entry in the engine, the monitor's tags plus
//! the group's, so silences and mail name it), with a state per trigger
//! under the trigger's key and the group ([`state_key::group_key`]).
//!
//! A group is checked while it has data, and for `group_stale_after` after
//! its last data (as missing data: `missing` decides); then its states are
//! resolved and deleted as those of a removed trigger, and it is
//! forgotten. At most `max_groups` groups are checked per monitor: the
//! groups already known first, then new ones in order of their values;
//! the rest are counted (`EngineStats::groups_dropped`) and logged once.

use std::collections::{HashMap, HashSet};

use hawkeye_store::{GroupValue, GroupedOutcome, QueryError, QueryOutcome};

use super::plan::{Group, Plan, Scheduled};
use super::{Engine, Retired, TickReport};
use crate::state::UnixMillis;
use crate::state_key;

/// The entry of one group of the monitor `parent` (at `parent_index`).
fn group_entry(
    parent: &Scheduled,
    parent_index: usize,
    values: Vec<String>,
    last_seen: UnixMillis,
) -> Scheduled {
    let labels: Vec<(String, String)> = parent
        .monitor
        .group_by
        .iter()
        .cloned()
        .zip(values)
        .collect();
    let mut monitor = parent.monitor.clone();
    monitor.tags.0.extend(labels.iter().cloned());
    let keys = parent
        .keys
        .iter()
        .map(|k| state_key::group_key(k, &labels))
        .collect();
    // Never due on its own: checked when its monitor is.
    let mut entry = Scheduled::new(&monitor, keys, UnixMillis::MAX);
    entry.group = Some(Group {
        parent: parent_index,
        labels,
        last_seen,
        gone: false,
    });
    entry
}

fn values_of(labels: &[(String, String)]) -> Vec<String> {
    labels.iter().map(|(_, v)| v.clone()).collect()
}

impl Engine {
    /// Once, before the first check: the groups that have a state in the
    /// store (left by this agent before a restart, or by another) get
    /// entries, so that a group that went away meanwhile still resolves.
    /// Tried again at the next tick when the store fails.
    pub(super) async fn seed_groups(&mut self, now: UnixMillis, report: &mut TickReport) {
        let grouped = |s: &Scheduled| s.group.is_none() && !s.monitor.group_by.is_empty();
        if !self.monitors.iter().any(grouped) {
            self.groups_seeded = true;
            return;
        }
        report.store_calls += 1;
        self.stats.store_calls += 1;
        let prefix = state_key::prefix(&self.settings.service, &self.settings.environment);
        let states = match self.store.alert_states(&prefix).await {
            Ok(states) => states,
            Err(e) => {
                tracing::debug!(error = %e, "alert states not listed; trying again at the next tick");
                return;
            }
        };
        self.groups_seeded = true;
        let index = state_key::KeyIndex::of(self.keys());
        for (key, _) in states {
            let Some((i, _, labels)) = index.locate(&key) else {
                continue;
            };
            let parent = &self.monitors[i];
            let names: Vec<&String> = labels.iter().map(|(k, _)| k).collect();
            let values = values_of(&labels);
            if labels.is_empty()
                || names != parent.monitor.group_by.iter().collect::<Vec<_>>()
                || parent.children.contains_key(&values)
                || parent.children.len() >= parent.monitor.max_groups
            {
                continue;
            }
            let entry = group_entry(parent, i, values.clone(), now);
            self.monitors.push(entry);
            self.due_keys.forget();
            let c = self.monitors.len() - 1;
            self.monitors[i].children.insert(values, c);
        }
    }

    /// Turns the grouped reads of `plan` into checks of each group: adds
    /// the groups to `plan.due`, their values to `outcomes`.
    pub(super) fn expand_groups(
        &mut self,
        plan: &mut Plan,
        outcomes: &mut Vec<QueryOutcome>,
        grouped: &[GroupedOutcome],
    ) {
        for &(i, slot, main, other) in &plan.grouped.clone() {
            let denominators = match other.map(|o| &grouped[o]) {
                None => None,
                Some(Ok(groups)) => Some(by_values(groups)),
                Some(Err(e)) => {
                    self.group_read_failed(i, slot, e);
                    continue;
                }
            };
            let groups = match &grouped[main] {
                Ok(groups) => groups,
                Err(e) => {
                    self.group_read_failed(i, slot, e);
                    continue;
                }
            };
            if self.monitors[i].query_error.take().is_some() {
                tracing::info!(metric = %self.monitors[i].monitor.metric, "monitor can be evaluated again");
            }
            self.admit_groups(i, slot, groups);
            let values = by_values(groups);
            let children: Vec<(Vec<String>, usize)> = self.monitors[i]
                .children
                .iter()
                .map(|(v, c)| (v.clone(), *c))
                .collect();
            let stale_ms = self.monitors[i].monitor.group_stale_after.as_millis() as u64;
            for (group, c) in children {
                let value = values.get(&group).copied();
                if value.is_none() && self.group_is_stale(c, slot, stale_ms) {
                    continue;
                }
                plan.due.push(c);
                plan.slots.push(slot);
                outcomes.push(Ok(value));
                let main = outcomes.len() - 1;
                let other = denominators.as_ref().map(|d| {
                    outcomes.push(Ok(d.get(&group).copied()));
                    outcomes.len() - 1
                });
                plan.query_index.push(Some((main, other)));
            }
        }
    }

    /// Records the groups found at `slot` for monitor `i`, making entries
    /// for new ones up to `max_groups`.
    fn admit_groups(&mut self, i: usize, slot: UnixMillis, groups: &[GroupValue]) {
        let max = self.monitors[i].monitor.max_groups;
        let mut dropped = 0u64;
        for g in groups {
            let c = match self.monitors[i].children.get(&g.values) {
                Some(&c) => c,
                None if self.monitors[i].children.len() < max => {
                    let entry = group_entry(&self.monitors[i], i, g.values.clone(), slot);
                    self.monitors.push(entry);
                    self.due_keys.forget();
                    let c = self.monitors.len() - 1;
                    self.monitors[i].children.insert(g.values.clone(), c);
                    c
                }
                None => {
                    dropped += 1;
                    continue;
                }
            };
            if let Some(group) = self.monitors[c].group.as_mut() {
                group.last_seen = slot;
            }
        }
        self.stats.groups_dropped += dropped;
        let parent = &mut self.monitors[i];
        if dropped > 0 && !parent.over_max_groups {
            tracing::warn!(
                metric = %parent.monitor.metric,
                groups = groups.len(),
                max_groups = max,
                "more groups than max_groups: the groups past it are not checked"
            );
        }
        parent.over_max_groups = dropped > 0;
    }

    /// Whether group entry `c`, without data at `slot`, has had none for
    /// `stale_ms`; if so its states are retired and it is marked gone.
    fn group_is_stale(&mut self, c: usize, slot: UnixMillis, stale_ms: u64) -> bool {
        let entry = &mut self.monitors[c];
        let Some(group) = entry.group.as_mut() else {
            return false;
        };
        if slot.saturating_sub(group.last_seen) < stale_ms {
            return false;
        }
        group.gone = true;
        let labels = group.labels.clone();
        for (j, key) in entry.keys.iter().enumerate() {
            self.retired.push(Retired {
                monitor: entry.monitor.clone(),
                trigger: j,
                key: key.clone(),
                group: labels.clone(),
            });
        }
        tracing::info!(metric = %entry.monitor.metric, group = ?labels, "group without data: resolved and forgotten");
        true
    }

    /// A grouped read of monitor `i` failed: none of its groups is evaluated.
    fn group_read_failed(&mut self, i: usize, slot: UnixMillis, e: &QueryError) {
        let parent = &mut self.monitors[i];
        let e = e.to_string();
        if parent.query_error.as_deref() != Some(e.as_str()) {
            tracing::warn!(metric = %parent.monitor.metric, error = %e, "monitor cannot be evaluated");
            parent.query_error = Some(e);
        }
        self.groups_not_evaluated(i, slot);
    }

    /// The check at `slot` of every group of monitor `i` was not evaluated.
    pub(super) fn groups_not_evaluated(&mut self, i: usize, slot: UnixMillis) {
        let children: Vec<usize> = self.monitors[i].children.values().copied().collect();
        for c in children {
            let entry = &mut self.monitors[c];
            for run in &mut entry.runs {
                run.not_evaluated(slot, entry.interval_ms);
            }
        }
    }

    /// Removes the groups found stale (their states were retired).
    pub(super) fn remove_gone_groups(&mut self) {
        let gone = |s: &Scheduled| s.group.as_ref().is_some_and(|g| g.gone);
        if self.monitors.iter().any(gone) {
            // Monitors come first and stay at their indexes.
            self.monitors.retain(|s| !gone(s));
            self.due_keys.forget();
            self.index_groups();
        }
    }

    /// Rebuilds each monitor's map of its groups' entries.
    pub(super) fn index_groups(&mut self) {
        for s in &mut self.monitors {
            s.children.clear();
        }
        let entries: Vec<(usize, Vec<String>, usize)> = self
            .monitors
            .iter()
            .enumerate()
            .filter_map(|(c, s)| {
                s.group
                    .as_ref()
                    .map(|g| (g.parent, values_of(&g.labels), c))
            })
            .collect();
        for (parent, values, c) in entries {
            self.monitors[parent].children.insert(values, c);
        }
    }

    /// After a reload: the groups of a monitor that is still there (with
    /// the same `group_by` and a trigger key in common) go on under it,
    /// with its new settings; the states of the others are retired.
    /// `old_parents[g.parent]` is each group's monitor before the reload.
    pub(super) fn regroup(&mut self, old_groups: Vec<Scheduled>, old_parents: &[Scheduled]) {
        let monitors = self.monitors.len();
        let mut kept: HashSet<String> = HashSet::new();
        for old in old_groups {
            let Some(group) = &old.group else { continue };
            let before = &old_parents[group.parent];
            let parent = (0..monitors).find(|&p| {
                let s = &self.monitors[p];
                !s.monitor.group_by.is_empty()
                    && s.monitor.group_by == before.monitor.group_by
                    && s.keys.iter().any(|k| before.keys.contains(k))
            });
            let mut entry = parent.map(|p| {
                group_entry(
                    &self.monitors[p],
                    p,
                    values_of(&group.labels),
                    group.last_seen,
                )
            });
            if let Some(entry) = &mut entry {
                for (j, key) in entry.keys.iter().enumerate() {
                    if let Some(o) = old.keys.iter().position(|k| k == key) {
                        entry.runs[j] = old.runs[o];
                    }
                    kept.insert(key.clone());
                }
            }
            for (j, key) in old.keys.iter().enumerate() {
                if entry.as_ref().is_none_or(|e| !e.keys.contains(key)) {
                    self.retired.push(Retired {
                        monitor: old.monitor.clone(),
                        trigger: j,
                        key: key.clone(),
                        group: group.labels.clone(),
                    });
                }
            }
            self.monitors.extend(entry);
            self.due_keys.forget();
        }
        self.retired.retain(|r| !kept.contains(&r.key));
        self.index_groups();
    }
}

fn by_values(groups: &[GroupValue]) -> HashMap<Vec<String>, f64> {
    groups.iter().map(|g| (g.values.clone(), g.value)).collect()
}
