use super::*;

const S: u64 = 1000;
const MIN: u64 = 60 * S;
const DAY: u64 = 24 * 60 * MIN;

fn rule(for_checks: u32, run_every_ms: u64, send_resolved: bool) -> Rule {
    Rule {
        for_checks,
        run_every_ms,
        send_resolved,
        interval_ms: S,
        keep_firing_for_ms: 0,
        state_ttl_ms: 7 * DAY,
    }
}

fn at(slot: u64) -> Check {
    Check {
        slot,
        continues_from: slot,
        muted: false,
    }
}

/// Runs observations one interval apart (check `i` at slot `i·interval`)
/// and returns the final state and the notices, with the check number each
/// was sent at. `muted[i]` mutes check `i + 1`.
fn run_muted(rule: &Rule, obs: &[Observation], muted: &[bool]) -> (AlertState, Vec<(u64, Notice)>) {
    let mut state = AlertState::default();
    let mut sent = Vec::new();
    // Skipped checks (`missing: keep`) do not break a run, as in the engine.
    let mut continues_from = rule.interval_ms;
    for (i, o) in obs.iter().enumerate() {
        let n = i as u64 + 1;
        let slot = n * rule.interval_ms;
        let check = Check {
            slot,
            continues_from,
            muted: muted.get(i).copied().unwrap_or(false),
        };
        let s = step(&state, *o, rule, check);
        if *o != Skip {
            continues_from = slot + rule.interval_ms;
        }
        if let Some(next) = s.next {
            state = next;
        }
        if let Some(notice) = s.notice {
            sent.push((n, notice));
        }
    }
    (state, sent)
}

fn run(rule: &Rule, obs: &[Observation]) -> (AlertState, Vec<(u64, Notice)>) {
    run_muted(rule, obs, &[])
}

use Notice::*;
use Observation::*;

#[test]
fn first_breach_fires_at_once_then_repeats_every_run_every() {
    // 20 s interval, run_every 1 min: repeats every 3 checks.
    let r = Rule {
        interval_ms: 20 * S,
        ..rule(1, MIN, false)
    };
    let (state, sent) = run(&r, &[Breach; 7]);
    assert_eq!(sent, [(1, Firing), (4, Repeat), (7, Repeat)]);
    assert_eq!(state.status, Status::Firing);
    assert_eq!(state.since, Some(20 * S), "since stays at the first firing");
}

#[test]
fn for_needs_consecutive_breaches() {
    let r = rule(3, MIN, false);
    let (state, sent) = run(&r, &[Breach, Breach, Clear, Breach, Breach]);
    assert!(sent.is_empty());
    assert_eq!((state.status, state.breaches), (Status::Pending, 2));
    let (_, sent) = run(&r, &[Breach, Breach, Clear, Breach, Breach, Breach]);
    assert_eq!(sent, [(6, Firing)]);
}

#[test]
fn resolved_mail_only_with_send_resolved() {
    let obs = [Breach, Breach, Clear, Clear];
    let (state, sent) = run(&rule(1, MIN, true), &obs);
    assert_eq!(sent, [(1, Firing), (3, Resolved)]);
    assert_eq!(state.status, Status::Ok);
    let (_, sent) = run(&rule(1, MIN, false), &obs);
    assert_eq!(sent, [(1, Firing)]);
}

#[test]
fn keep_firing_for_holds_a_flapping_alert() {
    // A value flapping across the threshold at every check, then calm:
    // one firing, and one resolved once it has been clear for 5 s.
    let r = Rule {
        keep_firing_for_ms: 5 * S,
        ..rule(1, 10 * MIN, true)
    };
    let mut obs = Vec::new();
    for _ in 0..10 {
        obs.extend([Breach, Clear]);
    }
    obs.extend([Clear; 8]);
    let (state, sent) = run(&r, &obs);
    // Check 20 is the first clear of the calm run (19 breached); 5 s later,
    // check 25, it resolves.
    assert_eq!(sent, [(1, Firing), (25, Resolved)]);
    assert_eq!(state.status, Status::Ok);
    // Without keep_firing_for the same flapping mails at every change.
    let (_, sent) = run(&rule(1, 10 * MIN, true), &obs);
    assert_eq!(sent.len(), 20);
}

#[test]
fn a_muted_firing_mails_when_the_mute_ends_while_still_firing() {
    let r = rule(1, 10 * MIN, true);
    let obs = [Breach, Breach, Breach, Breach, Clear];
    let (_, sent) = run_muted(&r, &obs, &[true, true, false, false, false]);
    assert_eq!(sent, [(3, Firing), (5, Resolved)]);
    // Resolved while still muted: nobody was told, nobody is told.
    let (state, sent) = run_muted(&r, &[Breach, Clear, Breach], &[true, true, true]);
    assert!(sent.is_empty());
    assert_eq!(state.status, Status::Firing);
    assert!(!state.notified);
    // Muted after the firing mail: no repeat, no resolved.
    let (_, sent) = run_muted(
        &rule(1, 0, true),
        &[Breach, Breach, Clear],
        &[false, true, true],
    );
    assert_eq!(sent, [(1, Firing)]);
}

