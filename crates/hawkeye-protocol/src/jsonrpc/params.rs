//! The params and results of each method (docs/protocol.md, "Methods").

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::error::RpcError;

/// One metric line in a `metric.send` array, borrowed when it has no escapes.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct LineText<'a>(#[serde(borrow)] pub Cow<'a, str>);

/// `metric.send` params in object form: `{"lines": [...]}` or `{"metrics": [...]}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendObject<'a> {
    #[serde(default, borrow)]
    pub lines: Vec<LineText<'a>>,
    #[serde(default)]
    pub metrics: Vec<MetricObject>,
}

/// A metric given field by field; it is written as a line and parsed like one,
/// so the line format's rules apply (a gauge value with a sign adjusts).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricObject {
    pub name: String,
    pub value: serde_json::Value,
    #[serde(rename = "type", default = "default_type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<TagsParam>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

fn default_type() -> String {
    "c".to_string()
}

/// Tags as a map (`{"route": "/a"}`) or as a list (`["route:/a"]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TagsParam {
    Map(BTreeMap<String, String>),
    List(Vec<String>),
}

impl MetricObject {
    /// The line this object stands for. Each field is checked for the
    /// characters that separate fields of a line, so that one field cannot
    /// change another (a tag value `b|@0.001` would otherwise set a rate).
    pub fn to_line(&self) -> Result<String, String> {
        let value = match &self.value {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => return Err(format!("value must be a number or a string, not {other}")),
        };
        forbid("name", &self.name, &[':', '|', '@', '#', ','])?;
        forbid("value", &value, &['|', '#'])?;
        forbid("type", &self.kind, &[':', '|', '@', '#', ','])?;
        let mut line = format!("{}:{}|{}", self.name, value, self.kind);
        if let Some(rate) = self.sample_rate {
            line.push_str(&format!("|@{rate}"));
        }
        let tags: Vec<String> = match &self.tags {
            None => Vec::new(),
            Some(TagsParam::Map(m)) => {
                for (k, v) in m {
                    forbid("tag key", k, &[':', '|', ',', '#'])?;
                    forbid("tag value", v, &['|', ','])?;
                }
                m.iter()
                    .map(|(k, v)| {
                        if v.is_empty() {
                            k.clone()
                        } else {
                            format!("{k}:{v}")
                        }
                    })
                    .collect()
            }
            Some(TagsParam::List(l)) => {
                for t in l {
                    forbid("tag", t, &['|', ',', '#'])?;
                }
                l.clone()
            }
        };
        if !tags.is_empty() {
            line.push_str("|#");
            line.push_str(&tags.join(","));
        }
        if let Some(ts) = self.timestamp {
            line.push_str(&format!("|T{ts}"));
        }
        Ok(line)
    }
}

/// An error if `text` holds one of `chars` or a control character.
fn forbid(what: &str, text: &str, chars: &[char]) -> Result<(), String> {
    match text.chars().find(|c| chars.contains(c) || c.is_control()) {
        Some(c) => Err(format!("{what} {text:?} may not contain {c:?}")),
        None => Ok(()),
    }
}

/// `Metric.Handle`'s argument, as Go's `struct{ Text string }` marshals it.
#[derive(Debug, Deserialize, Serialize)]
pub struct GoMetricArgs<'a> {
    #[serde(rename = "Text", borrow)]
    pub text: Cow<'a, str>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub index: usize,
    pub error: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SendResult {
    pub accepted: usize,
    pub rejected: Vec<Rejected>,
}

/// `metric.query` params.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    pub metric: String,
    /// `"60s"`, `"5m"`, or a number of seconds.
    pub window: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// `c`, `g`, `ms`/`h`/`d` or `s`; needed only when one name has several types.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub value: Option<f64>,
    pub window_secs: u64,
}

/// `metric.range` params: a `metric.query` cut into steps
/// (docs/protocol.md, "metric.range").
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RangeParams {
    pub metric: String,
    /// The range, ending now: `"1h"`, or a number of seconds.
    pub window: serde_json::Value,
    /// One point per step: `"1m"`, or a number of seconds. Absent: the
    /// window cut into about [`RANGE_DEFAULT_POINTS`] steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// How many steps a `metric.range` without `step` asks for.
pub const RANGE_DEFAULT_POINTS: u64 = 60;

/// `metric.range` result: `[unix_seconds, value]` per step with data,
/// oldest first, each second the start of its step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeResult {
    pub points: Vec<(i64, f64)>,
    pub step_secs: u64,
}

