//! One evaluation pass over the monitors that are due: the whole agent
//! minus the waiting and the sending. [`Engine::tick`] takes the time as a
//! parameter, so tests drive it check by check without sleeping.
//!
//! A tick is plain steps:
//! 1. `plan`: which monitors are due, the slot each checks, the windows;
//! 2. `read`: one `Store::query_many` with every window (two per
//!    `ratio_of`), one `Store::query_grouped` for the monitors with
//!    `group_by` (`groups`: each group then is checked as a monitor of
//!    its own), and one `Store::read_alerts` with every state, the
//!    store's marker and the silences;
//! 3. [`decide`] (pure): the transitions and the mail each calls for;
//! 4. commit: one `Store::commit_alert` per transition, writing the state
//!    and recording its mail in the outbox atomically; only the agent whose
//!    commit succeeds has the mail recorded (none in steady state);
//! 5. the [`crate::delivery`] task sends what the outbox holds.
//!
//! States are paired with triggers by their key. The semantics are in
//! `docs/alerts.md`.

mod audience;
pub mod decide;
mod groups;
mod health;
mod plan;
pub mod slo;
mod slo_reads;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use hawkeye_store::{AlertCommit, Store, StoreError, WindowQuery};
use tokio::sync::Notify;

use crate::monitors::{Monitor, MonitorsFile};
use crate::state::{Notice, UnixMillis};
use decide::Transition;
use health::Outages;
pub use health::RECOVERY_GRACE_MS;
use plan::Scheduled;

/// Entries of the alert history kept per environment (`history.rs`).
pub const HISTORY_MAX: usize = 10_000;

/// The default [`EngineSettings::state_ttl`].
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Who the agent is, for subjects, bodies and state keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    pub service: String,
    pub environment: String,
    pub mail_from: String,
    /// How long after a slot starts its check runs (see `plan`).
    pub evaluation_delay_ms: u64,
    /// How long an alert state (and the outbox, and the store's marker)
    /// lives without a write; a FIRING state is rewritten at half of it.
    pub state_ttl: Duration,
}

/// Counters since the engine started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub ticks: u64,
    /// Monitor checks (one per monitor due per tick).
    pub checks: u64,
    /// Calls to the store (each is one round trip, or a pipelined batch).
    pub store_calls: u64,
    pub store_errors: u64,
    /// State changes written.
    pub transitions: u64,
    /// State changes another agent wrote first.
    pub swaps_lost: u64,
    /// Alerts recorded in the outbox or logged.
    pub notices: u64,
    /// Notices held back by a silence, a maintenance window or inhibition.
    pub muted: u64,
    /// Times the store was found to have lost its data.
    pub data_losses: u64,
    /// Groups left out of checks because their monitor had `max_groups`
    /// already (once per group and check).
    pub groups_dropped: u64,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub monitors: usize,
    pub queries: usize,
    pub store_calls: usize,
    pub transitions: usize,
    pub notices: Vec<(String, Notice)>,
    /// The same notices, saying which trigger each came from.
    pub notified: Vec<Notified>,
    /// The store failed: nothing was evaluated.
    pub store_error: bool,
    /// Monitors read but not evaluated because their window overlaps a
    /// store outage (its data may still be arriving, or be lost).
    pub outage_skipped: usize,
    /// Notices held back by a silence, maintenance or inhibition.
    pub muted: usize,
    /// The store lost its data since the last read (its marker changed).
    pub data_loss: bool,
}

/// A notice of a tick, and the trigger it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notified {
    /// The monitor's index in the file; `None` for a trigger a reload removed.
    pub monitor: Option<usize>,
    /// The trigger's level (1 for the first trigger).
    pub level: usize,
    /// The trigger's state key.
    pub key: String,
    pub notice: Notice,
    pub subject: String,
    /// The group of a monitor with `group_by`; empty otherwise.
    pub group: Vec<(String, String)>,
}

/// Where one trigger's state is, for a monitor or one of its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertKey {
    /// The monitor's index in the file.
    pub monitor: usize,
    pub level: usize,
    /// The group (`group_by` monitors); empty otherwise.
    pub group: Vec<(String, String)>,
    pub key: String,
}

