//! JSON-RPC messages, newline-delimited on the socket.
//!
//! Two dialects share one socket:
//! - JSON-RPC 2.0: `{"jsonrpc":"2.0","method":..,"params":..,"id":..}`; no `id`
//!   means a notification (no response); an array is a batch.
//! - Go's `net/rpc/jsonrpc` (JSON-RPC 1.0): no `jsonrpc` member, `params` is a
//!   one-element array, responses carry both `result` and `error`, and an error
//!   is a plain string.
//!
//! Requests are parsed borrowing from the line: a batch of a thousand metric
//! lines costs one pass over the bytes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// Standard JSON-RPC error codes, and hawkeye's server errors (-32000..).
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The server holds `HAWKEYE_MAX_SERIES` series and refused a new one.
    pub const TOO_MANY_SERIES: i64 = -32001;
    /// The server's buffer is full (the store has been unreachable too long).
    pub const BUFFER_FULL: i64 = -32002;
    /// A read from the store failed.
    pub const STORE_UNAVAILABLE: i64 = -32003;
    /// The request line is longer than the server's limit; the connection closes.
    pub const LINE_TOO_LONG: i64 = -32004;
    /// The server has too many connections; this one closes.
    pub const TOO_MANY_CONNECTIONS: i64 = -32005;
}

/// The method names.
pub mod method {
    pub const SEND: &str = "metric.send";
    pub const GO_HANDLE: &str = "Metric.Handle";
    pub const QUERY: &str = "metric.query";
    pub const PING: &str = "server.ping";
    pub const STATS: &str = "server.stats";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// JSON-RPC 2.0.
    V2,
    /// JSON-RPC 1.0 as Go's `net/rpc/jsonrpc` speaks it.
    Go,
}

/// An error as sent back to the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: serde_json::Value) -> RpcError {
        self.data = Some(data);
        self
    }

    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(code::INVALID_PARAMS, message)
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}

/// A request as read off the wire, borrowing from the line.
#[derive(Debug, Deserialize)]
pub struct Request<'a> {
    #[serde(default, borrow)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub method: Cow<'a, str>,
    #[serde(default, borrow)]
    pub params: Option<&'a RawValue>,
    /// `None` when the member is absent; `Some("null")` when it is null.
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl<'a> Request<'a> {
    pub fn dialect(&self) -> Dialect {
        if self.jsonrpc.is_some() {
            Dialect::V2
        } else {
            Dialect::Go
        }
    }

    /// A notification gets no response: in 2.0 a request without `id`, in
    /// 1.0 one whose `id` is null.
    pub fn is_notification(&self) -> bool {
        match (self.dialect(), self.id) {
            (Dialect::V2, None) => true,
            (Dialect::V2, Some(_)) => false,
            (Dialect::Go, id) => id.is_none_or(|id| id.get() == "null"),
        }
    }

    /// Checks what serde could not: the version string and the id's type.
    pub fn validate(&self) -> Result<(), RpcError> {
        if let Some(v) = &self.jsonrpc {
            if v != "2.0" {
                return Err(RpcError::new(
                    code::INVALID_REQUEST,
                    format!("unsupported jsonrpc version {v:?}: use \"2.0\" or leave it out"),
                ));
            }
        }
        if let Some(id) = self.id {
            let first = id.get().as_bytes().first().copied().unwrap_or(b'n');
            if matches!(first, b'{' | b'[' | b't' | b'f') {
                return Err(RpcError::new(
                    code::INVALID_REQUEST,
                    "id must be a string, a number or null",
                ));
            }
        }
        Ok(())
    }
}

/// What one line of input holds.
pub enum Incoming<'a> {
    Single(Result<Request<'a>, RpcError>),
    Batch(Vec<Result<Request<'a>, RpcError>>),
    /// The line is not JSON, or is JSON of the wrong shape (error, and whether
    /// the id could be known: it cannot, so responses carry `id: null`).
    Invalid(RpcError),
}

/// Reads one line. The common case (a well-formed request object) is parsed
/// in one pass; only a failure is looked at again to pick the right code.
pub fn parse_incoming(line: &str) -> Incoming<'_> {
    match line.trim_start().as_bytes().first() {
        Some(b'{') => Incoming::Single(parse_request(line)),
        Some(b'[') => match serde_json::from_str::<Vec<&RawValue>>(line) {
            Ok(items) if items.is_empty() => {
                Incoming::Invalid(RpcError::new(code::INVALID_REQUEST, "empty batch"))
            }
            Ok(items) => {
                Incoming::Batch(items.into_iter().map(|r| parse_request(r.get())).collect())
            }
            Err(e) => Incoming::Invalid(parse_error(&e)),
        },
        _ => match serde_json::from_str::<&RawValue>(line) {
            Ok(_) => Incoming::Invalid(RpcError::new(
                code::INVALID_REQUEST,
                "a request must be a JSON object or an array of them",
            )),
            Err(e) => Incoming::Invalid(parse_error(&e)),
        },
    }
}

fn parse_request(text: &str) -> Result<Request<'_>, RpcError> {
    match serde_json::from_str::<Request>(text) {
        Ok(req) => {
            req.validate()?;
            Ok(req)
        }
        Err(e) => match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => Err(RpcError::new(
                code::INVALID_REQUEST,
                format!("not a valid request: {e}"),
            )),
            Err(e) => Err(parse_error(&e)),
        },
    }
}

