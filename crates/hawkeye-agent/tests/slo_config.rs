//! SLO monitors in monitors.yaml: the three-line form loads with the
//! workbook's triggers, windows may reach the rollup retention, and every
//! mistake is a located `file:line:col` error.

use std::time::Duration;

use hawkeye_agent::{parse_monitors, ConfigErrors, MonitorsFile, Retention};

const DAY: Duration = Duration::from_secs(86_400);

/// The agent's defaults: per-second data for 1h, rollups for 35d.
fn limits() -> Retention {
    Retention {
        per_second: Duration::from_secs(3600),
        rollup: 35 * DAY,
    }
}

fn parse(yaml: &str) -> Result<MonitorsFile, ConfigErrors> {
    parse_monitors(yaml, "m.yaml", limits())
}

/// Every error of `yaml`, one `m.yaml:line:col: message` per line.
fn errors(yaml: &str) -> String {
    parse(yaml).expect_err("an invalid file").to_string()
}

const HEAD: &str = "version: 1\nmonitors:\n";

#[test]
fn three_lines_of_yaml_give_the_workbook_triggers() {
    let file = parse(&format!(
        "{HEAD}  - metric: http.errors\n    ratio_of: http.requests\n    slo: {{objective: 99.9, period: 30d, page: oncall@example.com}}\n"
    ))
    .unwrap();
    let m = &file.monitors[0];
    let slo = m.slo.unwrap();
    assert_eq!((slo.objective, slo.period), (99.9, 30 * DAY));
    let triggers: Vec<(f64, u64, u64)> = m
        .triggers
        .iter()
        .map(|t| {
            let b = t.burn.unwrap();
            (t.threshold, b.long.as_secs(), b.short.as_secs())
        })
        .collect();
    assert_eq!(
        triggers,
        [
            (1.0, 3 * 86_400, 6 * 3600),
            (6.0, 6 * 3600, 30 * 60),
            (14.4, 3600, 5 * 60)
        ]
    );
    assert!(m.triggers.iter().all(|t| t.to == ["oncall@example.com"]));
    assert_eq!(
        m.window,
        Duration::from_secs(300),
        "the shortest short window"
    );
}

#[test]
fn written_burn_rate_triggers_load() {
    let file = parse(&format!(
        "{HEAD}  - metric: e\n    ratio_of: r\n    interval: 30s\n    slo: {{objective: 99.5, period: 7d}}\n    triggers:\n      - {{burn_rate: 10, long_window: 2h, short_window: 10m, for: 2, to: [a@b.c]}}\n"
    ))
    .unwrap();
    let t = &file.monitors[0].triggers[0];
    assert_eq!(t.threshold, 10.0);
    assert_eq!(t.for_checks, 2);
    let b = t.burn.unwrap();
    assert_eq!(
        (b.long, b.short),
        (2 * 3600 * Duration::from_secs(1), Duration::from_secs(600))
    );
}

#[test]
fn a_window_may_reach_the_rollup_retention_but_interval_stays_within_the_retention() {
    parse(&format!(
        "{HEAD}  - metric: x\n    window: 7d\n    triggers: [{{threshold: 1, to: a@b.c}}]\n"
    ))
    .unwrap();
    let e = errors(&format!(
        "{HEAD}  - metric: x\n    window: 40d\n    triggers: [{{threshold: 1, to: a@b.c}}]\n"
    ));
    assert!(e.starts_with("m.yaml:4:13: "), "{e}");
    assert!(e.contains("HAWKEYE_ROLLUP_RETENTION"), "{e}");
    let e = errors(&format!(
        "{HEAD}  - metric: x\n    interval: 2h\n    triggers: [{{threshold: 1, to: a@b.c}}]\n"
    ));
    assert!(e.starts_with("m.yaml:4:15: "), "{e}");
    assert!(e.contains("(HAWKEYE_RETENTION)"), "{e}");
}

/// One case: the monitor's lines after `- metric: e`, and where the error is.
fn assert_error(lines: &str, at: &str, says: &str) {
    let e = errors(&format!("{HEAD}  - metric: e\n{lines}"));
    assert!(
        e.starts_with(&format!("m.yaml:{at}: ")),
        "expected at {at}: {e}"
    );
    assert!(e.contains(says), "expected {says:?}: {e}");
}

