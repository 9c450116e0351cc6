//! The alert state machine of one trigger (`docs/alerts.md`), as pure
//! functions of the previous state, the check's observation and the time:
//! no I/O and no clock of its own, so every path is tested without sleeping.
//!
//! ```text
//!   OK ──breach──▶ PENDING ──(for)th breach──▶ FIRING ──clear (for keep_firing_for)──▶ OK
//!    └──────────── breach with for = 1 ─────────▲   │ breach, run_every passed: repeat
//! ```
//!
//! Times are the check's slot (its start, unix ms), not the wall clock of
//! the tick, so agents sharing a store compute the same thing and a repeat
//! falls exactly on the first check at or after `run_every`. The state
//! records the slot that last wrote it: a second agent evaluating the same
//! slot does nothing (no double count towards `for`, no second mail).
//!
//! A muted check (silence, maintenance window, inhibition) moves the state
//! as usual but mails nothing; a FIRING state remembers whether its firing
//! was mailed (`notified`), so that when the mute ends while it still
//! fires, the firing mail goes out then, and a resolve that nobody was told
//! about fired mails nothing.

use serde::{Deserialize, Serialize};

/// Milliseconds since the unix epoch.
pub type UnixMillis = u64;

/// 9999-12-31T23:59:59.999Z, the last time an RFC 3339 date can show.
pub const MAX_TIME: UnixMillis = 253_402_300_799_999;

/// The version of the stored state written by this code.
pub const STATE_VERSION: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Ok,
    /// Breaching, for fewer checks than `for`.
    Pending,
    Firing,
}

/// The stored state of one trigger (JSON, `docs/alerts.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// [`STATE_VERSION`]; states without it were written by agents before
    /// versioned keys and are converted by `engine::migrate`.
    pub v: u32,
    pub status: Status,
    /// Breaching checks in a row (counted while PENDING, kept while FIRING).
    #[serde(default)]
    pub breaches: u32,
    /// The slot (unix ms) of the check that last wrote this state.
    #[serde(default)]
    pub check: UnixMillis,
    /// The slot of the check that entered FIRING: the episode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<UnixMillis>,
    /// The slot of the last firing or repeat mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent: Option<UnixMillis>,
    /// While FIRING with `keep_firing_for`: the slot of the first check of
    /// the current run of clear checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_since: Option<UnixMillis>,
    /// Whether this episode's firing was mailed (false while muted).
    #[serde(default)]
    pub notified: bool,
    /// The mailboxes (lower case) told of this episode's firing, when a
    /// higher level kept some of the recipients from it (see
    /// `engine::audience`); states without it told every recipient.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub told: Vec<String>,
    /// The value of the check that wrote this state (`hawkeye alerts`);
    /// absent with no data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Number>,
}

impl Default for AlertState {
    fn default() -> Self {
        AlertState {
            v: STATE_VERSION,
            status: Status::Ok,
            breaches: 0,
            check: 0,
            since: None,
            last_sent: None,
            clear_since: None,
            notified: false,
            told: Vec::new(),
            value: None,
        }
    }
}

impl AlertState {
    pub fn to_json(&self) -> String {
        // A struct of plain fields always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a stored state. Times past [`MAX_TIME`] (year 9999) are
    /// refused: no agent writes them, and they could not be shown as dates.
    pub fn from_json(s: &str) -> Result<AlertState, serde_json::Error> {
        let state: AlertState = serde_json::from_str(s)?;
        let latest = [
            state.since,
            state.last_sent,
            state.clear_since,
            Some(state.check),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(0);
        if latest > MAX_TIME {
            return Err(<serde_json::Error as serde::de::Error>::custom(
                "time past the year 9999",
            ));
        }
        if state.v != STATE_VERSION {
            return Err(<serde_json::Error as serde::de::Error>::custom(format!(
                "state version {} (this agent reads {STATE_VERSION})",
                state.v
            )));
        }
        Ok(state)
    }

    fn ok_at(check: UnixMillis) -> AlertState {
        AlertState {
            check,
            ..AlertState::default()
        }
    }
}

/// What one check says about a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    Breach,
    Clear,
    /// No data with `missing: keep`: as if the check had not happened.
    Skip,
}

/// The parts of a trigger the state machine needs (all times in ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub for_checks: u32,
    pub run_every_ms: u64,
    pub send_resolved: bool,
    /// The monitor's interval: consecutive checks are this far apart.
    pub interval_ms: u64,
    pub keep_firing_for_ms: u64,
    /// A FIRING state not written for half this long is written again, so
    /// that its key (which expires this long after its last write) stays.
    pub state_ttl_ms: u64,
}

