//! monitors.yaml: both fixture files load with the meaning the spec gives
//! them, and invalid files are rejected with every problem located.

use std::path::Path;
use std::time::Duration;

use hawkeye_agent::monitors::Notifier;
use hawkeye_agent::{load_monitors, parse_monitors, Missing, Op};
use hawkeye_protocol::MetricKind;
use hawkeye_store::Aggregation;

const HOUR: Duration = Duration::from_secs(3600);

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn the_original_format_loads_unchanged() {
    let file = load_monitors(&fixture("monitors-original.yaml"), HOUR).unwrap();
    assert_eq!(file.version, 1);
    assert_eq!(file.monitors.len(), 2);
    let m = &file.monitors[0];
    assert_eq!(m.metric, "http.response.400");
    assert_eq!(m.kind, MetricKind::Counter);
    assert_eq!(
        m.interval,
        Duration::from_secs(20),
        "plain interval is seconds"
    );
    assert_eq!(
        m.window,
        Duration::from_secs(20),
        "window defaults to interval"
    );
    assert_eq!(m.aggregation, Aggregation::Sum);
    assert_eq!(m.notifier, Notifier::Email);
    assert_eq!(m.subject.as_deref(), Some("4xx errors exceeded"));
    assert_eq!(m.triggers.len(), 2);
    let t = &m.triggers[0];
    assert_eq!(t.threshold, 3.0);
    assert_eq!(t.op, Op::Ge);
    assert_eq!(t.for_checks, 1);
    assert_eq!(
        t.run_every,
        Duration::from_secs(300),
        "plain run_every is minutes"
    );
    assert_eq!(t.to, ["oncall@example.com"]);
    assert_eq!(m.triggers[1].run_every, Duration::from_secs(600));
    assert_eq!(m.triggers[1].to, ["oncall+escalation@example.com"]);
    assert_eq!(file.monitors[1].interval, Duration::from_secs(60));
    assert_eq!(file.monitors[1].subject, None);
}

#[test]
fn the_extended_format_loads() {
    let file = load_monitors(&fixture("monitors-extended.yaml"), HOUR).unwrap();
    assert_eq!(file.monitors.len(), 5);
    let ratio = &file.monitors[0];
    assert_eq!(ratio.ratio_of.as_deref(), Some("http.requests"));
    assert!(ratio.percent);
    assert_eq!(ratio.interval, Duration::from_secs(30));
    assert_eq!(ratio.window, Duration::from_secs(300));
    let t = &ratio.triggers[0];
    assert_eq!((t.op, t.for_checks, t.send_resolved), (Op::Gt, 2, true));
    assert_eq!(t.run_every, Duration::from_secs(900));

    let latency = &file.monitors[1];
    assert_eq!(latency.kind, MetricKind::Distribution);
    assert_eq!(latency.aggregation, Aggregation::Percentile(95.0));
    assert_eq!(
        latency.tags.0.get("route").map(String::as_str),
        Some("/checkout")
    );

    assert_eq!(file.monitors[2].aggregation, Aggregation::Max);
    let health = &file.monitors[3];
    assert_eq!(health.aggregation, Aggregation::Min);
    assert_eq!(health.triggers[0].missing, Some(Missing::Breach));
    assert_eq!(health.triggers[0].op, Op::Lt);
    let set = &file.monitors[4];
    assert_eq!(set.kind, MetricKind::Set);
    assert_eq!(set.aggregation, Aggregation::Unique);
    assert_eq!(set.triggers[0].run_every, Duration::from_secs(3600));
}

#[test]
fn durations_with_units_work_everywhere() {
    let file = parse_monitors(
        "version: 1\nmonitors:\n  - metric: a\n    interval: 2m\n    window: 2m\n    triggers:\n      - {threshold: 1, run_every: 90s, to: a@b.example}\n",
        "t.yaml",
        HOUR,
    )
    .unwrap();
    let m = &file.monitors[0];
    assert_eq!(m.interval, Duration::from_secs(120));
    assert_eq!(m.window, Duration::from_secs(120));
    assert_eq!(m.triggers[0].run_every, Duration::from_secs(90));
    assert_eq!(
        m.triggers[0].to,
        ["a@b.example"],
        "a single address may be written alone"
    );
}

const VALID_TRIGGER: &str = "      - threshold: 3\n        to: [oncall@example.com]\n";

fn monitor(body: &str) -> String {
    format!("version: 1\nmonitors:\n  - metric: http.response.400\n{body}")
}

