//! The metric line format: a table of valid and invalid lines, and property
//! tests that no input makes the parser panic and that what it accepts means
//! what was written.

use hawkeye_protocol::{
    parse_line, parse_line_with, parse_payload, Limits, LineError, MetricKind, Value,
};
use proptest::prelude::*;

/// Line, then what it must parse to: name, kind, values, sample rate, tags, timestamp.
type ValidCase<'a> = (
    &'a str,
    &'a str,
    MetricKind,
    &'a [Value<'a>],
    f64,
    &'a [(&'a str, &'a str)],
    Option<i64>,
);

#[test]
fn valid_lines() {
    use MetricKind::*;
    use Value::*;
    let cases: &[ValidCase] = &[
        (
            "http.response.400:1|c",
            "http.response.400",
            Counter,
            &[Number(1.0)],
            1.0,
            &[],
            None,
        ),
        ("a:-3|c", "a", Counter, &[Number(-3.0)], 1.0, &[], None),
        ("a:2.5|c|@0.1", "a", Counter, &[Number(2.5)], 0.1, &[], None),
        ("a:1|c|@1", "a", Counter, &[Number(1.0)], 1.0, &[], None),
        (
            "a:1:2:3|c",
            "a",
            Counter,
            &[Number(1.0), Number(2.0), Number(3.0)],
            1.0,
            &[],
            None,
        ),
        (
            "q.depth:42|g",
            "q.depth",
            Gauge,
            &[Number(42.0)],
            1.0,
            &[],
            None,
        ),
        (
            "q.depth:+5|g",
            "q.depth",
            Gauge,
            &[Delta(5.0)],
            1.0,
            &[],
            None,
        ),
        (
            "q.depth:-5|g",
            "q.depth",
            Gauge,
            &[Delta(-5.0)],
            1.0,
            &[],
            None,
        ),
        (
            "q.depth:0.5|g|@0.5",
            "q.depth",
            Gauge,
            &[Number(0.5)],
            0.5,
            &[],
            None,
        ),
        (
            "lat:320|ms",
            "lat",
            Distribution,
            &[Number(320.0)],
            1.0,
            &[],
            None,
        ),
        (
            "lat:320|h",
            "lat",
            Distribution,
            &[Number(320.0)],
            1.0,
            &[],
            None,
        ),
        (
            "lat:320|d",
            "lat",
            Distribution,
            &[Number(320.0)],
            1.0,
            &[],
            None,
        ),
        (
            "lat:1:2.5:1e3|ms",
            "lat",
            Distribution,
            &[Number(1.0), Number(2.5), Number(1000.0)],
            1.0,
            &[],
            None,
        ),
        (
            "lat:.5|ms",
            "lat",
            Distribution,
            &[Number(0.5)],
            1.0,
            &[],
            None,
        ),
        (
            "users:alice|s",
            "users",
            Set,
            &[Member("alice")],
            1.0,
            &[],
            None,
        ),
        (
            "users:a@b.c|s",
            "users",
            Set,
            &[Member("a@b.c")],
            1.0,
            &[],
            None,
        ),
        (
            "a:1|c|#env:prod,route:/checkout",
            "a",
            Counter,
            &[Number(1.0)],
            1.0,
            &[("env", "prod"), ("route", "/checkout")],
            None,
        ),
        (
            "a:1|c|#canary",
            "a",
            Counter,
            &[Number(1.0)],
            1.0,
            &[("canary", "")],
            None,
        ),
        (
            "a:1|c|#url:http://x:8080/y",
            "a",
            Counter,
            &[Number(1.0)],
            1.0,
            &[("url", "http://x:8080/y")],
            None,
        ),
        (
            "a:1|c|@0.5|#k:v",
            "a",
            Counter,
            &[Number(1.0)],
            0.5,
            &[("k", "v")],
            None,
        ),
        (
            "a:1|c|#k:v|@0.5",
            "a",
            Counter,
            &[Number(1.0)],
            0.5,
            &[("k", "v")],
            None,
        ),
        (
            "a:1|c|c:83c0a99c0a54c0c18",
            "a",
            Counter,
            &[Number(1.0)],
            1.0,
            &[],
            None,
        ),
        // DogStatsD's newer fields about the sender: accepted and ignored
        // (DD_CARDINALITY, DD_EXTERNAL_ENV, and any one-letter field).
        (
            "a:1|c|#k:v|c:ci-1|card:orchestrator|e:it-false,cn-app,pu-1234",
            "a",
            Counter,
            &[Number(1.0)],
            1.0,
            &[("k", "v")],
            None,
        ),
        ("a:1|g|x:future", "a", Gauge, &[Number(1.0)], 1.0, &[], None),
        // A key may repeat, as DogStatsD keeps both.
        (
            "a:1|c|#team:a,team:b",
            "a",
            Counter,
            &[Number(1.0)],
            1.0,
            &[("team", "a"), ("team", "b")],
            None,
        ),
        (
            "a:1|c|T1700000000",
            "a",
            Counter,
            &[Number(1.0)],
            1.0,
            &[],
            Some(1_700_000_000),
        ),
        (
            "a:1|c|@0.2|#k:v|c:abc|T1700000000",
            "a",
            Counter,
            &[Number(1.0)],
            0.2,
            &[("k", "v")],
            Some(1_700_000_000),
        ),
        ("  a:1|c\r", "a", Counter, &[Number(1.0)], 1.0, &[], None),
        // Spaces around tags are not part of them, as in DogStatsD.
        (
            "a:1|c|#a:b, c:d ",
            "a",
            Counter,
            &[Number(1.0)],
            1.0,
            &[("a", "b"), ("c", "d")],
            None,
        ),
        (
            "a:1|c|#env:prod |@0.5",
            "a",
            Counter,
            &[Number(1.0)],
            0.5,
            &[("env", "prod")],
            None,
        ),
        (
            "A-b_c.9:1|c",
            "A-b_c.9",
            Counter,
            &[Number(1.0)],
            1.0,
            &[],
            None,
        ),
    ];
    for (line, name, kind, values, rate, tags, ts) in cases {
        let parsed = parse_line(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        assert_eq!(parsed.name, *name, "{line}");
        assert_eq!(parsed.kind, *kind, "{line}");
        assert_eq!(parsed.values.as_slice(), *values, "{line}");
        assert_eq!(parsed.sample_rate, *rate, "{line}");
        assert_eq!(parsed.tags, *tags, "{line}");
        assert_eq!(parsed.timestamp, *ts, "{line}");
    }
}

#[test]
fn invalid_lines_say_which_field_and_why() {
    let long_name = format!("{}:1|c", "a".repeat(201));
    let cases: &[(&str, &str)] = &[
        ("", "empty line"),
        ("   ", "empty line"),
        ("a", "missing ':'"),
        ("a|c", "missing ':'"),
        ("a:1", "missing '|<type>'"),
        (":1|c", "invalid name \"\": empty"),
        (&long_name, "201 bytes long, the limit is 200"),
        ("a b:1|c", "character ' ' is not allowed"),
        ("a/b:1|c", "character '/' is not allowed"),
        ("é:1|c", "character 'é' is not allowed"),
        ("a:1|x", "unknown type \"x\""),
        ("a:1|", "unknown type \"\""),
        ("a:1|C", "unknown type \"C\""),
        ("a:|c", "empty value"),
        ("a:abc|c", "not a finite number"),
        ("a:NaN|c", "not a finite number"),
        ("a:inf|ms", "not a finite number"),
        ("a:1e999|c", "not a finite number"),
        ("a:1::2|ms", "empty value"),
        ("a:0x10|c", "not a finite number"),
        ("a:|s", "empty set member"),
        ("a:x:y|s", "one value per line"),
        ("a:1|c|@0", "sample rate \"0\""),
        ("a:1|c|@1.5", "sample rate \"1.5\""),
        ("a:1|c|@-1", "sample rate \"-1\""),
        ("a:1|c|@x", "sample rate \"x\""),
        ("a:1|c|@", "sample rate \"\""),
        ("a:1|c|@1e-309", "sample rate \"1e-309\""),
        ("a:1|c|@0.5|@0.5", "@<sample rate> appears twice"),
        ("a:1|c|#", "empty tag key"),
        ("a:1|c|#a:1,,b:2", "empty tag key"),
        ("a:1|c|#:v", "empty tag key"),
        ("a:1|c|#a b:1", "keys may not hold spaces"),
        ("a:1|c|#k:1|#j:2", "#<tags> appears twice"),
        ("a:1|c|Tsoon", "invalid timestamp \"soon\""),
        ("a:1|c|T-5", "invalid timestamp"),
        ("a:1|c|T0", "invalid timestamp"),
        ("a:1|c|T1|T2", "T<unix-seconds> appears twice"),
        ("a:1|c|x", "unknown field \"x\""),
        ("a:1|c||", "unknown field \"\""),
        ("a:1|c|E:1", "unknown field \"E:1\""),
        ("a:1|c|cardinality:low", "unknown field \"cardinality:low\""),
        ("a:1|c|1:x", "unknown field \"1:x\""),
    ];
    for (line, want) in cases {
        let err = parse_line(line).expect_err(line);
        let message = err.to_string();
        assert!(
            message.contains(want),
            "{line:?}: {message:?} should contain {want:?}"
        );
    }
}

#[test]
fn limits_refuse_a_line_with_a_clear_error() {
    let many: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
    let line = format!("a:1|c|#{}", many.join(","));
    let e = parse_line(&line).unwrap_err();
    assert_eq!(e, LineError::TooManyTags { max: 100 });
    assert!(e.to_string().contains("HAWKEYE_MAX_TAGS"), "{e}");
    assert!(parse_line(&format!("a:1|c|#{}", many[..100].join(","))).is_ok());

    let long = format!("a:1|c|#k:{}", "v".repeat(4096));
    let e = parse_line(&long).unwrap_err();
    assert!(e.to_string().contains("HAWKEYE_MAX_KEY_BYTES"), "{e}");
    let member = format!("a:{}|s", "m".repeat(4097));
    let e = parse_line(&member).unwrap_err();
    assert!(e.to_string().contains("4097 bytes"), "{e}");

    let tight = Limits {
        max_tags: 1,
        max_key_bytes: 8,
        ..Limits::default()
    };
    assert!(parse_line_with("ab:1|c|#k:v", &tight).is_ok());
    assert!(parse_line_with("abcd:1|c|#k:vv", &tight).is_ok());
    assert_eq!(
        parse_line_with("ab:1|c|#k:v,j", &tight).unwrap_err(),
        LineError::TooManyTags { max: 1 }
    );
    assert_eq!(
        parse_line_with("abcd:1|c|#k:vvv", &tight).unwrap_err(),
        LineError::KeyTooLong { max: 8 }
    );
}

#[test]
fn error_messages_quote_at_most_a_snippet() {
    let line = format!("{}|c", "x".repeat(100_000));
    let message = parse_line(&line).unwrap_err().to_string();
    assert!(message.len() < 200, "{} bytes", message.len());
}

#[test]
fn payloads_hold_several_lines() {
    let items: Vec<_> = parse_payload("a:1|c\n\nb:2|g\nbad\nc:x|s\n").collect();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0].1.as_ref().unwrap().name, "a");
    assert_eq!(items[1].1.as_ref().unwrap().kind, MetricKind::Gauge);
    assert!(matches!(items[2].1, Err(LineError::MissingValue(_))));
    assert_eq!(items[3].0, 3);
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{1,40}"
}

