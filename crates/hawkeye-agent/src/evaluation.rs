//! From what the store returned to what each trigger observes.
//!
//! Decisions where the spec is silent:
//! - A counter window with no data is a count of 0 (statsd semantics: no
//!   increments), unless the trigger sets `missing` explicitly, which wins.
//!   So `op: "<"` on a counter fires when traffic stops.
//! - A ratio whose denominator is 0 or has no data is "no data" (`missing`
//!   decides); a numerator with no data over a non-zero denominator is 0.
//! - `missing: keep` skips the check entirely: the state, including a
//!   PENDING count towards `for`, stays as it was, and no repeat is sent.
//! - With `recovery_threshold`, a FIRING trigger compares the value with it
//!   (same op) instead of the threshold: it stays firing until the value is
//!   past the recovery threshold (Datadog's recovery thresholds).

use hawkeye_protocol::MetricKind;

use crate::monitors::{Missing, Monitor, Trigger};
use crate::state::Observation;

/// The value of a monitor's window: the metric alone, or metric / ratio_of
/// (× 100 with `percent`).
pub fn monitor_value(
    monitor: &Monitor,
    metric: Option<f64>,
    other: Option<Option<f64>>,
) -> Option<f64> {
    match (&monitor.ratio_of, other) {
        (Some(_), Some(denominator)) => {
            let denominator = denominator.filter(|d| *d != 0.0)?;
            let ratio = metric.unwrap_or(0.0) / denominator;
            Some(if monitor.percent {
                ratio * 100.0
            } else {
                ratio
            })
        }
        _ => metric,
    }
}

/// What `trigger` makes of `value`, and the value to report (a counter's
/// empty window reported as 0). `firing`: the trigger is FIRING now, so
/// its recovery threshold (if any) applies.
pub fn observe(
    monitor: &Monitor,
    trigger: &Trigger,
    value: Option<f64>,
    firing: bool,
) -> (Observation, Option<f64>) {
    let threshold = match trigger.recovery_threshold {
        Some(recovery) if firing => recovery,
        _ => trigger.threshold,
    };
    let value = match (value, trigger.missing) {
        (None, None) if monitor.kind == MetricKind::Counter && monitor.ratio_of.is_none() => {
            Some(0.0)
        }
        (v, _) => v,
    };
    let obs = match value {
        Some(v) if trigger.op.breaches(v, threshold) => Observation::Breach,
        Some(_) => Observation::Clear,
        None => match trigger.missing.unwrap_or(Missing::Ok) {
            Missing::Ok => Observation::Clear,
            Missing::Breach => Observation::Breach,
            Missing::Keep => Observation::Skip,
        },
    };
    (obs, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitors::{parse_monitors, Op};

    fn monitor(yaml: &str) -> Monitor {
        parse_monitors(yaml, "test", std::time::Duration::from_secs(3600))
            .unwrap()
            .monitors
            .remove(0)
    }

    #[test]
    fn ops_compare_with_the_threshold() {
        let m = monitor(
            "version: 1\nmonitors:\n  - metric: x\n    type: g\n    triggers:\n      - {threshold: 3, to: [a@b.c]}\n",
        );
        let mut t = m.triggers[0].clone();
        for (op, v, breach) in [
            (Op::Ge, 3.0, true),
            (Op::Ge, 2.9, false),
            (Op::Gt, 3.0, false),
            (Op::Gt, 3.1, true),
            (Op::Lt, 2.0, true),
            (Op::Lt, 3.0, false),
            (Op::Le, 3.0, true),
            (Op::Le, 3.5, false),
        ] {
            t.op = op;
            let expected = if breach {
                Observation::Breach
            } else {
                Observation::Clear
            };
            assert_eq!(observe(&m, &t, Some(v), false).0, expected, "{v} {op} 3");
        }
    }

    #[test]
    fn a_firing_trigger_recovers_only_past_its_recovery_threshold() {
        let m = monitor(
            "version: 1\nmonitors:\n  - metric: x\n    type: g\n    triggers:\n      - {threshold: 90, recovery_threshold: 70, to: [a@b.c]}\n",
        );
        let t = &m.triggers[0];
        assert_eq!(observe(&m, t, Some(80.0), false).0, Observation::Clear);
        assert_eq!(
            observe(&m, t, Some(80.0), true).0,
            Observation::Breach,
            "still above 70"
        );
        assert_eq!(observe(&m, t, Some(69.0), true).0, Observation::Clear);
    }

    #[test]
    fn missing_data() {
        let gauge = monitor(
            "version: 1\nmonitors:\n  - metric: x\n    type: g\n    triggers:\n      - {threshold: 1, op: '<', to: [a@b.c]}\n",
        );
        let mut t = gauge.triggers[0].clone();
        assert_eq!(observe(&gauge, &t, None, false), (Observation::Clear, None));
        t.missing = Some(Missing::Breach);
        assert_eq!(
            observe(&gauge, &t, None, false),
            (Observation::Breach, None)
        );
        t.missing = Some(Missing::Keep);
        assert_eq!(observe(&gauge, &t, None, false), (Observation::Skip, None));

        let counter = monitor(
            "version: 1\nmonitors:\n  - metric: x\n    triggers:\n      - {threshold: 5, op: '<', to: [a@b.c]}\n",
        );
        let mut t = counter.triggers[0].clone();
        assert_eq!(
            observe(&counter, &t, None, false),
            (Observation::Breach, Some(0.0)),
            "no increments is 0"
        );
        t.missing = Some(Missing::Ok);
        assert_eq!(
            observe(&counter, &t, None, false),
            (Observation::Clear, None),
            "explicit missing wins"
        );
    }

    #[test]
    fn ratios() {
        let m = monitor(
            "version: 1\nmonitors:\n  - metric: e\n    ratio_of: r\n    percent: true\n    triggers:\n      - {threshold: 1, to: [a@b.c]}\n",
        );
        assert_eq!(monitor_value(&m, Some(5.0), Some(Some(200.0))), Some(2.5));
        assert_eq!(monitor_value(&m, None, Some(Some(200.0))), Some(0.0));
        assert_eq!(monitor_value(&m, Some(5.0), Some(Some(0.0))), None);
        assert_eq!(monitor_value(&m, Some(5.0), Some(None)), None);
        let (obs, v) = observe(&m, &m.triggers[0], None, false);
        assert_eq!(
            (obs, v),
            (Observation::Clear, None),
            "a ratio with no data is not a 0 count"
        );
    }
}
