//! The alert state machine of one trigger (SPEC §7), as pure functions of
//! the previous state, the check's observation and the time: no I/O and no
//! clock of its own, so every path is tested without sleeping.
//!
//! ```text
//!   OK ──breach──▶ PENDING ──(for)th breach──▶ FIRING ──clear──▶ OK
//!    └──────────── breach with for = 1 ─────────▲   │ breach, run_every passed: repeat
//! ```
//!
//! The state is stored as JSON in the store and changed with
//! compare-and-swap; only the agent whose swap succeeds sends the mail. Each
//! state records the check (the interval slot, `now / interval`) that wrote
//! it, so a second agent evaluating the same slot does nothing: breaches are
//! not counted twice towards `for`, and no mail is sent twice.

use serde::{Deserialize, Serialize};

/// Milliseconds since the unix epoch.
pub type UnixMillis = u64;

/// 9999-12-31T23:59:59.999Z, the last time an RFC 3339 date can show.
pub const MAX_TIME: UnixMillis = 253_402_300_799_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Ok,
    /// Breaching, for fewer checks than `for`.
    Pending,
    Firing,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AlertState {
    pub status: Status,
    /// Breaching checks in a row (counted while PENDING, kept while FIRING).
    #[serde(default)]
    pub breaches: u32,
    /// The check (interval slot) that last changed this state.
    #[serde(default)]
    pub check: u64,
    /// When the trigger entered FIRING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<UnixMillis>,
    /// When the last firing or repeat email was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent: Option<UnixMillis>,
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
        if state.since.max(state.last_sent).unwrap_or(0) > MAX_TIME {
            return Err(<serde_json::Error as serde::de::Error>::custom(
                "time past the year 9999",
            ));
        }
        Ok(state)
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

/// The parts of a trigger the state machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub for_checks: u32,
    pub run_every_ms: u64,
    pub send_resolved: bool,
    /// The monitor's interval: check numbers times this are slot times,
    /// which `run_every` is measured in (not the jittery wall clock).
    pub interval_ms: u64,
}

/// The email a transition calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Entered FIRING.
    Firing,
    /// Still FIRING and `run_every` has passed since the last email.
    Repeat,
    /// Left FIRING (only with `send_resolved`).
    Resolved,
}

/// The outcome of one check: the state to write (`None`: leave the stored
/// state as it is, no write at all) and the email to send once written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub next: Option<AlertState>,
    pub notice: Option<Notice>,
}

impl Step {
    fn unchanged() -> Step {
        Step {
            next: None,
            notice: None,
        }
    }
}

/// Applies check number `check` (made at `now`) to `prev`, when nothing is
/// known about the checks between `prev.check` and `check`: a PENDING count
/// continues only if `check` is the very next one.
pub fn step(prev: &AlertState, obs: Observation, rule: &Rule, check: u64, now: UnixMillis) -> Step {
    step_continuing(prev, obs, rule, check, check, now)
}

