//! One evaluation pass over the monitors that are due: the whole agent
//! minus the waiting. [`Engine::tick`] takes the time as a parameter, so
//! tests drive it check by check without sleeping, and the scheduler calls
//! it when the next monitor falls due.
//!
//! Per tick, whatever the number of monitors due:
//! - one `Store::query_many` with every window (two per `ratio_of`),
//! - one `Store::alert_states` with every trigger's state,
//! - one `Store::swap_alert_state` per trigger whose state changes (none in
//!   steady state: OK staying OK and FIRING between repeats write nothing).
//!
//! Checks are aligned on wall-clock multiples of the interval (slots), so
//! agents sharing a store evaluate the same slots, and the slot number
//! recorded in the state makes the second one a no-op (see [`crate::state`]).
//!
//! The check of slot `k` (interval `I`) reads the window that ends with the
//! last second before `k·I`, and runs at `k·I + evaluation_delay`. With the
//! delay longer than the server's flush interval, every event is in the
//! store when the window that holds it is read: with `window = interval`
//! consecutive windows tile time, so each event is counted exactly once, and
//! an event waits at most `interval + evaluation_delay` to be evaluated.
//! (Reading the current, still-filling second instead would be faster for
//! some events but would miss those that arrive in it after the read.)

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use hawkeye_mail::MailSender;
use hawkeye_store::{QueryOutcome, Store, StoreError, WindowQuery};

use crate::config::{Monitor, MonitorsFile, Notifier};
use crate::evaluation::{monitor_value, observe};
use crate::notification::{self, Alert};
use crate::state::{self, AlertState, Notice, Rule, UnixMillis};

/// State swaps in flight at once within a tick.
const SWAP_CONCURRENCY: usize = 64;

/// How long after the store answers again the server may still be writing
/// the aggregates it held during the outage (its flush backoff is at most
/// 5 s). Windows that overlap the outage up to then are not evaluated.
pub const RECOVERY_GRACE_MS: u64 = 5_000;

/// Who the agent is, for subjects, bodies and state keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSettings {
    pub service: String,
    pub environment: String,
    pub mail_from: String,
    /// How long after a slot starts its check runs (see the module doc).
    pub evaluation_delay_ms: u64,
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
    /// Alerts handed to the mail queue or the log.
    pub notices: u64,
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub monitors: usize,
    pub queries: usize,
    pub store_calls: usize,
    pub transitions: usize,
    pub notices: Vec<(String, Notice)>,
    /// The store failed: nothing was evaluated.
    pub store_error: bool,
    /// Monitors read but not evaluated because their window overlaps a
    /// store outage (its data may still be arriving, or be lost).
    pub outage_skipped: usize,
}

struct Scheduled {
    monitor: Monitor,
    interval_ms: u64,
    next_due: UnixMillis,
    /// State key of each trigger.
    keys: Vec<String>,
    /// The last query error logged for this monitor (logged once).
    query_error: Option<String>,
    /// Per trigger, the checks `[start, next)` this engine saw go
    /// unevaluated (store down, outage window, `missing: keep`): they do not
    /// break a run of breaches towards `for`.
    unevaluated: Vec<(u64, u64)>,
}

/// Check `check` was evaluated: a run of unevaluated checks ends.
fn evaluated(run: &mut (u64, u64), check: u64) {
    *run = (check + 1, check + 1);
}

/// Check `check` was not evaluated: it extends the run that ends just
/// before it, or starts a new one.
fn not_evaluated(run: &mut (u64, u64), check: u64) {
    if run.1 == check {
        run.1 = check + 1;
    } else {
        *run = (check, check + 1);
    }
}

/// The first check of the unevaluated run that ends just before `check`.
fn continues_from(run: (u64, u64), check: u64) -> u64 {
    if run.1 == check {
        run.0
    } else {
        check
    }
}

impl Scheduled {
    fn none_evaluated(&mut self, check: u64) {
        for run in &mut self.unevaluated {
            not_evaluated(run, check);
        }
    }
}

pub struct Engine {
    store: Arc<dyn Store>,
    mail: MailSender,
    settings: EngineSettings,
    monitors: Vec<Scheduled>,
    store_down: bool,
    /// When the current store outage began (the first failed read, less
    /// the evaluation delay).
    outage_start: Option<UnixMillis>,
    /// Past outages `[start, end)`, `end` being recovery + grace.
    outages: Vec<(UnixMillis, UnixMillis)>,
    /// The longest window of the monitors, to forget old outages.
    max_window_ms: u64,
    /// Unreadable states already logged (logged once per key).
    unreadable_logged: std::collections::HashSet<String>,
    stats: EngineStats,
}