/// `server.stats` result: what the server took, and what it refused and why.
/// Every field is described in docs/protocol.md ("server.stats"); a field
/// missing from an older server's answer reads as 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatsResult {
    pub connections: u64,
    pub connections_total: u64,
    pub lines_accepted: u64,
    pub lines_rejected: u64,
    pub flushes: u64,
    pub store_errors: u64,
    /// Aggregates (series × second) held in memory, not yet written.
    pub buffered: u64,
    /// Events dropped because the buffer was full.
    pub dropped: u64,
    pub series: u64,
    /// New connections refused at `HAWKEYE_MAX_CONNECTIONS` (none was idle).
    pub connections_refused: u64,
    /// Idle connections closed to admit a new one at `HAWKEYE_MAX_CONNECTIONS`.
    pub connections_closed_idle: u64,
    /// Connections closed for a line over `HAWKEYE_MAX_LINE_BYTES`.
    pub connections_closed_line_too_long: u64,
    /// Connections closed for a line incomplete past `HAWKEYE_LINE_TIMEOUT`.
    pub connections_closed_line_timeout: u64,
    /// Connections closed because partial lines passed `HAWKEYE_MAX_PENDING_BYTES`.
    pub connections_closed_input_budget: u64,
    /// Bytes of request lines held now (read, not yet answered).
    pub pending_bytes: u64,
    /// Batches refused whole for holding more than `HAWKEYE_MAX_BATCH` items.
    pub batches_refused: u64,
    /// Times a connection stopped reading until its client read the answers
    /// (unsent output past `HAWKEYE_MAX_OUTPUT_BYTES`).
    pub output_waits: u64,
    /// Lines refused for more than `HAWKEYE_MAX_TAGS` tags.
    pub lines_rejected_tags: u64,
    /// Lines refused for a series key or set member over `HAWKEYE_MAX_KEY_BYTES`.
    pub lines_rejected_key_bytes: u64,
    /// Lines refused because a value or its aggregate would leave the range
    /// the store can sum (±1e200, or not finite).
    pub lines_rejected_range: u64,
    /// Datagrams received.
    pub datagrams: u64,
    /// Datagrams longer than `HAWKEYE_DGRAM_MAX_BYTES`, cut short.
    pub datagrams_truncated: u64,
    /// Bytes lost to those cuts.
    pub datagram_bytes_truncated: u64,
    /// Answered events the server could not write before it stopped.
    pub events_lost: u64,
    /// DogStatsD events taken (`_e{...}`, counted in the `events` counter).
    pub dogstatsd_events: u64,
    /// DogStatsD service checks taken (`_sc|...`, stored as gauges).
    pub service_checks: u64,
    /// Datagrams the kernel dropped on the UDP socket, its receive buffer
    /// full (`HAWKEYE_UDP_RCVBUF`).
    pub udp_drops: u64,
}

/// Reads params that may be given bare or wrapped in a one-element array (as
/// Go's net/rpc and by-position JSON-RPC callers send them).
pub fn params_object<'a, T: Deserialize<'a>>(params: Option<&'a RawValue>) -> Result<T, RpcError> {
    let raw = params.ok_or_else(|| RpcError::invalid_params("params are required"))?;
    let text = raw.get().trim_start();
    let result = if text.starts_with('[') {
        serde_json::from_str::<[T; 1]>(raw.get()).map(|[t]| t)
    } else {
        serde_json::from_str::<T>(raw.get())
    };
    result.map_err(|e| RpcError::invalid_params(format!("invalid params: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::code;

    #[test]
    fn lines_borrow_when_unescaped() {
        let raw = r#"["a:1|c","b:\u0031|c"]"#;
        let lines: Vec<LineText> = serde_json::from_str(raw).unwrap();
        assert!(matches!(lines[0].0, Cow::Borrowed("a:1|c")));
        assert_eq!(lines[1].0, "b:1|c");
    }

    #[test]
    fn params_bare_or_wrapped() {
        let bare = RawValue::from_string(r#"{"metric":"x","window":"60s"}"#.into()).unwrap();
        let wrapped = RawValue::from_string(r#"[{"metric":"x","window":60}]"#.into()).unwrap();
        let a: QueryParams = params_object(Some(&bare)).unwrap();
        let b: QueryParams = params_object(Some(&wrapped)).unwrap();
        assert_eq!(a.metric, "x");
        assert_eq!(b.window, serde_json::json!(60));
        let bad = RawValue::from_string(r#"{"metric":1}"#.into()).unwrap();
        let e = params_object::<QueryParams>(Some(&bad)).unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
    }

    #[test]
    fn metric_object_fields_cannot_reach_other_fields() {
        for bad in [
            serde_json::json!({"name": "a", "value": 1, "tags": {"k": "b|@0.001"}}),
            serde_json::json!({"name": "a", "value": 1, "tags": {"k": "x,y:z"}}),
            serde_json::json!({"name": "a", "value": 1, "tags": ["k:v|#x"]}),
            serde_json::json!({"name": "a:1|c\nb", "value": 1}),
            serde_json::json!({"name": "a", "value": "1|@0.5", "type": "c"}),
            serde_json::json!({"name": "a", "value": "x\ny:1|c", "type": "s"}),
        ] {
            let m: MetricObject = serde_json::from_value(bad.clone()).unwrap();
            assert!(m.to_line().is_err(), "{bad}");
        }
    }

    #[test]
    fn metric_objects_become_lines() {
        let m: MetricObject = serde_json::from_value(serde_json::json!({
            "name": "http.latency", "value": 12.5, "type": "ms",
            "sample_rate": 0.5, "tags": {"route": "/a", "canary": ""}
        }))
        .unwrap();
        assert_eq!(
            m.to_line().unwrap(),
            "http.latency:12.5|ms|@0.5|#canary,route:/a"
        );
    }
}