fn parse_error(e: &serde_json::Error) -> RpcError {
    RpcError::new(code::PARSE_ERROR, format!("parse error: {e}"))
}

/// Appends one response line (with its `\n`) to `out`.
///
/// `id` is the request's raw id, or `None` when it could not be read.
pub fn write_response<T: Serialize>(
    out: &mut Vec<u8>,
    dialect: Dialect,
    id: Option<&RawValue>,
    outcome: &Result<T, RpcError>,
) {
    let id = id.map(RawValue::get).unwrap_or("null");
    // Writing into a Vec cannot fail; serializing our own types cannot either.
    let json = |out: &mut Vec<u8>, v: &dyn erased::Ser| v.write(out);
    match (dialect, outcome) {
        (Dialect::V2, Ok(result)) => {
            out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"result\":");
            json(out, result);
        }
        (Dialect::V2, Err(error)) => {
            out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"error\":");
            json(out, error);
        }
        (Dialect::Go, Ok(result)) => {
            out.extend_from_slice(b"{\"error\":null,\"result\":");
            json(out, result);
        }
        (Dialect::Go, Err(error)) => {
            out.extend_from_slice(b"{\"result\":null,\"error\":");
            json(out, &error.message);
        }
    }
    out.extend_from_slice(b",\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"}\n");
}

/// A tiny object-safe wrapper over `Serialize` for `write_response`.
mod erased {
    pub trait Ser {
        fn write(&self, out: &mut Vec<u8>);
    }
    impl<T: serde::Serialize> Ser for T {
        fn write(&self, out: &mut Vec<u8>) {
            if serde_json::to_writer(&mut *out, self).is_err() {
                out.extend_from_slice(b"null");
            }
        }
    }
}

/// A response as a client reads it (either dialect).
#[derive(Debug, Deserialize)]
pub struct Response {
    #[serde(default)]
    pub id: serde_json::Value,
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

// ---- method parameters and results ----

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

/// `server.stats` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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

    fn single(line: &str) -> Result<Request<'_>, RpcError> {
        match parse_incoming(line) {
            Incoming::Single(r) => r,
            _ => panic!("not single"),
        }
    }

    #[test]
    fn dialects_and_notifications() {
        let r = single(r#"{"jsonrpc":"2.0","method":"server.ping"}"#).unwrap();
        assert_eq!(r.dialect(), Dialect::V2);
        assert!(r.is_notification());
        let r = single(r#"{"jsonrpc":"2.0","method":"server.ping","id":null}"#).unwrap();
        assert!(!r.is_notification(), "2.0 with id null is a request");
        let r = single(r#"{"method":"Metric.Handle","params":[{"Text":"a:1|c"}],"id":7}"#).unwrap();
        assert_eq!(r.dialect(), Dialect::Go);
        assert!(!r.is_notification());
        let r = single(r#"{"method":"Metric.Handle","params":[],"id":null}"#).unwrap();
        assert!(r.is_notification(), "1.0 with id null is a notification");
    }

    #[test]
    fn codes_for_bad_lines() {
        let code_of = |line: &str| match parse_incoming(line) {
            Incoming::Invalid(e) => e.code,
            Incoming::Single(Err(e)) => e.code,
            Incoming::Single(Ok(_)) => 0,
            Incoming::Batch(_) => 1,
        };
        assert_eq!(code_of("{not json"), code::PARSE_ERROR);
        assert_eq!(code_of("\u{1}\u{2}garbage"), code::PARSE_ERROR);
        assert_eq!(code_of("[1,"), code::PARSE_ERROR);
        assert_eq!(code_of("42"), code::INVALID_REQUEST);
        assert_eq!(code_of("[]"), code::INVALID_REQUEST);
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","id":1}"#),
            code::INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","method":5,"id":1}"#),
            code::INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"1.5","method":"x","id":1}"#),
            code::INVALID_REQUEST
        );
        assert_eq!(
            code_of(r#"{"jsonrpc":"2.0","method":"x","id":{}}"#),
            code::INVALID_REQUEST
        );
    }

    #[test]
    fn batch_items_are_parsed_each() {
        let line = r#"[{"jsonrpc":"2.0","method":"a","id":1}, 5, {"jsonrpc":"2.0","method":"b"}]"#;
        let Incoming::Batch(items) = parse_incoming(line) else {
            panic!("not a batch")
        };
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok());
        assert_eq!(items[1].as_ref().unwrap_err().code, code::INVALID_REQUEST);
        assert!(items[2].as_ref().unwrap().is_notification());
    }

    #[test]
    fn responses_in_both_dialects() {
        let id = RawValue::from_string("7".into()).unwrap();
        let mut out = Vec::new();
        write_response(&mut out, Dialect::V2, Some(&id), &Ok::<_, RpcError>("pong"));
        write_response(&mut out, Dialect::Go, Some(&id), &Ok::<_, RpcError>(0));
        write_response::<()>(
            &mut out,
            Dialect::Go,
            Some(&id),
            &Err(RpcError::new(-32602, "bad metric")),
        );
        write_response::<()>(
            &mut out,
            Dialect::V2,
            None,
            &Err(RpcError::new(-32700, "parse")),
        );
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"{"jsonrpc":"2.0","result":"pong","id":7}"#);
        assert_eq!(lines[1], r#"{"error":null,"result":0,"id":7}"#);
        assert_eq!(lines[2], r#"{"result":null,"error":"bad metric","id":7}"#);
        assert_eq!(
            lines[3],
            r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"parse"},"id":null}"#
        );
    }

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