/// A state change to write, and what to do once it is written.
struct Pending {
    monitor: usize,
    trigger: usize,
    key: String,
    expected: Option<String>,
    next: AlertState,
    notice: Option<Notice>,
    value: Option<f64>,
    fired_at: Option<UnixMillis>,
    check: u64,
}

impl Engine {
    /// An engine with every monitor due at `now`.
    pub fn new(
        file: &MonitorsFile,
        store: Arc<dyn Store>,
        mail: MailSender,
        settings: EngineSettings,
        now: UnixMillis,
    ) -> Engine {
        let mut engine = Engine {
            store,
            mail,
            settings,
            monitors: Vec::new(),
            store_down: false,
            outage_start: None,
            outages: Vec::new(),
            max_window_ms: 0,
            unreadable_logged: Default::default(),
            stats: EngineStats::default(),
        };
        engine.reload(file, now);
        engine
    }

    /// Replaces the monitors; all are due at `now`. States are keyed by the
    /// monitor's definition, so monitors that did not change keep theirs.
    pub fn reload(&mut self, file: &MonitorsFile, now: UnixMillis) {
        let keys = state_keys(file, &self.settings);
        self.monitors = file
            .monitors
            .iter()
            .zip(keys)
            .map(|(m, keys)| Scheduled {
                interval_ms: (m.interval.as_millis() as u64).max(1),
                monitor: m.clone(),
                next_due: now,
                unevaluated: vec![(0, 0); keys.len()],
                keys,
                query_error: None,
            })
            .collect();
        self.max_window_ms = file
            .monitors
            .iter()
            .map(|m| m.window_secs().saturating_mul(1000))
            .max()
            .unwrap_or(0);
        self.unreadable_logged.clear();
    }

