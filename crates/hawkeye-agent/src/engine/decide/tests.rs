//! `decide` with explicit times and states: inhibition across levels,
//! silences, maintenance windows, unreadable states.

use std::time::Duration;

use super::*;
use crate::monitors::parse_monitors;

const HOUR: Duration = Duration::from_secs(3600);
const SLOT: UnixMillis = 1_700_000_000_000;

fn monitor(yaml: &str) -> Monitor {
    parse_monitors(yaml, "t", HOUR).unwrap().monitors.remove(0)
}

const LEVELS: &str = "\
version: 1
monitors:
  - metric: errors
    interval: 10s
    triggers:
      - {threshold: 3, send_resolved: true, to: [oncall@example.com, team@example.com]}
      - {threshold: 10, send_resolved: true, to: [oncall@example.com]}
";

struct Case {
    monitor: Monitor,
    keys: Vec<String>,
    states: Vec<Option<String>>,
    continues: Vec<UnixMillis>,
}

impl Case {
    fn new(yaml: &str) -> Case {
        let monitor = monitor(yaml);
        let n = monitor.triggers.len();
        Case {
            keys: (1..=n).map(|j| format!("k{j}")).collect(),
            states: vec![None; n],
            continues: vec![SLOT; n],
            monitor,
        }
    }

    fn decide(&self, value: f64, silences: &[Silence], now: UnixMillis) -> Decision {
        self.decide_at(SLOT, value, silences, now)
    }

    fn decide_at(
        &self,
        slot: UnixMillis,
        value: f64,
        silences: &[Silence],
        now: UnixMillis,
    ) -> Decision {
        let input = MonitorInput {
            monitor: &self.monitor,
            keys: &self.keys,
            slot,
            interval_ms: 10_000,
            reading: Reading::Value {
                metric: Some(value),
                denominator: None,
            },
            states: &self.states,
            continues_from: &self.continues,
            slo: None,
        };
        let ctx = Context {
            now,
            silences,
            state_ttl_ms: 7 * 24 * 3_600_000,
        };
        decide(&[input], &ctx)
    }
}

fn mails(d: &Decision) -> Vec<(usize, Option<Notice>, Vec<String>)> {
    let mut v: Vec<_> = d
        .transitions
        .iter()
        .map(|t| (t.trigger + 1, t.notice, t.recipients.to.clone()))
        .collect();
    v.sort_by_key(|m| m.0);
    v
}

#[test]
fn a_higher_level_inhibits_the_lower_for_the_recipients_it_mails() {
    let case = Case::new(LEVELS);
    // 12 breaches both levels: level 2 mails oncall; level 1 only team.
    let d = case.decide(12.0, &[], SLOT);
    assert_eq!(
        mails(&d),
        [
            (
                1,
                Some(Notice::Firing),
                vec!["team@example.com".to_string()]
            ),
            (
                2,
                Some(Notice::Firing),
                vec!["oncall@example.com".to_string()]
            ),
        ]
    );
    // 5 breaches level 1 only: both its recipients.
    let d = case.decide(5.0, &[], SLOT);
    assert_eq!(
        mails(&d),
        [(
            1,
            Some(Notice::Firing),
            vec![
                "oncall@example.com".to_string(),
                "team@example.com".to_string()
            ]
        )]
    );
}

#[test]
fn a_fully_inhibited_level_is_muted_and_mails_when_the_higher_one_stops() {
    let mut case =
        Case::new(&LEVELS.replace("oncall@example.com, team@example.com", "oncall@example.com"));
    let d = case.decide(12.0, &[], SLOT);
    assert_eq!(mails(&d)[0], (1, None, vec![]), "level 1 fires silently");
    assert_eq!(mails(&d)[1].1, Some(Notice::Firing));
    assert_eq!(d.muted, 1);
    // Next check: 5, level 2 resolves, level 1 still fires: now it mails.
    case.states = d
        .transitions
        .iter()
        .rev()
        .map(|t| t.next.as_ref().map(|n| n.to_json()))
        .collect();
    case.continues = vec![SLOT + 10_000; 2];
    let d2 = case.decide_at(SLOT + 10_000, 5.0, &[], SLOT + 10_000);
    assert_eq!(
        mails(&d2),
        [
            (
                1,
                Some(Notice::Firing),
                vec!["oncall@example.com".to_string()]
            ),
            (
                2,
                Some(Notice::Resolved),
                vec!["oncall@example.com".to_string()]
            ),
        ]
    );
}