#[test]
fn firing_again_after_resolving_mails_at_once() {
    let (_, sent) = run(&rule(1, 10 * MIN, true), &[Breach, Clear, Breach]);
    assert_eq!(sent, [(1, Firing), (2, Resolved), (3, Firing)]);
}

#[test]
fn skip_changes_nothing() {
    let (state, sent) = run(&rule(2, MIN, true), &[Breach, Skip, Skip, Breach]);
    assert_eq!(sent, [(4, Firing)]);
    assert_eq!(state.status, Status::Firing);
    assert_eq!(
        step(&state, Skip, &rule(2, 0, true), at(99 * S)),
        Step::unchanged()
    );
}

#[test]
fn steady_states_write_nothing_but_a_long_firing_is_refreshed() {
    let r = rule(1, DAY * 30, true);
    assert_eq!(
        step(&AlertState::default(), Clear, &r, at(5 * S)),
        Step::unchanged()
    );
    let firing = step(&AlertState::default(), Breach, &r, at(5 * S))
        .next
        .unwrap();
    assert_eq!(step(&firing, Breach, &r, at(6 * S)), Step::unchanged());
    // Half the key's TTL later, the same state is written again (no mail)
    // so that the key does not expire under a firing alert.
    let later = firing.check + r.state_ttl_ms / 2;
    let s = step(&firing, Breach, &r, at(later));
    assert_eq!(s.notice, None);
    assert_eq!(s.next.unwrap().check, later);
}

#[test]
fn a_check_already_applied_is_not_applied_again() {
    // Two agents evaluate the same slot: the second finds the state the
    // first wrote and must neither count the breach again nor mail again.
    let r = rule(2, MIN, true);
    let pending = step(&AlertState::default(), Breach, &r, at(7 * S))
        .next
        .unwrap();
    assert_eq!(pending.status, Status::Pending);
    assert_eq!(step(&pending, Breach, &r, at(7 * S)), Step::unchanged());
    let firing = step(&pending, Breach, &r, at(8 * S));
    assert_eq!(firing.notice, Some(Firing));
    let firing = firing.next.unwrap();
    assert_eq!(step(&firing, Breach, &r, at(8 * S)), Step::unchanged());
    assert_eq!(step(&firing, Clear, &r, at(8 * S)), Step::unchanged());
    assert_eq!(step(&firing, Clear, &r, at(9 * S)).notice, Some(Resolved));
}

#[test]
fn for_restarts_after_a_gap_nobody_evaluated() {
    let r = rule(2, MIN, false);
    let pending = step(&AlertState::default(), Breach, &r, at(10 * S))
        .next
        .unwrap();
    let after_gap = step(&pending, Breach, &r, at(490 * S));
    assert_eq!(after_gap.notice, None);
    let after_gap = after_gap.next.unwrap();
    assert_eq!((after_gap.status, after_gap.breaches), (Status::Pending, 1));
    // Checks 11..=14 known not evaluated (store down): the run goes on.
    let known = Check {
        continues_from: 11 * S,
        ..at(15 * S)
    };
    assert_eq!(step(&pending, Breach, &r, known).notice, Some(Firing));
    // Known only from 12: check 11 is a hole, the count restarts.
    let hole = Check {
        continues_from: 12 * S,
        ..at(15 * S)
    };
    assert_eq!(step(&pending, Breach, &r, hole).notice, None);
}

#[test]
fn state_round_trips_as_json_with_its_version() {
    let s = AlertState {
        status: Status::Firing,
        breaches: 2,
        check: 42,
        since: Some(1),
        last_sent: Some(2),
        clear_since: None,
        notified: true,
        ..AlertState::default()
    };
    assert_eq!(AlertState::from_json(&s.to_json()).unwrap(), s);
    assert_eq!(
        s.to_json(),
        r#"{"v":2,"status":"firing","breaches":2,"check":42,"since":1,"last_sent":2,"notified":true}"#
    );
    let huge = r#"{"v":2,"status":"firing","since":18446744073709551615}"#;
    assert!(AlertState::from_json(huge).is_err());
    let y10k = r#"{"v":2,"status":"firing","last_sent":253402300800000}"#;
    assert!(AlertState::from_json(y10k).is_err());
    assert!(
        AlertState::from_json(r#"{"status":"firing"}"#).is_err(),
        "unversioned"
    );
}
