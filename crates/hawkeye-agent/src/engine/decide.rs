//! The pure heart of a tick: from what was read (window values, stored
//! states, silences) and the time, the transitions to write and the mail
//! each calls for. No I/O and no clock: tested with explicit times.
//!
//! Per monitor, triggers are decided from the highest level down, so that a
//! lower level knows which higher levels fire after this check: with
//! `inhibit_lower` (the default) a lower level mails only the recipients no
//! firing higher level mails, and nobody when none is left (then it is
//! muted as by a silence: it keeps its state and mails when the higher
//! level stops firing while it still fires).

use std::collections::HashSet;

use super::audience;
use super::slo_reads::SloReading;
use crate::error_budget::BurnCheck;
use crate::evaluation::{monitor_value, observe};
use crate::monitors::{Monitor, Notifier};
use crate::notification::{normalize, Recipients};
use crate::silence::Silence;
use crate::state::{self, AlertState, Check, Notice, Observation, Rule, Status, Step, UnixMillis};

/// What was read for one monitor's check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// The window's value, and the denominator's for `ratio_of`.
    Value {
        metric: Option<f64>,
        denominator: Option<Option<f64>>,
    },
    /// The check cannot be evaluated (query error, window overlapping a
    /// store outage): nothing changes.
    NotEvaluated,
}

/// One monitor's check, as read.
pub struct MonitorInput<'a> {
    pub monitor: &'a Monitor,
    pub keys: &'a [String],
    /// The check's slot (unix ms).
    pub slot: UnixMillis,
    pub interval_ms: u64,
    pub reading: Reading,
    /// Each trigger's stored state, as read (`None`: absent).
    pub states: &'a [Option<String>],
    /// Each trigger's [`Check::continues_from`].
    pub continues_from: &'a [UnixMillis],
    /// An SLO monitor's burn-rate checks (`None` for other monitors; an
    /// SLO monitor without them is not evaluated).
    pub slo: Option<&'a SloReading>,
}

/// What is the same for every monitor of the tick.
pub struct Context<'a> {
    /// The wall clock of the tick (silences, maintenance windows).
    pub now: UnixMillis,
    pub silences: &'a [Silence],
    pub state_ttl_ms: u64,
}

/// Where a transition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The check of the monitor of this index among the [`MonitorInput`]s.
    Check(usize),
    /// The trigger a reload removed, of this index among those the engine
    /// still has to resolve.
    Retired(usize),
}

/// A state to write, and the mail to record with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub source: Source,
    pub trigger: usize,
    pub key: String,
    pub expected: Option<String>,
    /// `None`: delete the state.
    pub next: Option<AlertState>,
    pub notice: Option<Notice>,
    /// The value the mail reports.
    pub value: Option<f64>,
    /// When the episode began (for the mail and its Message-ID).
    pub since: Option<UnixMillis>,
    pub recipients: Recipients,
    /// A burn-rate trigger's check, which its mail states.
    pub burn: Option<BurnCheck>,
}

#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    pub transitions: Vec<Transition>,
    /// Per input, per trigger (the triggers of each input after those of
    /// the one before): whether the check was evaluated (it counts towards
    /// `for` and ends a run of unevaluated checks).
    pub evaluated: Vec<bool>,
    /// Stored states that could not be read (key, why): treated as absent.
    pub unreadable: Vec<(String, String)>,
    /// Triggers that had something to say but were muted.
    pub muted: usize,
}

/// Decides every monitor's check.
pub fn decide(inputs: &[MonitorInput], ctx: &Context) -> Decision {
    let mut decision = Decision::default();
    let triggers = inputs.iter().map(|i| i.monitor.triggers.len()).sum();
    decision.evaluated.reserve(triggers);
    for (i, input) in inputs.iter().enumerate() {
        decide_monitor(i, input, ctx, &mut decision);
    }
    decision
}

/// Whether the monitor is silenced or in maintenance now.
fn monitor_muted(m: &Monitor, ctx: &Context) -> bool {
    ctx.silences.iter().any(|s| s.matches(m, ctx.now))
        || m.maintenance.iter().any(|w| w.contains(ctx.now))
}

fn parse_state(raw: &Option<String>, key: &str, d: &mut Decision) -> AlertState {
    match raw.as_deref().map(AlertState::from_json) {
        None => AlertState::default(),
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            // Replaced by the next write (the commit expects the unreadable
            // text, so it still detects a race).
            d.unreadable.push((key.to_string(), e.to_string()));
            AlertState::default()
        }
    }
}

/// Decides input `i`, appending whether each of its triggers was evaluated.
pub(crate) fn decide_monitor(i: usize, input: &MonitorInput, ctx: &Context, d: &mut Decision) {
    decide_monitor_with(i, input, ctx, d, true);
}

/// [`decide_monitor`], with or without its shortcut for a steady monitor
/// (without: for the test that both decide the same).
fn decide_monitor_with(
    i: usize,
    input: &MonitorInput,
    ctx: &Context,
    d: &mut Decision,
    shortcut: bool,
) {
    let m = input.monitor;
    let first = d.evaluated.len();
    d.evaluated.resize(first + m.triggers.len(), false);
    let Reading::Value {
        metric,
        denominator,
    } = input.reading
    else {
        return;
    };
    if m.slo.is_some() && input.slo.is_none() {
        return;
    }
    let value = monitor_value(m, metric, denominator);
    if shortcut && steady(input, value) {
        // What the triggers' full decision comes to (a unit test compares
        // both): each evaluated, nothing to write, mail or mute.
        d.evaluated[first..].fill(true);
        return;
    }
    decide_triggers(i, input, value, ctx, d, first);
}