/// `(line, column, fragment of the message)` of one expected problem.
type Expected = (usize, usize, &'static str);

/// Each invalid file, and the `line:col: message-fragment` of every problem
/// it must report (in order).
#[test]
fn invalid_files_are_rejected_with_line_and_column() {
    let cases: Vec<(String, Vec<Expected>)> = vec![
        // Syntax error.
        ("version: 1\nmonitors: [\n".into(), vec![(3, 1, "did not find expected")]),
        // Unknown keys at every level.
        (
            "version: 1\nfoo: 1\nmonitors: []\n".into(),
            vec![(2, 1, "unknown key `foo` in the file")],
        ),
        (
            monitor(&format!("    intervall: 20\n    triggers:\n{VALID_TRIGGER}")),
            vec![(4, 5, "unknown key `intervall` in a monitor; did you mean `interval`?")],
        ),
        (
            monitor("    triggers:\n      - threshold: 3\n        runevery: 5\n        to: [a@example.com]\n"),
            vec![(6, 9, "unknown key `runevery` in a trigger; did you mean `run_every`?")],
        ),
        // Wrong types.
        (
            monitor("    triggers:\n      - threshold: lots\n        to: [a@example.com]\n"),
            vec![(5, 20, "`threshold` must be a number, not \"lots\"")],
        ),
        // Bad values.
        (
            monitor(&format!("    type: x\n    triggers:\n{VALID_TRIGGER}")),
            vec![(4, 11, "unknown type \"x\"")],
        ),
        (
            monitor(&format!("    aggregate: p95\n    triggers:\n{VALID_TRIGGER}")),
            vec![(4, 16, "p95 does not apply to a counter (use sum, rate)")],
        ),
        (
            monitor(&format!("    aggregate: median\n    triggers:\n{VALID_TRIGGER}")),
            vec![(4, 16, "unknown aggregation \"median\"")],
        ),
        (
            monitor(&format!("    interval: 5 parsecs\n    triggers:\n{VALID_TRIGGER}")),
            vec![(4, 15, "invalid duration")],
        ),
        (
            monitor("    triggers:\n      - threshold: 3\n        op: '=>'\n        to: [a@example.com]\n"),
            vec![(6, 13, "unknown op \"=>\"")],
        ),
        (
            monitor("    triggers:\n      - threshold: 3\n        to: []\n"),
            vec![(6, 9, "`to` needs at least one address")],
        ),
        (
            monitor("    triggers:\n      - threshold: 3\n        to: [oncall@example.com, not-an-address]\n"),
            vec![(6, 34, "invalid address \"not-an-address\"")],
        ),
        (
            monitor("    triggers:\n      - threshold: 3\n        text: 'value {{ .cuont }}'\n        to: [a@example.com]\n"),
            vec![(6, 15, "unknown template variable `cuont`")],
        ),
        (
            monitor("    type: g\n    ratio_of: http.requests\n    triggers:\n      - threshold: 3\n        to: [a@example.com]\n"),
            vec![(5, 15, "ratio_of needs counters")],
        ),
        (
            monitor("    triggers:\n      - threshold: 3\n        missing: maybe\n        for: 0\n        to: [a@example.com]\n"),
            vec![(6, 18, "unknown missing \"maybe\""), (7, 14, "for must be at least 1")],
        ),
        (
            monitor("    triggers: []\n"),
            vec![(4, 15, "a monitor needs at least one trigger")],
        ),
        (
            "version: 1\nmonitors:\n  - triggers:\n      - threshold: 3\n        to: [a@example.com]\n".into(),
            vec![(3, 5, "a monitor needs `metric`")],
        ),
        (
            monitor(&format!("    interval: 1500ms\n    triggers:\n{VALID_TRIGGER}")),
            vec![(4, 15, "interval must be a whole number of seconds")],
        ),
        ("".into(), vec![(1, 1, "the file is empty")]),
        (
            "version: 2\nmonitors: []\n".into(),
            vec![(1, 10, "unsupported version 2")],
        ),
    ];
    assert_problems(cases);
}

/// Each file is refused with exactly the problems expected, in order.
fn assert_problems(cases: Vec<(String, Vec<Expected>)>) {
    for (text, expected) in cases {
        let err = parse_monitors(&text, "monitors.yaml", HOUR).expect_err(&text);
        let got: Vec<(usize, usize, String)> = err
            .problems
            .iter()
            .map(|p| {
                let l = p.location.expect("every problem of a file has a location");
                (l.line, l.column, p.message.clone())
            })
            .collect();
        assert_eq!(got.len(), expected.len(), "{text}\n{err}");
        for ((line, col, msg), (el, ec, efrag)) in got.iter().zip(&expected) {
            assert!(msg.contains(efrag), "{msg:?} lacks {efrag:?}\n{text}");
            assert_eq!((*line, *col), (*el, *ec), "{msg}\n--- in ---\n{text}");
        }
    }
}

#[test]
fn every_problem_of_a_file_is_reported_one_per_line() {
    let text = "\
version: 1
monitors:
  - metric: a
    aggregate: last
    bogus: true
    triggers:
      - threshold: 1
        op: '!='
        to: [a@example.com]
      - threshold: 2
        to: [not an address]
  - metric: b
    type: g
    triggers:
      - threshold: 1
        text: '{{ nope }}'
        to: [a@example.com]
";
    let err = parse_monitors(text, "monitors.yaml", HOUR).unwrap_err();
    let lines: Vec<String> = err.to_string().lines().map(String::from).collect();
    assert_eq!(lines.len(), 5, "{err}");
    let prefixes: Vec<&str> = lines
        .iter()
        .map(|l| l.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        prefixes,
        [
            "monitors.yaml:4:16",
            "monitors.yaml:5:5",
            "monitors.yaml:8:13",
            "monitors.yaml:11:14",
            "monitors.yaml:16:15",
        ],
        "{err}"
    );
    assert!(lines[1].contains("unknown key `bogus`"), "{err}");
}

#[test]
fn a_window_or_interval_longer_than_the_retention_is_refused() {
    let yaml = |interval: &str, window: &str| {
        format!(
            "version: 1\nmonitors:\n  - metric: a.b\n    interval: {interval}\n    window: {window}\n    triggers:\n      - threshold: 1\n        to: [x@example.com]\n"
        )
    };
    let hour = Duration::from_secs(3600);
    // A set monitor over a year would make the store enumerate every
    // second of it; a day with 1 h retention would read one hour.
    for window in ["1y", "1d", "61m"] {
        let e = parse_monitors(&yaml("30s", window), "m.yaml", hour)
            .unwrap_err()
            .to_string();
        assert!(e.contains("m.yaml:5:13: monitor a.b: window"), "{e}");
        assert!(
            e.contains("longer than the data retention 1h (HAWKEYE_RETENTION)"),
            "{e}"
        );
    }
    assert!(parse_monitors(&yaml("30s", "1h"), "m.yaml", hour).is_ok());
    assert!(parse_monitors(&yaml("30s", "1d"), "m.yaml", 2 * 24 * hour).is_ok());
    let e = parse_monitors(&yaml("2h", "1m"), "m.yaml", hour)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.yaml:4:15: monitor a.b: interval 2h is longer"),
        "{e}"
    );
    // Built in code: validate_with checks the same.
    let mut file = parse_monitors(&yaml("30s", "1h"), "m.yaml", hour).unwrap();
    file.monitors[0].window = 2 * hour;
    let e = file.validate(hour).unwrap_err().to_string();
    assert!(e.contains("monitor a.b: window 2h is longer"), "{e}");
    assert!(file.validate(3 * hour).is_ok());
}