#[test]
fn slo_mistakes_are_located() {
    let t =
        "    triggers:\n      - {burn_rate: 14.4, long_window: 1h, short_window: 5m, to: a@b.c}\n";
    let slo = "    slo: {objective: 99.9, period: 30d}\n";
    // An SLO without ratio_of.
    assert_error(&format!("{slo}{t}"), "4:10", "an SLO needs `ratio_of`");
    // Not counters.
    assert_error(
        &format!("    type: g\n    ratio_of: r\n{slo}{t}"),
        "4:11",
        "must be counters",
    );
    // The objective out of range, either way.
    for objective in ["100", "0", "-5", "120"] {
        assert_error(
            &format!("    ratio_of: r\n    slo: {{objective: {objective}, period: 30d}}\n{t}"),
            "5:22",
            "objective must be a percentage between 0 and 100",
        );
    }
    // A period over the rollup retention.
    assert_error(
        &format!("    ratio_of: r\n    slo: {{objective: 99.9, period: 60d}}\n{t}"),
        "5:36",
        "longer than the rollup retention 35d (HAWKEYE_ROLLUP_RETENTION)",
    );
    // short_window >= long_window.
    assert_error(
        &format!("    ratio_of: r\n{slo}    triggers:\n      - {{burn_rate: 14.4, long_window: 5m, short_window: 1h, to: a@b.c}}\n"),
        "7:58",
        "short_window 1h must be shorter than long_window 5m",
    );
    // A window over the period.
    assert_error(
        "    ratio_of: r\n    slo: {objective: 99.9, period: 1d}\n    triggers:\n      - {burn_rate: 1, long_window: 3d, short_window: 6h, to: a@b.c}\n",
        "7:37",
        "long_window 3d is longer than the SLO period 1d",
    );
    // A burn rate of 0 or less.
    assert_error(
        &format!("    ratio_of: r\n{slo}    triggers:\n      - {{burn_rate: 0, long_window: 1h, short_window: 5m, to: a@b.c}}\n"),
        "7:21",
        "burn_rate must be a number above 0",
    );
    // threshold mixed with burn_rate.
    assert_error(
        &format!("    ratio_of: r\n{slo}    triggers:\n      - {{threshold: 3, burn_rate: 14.4, long_window: 1h, short_window: 5m, to: a@b.c}}\n"),
        "7:10",
        "`threshold` cannot be mixed with `burn_rate`",
    );
}

#[test]
fn burn_rate_and_threshold_triggers_stay_on_their_own_monitors() {
    // A threshold trigger on an SLO monitor.
    assert_error(
        "    ratio_of: r\n    slo: {objective: 99.9, period: 30d}\n    triggers:\n      - {threshold: 3, to: a@b.c}\n",
        "7:9",
        "an SLO monitor's triggers are burn-rate triggers",
    );
    // A burn rate without slo.
    assert_error(
        "    ratio_of: r\n    triggers:\n      - {burn_rate: 2, long_window: 1h, short_window: 5m, to: a@b.c}\n",
        "6:21",
        "burn_rate needs `slo` on the monitor",
    );
    // A burn rate without its windows.
    assert_error(
        "    ratio_of: r\n    slo: {objective: 99.9, period: 30d}\n    triggers:\n      - {burn_rate: 2, to: a@b.c}\n",
        "7:9",
        "needs `long_window` and `short_window`",
    );
    // Neither threshold nor burn_rate.
    assert_error(
        "    triggers:\n      - {to: a@b.c}\n",
        "5:9",
        "a trigger needs `threshold`",
    );
    // Default triggers need someone to page, and a period of a day.
    assert_error(
        "    ratio_of: r\n    slo: {objective: 99.9, period: 30d}\n",
        "5:10",
        "an SLO needs `page`",
    );
    assert_error(
        "    ratio_of: r\n    slo: {objective: 99.9, period: 2h, page: a@b.c}\n",
        "5:36",
        "the default burn-rate triggers need a period of at least 1d",
    );
    // A plain monitor still needs triggers.
    assert_error("    type: c\n", "3:5", "a monitor needs `triggers`");
}
