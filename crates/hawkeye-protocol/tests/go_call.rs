//! The fast reading of Go's `Metric.Handle` request agrees with the general
//! parser: whatever it accepts, the parser reads as the same call, and every
//! call Go writes without an escape is accepted.

use hawkeye_protocol::jsonrpc::{
    go_handle_call, params_object, parse_incoming, Dialect, GoMetricArgs, Incoming,
};
use proptest::prelude::*;

/// Lines near Go's shape: its pieces, with text and ids that are sometimes
/// wrong, and sometimes a character changed.
fn near_go_lines() -> impl Strategy<Value = String> {
    let text = "[a-z0-9:|#,.@\\\\\"\u{1}\u{e9} \n-]{0,12}";
    let id = prop_oneof![
        "[0-9]{1,21}",
        "-?[0-9]{1,3}",
        Just("null".to_string()),
        "0[0-9]"
    ];
    let tail = prop_oneof![
        Just(String::new()),
        Just(" ".into()),
        Just("\r".into()),
        Just("}".into()),
        Just(",\"x\":1".into())
    ];
    (text, id, tail, any::<Option<(prop::sample::Index, char)>>()).prop_map(
        |(text, id, tail, change)| {
            let mut line = format!(
                r#"{{"method":"Metric.Handle","params":[{{"Text":"{text}"}}],"id":{id}}}{tail}"#
            );
            if let Some((at, c)) = change {
                let i = at.index(line.len());
                if line.is_char_boundary(i) && line.is_char_boundary(i + 1) {
                    line.replace_range(i..i + 1, &c.to_string());
                }
            }
            line
        },
    )
}

proptest! {
    #[test]
    fn what_the_fast_path_reads_the_parser_reads_the_same(line in near_go_lines()) {
        if let Some(call) = go_handle_call(line.as_bytes()) {
            let Incoming::Single(Ok(request)) = parse_incoming(&line, 10) else {
                panic!("the parser refuses what the fast path read: {line}");
            };
            prop_assert_eq!(request.method.as_ref(), "Metric.Handle");
            prop_assert_eq!(request.dialect(), Dialect::Go);
            prop_assert!(!request.is_notification());
            prop_assert_eq!(request.id.map(|id| id.get()), Some(call.id));
            let args: GoMetricArgs = params_object(request.params).unwrap();
            prop_assert_eq!(args.text.as_ref(), call.text);
        }
    }

    #[test]
    fn every_call_go_writes_without_escapes_is_read(text in "[a-z0-9:|#,.@\u{e9} -]{0,40}", id in any::<u64>()) {
        // As Go's encoding/json writes it: members in declaration order, no spaces.
        let line = serde_json::json!({"method": "Metric.Handle", "params": [{"Text": text}], "id": id});
        let line = format!(r#"{{"method":{},"params":{},"id":{}}}"#, line["method"], line["params"], line["id"]);
        let call = go_handle_call(line.as_bytes());
        prop_assert!(call.is_some(), "{}", line);
        let id = id.to_string();
        prop_assert_eq!(call.unwrap().id, id.as_str());
        prop_assert_eq!(call.unwrap().text, text.as_str());
    }
}
