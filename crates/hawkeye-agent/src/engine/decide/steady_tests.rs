//! The shortcut for a steady monitor (no stored state, every trigger
//! clear) decides exactly what the full path decides, over monitors,
//! values, stored states, silences and maintenance windows, steady or not.

use std::time::Duration;

use super::*;
use crate::monitors::parse_monitors;
use crate::state::{AlertState, Status};

const SLOT: UnixMillis = 1_700_000_000_000;

fn monitor(body: &str) -> Monitor {
    let yaml = format!("version: 1\nmonitors:\n  - {body}\n");
    let file = parse_monitors(&yaml, "t", Duration::from_secs(3600)).unwrap();
    file.monitors.into_iter().next().unwrap()
}

/// Monitor bodies: counters and gauges, `missing`, recovery thresholds,
/// `ratio_of`, two levels, a maintenance window that covers every day.
const MONITORS: &[&str] = &[
    "metric: a\n    triggers:\n      - {threshold: 10, to: [x@example.com]}",
    "metric: a\n    type: g\n    triggers:\n      - {threshold: 10, to: [x@example.com]}",
    "metric: a\n    type: g\n    triggers:\n      - {threshold: 10, missing: breach, to: [x@example.com]}",
    "metric: a\n    type: g\n    triggers:\n      - {threshold: 10, missing: keep, to: [x@example.com]}",
    "metric: a\n    triggers:\n      - {threshold: 1, op: '<', to: [x@example.com]}",
    "metric: a\n    type: g\n    triggers:\n      - {threshold: 10, recovery_threshold: 5, to: [x@example.com]}",
    "metric: a\n    ratio_of: b\n    triggers:\n      - {threshold: 0.5, to: [x@example.com]}",
    "metric: a\n    triggers:\n      - {threshold: 10, to: [x@example.com, y@example.com]}\n      - {threshold: 20, to: [x@example.com]}",
    "metric: a\n    maintenance:\n      - {from: '00:00', to: '24:00'}\n    triggers:\n      - {threshold: 10, send_resolved: true, to: [x@example.com]}",
];

/// Stored states a trigger may have: none, OK, PENDING, FIRING, unreadable.
fn states() -> Vec<Option<String>> {
    let at = |status, since| AlertState {
        status,
        breaches: 1,
        check: SLOT - 10_000,
        since,
        last_sent: since,
        notified: since.is_some(),
        ..AlertState::default()
    };
    vec![
        None,
        Some(AlertState::default().to_json()),
        Some(at(Status::Pending, None).to_json()),
        Some(at(Status::Firing, Some(SLOT - 60_000)).to_json()),
        Some("{not json".to_string()),
    ]
}

fn readings() -> Vec<Reading> {
    let value = |metric, denominator| Reading::Value {
        metric,
        denominator,
    };
    vec![
        value(None, None),
        value(Some(0.0), None),
        value(Some(5.0), None),
        value(Some(15.0), None),
        value(Some(25.0), None),
        value(Some(1.0), Some(Some(4.0))),
        value(Some(3.0), Some(Some(4.0))),
        value(Some(3.0), Some(Some(0.0))),
        value(None, Some(None)),
        Reading::NotEvaluated,
    ]
}

/// Both paths' decisions for one input.
fn both(input: &MonitorInput, ctx: &Context) -> (Decision, Decision) {
    let mut fast = Decision::default();
    decide_monitor_with(0, input, ctx, &mut fast, true);
    let mut full = Decision::default();
    decide_monitor_with(0, input, ctx, &mut full, false);
    (fast, full)
}

#[test]
fn the_steady_shortcut_decides_as_the_full_path() {
    let silence = Silence::new("a", Default::default(), None, "x", SLOT - 1000, 60_000).unwrap();
    let silenced = [silence];
    let (mut steady_inputs, mut compared) = (0, 0);
    for body in MONITORS {
        let m = monitor(body);
        let n = m.triggers.len();
        let keys: Vec<String> = (1..=n).map(|j| format!("k{j}")).collect();
        let continues = vec![SLOT; n];
        for state in states() {
            let stored = vec![state.clone(); n];
            for reading in readings() {
                for silences in [&[][..], &silenced[..]] {
                    let input = MonitorInput {
                        monitor: &m,
                        keys: &keys,
                        slot: SLOT,
                        interval_ms: 10_000,
                        reading,
                        states: &stored,
                        continues_from: &continues,
                        slo: None,
                    };
                    let ctx = Context {
                        now: SLOT,
                        silences,
                        state_ttl_ms: 7 * 24 * 3_600_000,
                    };
                    let (fast, full) = both(&input, &ctx);
                    assert_eq!(fast, full, "{body}, {state:?}, {reading:?}");
                    compared += 1;
                    if let Reading::Value {
                        metric,
                        denominator,
                    } = reading
                    {
                        let value = monitor_value(&m, metric, denominator);
                        steady_inputs += usize::from(steady(&input, value));
                    }
                }
            }
        }
    }
    // Both kinds were compared: the shortcut taken, and not.
    assert!(steady_inputs > 0, "no input took the shortcut");
    assert!(steady_inputs < compared, "every input took the shortcut");
}

#[test]
fn a_stored_state_or_a_breach_is_not_steady() {
    let m = monitor(MONITORS[0]);
    let keys = vec!["k1".to_string()];
    let continues = vec![SLOT];
    let input = |states| MonitorInput {
        monitor: &m,
        keys: &keys,
        slot: SLOT,
        interval_ms: 10_000,
        reading: Reading::NotEvaluated,
        states,
        continues_from: &continues,
        slo: None,
    };
    let none = [None];
    assert!(steady(&input(&none), Some(5.0)));
    assert!(!steady(&input(&none), Some(15.0)), "a breach");
    let ok = [Some(AlertState::default().to_json())];
    assert!(!steady(&input(&ok), Some(5.0)), "a stored state");
}