/// Item 10 of the alerts issue: the messages people found weak.
#[test]
fn config_messages_say_what_to_do() {
    let cases: Vec<(String, Vec<Expected>)> = vec![
        // An unclosed quote points at where the string starts.
        (
            monitor("    subject: \"4xx errors\n    triggers:\n      - threshold: 3\n        to: [a@example.com]\n"),
            vec![(4, 14, "unclosed quote")],
        ),
        // A tab in the indentation.
        (
            "version: 1\nmonitors:\n\t- metric: a\n".into(),
            vec![(3, 1, "tabs are not allowed")],
        ),
        // A broken template says where in the template.
        (
            monitor("    triggers:\n      - threshold: 3\n        text: 'Count {{ count }} then {{ value | round( }}'\n        to: [a@example.com]\n"),
            vec![(6, 15, "at character")],
        ),
        // Several addresses in one string.
        (
            monitor("    triggers:\n      - threshold: 3\n        to: [a@example.com]\n        cc: \"b@example.com, c@example.com\"\n"),
            vec![(7, 13, "write them as a list (cc: [b@example.com, c@example.com])")],
        ),
        // A missing key does not hide the other problems of its monitor.
        (
            "version: 1\nmonitors:\n  - type: x\n    triggers:\n      - threshold: 3\n        op: '=>'\n        to: [a@example.com]\n".into(),
            vec![(3, 5, "a monitor needs `metric`"), (3, 11, "unknown type \"x\""), (6, 13, "unknown op")],
        ),
        // New keys are checked too.
        (
            monitor("    runbook: wiki/4xx\n    triggers:\n      - threshold: 3\n        recovery_threshold: 5\n        to: [a@example.com]\n"),
            vec![(4, 14, "runbook must be an http(s) URL"), (7, 29, "recovery_threshold 5 must not be above")],
        ),
        (
            monitor("    maintenance:\n      - {days: [sat, funday], from: '25:00', to: '02:00', time_zone: Mars/Base}\n    triggers:\n      - {threshold: 3, to: [a@example.com]}\n"),
            vec![(5, 22, "unknown day \"funday\""), (5, 37, "invalid time \"25:00\""), (5, 70, "unknown time zone \"Mars/Base\"")],
        ),
        // Values of the wrong type, in the file's words rather than Rust's.
        (
            monitor("    triggers:\n      - threshold: abc\n        for: -1\n        send_resolved: yes please\n        to: [a@example.com]\n"),
            vec![(5, 20, "`threshold` must be a number, not \"abc\""), (6, 14, "`for` must be a whole number, 0 or more, not -1"), (7, 24, "`send_resolved` must be true or false, not \"yes please\"")],
        ),
    ];
    assert_problems(cases);
}