proptest! {
    #[test]
    fn no_input_panics(s in any::<String>()) {
        let _ = parse_line(&s);
        let _ = parse_payload(&s).count();
    }

    #[test]
    fn no_near_miss_panics(s in "[a-z.:|@#,T0-9+-]{0,40}") {
        let _ = parse_line(&s);
    }

    /// Events and service checks: lengths that miss, cut characters,
    /// fields in any order.
    #[test]
    fn no_event_or_service_check_panics(
        head in prop_oneof![Just("_e{"), Just("_sc|")],
        s in "[a-zé:|#,{}0-9mdhtps]{0,40}",
    ) {
        let _ = parse_line(&format!("{head}{s}"));
    }

    #[test]
    fn counters_mean_what_was_written(n in name(), v in -1e9f64..1e9, rate in 0.001f64..=1.0) {
        let line = format!("{n}:{v}|c|@{rate}");
        let parsed = parse_line(&line).unwrap();
        prop_assert_eq!(parsed.name, n.as_str());
        prop_assert_eq!(parsed.values.as_slice(), vec![Value::Number(v)]);
        prop_assert_eq!(parsed.sample_rate, rate);
    }

    /// Integers are read without the float parser: to the same number.
    #[test]
    fn integer_values_mean_what_the_float_parser_reads(digits in "[0-9]{1,20}") {
        let line = format!("n:{digits}|c");
        let parsed = parse_line(&line).unwrap();
        prop_assert_eq!(parsed.values.as_slice(), vec![Value::Number(digits.parse::<f64>().unwrap())]);
    }

    #[test]
    fn tags_round_trip(n in name(), tags in proptest::collection::btree_map("[a-z_]{1,8}", "[a-z0-9/._-]{0,8}", 0..5)) {
        let text: Vec<String> = tags.iter().map(|(k, v)| if v.is_empty() { k.clone() } else { format!("{k}:{v}") }).collect();
        let line = if text.is_empty() { format!("{n}:1|ms") } else { format!("{n}:1|ms|#{}", text.join(",")) };
        let parsed = parse_line(&line).unwrap();
        let got: Vec<(String, String)> = parsed.tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let want: Vec<(String, String)> = tags.into_iter().collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn dogstatsd_events_count_in_the_events_counter_with_their_attributes() {
    use hawkeye_protocol::line::EVENTS_METRIC;
    use hawkeye_protocol::Origin;
    use MetricKind::Counter;
    use Value::Number;
    // Title and text are read by length: the text holds a `|`.
    let e = parse_line(
        "_e{5,8}:Alert|disk |3%|t:error|p:low|s:nagios|h:web1|k:agg|d:1700000000|#env:prod,team:a",
    )
    .unwrap();
    assert_eq!(e.origin, Origin::Event);
    assert_eq!((e.name, e.kind), (EVENTS_METRIC, Counter));
    assert_eq!(e.values.as_slice(), [Number(1.0)]);
    assert_eq!(e.timestamp, Some(1_700_000_000));
    assert_eq!(
        e.tags,
        [
            ("env", "prod"),
            ("team", "a"),
            ("alert_type", "error"),
            ("priority", "low"),
            ("source_type_name", "nagios")
        ]
    );
    // Defaults: info, normal; multi-byte title measured in bytes.
    // As the Datadog client sends them with DD_EXTERNAL_ENV and a cardinality.
    let e = parse_line("_e{6,4}:Deploy|done|t:success|#env:prod|c:ci-1|card:low|e:it-false,cn-app")
        .unwrap();
    assert_eq!(e.tags[0], ("env", "prod"));
    let sc = parse_line("_sc|app.db|0|#env:prod|card:low|e:it-false|m:fine").unwrap();
    assert_eq!(sc.tags, [("env", "prod")]);
    let e = parse_line("_e{6,0}:déjà|").unwrap();
    assert_eq!(e.tags, [("alert_type", "info"), ("priority", "normal")]);
}

#[test]
fn dogstatsd_service_checks_set_a_gauge_to_their_status() {
    use hawkeye_protocol::Origin;
    use MetricKind::Gauge;
    use Value::Number;
    let sc =
        parse_line("_sc|app.db|2|d:1700000000|h:web1|#env:prod|m:connection refused | retrying")
            .unwrap();
    assert_eq!(sc.origin, Origin::ServiceCheck);
    assert_eq!((sc.name, sc.kind), ("app.db", Gauge));
    assert_eq!(sc.values.as_slice(), [Number(2.0)]);
    assert_eq!(sc.tags, [("env", "prod")]);
    assert_eq!(sc.timestamp, Some(1_700_000_000));
    assert_eq!(
        parse_line("_sc|up|0").unwrap().values.as_slice(),
        [Number(0.0)]
    );
}

#[test]
fn bad_events_and_service_checks_say_why() {
    let cases: &[(&str, &str)] = &[
        ("_e{5,3}:abc|d", "shorter than its length says"),
        ("_e{1,1}:a|bc", "longer than its length says"),
        ("_e{0,1}:|a", "needs a title"),
        ("_e{x,1}:a|b", "two byte counts"),
        ("_e{1,1}:a|b|t:fatal", "invalid t:<alert type> \"fatal\""),
        ("_e{1,1}:a|b|p:high", "invalid p:<priority>"),
        ("_e{1,1}:a|b|s:x,y", "invalid s:<source>"),
        ("_e{1,1}:a|b|z", "unknown field \"z\""),
        ("_e{1,1}:a|b|Q:1", "unknown field \"Q:1\""),
        ("_e{1,1}:a|b|#k:v|#j:w", "#<tags> appears twice"),
        ("_sc|app|4", "status must be 0, 1, 2 or 3"),
        ("_sc|app", "status must be 0, 1, 2 or 3"),
        ("_sc|bad name|0", "invalid name"),
        ("_sc|app|0|Q:1", "unknown field \"Q:1\""),
        ("_sc|m:x", "invalid name"),
        ("_sc||m:", "invalid name"),
        ("_e{", "expected _e{"),
    ];
    for (line, needle) in cases {
        let e = parse_line(line).expect_err(line).to_string();
        assert!(e.contains(needle), "{line}: {e}");
    }
}

#[test]
fn a_signed_gauge_adjusts_in_statsd_mode_and_sets_in_dogstatsd_mode() {
    use hawkeye_protocol::GaugeMode;
    let dogstatsd = Limits {
        gauge_mode: GaugeMode::DogStatsd,
        ..Limits::default()
    };
    assert_eq!(
        parse_line("g:-3|g").unwrap().values.as_slice(),
        [Value::Delta(-3.0)]
    );
    assert_eq!(
        parse_line("g:+3|g").unwrap().values.as_slice(),
        [Value::Delta(3.0)]
    );
    let set = |l| parse_line_with(l, &dogstatsd).unwrap().values.to_vec();
    assert_eq!(set("g:-3|g"), [Value::Number(-3.0)]);
    assert_eq!(set("g:+3|g"), [Value::Number(3.0)]);
    // Only gauges have adjustments; other kinds read a sign the same way.
    assert_eq!(set("c:-3|c"), [Value::Number(-3.0)]);
    assert_eq!("dogstatsd".parse(), Ok(GaugeMode::DogStatsd));
    assert!("graphite".parse::<GaugeMode>().is_err());
}