/// A trigger a reload removed, until its state is resolved and deleted.
struct Retired {
    monitor: Monitor,
    trigger: usize,
    key: String,
    /// The group, for a group's trigger.
    group: Vec<(String, String)>,
}

pub struct Engine {
    store: Arc<dyn Store>,
    settings: EngineSettings,
    monitors: Vec<Scheduled>,
    retired: Vec<Retired>,
    /// Legacy keys → (new key, interval) still to migrate.
    migrate: Vec<(String, String, u64)>,
    /// `(old key, new key)` of triggers whose key a reload changed, until
    /// their state is moved (see [`rename`]).
    renames: Vec<(String, String)>,
    outages: Outages,
    /// The longest window of the monitors, to forget old outages.
    max_window_ms: u64,
    /// The store's marker as last read; `None` before the first read.
    marker: Option<String>,
    /// The last state seen of every trigger, to restore a store that lost
    /// its data. Looked up for every trigger read while any state is known
    /// (to forget those gone), so hashed with rapidhash, not SipHash: the
    /// keys are ours, not an attacker's.
    known: HashMap<String, String, rapidhash::quality::RandomState>,
    /// Unreadable states and silences already logged (once each).
    logged: HashSet<String>,
    /// Woken when mail was recorded in the outbox.
    outbox_wake: Option<Arc<Notify>>,
    /// The groups with a state in the store were looked up (see `groups`).
    groups_seeded: bool,
    /// Each SLO's period counts as last read (see `slo`).
    slo_periods: HashMap<String, slo_reads::CachedPeriod>,
    /// The last tick's plan, emptied: its buffers for the next one.
    spare_plan: plan::Plan,
    /// The window reads of the monitors without `group_by`, each
    /// monitor's at the place it holds (see `plan`): lent whole to the
    /// store's read when every monitor is due, not moved one by one.
    own_queries: Vec<WindowQuery>,
    /// The state keys of the monitors due, lent to the state read (see
    /// `due_keys.rs`).
    due_keys: due_keys::DueKeys,
    stats: EngineStats,
}

/// A transition ready to commit: the store write and what to do after it.
struct Prepared {
    transition: Transition,
    commit: AlertCommit,
    /// The subject, and for `notifier: log` the body to log once committed.
    subject: String,
    log_body: Option<String>,
    /// The monitor index (`None`: retired) and check slot, for the runs.
    at: Option<(usize, UnixMillis)>,
    /// The group (`group_by` monitors).
    group: Vec<(String, String)>,
}

impl Engine {
    /// An engine with every monitor due at `now`.
    pub fn new(
        file: &MonitorsFile,
        store: Arc<dyn Store>,
        settings: EngineSettings,
        now: UnixMillis,
    ) -> Engine {
        let mut engine = Engine {
            store,
            settings,
            monitors: Vec::new(),
            retired: Vec::new(),
            migrate: Vec::new(),
            renames: Vec::new(),
            outages: Outages::default(),
            max_window_ms: 0,
            marker: None,
            known: HashMap::default(),
            logged: HashSet::new(),
            outbox_wake: None,
            groups_seeded: false,
            slo_periods: HashMap::new(),
            spare_plan: plan::Plan::default(),
            own_queries: Vec::new(),
            due_keys: due_keys::DueKeys::default(),
            stats: EngineStats::default(),
        };
        engine.reload(file, now);
        engine
    }

    /// Wakes `notify` whenever mail is recorded in the outbox.
    pub fn with_outbox_wake(mut self, notify: Arc<Notify>) -> Engine {
        self.outbox_wake = Some(notify);
        self
    }