#[test]
fn the_noise_controls_load() {
    let text = "\
version: 1
monitors:
  - id: checkout-latency
    metric: http.latency
    type: g
    gauge_stale_after: 2m
    inhibit_lower: false
    runbook: https://wiki.example.com/latency
    annotations: {team: payments, tier: 1}
    maintenance:
      - {days: [sat, sun], from: '02:00', to: '04:00', time_zone: Europe/Paris}
      - {from: '23:00', to: '01:00'}
    triggers:
      - id: warn
        threshold: 500
        keep_firing_for: 5m
        recovery_threshold: 400
        annotations: {severity: warning}
        to: [oncall@example.com]
";
    let file = parse_monitors(text, "m.yaml", HOUR).unwrap();
    let m = &file.monitors[0];
    assert_eq!(m.id.as_deref(), Some("checkout-latency"));
    assert_eq!(m.gauge_stale_after, Duration::from_secs(120));
    assert!(!m.inhibit_lower);
    assert_eq!(
        m.runbook.as_deref(),
        Some("https://wiki.example.com/latency")
    );
    assert_eq!(m.annotations.get("tier").map(String::as_str), Some("1"));
    assert_eq!(m.maintenance.len(), 2);
    assert_eq!(m.maintenance[0].time_zone, "Europe/Paris");
    assert_eq!(m.maintenance[1].time_zone, "UTC");
    let t = &m.triggers[0];
    assert_eq!(t.id.as_deref(), Some("warn"));
    assert_eq!(t.keep_firing_for, Duration::from_secs(300));
    assert_eq!(t.recovery_threshold, Some(400.0));
    // Defaults, and the staleness capped by the retention.
    let plain = parse_monitors(
        "version: 1\nmonitors:\n  - {metric: a, type: g, triggers: [{threshold: 1, to: a@example.com}]}\n",
        "m.yaml",
        Duration::from_secs(60),
    )
    .unwrap();
    let m = &plain.monitors[0];
    assert_eq!(
        m.gauge_stale_after,
        Duration::from_secs(60),
        "5m capped by a 1m retention"
    );
    assert!(m.inhibit_lower);
    assert_eq!(m.triggers[0].keep_firing_for, Duration::ZERO);
    // Ids must be unique.
    let e = parse_monitors(
        "version: 1\nmonitors:\n  - {id: a, metric: a, triggers: [{threshold: 1, to: a@example.com}]}\n  - {id: a, metric: b, triggers: [{threshold: 1, to: a@example.com}]}\n",
        "m.yaml",
        HOUR,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("monitor id \"a\" is used twice"),
        "{e}"
    );
}

/// The Go original read `interval: 0` as its default of 60 s: such a file
/// loads the same way, with a located warning, instead of being refused or
/// checking every 0 s.
#[test]
fn interval_zero_is_the_originals_sixty_seconds_with_a_warning() {
    let text = "version: 1\nmonitors:\n  - metric: a\n    interval: 0\n    triggers:\n      - {threshold: 1, to: a@b.example}\n  - metric: b\n    interval: 30\n    triggers:\n      - {threshold: 1, to: a@b.example}\n";
    let file = parse_monitors(text, "m.yaml", HOUR).unwrap();
    assert_eq!(file.monitors[0].interval, Duration::from_secs(60));
    assert_eq!(
        file.monitors[0].window,
        Duration::from_secs(60),
        "the window follows the interval as read"
    );
    assert_eq!(file.monitors[1].interval, Duration::from_secs(30));
    assert_eq!(file.warnings.len(), 1, "{:?}", file.warnings);
    let w = &file.warnings[0];
    assert!(w.starts_with("m.yaml:4:15: "), "{w}");
    assert!(w.contains("interval: 0 is read as 60s"), "{w}");

    let clean = parse_monitors(&text.replace("interval: 0", "interval: 60"), "m.yaml", HOUR);
    assert!(clean.unwrap().warnings.is_empty());
}