/// The steady monitor, most of them at every tick: no trigger has a stored
/// state (all OK, nothing in flight) and every one observes a clear check.
/// Its decision needs no silence, recipient or state machine: nothing
/// changes.
fn steady(input: &MonitorInput, value: Option<f64>) -> bool {
    input.states.iter().all(Option::is_none)
        && (0..input.monitor.triggers.len())
            .all(|j| observation(input, j, value, false).0 == Observation::Clear)
}

/// Decides each trigger of input `i` (its value read: `value`), from the
/// highest level down; `first`: where its triggers' `evaluated` begin.
fn decide_triggers(
    i: usize,
    input: &MonitorInput,
    value: Option<f64>,
    ctx: &Context,
    d: &mut Decision,
    first: usize,
) {
    let m = input.monitor;
    let muted_now = monitor_muted(m, ctx);
    // Recipients of the higher levels that fire after this check.
    let mut higher: HashSet<String> = HashSet::new();
    for (j, t) in m.triggers.iter().enumerate().rev() {
        let key = &input.keys[j];
        let prev = parse_state(&input.states[j], key, d);
        let (obs, reported) = observation(input, j, value, prev.status == Status::Firing);
        // Everyone this level mails is mailed by a firing higher level.
        let inhibited = m.notifier == Notifier::Email
            && m.inhibit_lower
            && !higher.is_empty()
            && t.recipients().next().is_some()
            && t.recipients().all(|a| higher.contains(&normalize(a)));
        let rule = Rule {
            for_checks: t.for_checks,
            run_every_ms: t.run_every.as_millis() as u64,
            send_resolved: t.send_resolved,
            interval_ms: input.interval_ms,
            keep_firing_for_ms: t.keep_firing_for.as_millis() as u64,
            state_ttl_ms: ctx.state_ttl_ms,
        };
        let check = Check {
            slot: input.slot,
            continues_from: input.continues_from[j],
            muted: muted_now || inhibited,
        };
        let mut step = state::step(&prev, obs, &rule, check);
        let firing = step.next.as_ref().map_or(prev.status, |n| n.status) == Status::Firing;
        d.evaluated[first + j] = obs != Observation::Skip;
        if check.muted && would_mail(&prev, obs, &rule, input.slot) {
            d.muted += 1;
        }
        // The steady state (nothing to write, not firing) ends here, before
        // any recipient list is built.
        if step.next.is_none() && !firing {
            continue;
        }
        let own = Recipients::of(t);
        let recipients = if m.inhibit_lower && !higher.is_empty() {
            own.without(&higher)
        } else {
            own.clone()
        };
        if firing {
            higher.extend(own.mailboxes());
        }
        let recipients = if m.notifier == Notifier::Email {
            let a = audience::address(&prev, step, &own, recipients, check.muted, input.slot);
            step = Step {
                next: a.next,
                notice: a.notice,
            };
            a.recipients
        } else {
            recipients
        };
        let Some(mut next) = step.next else { continue };
        next.value = reported.and_then(serde_json::Number::from_f64);
        let since = match step.notice {
            Some(Notice::Resolved) => prev.since,
            _ => next.since,
        };
        d.transitions.push(Transition {
            source: Source::Check(i),
            trigger: j,
            key: key.clone(),
            expected: input.states[j].clone(),
            next: Some(next),
            notice: step.notice,
            value: reported,
            since,
            recipients,
            burn: input.slo.and_then(|s| s.check(j)),
        });
    }
}

/// What trigger `j` of the input observes, and the value it reports: its
/// burn-rate check for an SLO monitor, the monitor's value otherwise.
fn observation(
    input: &MonitorInput,
    j: usize,
    value: Option<f64>,
    firing: bool,
) -> (Observation, Option<f64>) {
    let t = &input.monitor.triggers[j];
    match input.slo {
        Some(slo) => slo.observe(j, t, firing),
        None => observe(input.monitor, t, value, firing),
    }
}

/// Whether the check would have mailed had it not been muted (for stats).
fn would_mail(prev: &AlertState, obs: Observation, rule: &Rule, slot: UnixMillis) -> bool {
    let unmuted = Check {
        slot,
        continues_from: slot,
        muted: false,
    };
    state::step(prev, obs, rule, unmuted).notice.is_some()
}

/// A trigger that a reload removed (the `retired`th the engine holds): its
/// state is deleted, and a firing that was mailed is resolved (mailed with
/// `send_resolved`, unless the monitor is silenced or in maintenance, as
/// any resolve).
pub fn retire(
    retired: usize,
    monitor: &Monitor,
    trigger: usize,
    key: &str,
    stored: &Option<String>,
    ctx: &Context,
    d: &mut Decision,
) -> Option<Transition> {
    stored.as_ref()?;
    let prev = parse_state(stored, key, d);
    let t = &monitor.triggers[trigger];
    let told = prev.status == Status::Firing && prev.notified && t.send_resolved;
    let muted = told && monitor_muted(monitor, ctx);
    d.muted += usize::from(muted);
    Some(Transition {
        source: Source::Retired(retired),
        trigger,
        key: key.to_string(),
        expected: stored.clone(),
        next: None,
        notice: (told && !muted).then_some(Notice::Resolved),
        value: None,
        since: prev.since,
        recipients: Recipients::of(t),
        burn: None,
    })
}

#[cfg(test)]
mod steady_tests;
#[cfg(test)]
mod tests;