    /// When the next monitor falls due (`None`: no monitors).
    pub fn next_due(&self) -> Option<UnixMillis> {
        self.monitors.iter().map(|m| m.next_due).min()
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// The state key of every trigger, per monitor.
    pub fn keys(&self) -> Vec<Vec<String>> {
        self.monitors.iter().map(|m| m.keys.clone()).collect()
    }

    /// Evaluates every monitor due at `now`.
    pub async fn tick(&mut self, now: UnixMillis) -> TickReport {
        let mut report = TickReport::default();
        let due: Vec<usize> = (0..self.monitors.len())
            .filter(|&i| self.monitors[i].next_due <= now)
            .collect();
        if due.is_empty() {
            return report;
        }
        self.stats.ticks += 1;
        self.stats.checks += due.len() as u64;
        report.monitors = due.len();
        let delay = self.settings.evaluation_delay_ms;
        let slot_of = |interval_ms: u64| now.saturating_sub(delay) / interval_ms;
        for &i in &due {
            let s = &mut self.monitors[i];
            s.next_due = (slot_of(s.interval_ms) + 1) * s.interval_ms + delay;
        }

        // One read of every window due.
        let mut queries = Vec::with_capacity(due.len());
        let mut query_index = Vec::with_capacity(due.len());
        for &i in &due {
            let sched = &self.monitors[i];
            let m = &sched.monitor;
            // The last whole second before the slot began.
            let end = (slot_of(sched.interval_ms) * sched.interval_ms / 1000) as i64 - 1;
            let query = |name: &str| WindowQuery {
                name: name.to_string(),
                kind: Some(m.kind),
                tags: m.tags.clone(),
                aggregation: Some(m.aggregation),
                window_secs: m.window_secs(),
                end,
            };
            let main = queries.len();
            queries.push(query(&m.metric));
            let other = m.ratio_of.as_ref().map(|o| {
                queries.push(query(o));
                queries.len() - 1
            });
            query_index.push((main, other));
        }
        report.queries = queries.len();
        let store = self.store.clone();
        report.store_calls += 1;
        self.stats.store_calls += 1;
        let outcomes = match store.query_many(&queries).await {
            Ok(o) if o.len() == queries.len() => o,
            Ok(o) => {
                let e = StoreError::Protocol(format!(
                    "{} outcomes for {} queries",
                    o.len(),
                    queries.len()
                ));
                self.store_failed(&e, now, &due, slot_of);
                report.store_error = true;
                return report;
            }
            Err(e) => {
                self.store_failed(&e, now, &due, slot_of);
                report.store_error = true;
                return report;
            }
        };

        // One read of every trigger's state.
        let keys: Vec<String> = due
            .iter()
            .flat_map(|&i| self.monitors[i].keys.iter().cloned())
            .collect();
        report.store_calls += 1;
        self.stats.store_calls += 1;
        let states = match store.alert_states(&keys).await {
            Ok(s) if s.len() == keys.len() => s,
            Ok(s) => {
                let e = StoreError::Protocol(format!("{} states for {} keys", s.len(), keys.len()));
                self.store_failed(&e, now, &due, slot_of);
                report.store_error = true;
                return report;
            }
            Err(e) => {
                self.store_failed(&e, now, &due, slot_of);
                report.store_error = true;
                return report;
            }
        };
        self.store_ok(now);
        self.outages
            .retain(|o| o.1.saturating_add(self.max_window_ms) >= now);

        let mut work: Vec<Pending> = Vec::new();
        let mut states = states.into_iter();
        for (n, &i) in due.iter().enumerate() {
            let sched = &mut self.monitors[i];
            let triggers = sched.monitor.triggers.len();
            let (main, other) = query_index[n];
            let value = match (take(&outcomes[main]), other.map(|o| take(&outcomes[o]))) {
                (Ok(v), None) => Ok((v, None)),
                (Ok(v), Some(Ok(o))) => Ok((v, Some(o))),
                (Err(e), _) | (_, Some(Err(e))) => Err(e),
            };
            let (metric, denominator) = match value {
                Ok(v) => {
                    if sched.query_error.take().is_some() {
                        tracing::info!(metric = %sched.monitor.metric, "monitor can be evaluated again");
                    }
                    v
                }
                Err(e) => {
                    if sched.query_error.as_deref() != Some(e.as_str()) {
                        tracing::warn!(metric = %sched.monitor.metric, error = %e, "monitor cannot be evaluated");
                        sched.query_error = Some(e);
                    }
                    states.by_ref().take(triggers).for_each(drop);
                    sched.none_evaluated(slot_of(sched.interval_ms));
                    continue;
                }
            };
            let check = slot_of(sched.interval_ms);
            // The window [start, end) this check read.
            let window_end = check * sched.interval_ms;
            let window_start =
                window_end.saturating_sub(sched.monitor.window_secs().saturating_mul(1000));
            if self
                .outages
                .iter()
                .any(|&(os, oe)| window_start < oe && window_end > os)
            {
                // Data of the outage may still be on its way from the
                // server (or lost): as if the store could not be read.
                states.by_ref().take(triggers).for_each(drop);
                sched.none_evaluated(check);
                report.outage_skipped += 1;
                continue;
            }
            let Scheduled {
                monitor: m,
                unevaluated,
                keys: sched_keys,
                interval_ms,
                ..
            } = &mut *sched;
            let interval_ms = *interval_ms;
            let value = monitor_value(m, metric, denominator);
            for (j, trigger) in m.triggers.iter().enumerate() {
                let raw = states.next().flatten();
                let prev = match raw.as_deref().map(AlertState::from_json) {
                    None => AlertState::default(),
                    Some(Ok(s)) => s,
                    Some(Err(e)) => {
                        // Replaced by the next write (the swap expects the
                        // unreadable text, so it still detects a race).
                        if self.unreadable_logged.insert(sched_keys[j].clone()) {
                            tracing::warn!(key = %sched_keys[j], error = %e, "unreadable alert state; starting from OK");
                        }
                        AlertState::default()
                    }
                };
                let (obs, reported) = observe(m, trigger, value);
                let rule = Rule {
                    for_checks: trigger.for_checks,
                    run_every_ms: trigger.run_every.as_millis() as u64,
                    send_resolved: trigger.send_resolved,
                    interval_ms,
                };
                let run = &mut unevaluated[j];
                let continues_from = continues_from(*run, check);
                if obs == state::Observation::Skip {
                    not_evaluated(run, check);
                } else {
                    evaluated(run, check);
                }
                let step = state::step_continuing(&prev, obs, &rule, check, continues_from, now);
                if let Some(next) = step.next {
                    let fired_at = match step.notice {
                        Some(Notice::Resolved) => prev.since,
                        _ => next.since,
                    };
                    work.push(Pending {
                        monitor: i,
                        trigger: j,
                        key: sched_keys[j].clone(),
                        expected: raw,
                        next,
                        notice: step.notice,
                        value: reported,
                        fired_at,
                        check,
                    });
                }
            }
        }

        // Write the changes; only the agent whose swap succeeds notifies.
        report.store_calls += work.len();
        self.stats.store_calls += work.len() as u64;
        let results: Vec<(Pending, Result<bool, StoreError>)> = futures::stream::iter(work)
            .map(|w| {
                let store = &store;
                async move {
                    let r = store
                        .swap_alert_state(&w.key, w.expected.as_deref(), &w.next.to_json())
                        .await;
                    (w, r)
                }
            })
            .buffer_unordered(SWAP_CONCURRENCY)
            .collect()
            .await;
        for (w, result) in results {
            match result {
                Ok(true) => {
                    report.transitions += 1;
                    self.stats.transitions += 1;
                    if let Some(notice) = w.notice {
                        let subject = self.notify(&w, notice, now);
                        report.notices.push((subject, notice));
                    }
                }
                Ok(false) => {
                    self.stats.swaps_lost += 1;
                    tracing::debug!(key = %w.key, "alert state changed by another agent; it handles this check");
                }
                Err(e) => {
                    self.store_failed(&e, now, &[], slot_of);
                    // Not written: as if not evaluated.
                    not_evaluated(
                        &mut self.monitors[w.monitor].unevaluated[w.trigger],
                        w.check,
                    );
                    report.store_error = true;
                }
            }
        }
        report
    }

    fn notify(&mut self, w: &Pending, notice: Notice, now: UnixMillis) -> String {
        let sched = &self.monitors[w.monitor];
        let alert = Alert {
            monitor: &sched.monitor,
            trigger: &sched.monitor.triggers[w.trigger],
            level: w.trigger + 1,
            notice,
            value: w.value,
            fired_at: w.fired_at,
            checked_at: now,
            service: &self.settings.service,
            environment: &self.settings.environment,
        };
        self.stats.notices += 1;
        match sched.monitor.notifier {
            Notifier::Email => {
                let mail = notification::mail(&alert, &self.settings.mail_from);
                let subject = mail.subject.clone();
                tracing::info!(?notice, %subject, to = ?mail.to, "alert");
                // Never waits: a full queue drops (counted and logged there).
                self.mail.send(mail);
                subject
            }
            Notifier::Log => {
                let r = notification::render(&alert);
                tracing::warn!(target: "hawkeye::alert", ?notice, subject = %r.subject, body = %r.body, "alert");
                r.subject
            }
        }
    }

    /// The store failed at `now`: the checks of the monitors `due` were
    /// not evaluated.
    fn store_failed(
        &mut self,
        e: &StoreError,
        now: UnixMillis,
        due: &[usize],
        slot_of: impl Fn(u64) -> u64,
    ) {
        self.stats.store_errors += 1;
        for &i in due {
            let s = &mut self.monitors[i];
            s.none_evaluated(slot_of(s.interval_ms));
        }
        if self.outage_start.is_none() {
            self.outage_start = Some(now.saturating_sub(self.settings.evaluation_delay_ms));
        }
        if !self.store_down {
            self.store_down = true;
            tracing::error!(error = %e, "store unavailable: alert evaluation suspended until it answers (no alerts are raised from data that could not be read)");
        }
    }

    fn store_ok(&mut self, now: UnixMillis) {
        if let Some(start) = self.outage_start.take() {
            self.outages
                .push((start, now.saturating_add(RECOVERY_GRACE_MS)));
        }
        if self.store_down {
            self.store_down = false;
            tracing::info!("store available again: alert evaluation resumed");
        }
    }
}

fn take(outcome: &QueryOutcome) -> Result<Option<f64>, String> {
    outcome.clone().map_err(|e| e.to_string())
}

/// FNV-1a: a hash that is the same in every process and every build, which
/// state keys need (std's hasher makes no such promise).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The store key of every trigger's state.
///
/// A key names what the trigger watches — service, environment, metric,
/// type, tags, ratio, aggregation, window, interval, op and threshold — not
/// its position in the file, so reordering monitors, editing recipients or
/// texts, or reloading keeps each alert's state (no resend), while changing
/// what is measured starts afresh. Identical definitions get `#2`, `#3`…
pub fn state_keys(file: &MonitorsFile, settings: &EngineSettings) -> Vec<Vec<String>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    file.monitors
        .iter()
        .map(|m| {
            m.triggers
                .iter()
                .map(|t| {
                    let identity = format!(
                        "{}\0{}\0{}\0{}\0{:?}\0{:?}\0{}\0{}\0{}\0{}\0{}\0{}",
                        settings.service,
                        settings.environment,
                        m.metric,
                        m.kind.code(),
                        m.tags.0,
                        m.ratio_of,
                        m.percent,
                        m.aggregation,
                        m.window_secs(),
                        m.interval.as_millis(),
                        t.op.symbol(),
                        t.threshold.to_bits(),
                    );
                    let n = seen.entry(identity.clone()).or_insert(0);
                    *n += 1;
                    let suffix = if *n > 1 {
                        format!("#{n}")
                    } else {
                        String::new()
                    };
                    format!(
                        "{}:{}:{}:{:016x}{suffix}",
                        settings.service,
                        settings.environment,
                        m.metric,
                        fnv1a(identity.as_bytes())
                    )
                })
                .collect()
        })
        .collect()
}
