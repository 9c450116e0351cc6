//! What a reload does to the alert states (`docs/alerts.md`, "Where
//! states live"): a trigger whose key is unchanged keeps its state; one
//! that is gone is retired (resolved and deleted at the next tick); one
//! whose key changed without changing the trigger — a monitor or trigger
//! given an `id`, its `id` renamed or removed (the key names the `id` when
//! there is one, see [`crate::state_key`]) — has its state moved, instead
//! of a resolved mail for the old key and a second firing mail for the new.
//!
//! A reload pairs each new key with a key of the previous monitors that it
//! replaces when they share an alias ([`state_key::aliases`]). At the next
//! tick that reads the new key, the old key is read with it; its state is
//! written under the new key if that has none, and the old key is deleted.

use std::collections::HashSet;

use hawkeye_store::{AlertCommit, AlertSnapshot};

use super::plan::Scheduled;
use super::{Engine, Retired};
use crate::monitors::MonitorsFile;
use crate::state::UnixMillis;
use crate::state_key;

/// `(old key, new key)` for every trigger of `file` whose key is new but
/// that was in `old` under another key. `kept` are the keys of `file`.
fn renames(
    old: &[Scheduled],
    file: &MonitorsFile,
    keys: &[Vec<String>],
    kept: &HashSet<&String>,
    service: &str,
    environment: &str,
) -> Vec<(String, String)> {
    // Groups' keys are carried over by `regroup`, not renamed.
    let old: Vec<&Scheduled> = old.iter().filter(|s| s.group.is_none()).collect();
    let old_keys: HashSet<&String> = old.iter().flat_map(|s| &s.keys).collect();
    // The usual reload (and the start) changes no key: nothing to pair.
    let changed = || keys.iter().flatten().any(|k| !old_keys.contains(k));
    if !old_keys.iter().any(|k| !kept.contains(k)) || !changed() {
        return Vec::new();
    }
    let old_file = MonitorsFile {
        monitors: old.iter().map(|s| s.monitor.clone()).collect(),
        ..MonitorsFile::default()
    };
    let old_aliases = state_key::aliases(&old_file, service, environment);
    let new_aliases = state_key::aliases(file, service, environment);
    // Old keys that no longer exist, with their aliases.
    let mut gone: Vec<(&String, &Vec<String>)> = old
        .iter()
        .zip(&old_aliases)
        .flat_map(|(s, aliases)| s.keys.iter().zip(aliases))
        .filter(|(key, _)| !kept.contains(key))
        .collect();
    let mut renames = Vec::new();
    for (new, aliases) in keys.iter().flatten().zip(new_aliases.iter().flatten()) {
        if old_keys.contains(new) {
            continue;
        }
        if let Some(at) = gone
            .iter()
            .position(|(_, old)| old.iter().any(|a| aliases.contains(a)))
        {
            let (old, _) = gone.remove(at);
            renames.push((old.clone(), new.clone()));
        }
    }
    renames
}

impl Engine {
    /// Replaces the monitors; all are due at `now`. Triggers keep their
    /// state when their key does not change (see [`state_key`]); triggers
    /// that are gone are resolved and their states deleted at the next tick.
    pub fn reload(&mut self, file: &MonitorsFile, now: UnixMillis) {
        let (service, env) = (&self.settings.service, &self.settings.environment);
        let keys = state_key::state_keys(file, service, env);
        let legacy = state_key::legacy_keys(file, service, env);
        let kept: HashSet<&String> = keys.iter().flatten().collect();
        let renames = renames(&self.monitors, file, &keys, &kept, service, env);
        let renamed: HashSet<&String> = renames.iter().map(|(old, _)| old).collect();
        let (old_groups, old): (Vec<Scheduled>, Vec<Scheduled>) =
            std::mem::take(&mut self.monitors)
                .into_iter()
                .partition(|s| s.group.is_some());
        for old in &old {
            // A monitor with `group_by` has no state under its own keys.
            if !old.monitor.group_by.is_empty() {
                continue;
            }
            for (j, key) in old.keys.iter().enumerate() {
                if !kept.contains(key) && !renamed.contains(key) {
                    self.retired.push(Retired {
                        monitor: old.monitor.clone(),
                        trigger: j,
                        key: key.clone(),
                        group: Vec::new(),
                    });
                }
            }
        }
        self.renames = renames;
        self.retired.retain(|r| !kept.contains(&r.key));
        // Legacy key → (new key, interval) of every trigger.
        let intervals = file.monitors.iter().flat_map(|m| {
            m.triggers
                .iter()
                .map(move |_| m.interval.as_millis() as u64)
        });
        self.migrate = legacy
            .iter()
            .flatten()
            .zip(keys.iter().flatten())
            .zip(intervals)
            .map(|((old, new), interval)| (old.clone(), new.clone(), interval))
            .collect();
        // The new monitors build their reads again at their first check.
        self.own_queries.clear();
        self.due_keys.forget();
        self.monitors = file
            .monitors
            .iter()
            .zip(keys)
            .map(|(m, keys)| Scheduled::new(m, keys, now))
            .collect();
        self.regroup(old_groups, &old);
        // How far back a check may read: outages older than that are
        // forgotten.
        self.max_window_ms = file
            .monitors
            .iter()
            .map(|m| {
                m.window_secs()
                    .max(m.gauge_stale_after.as_secs())
                    .saturating_mul(1000)
            })
            .max()
            .unwrap_or(0);
        self.logged.clear();
    }

    /// Moves the states of pending renames whose new key was read at this
    /// tick (`keys`, their states in `snapshot`; the old keys were read
    /// too). When the move cannot be written, the check still sees the
    /// moved state: its own write then fails (the new key is still
    /// absent), so nothing is mailed twice, and the move is tried again.
    pub(super) async fn apply_renames(&mut self, keys: &[String], snapshot: &mut AlertSnapshot) {
        let at = |key: &str| keys.iter().position(|k| k == key);
        let mut pending = Vec::new();
        for (old, new) in std::mem::take(&mut self.renames) {
            let (Some(o), Some(n)) = (at(&old), at(&new)) else {
                pending.push((old, new));
                continue;
            };
            let Some(state) = snapshot.states[o].clone() else {
                continue;
            };
            if snapshot.states[n].is_none() {
                snapshot.states[n] = Some(state.clone());
                let commit = self.first_write(&new, state.clone());
                match self.store.commit_alert(&commit).await {
                    Ok(true) => {
                        self.known.insert(new.clone(), state.clone());
                    }
                    // Another agent moved it (or wrote a newer state) first.
                    Ok(false) => {}
                    Err(_) => {
                        // Not moved: the old key must stay.
                        pending.push((old, new));
                        continue;
                    }
                }
            }
            let delete = AlertCommit {
                key: old.clone(),
                expected: Some(state),
                new: None,
                ttl: self.settings.state_ttl,
                outbox: Vec::new(),
            };
            match self.store.commit_alert(&delete).await {
                Ok(_) => {
                    self.known.remove(&old);
                    tracing::info!(from = %old, to = %new, "alert state moved to the trigger's new key");
                }
                Err(_) => pending.push((old, new)),
            }
        }
        self.renames = pending;
    }
}