    /// When the next monitor falls due (`None`: no monitors).
    pub fn next_due(&self) -> Option<UnixMillis> {
        let monitors = self.monitors.iter().filter(|m| m.group.is_none());
        monitors.map(|m| m.next_due).min()
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// The state key of every trigger, per monitor of the file (for a
    /// monitor with `group_by`, the keys its groups' keys derive from).
    pub fn keys(&self) -> Vec<Vec<String>> {
        let monitors = self.monitors.iter().filter(|m| m.group.is_none());
        monitors.map(|m| m.keys.clone()).collect()
    }

    /// Every state key the engine checks now: each trigger of each
    /// monitor without `group_by`, and of each group of those with it.
    pub fn alert_keys(&self) -> Vec<AlertKey> {
        let mut out = Vec::new();
        for (i, s) in self.monitors.iter().enumerate() {
            if s.group.is_none() && !s.monitor.group_by.is_empty() {
                continue;
            }
            for (j, key) in s.keys.iter().enumerate() {
                out.push(AlertKey {
                    monitor: s.file_index(i),
                    level: j + 1,
                    group: s.labels().to_vec(),
                    key: key.clone(),
                });
            }
        }
        out
    }

    /// A write of `new` under `key` where there is no state yet, without mail.
    fn first_write(&self, key: &str, new: String) -> AlertCommit {
        AlertCommit {
            key: key.to_string(),
            expected: None,
            new: Some(new),
            ttl: self.settings.state_ttl,
            outbox: Vec::new(),
        }
    }

    fn store_call(&mut self, report: &mut TickReport) {
        report.store_calls += 1;
        self.stats.store_calls += 1;
    }

    /// Evaluates every monitor due at `now`.
    pub async fn tick(&mut self, now: UnixMillis) -> TickReport {
        let mut report = TickReport::default();
        if !self.migrate.is_empty() {
            self.migrate_legacy(&mut report).await;
        }
        self.remove_gone_groups();
        if !self.groups_seeded {
            self.seed_groups(now, &mut report).await;
        }
        let delay = self.settings.evaluation_delay_ms;
        let spare = std::mem::take(&mut self.spare_plan);
        let mut plan = plan::plan(&mut self.monitors, &mut self.own_queries, now, delay, spare);
        if !plan.due.is_empty() || !plan.grouped.is_empty() || !self.retired.is_empty() {
            self.evaluate(&mut plan, now, &mut report).await;
        }
        // Given back after the read already; here for a tick without one.
        plan.give_back(&mut self.monitors, &mut self.own_queries);
        self.spare_plan = plan;
        report
    }

    /// Reads, decides and commits the checks of `plan`.
    async fn evaluate(&mut self, plan: &mut plan::Plan, now: UnixMillis, report: &mut TickReport) {
        let slo_reads = self.plan_slo(plan);
        self.stats.ticks += 1;
        report.queries = plan.queries.len() + plan.grouped_queries.len();
        let read = self.read(plan, now, report).await;
        self.stats.checks += plan.due.len() as u64;
        report.monitors = plan.due.len();
        let (outcomes, keys, mut snapshot) = match read {
            Ok(read) => read,
            Err(e) => {
                self.store_failed(&e, now, plan);
                report.store_error = true;
                return;
            }
        };
        self.outages.answered(now, self.max_window_ms);
        self.check_marker(&keys, &mut snapshot, report).await;
        if !self.renames.is_empty() {
            self.apply_renames(&keys, &mut snapshot).await;
        }
        self.give_back_keys(plan, keys);
        let read = (outcomes.as_slice(), &slo_reads);
        let decision = self.decide(plan, read, &snapshot, now, report);
        let prepared = self.prepare(decision, plan, now);
        // Only now (the transitions name retired triggers by index): those
        // without a state are done.
        let retired_at = plan.due.iter().map(|&i| self.monitors[i].keys.len()).sum();
        let mut has_state = snapshot.states[retired_at..].iter().map(Option::is_some);
        self.retired.retain(|_| has_state.next().unwrap_or(false));
        self.commit(prepared, now, report).await;
    }

    /// The store failed at `now`: the checks planned were not evaluated.
    fn store_failed(&mut self, e: &StoreError, now: UnixMillis, plan: &plan::Plan) {
        self.stats.store_errors += 1;
        for (&i, &slot) in plan.due.iter().zip(&plan.slots) {
            let s = &mut self.monitors[i];
            if s.group.is_some() {
                // Below, with every group of its monitor.
                continue;
            }
            for run in &mut s.runs {
                run.not_evaluated(slot, s.interval_ms);
            }
        }
        for &(i, slot, _, _) in &plan.grouped {
            self.groups_not_evaluated(i, slot);
        }
        self.outages
            .failed(e, now, self.settings.evaluation_delay_ms);
    }
}

mod check;
mod commit;
mod data_loss;
mod due_keys;
mod history;
mod migrate;
mod read;
mod reload;