/// Like [`step`], where the checks from `continues_from` to `check - 1` are
/// known not to have been evaluated (the store could not be read, the
/// window overlapped a store outage, or `missing: keep` had no data): they
/// neither count towards `for` nor break the run of breaches. Any other gap
/// (the agent was not running, or fell behind) restarts the count.
pub fn step_continuing(
    prev: &AlertState,
    obs: Observation,
    rule: &Rule,
    check: u64,
    continues_from: u64,
    now: UnixMillis,
) -> Step {
    // This slot (or a later one) was already applied, by this agent before a
    // restart or by another agent sharing the store.
    if prev.check >= check && *prev != AlertState::default() {
        return Step::unchanged();
    }
    match (obs, prev.status) {
        (Observation::Skip, _) => Step::unchanged(),
        (Observation::Clear, Status::Ok) => Step::unchanged(),
        (Observation::Clear, Status::Pending) => Step {
            next: Some(AlertState {
                check,
                ..AlertState::default()
            }),
            notice: None,
        },
        (Observation::Clear, Status::Firing) => Step {
            next: Some(AlertState {
                check,
                ..AlertState::default()
            }),
            notice: rule.send_resolved.then_some(Notice::Resolved),
        },
        (Observation::Breach, Status::Ok | Status::Pending) => {
            let consecutive = prev.check.saturating_add(1) >= continues_from.min(check);
            let breaches = if prev.status == Status::Ok || !consecutive {
                1
            } else {
                prev.breaches.saturating_add(1)
            };
            if breaches >= rule.for_checks.max(1) {
                Step {
                    next: Some(AlertState {
                        status: Status::Firing,
                        breaches,
                        check,
                        since: Some(now),
                        last_sent: Some(now),
                    }),
                    notice: Some(Notice::Firing),
                }
            } else {
                Step {
                    next: Some(AlertState {
                        status: Status::Pending,
                        breaches,
                        check,
                        since: None,
                        last_sent: None,
                    }),
                    notice: None,
                }
            }
        }
        (Observation::Breach, Status::Firing) => {
            // While FIRING the state changes only when a mail is sent, so
            // `prev.check` is the check of the last mail. Slot times, not
            // the wall clock of the tick (which jitters by milliseconds), so
            // a repeat falls exactly on the first check at or after
            // `run_every`.
            let elapsed = check
                .saturating_sub(prev.check)
                .saturating_mul(rule.interval_ms);
            let due = prev.last_sent.is_none() || elapsed >= rule.run_every_ms;
            if !due {
                return Step::unchanged();
            }
            Step {
                next: Some(AlertState {
                    check,
                    last_sent: Some(now),
                    since: prev.since.or(Some(now)),
                    ..prev.clone()
                }),
                notice: Some(Notice::Repeat),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn rule(for_checks: u32, run_every_ms: u64, send_resolved: bool) -> Rule {
        Rule {
            for_checks,
            run_every_ms,
            send_resolved,
            interval_ms: 1000,
        }
    }

    /// Runs a sequence of observations one interval apart and returns the
    /// notices sent, with the check number each was sent at.
    fn run(rule: &Rule, interval_ms: u64, obs: &[Observation]) -> (AlertState, Vec<(u64, Notice)>) {
        let rule = &Rule {
            interval_ms,
            ..*rule
        };
        let mut state = AlertState::default();
        let mut sent = Vec::new();
        // Skipped checks (`missing: keep`) do not break a run, as in the
        // engine.
        let mut continues_from = 1;
        for (i, o) in obs.iter().enumerate() {
            let check = i as u64 + 1;
            let s = step_continuing(&state, *o, rule, check, continues_from, check * interval_ms);
            if *o != Skip {
                continues_from = check + 1;
            }
            if let Some(next) = s.next {
                state = next;
            }
            if let Some(n) = s.notice {
                sent.push((check, n));
            }
        }
        (state, sent)
    }

    use Notice::*;
    use Observation::*;

    #[test]
    fn first_breach_fires_at_once_then_repeats_every_run_every() {
        // 20 s interval, run_every 1 min: repeats every 3 checks.
        let (state, sent) = run(&rule(1, MIN, false), 20_000, &[Breach; 7]);
        assert_eq!(sent, [(1, Firing), (4, Repeat), (7, Repeat)]);
        assert_eq!(state.status, Status::Firing);
        assert_eq!(state.since, Some(20_000), "since stays at the first firing");
    }

    #[test]
    fn for_needs_consecutive_breaches() {
        let r = rule(3, MIN, false);
        let (state, sent) = run(&r, 1000, &[Breach, Breach, Clear, Breach, Breach]);
        assert!(sent.is_empty());
        assert_eq!((state.status, state.breaches), (Status::Pending, 2));
        let (_, sent) = run(&r, 1000, &[Breach, Breach, Clear, Breach, Breach, Breach]);
        assert_eq!(sent, [(6, Firing)]);
    }

    #[test]
    fn resolved_mail_only_with_send_resolved() {
        let obs = [Breach, Breach, Clear, Clear];
        let (state, sent) = run(&rule(1, MIN, true), 1000, &obs);
        assert_eq!(sent, [(1, Firing), (3, Resolved)]);
        assert_eq!(state.status, Status::Ok);
        let (_, sent) = run(&rule(1, MIN, false), 1000, &obs);
        assert_eq!(sent, [(1, Firing)]);
    }

    #[test]
    fn firing_again_after_resolving_mails_at_once() {
        let (_, sent) = run(&rule(1, 10 * MIN, true), 1000, &[Breach, Clear, Breach]);
        assert_eq!(sent, [(1, Firing), (2, Resolved), (3, Firing)]);
    }

    #[test]
    fn skip_changes_nothing() {
        let (state, sent) = run(&rule(2, MIN, true), 1000, &[Breach, Skip, Skip, Breach]);
        assert_eq!(sent, [(4, Firing)]);
        assert_eq!(state.status, Status::Firing);
        let firing = state.clone();
        assert_eq!(
            step(&firing, Skip, &rule(2, 0, true), 99, 99_000),
            Step::unchanged()
        );
    }

    #[test]
    fn steady_states_write_nothing() {
        let r = rule(1, MIN, true);
        assert_eq!(
            step(&AlertState::default(), Clear, &r, 5, 5000),
            Step::unchanged()
        );
        let firing = step(&AlertState::default(), Breach, &r, 5, 5000)
            .next
            .unwrap();
        assert_eq!(step(&firing, Breach, &r, 6, 6000), Step::unchanged());
    }

    #[test]
    fn a_check_already_applied_is_not_applied_again() {
        // Two agents evaluate check 7: the second finds the state the first
        // wrote and must neither count the breach again nor mail again.
        let r = rule(2, MIN, true);
        let pending = step(&AlertState::default(), Breach, &r, 7, 7000)
            .next
            .unwrap();
        assert_eq!(pending.status, Status::Pending);
        assert_eq!(step(&pending, Breach, &r, 7, 7400), Step::unchanged());
        let firing = step(&pending, Breach, &r, 8, 8000);
        assert_eq!(firing.notice, Some(Firing));
        let firing = firing.next.unwrap();
        assert_eq!(step(&firing, Breach, &r, 8, 8300), Step::unchanged());
        assert_eq!(step(&firing, Clear, &r, 8, 8300), Step::unchanged());
        assert_eq!(step(&firing, Clear, &r, 9, 9000).notice, Some(Resolved));
    }

    #[test]
    fn run_every_zero_repeats_every_check() {
        let (_, sent) = run(&rule(1, 0, false), 1000, &[Breach; 3]);
        assert_eq!(sent, [(1, Firing), (2, Repeat), (3, Repeat)]);
    }

    #[test]
    fn repeats_fall_on_slots_whatever_the_jitter_of_the_clock() {
        // Interval 30 s, run_every 15 min: a repeat every 30 checks, even
        // when each tick wakes up a few milliseconds late or early.
        let r = Rule {
            interval_ms: 30_000,
            ..rule(1, 15 * MIN, false)
        };
        let mut state = AlertState::default();
        let mut sent = Vec::new();
        for check in 1..=91u64 {
            let jitter = [0, 7, 350, 2, 120][check as usize % 5];
            let now = check * 30_000 + 300 + jitter;
            let s = step(&state, Breach, &r, check, now);
            if let Some(next) = s.next {
                state = next;
            }
            if let Some(n) = s.notice {
                sent.push((check, n));
            }
        }
        assert_eq!(
            sent,
            [(1, Firing), (31, Repeat), (61, Repeat), (91, Repeat)]
        );
    }

    #[test]
    fn for_restarts_after_a_gap_nobody_evaluated() {
        // for: 2; a breach at check 10, the agent down until check 490,
        // one breach there: still PENDING (1), the next breach fires.
        let r = rule(2, MIN, false);
        let pending = step(&AlertState::default(), Breach, &r, 10, 10_000)
            .next
            .unwrap();
        let after_gap = step(&pending, Breach, &r, 490, 490_000);
        assert_eq!(after_gap.notice, None);
        let after_gap = after_gap.next.unwrap();
        assert_eq!((after_gap.status, after_gap.breaches), (Status::Pending, 1));
        assert_eq!(
            step(&after_gap, Breach, &r, 491, 491_000).notice,
            Some(Firing)
        );
        // Checks 11..=14 known not evaluated (store down): the run goes on.
        let s = step_continuing(&pending, Breach, &r, 15, 11, 15_000);
        assert_eq!(s.notice, Some(Firing));
        // Known only from 12: check 11 is a hole, the count restarts.
        let s = step_continuing(&pending, Breach, &r, 15, 12, 15_000);
        assert_eq!(s.notice, None);
    }

    #[test]
    fn state_round_trips_as_json() {
        let s = AlertState {
            status: Status::Firing,
            breaches: 2,
            check: 42,
            since: Some(1),
            last_sent: Some(2),
        };
        assert_eq!(AlertState::from_json(&s.to_json()).unwrap(), s);
        let huge = r#"{"status":"firing","since":18446744073709551615}"#;
        assert!(AlertState::from_json(huge).is_err());
        let y10k = r#"{"status":"firing","last_sent":253402300800000}"#;
        assert!(AlertState::from_json(y10k).is_err());
        assert!(s.to_json().contains("\"status\":\"firing\""));
    }
}