#[test]
fn inhibit_lower_false_mails_every_level() {
    let case = Case::new(&LEVELS.replace(
        "    interval: 10s",
        "    interval: 10s\n    inhibit_lower: false",
    ));
    let d = case.decide(12.0, &[], SLOT);
    assert_eq!(mails(&d)[0].2, ["oncall@example.com", "team@example.com"]);
}

#[test]
fn a_silence_mutes_until_it_ends() {
    let case = Case::new(LEVELS);
    let silence = Silence::new(
        "errors",
        Default::default(),
        None,
        "deploy",
        SLOT - 1000,
        60_000,
    )
    .unwrap();
    let d = case.decide(5.0, std::slice::from_ref(&silence), SLOT);
    assert_eq!(
        mails(&d),
        [(
            1,
            None,
            vec![
                "oncall@example.com".to_string(),
                "team@example.com".to_string()
            ]
        )]
    );
    assert_eq!(d.muted, 1);
    let firing = d.transitions[0].next.clone().unwrap();
    assert_eq!(firing.status, crate::state::Status::Firing);
    assert!(!firing.notified);
    // Another metric's silence does nothing.
    let other = Silence::new(
        "latency",
        Default::default(),
        None,
        "x",
        SLOT - 1000,
        60_000,
    )
    .unwrap();
    assert_eq!(case.decide(5.0, &[other], SLOT).muted, 0);
}

#[test]
fn a_maintenance_window_mutes() {
    // Every day, the whole day, UTC.
    let yaml = LEVELS.replace(
        "    interval: 10s",
        "    interval: 10s\n    maintenance:\n      - {from: '00:00', to: '24:00'}",
    );
    let d = Case::new(&yaml).decide(5.0, &[], SLOT);
    assert_eq!(d.muted, 1);
    assert!(d.transitions.iter().all(|t| t.notice.is_none()));
}

#[test]
fn an_unreadable_state_counts_as_absent_and_is_reported() {
    let mut case = Case::new(LEVELS);
    case.states[0] = Some("{not json".into());
    let d = case.decide(5.0, &[], SLOT);
    assert_eq!(d.unreadable.len(), 1);
    let t = &d.transitions[0];
    assert_eq!(t.notice, Some(Notice::Firing));
    assert_eq!(
        t.expected.as_deref(),
        Some("{not json"),
        "the commit still detects a race"
    );
}

/// The states a decision writes, in trigger order (unchanged ones kept).
fn after(case: &Case, d: &Decision) -> Vec<Option<String>> {
    let mut states = case.states.clone();
    for t in &d.transitions {
        states[t.trigger] = t.next.as_ref().map(|n| n.to_json());
    }
    states
}

fn to(addresses: &[&str]) -> Vec<String> {
    addresses.iter().map(|a| a.to_string()).collect()
}

/// Level 1 mails team only while level 2 covers oncall. When level 2
/// resolves and level 1 still fires, oncall is told of level 1 then; each
/// resolved mail goes to those told of its firing, and only to them.
#[test]
fn a_partly_inhibited_level_tells_each_recipient_once_and_resolves_to_those_told() {
    let mut case = Case::new(LEVELS);
    let d = case.decide(12.0, &[], SLOT);
    case.states = after(&case, &d);
    case.continues = vec![SLOT + 10_000; 2];
    let d = case.decide_at(SLOT + 10_000, 5.0, &[], SLOT + 10_000);
    assert_eq!(
        mails(&d),
        [
            (1, Some(Notice::Firing), to(&["oncall@example.com"])),
            (2, Some(Notice::Resolved), to(&["oncall@example.com"])),
        ],
        "oncall learns that level 1 still fires"
    );
    case.states = after(&case, &d);
    case.continues = vec![SLOT + 20_000; 2];
    let d = case.decide_at(SLOT + 20_000, 7.0, &[], SLOT + 20_000);
    assert_eq!(mails(&d), [], "nothing new: no mail");
    case.continues = vec![SLOT + 30_000; 2];
    let d = case.decide_at(SLOT + 30_000, 0.0, &[], SLOT + 30_000);
    assert_eq!(
        mails(&d),
        [(
            1,
            Some(Notice::Resolved),
            to(&["oncall@example.com", "team@example.com"])
        )]
    );

    // Both levels resolve at once: oncall never heard of level 1.
    let mut case = Case::new(LEVELS);
    let d = case.decide(12.0, &[], SLOT);
    case.states = after(&case, &d);
    case.continues = vec![SLOT + 10_000; 2];
    let d = case.decide_at(SLOT + 10_000, 0.0, &[], SLOT + 10_000);
    assert_eq!(
        mails(&d),
        [
            (1, Some(Notice::Resolved), to(&["team@example.com"])),
            (2, Some(Notice::Resolved), to(&["oncall@example.com"])),
        ]
    );
}