/// One check of a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    /// The check's slot (unix ms).
    pub slot: UnixMillis,
    /// The first slot of the run of checks known not to have been evaluated
    /// that ends just before this one (store down, outage, `missing:
    /// keep`); `slot` itself when there is none. Such checks neither count
    /// towards `for` nor break a run of breaches; any other gap restarts it.
    pub continues_from: UnixMillis,
    /// Mail nobody (silence, maintenance, inhibition).
    pub muted: bool,
}

/// The email a transition calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Entered FIRING (or still firing when a mute ended).
    Firing,
    /// Still FIRING and `run_every` has passed since the last email.
    Repeat,
    /// Left FIRING (only with `send_resolved`, and if its firing was mailed).
    Resolved,
}

impl Notice {
    pub fn name(self) -> &'static str {
        match self {
            Notice::Firing => "firing",
            Notice::Repeat => "repeat",
            Notice::Resolved => "resolved",
        }
    }
}

/// The outcome of one check: the state to write (`None`: leave the stored
/// state as it is, no write at all) and the email to send once written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub next: Option<AlertState>,
    pub notice: Option<Notice>,
}

impl Step {
    pub fn unchanged() -> Step {
        Step {
            next: None,
            notice: None,
        }
    }

    fn write(next: AlertState, notice: Option<Notice>) -> Step {
        Step {
            next: Some(next),
            notice,
        }
    }
}

/// Applies one check to `prev`.
pub fn step(prev: &AlertState, obs: Observation, rule: &Rule, check: Check) -> Step {
    // This slot (or a later one) was already applied, by this agent before a
    // restart or by another agent sharing the store.
    if prev.check >= check.slot && *prev != AlertState::default() {
        return Step::unchanged();
    }
    let slot = check.slot;
    match (obs, prev.status) {
        // No data with `missing: keep`: no repeat, only keep the key alive.
        (Observation::Skip, Status::Firing) => {
            if slot.saturating_sub(prev.check) >= rule.state_ttl_ms / 2 {
                Step::write(
                    AlertState {
                        check: slot,
                        ..prev.clone()
                    },
                    None,
                )
            } else {
                Step::unchanged()
            }
        }
        (Observation::Skip, _) | (Observation::Clear, Status::Ok) => Step::unchanged(),
        (Observation::Clear, Status::Pending) => Step::write(AlertState::ok_at(slot), None),
        (Observation::Clear, Status::Firing) => {
            let clear_since = prev.clear_since.unwrap_or(slot);
            if slot.saturating_sub(clear_since) >= rule.keep_firing_for_ms {
                let told = prev.notified && rule.send_resolved && !check.muted;
                return Step::write(AlertState::ok_at(slot), told.then_some(Notice::Resolved));
            }
            let next = AlertState {
                clear_since: Some(clear_since),
                ..prev.clone()
            };
            still_firing(prev, next, rule, check)
        }
        (Observation::Breach, Status::Ok | Status::Pending) => {
            let consecutive =
                prev.check.saturating_add(rule.interval_ms) >= check.continues_from.min(slot);
            let breaches = if prev.status == Status::Ok || !consecutive {
                1
            } else {
                prev.breaches.saturating_add(1)
            };
            if breaches < rule.for_checks.max(1) {
                return Step::write(
                    AlertState {
                        status: Status::Pending,
                        breaches,
                        ..AlertState::ok_at(slot)
                    },
                    None,
                );
            }
            let next = AlertState {
                status: Status::Firing,
                breaches,
                since: Some(slot),
                last_sent: (!check.muted).then_some(slot),
                notified: !check.muted,
                ..AlertState::ok_at(slot)
            };
            let notice = (!check.muted).then_some(Notice::Firing);
            Step::write(next, notice)
        }
        (Observation::Breach, Status::Firing) => {
            let next = AlertState {
                clear_since: None,
                ..prev.clone()
            };
            still_firing(prev, next, rule, check)
        }
    }
}

/// FIRING goes on: `next` is `prev` with this check's changes (the run of
/// clear checks). Mails the firing a mute held back, or a repeat when
/// `run_every` has passed; otherwise writes only if something changed or
/// the key needs refreshing before it expires.
fn still_firing(prev: &AlertState, mut next: AlertState, rule: &Rule, check: Check) -> Step {
    let slot = check.slot;
    next.check = slot;
    if !check.muted && !prev.notified {
        next.notified = true;
        next.last_sent = Some(slot);
        return Step::write(next, Some(Notice::Firing));
    }
    let repeat_due = prev
        .last_sent
        .is_none_or(|sent| slot.saturating_sub(sent) >= rule.run_every_ms);
    if !check.muted && repeat_due {
        next.last_sent = Some(slot);
        return Step::write(next, Some(Notice::Repeat));
    }
    let refresh = slot.saturating_sub(prev.check) >= rule.state_ttl_ms / 2;
    if next.clear_since != prev.clear_since || refresh {
        return Step::write(next, None);
    }
    Step::unchanged()
}

#[cfg(test)]
mod tests;
