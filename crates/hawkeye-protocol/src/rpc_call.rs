//! The calling side of JSON-RPC 2.0 on hawkeye's socket: request lines
//! written straight into bytes, and reply lines read back into the id they
//! answer and their outcome. [`jsonrpc`](crate::jsonrpc) is the serving side
//! (reading requests, writing responses); the tests below check that each
//! side reads what the other writes.
//!
//! A `metric.send` request is built one metric line at a time within a byte
//! bound ([`SendRequest`]): a client cuts its batches while it encodes them,
//! without a JSON value per line or a second pass.

use std::io::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::jsonrpc::{method, Response, RpcError};

/// The code an error reply gets when it carries none: Go's JSON-RPC 1.0
/// errors are plain strings.
pub const NO_CODE: i64 = 0;

/// What closes a `metric.send` request: the params array, the object, the line.
const SEND_CLOSE: &[u8] = b"]}\n";

/// `{"jsonrpc":"2.0","id":<id>,"method":<method>`: the start of every request.
fn write_head(out: &mut Vec<u8>, id: u64, method: &str) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    // Writing into a Vec cannot fail, and neither can serializing a &str.
    let _ = write!(out, "{id}");
    out.extend_from_slice(b",\"method\":");
    let _ = serde_json::to_writer(&mut *out, method);
}

/// One request line (newline included):
/// `{"jsonrpc":"2.0","id":<id>,"method":<method>,"params":<params>}`, without
/// `params` when there are none. Fails only when `params` cannot be written
/// as JSON (a map with keys that are not strings, say).
pub fn encode_request<P: Serialize + ?Sized>(
    id: u64,
    method: &str,
    params: Option<&P>,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(64);
    write_head(&mut out, id, method);
    if let Some(params) = params {
        out.extend_from_slice(b",\"params\":");
        serde_json::to_writer(&mut out, params)?;
    }
    out.extend_from_slice(b"}\n");
    Ok(out)
}

/// A `metric.send` request with its metric lines as a by-position array,
/// `{"jsonrpc":"2.0","id":7,"method":"metric.send","params":["a:1|c",...]}`,
/// built one line at a time.
#[derive(Debug, Clone)]
pub struct SendRequest {
    id: u64,
    bytes: Vec<u8>,
    lines: usize,
}

impl SendRequest {
    /// An empty request; `capacity` is a hint of its final size in bytes.
    pub fn new(id: u64, capacity: usize) -> SendRequest {
        let mut bytes = Vec::with_capacity(capacity);
        write_head(&mut bytes, id, method::SEND);
        bytes.extend_from_slice(b",\"params\":[");
        SendRequest {
            id,
            bytes,
            lines: 0,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Metric lines in the request.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Appends `line` if the finished request stays within `max_bytes`, or
    /// if the request holds no line yet (a line longer than the bound goes
    /// alone rather than never); returns whether it did. The line is
    /// encoded once, in place, and taken back when it does not fit.
    pub fn push(&mut self, line: &str, max_bytes: usize) -> bool {
        let before = self.bytes.len();
        if self.lines > 0 {
            self.bytes.push(b',');
        }
        let _ = serde_json::to_writer(&mut self.bytes, line);
        if self.lines > 0 && self.bytes.len() + SEND_CLOSE.len() > max_bytes {
            self.bytes.truncate(before);
            return false;
        }
        self.lines += 1;
        true
    }

    /// The request line, newline included.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(SEND_CLOSE);
        self.bytes
    }
}

/// A reply as a caller reads it, in either dialect.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The id of the request answered; `None` when the reply carries no
    /// number id, as when the server could not read the request's (a parse
    /// error, or -32004 for a line too long, answer with id `null`).
    pub id: Option<u64>,
    /// `result` (`null` when absent), or `error`. An error of any shape
    /// reads as an [`RpcError`]: a string (Go's dialect) as its message with
    /// code [`NO_CODE`]; an object without a usable `message` as its JSON text.
    pub outcome: Result<Value, RpcError>,
}

/// A line that is not a JSON-RPC reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable JSON-RPC reply: {0}")]
pub struct ReplyError(String);

/// Reads one reply line.
pub fn decode_reply(line: &str) -> Result<Reply, ReplyError> {
    // serde would also read a struct from an array (`[1]`, by position).
    if !line.trim_start().starts_with('{') {
        return Err(ReplyError("a reply is a JSON object".into()));
    }
    let response: Response = serde_json::from_str(line).map_err(|e| ReplyError(e.to_string()))?;
    let outcome = match response.error.filter(|e| !e.is_null()) {
        Some(error) => Err(rpc_error(error)),
        None => Ok(response.result.unwrap_or(Value::Null)),
    };
    Ok(Reply {
        id: response.id.as_u64(),
        outcome,
    })
}

/// An `error` member as an [`RpcError`], whatever its shape: a reply that
/// says "error" is an error even when its details are unreadable.
fn rpc_error(error: Value) -> RpcError {
    match error {
        Value::String(message) => RpcError::new(NO_CODE, message),
        Value::Object(mut fields) => {
            let code = fields
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or(NO_CODE);
            let message = match fields.get("message").and_then(Value::as_str) {
                Some(message) => message.to_string(),
                None => Value::Object(fields.clone()).to_string(),
            };
            RpcError {
                code,
                message,
                data: fields.remove("data"),
            }
        }
        other => RpcError::new(NO_CODE, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{
        code, parse_incoming, write_response, Dialect, Incoming, LineText, Rejected, Request,
        SendResult,
    };
    use serde_json::json;
    use serde_json::value::RawValue;

    fn request(line: &[u8]) -> Request<'_> {
        let text = std::str::from_utf8(line).unwrap();
        assert!(text.ends_with('\n'), "{text}");
        match parse_incoming(text.trim_end(), 1) {
            Incoming::Single(Ok(r)) => r,
            _ => panic!("not one valid request: {text}"),
        }
    }

    fn send_lines(line: &[u8]) -> Vec<String> {
        let r = request(line);
        assert_eq!(r.method, method::SEND);
        let lines: Vec<LineText> = serde_json::from_str(r.params.unwrap().get()).unwrap();
        lines.into_iter().map(|l| l.0.into_owned()).collect()
    }

    #[test]
    fn requests_read_back_as_the_server_reads_them() {
        let bytes = encode_request(7, method::QUERY, Some(&json!({"metric": "a\"b"}))).unwrap();
        let r = request(&bytes);
        assert_eq!(r.dialect(), Dialect::V2);
        assert!(!r.is_notification());
        assert_eq!(r.id.unwrap().get(), "7");
        assert_eq!(r.method, method::QUERY);
        assert_eq!(r.params.unwrap().get(), r#"{"metric":"a\"b"}"#);

        let bytes = encode_request::<()>(u64::MAX, method::PING, None).unwrap();
        let r = request(&bytes);
        assert_eq!(r.id.unwrap().get(), u64::MAX.to_string());
        assert!(r.params.is_none());

        let bad = std::collections::HashMap::from([((1, 2), 3)]);
        assert!(encode_request(1, method::SEND, Some(&bad)).is_err());
    }

    #[test]
    fn a_send_request_carries_its_lines_exactly() {
        let lines = [
            "a:1|c",
            "quote\"back\\slash:1|s",
            "tab\tnew\nline:2|g",
            "é:1|c",
        ];
        let mut req = SendRequest::new(3, 0);
        for l in lines {
            assert!(req.push(l, usize::MAX));
        }
        assert_eq!(req.lines(), 4);
        assert_eq!(req.id(), 3);
        let bytes = req.finish();
        assert_eq!(request(&bytes).id.unwrap().get(), "3");
        assert_eq!(send_lines(&bytes), lines);
    }

    #[test]
    fn a_send_request_stays_within_its_bound() {
        let max = 100;
        let line = "metric.name:1|c";
        let mut req = SendRequest::new(1, max);
        let mut taken = 0;
        while req.push(line, max) {
            taken += 1;
        }
        assert!(taken > 1);
        assert_eq!(req.lines(), taken);
        let bytes = req.finish();
        assert!(bytes.len() <= max, "{}", bytes.len());
        // What was refused was taken back whole: the request still parses.
        assert_eq!(send_lines(&bytes).len(), taken);
        // One more line would have passed the bound.
        assert!(bytes.len() + 1 + line.len() + 2 > max);
    }

    #[test]
    fn a_line_longer_than_the_bound_goes_alone() {
        let long = "x".repeat(500);
        let mut req = SendRequest::new(1, 0);
        assert!(req.push(&long, 100), "the first line is always taken");
        assert!(!req.push("a:1|c", 100), "nothing joins it");
        assert_eq!(send_lines(&req.finish()), vec![long]);
    }

    fn reply_to(dialect: Dialect, id: Option<&str>, outcome: Result<Value, RpcError>) -> Reply {
        let id = id.map(|id| RawValue::from_string(id.to_string()).unwrap());
        let mut out = Vec::new();
        write_response(&mut out, dialect, id.as_deref(), &outcome);
        decode_reply(std::str::from_utf8(&out).unwrap().trim_end()).unwrap()
    }

    #[test]
    fn replies_read_back_as_the_server_writes_them() {
        let result = SendResult {
            accepted: 1,
            rejected: vec![Rejected {
                index: 1,
                error: "bad".into(),
            }],
        };
        let value = serde_json::to_value(&result).unwrap();
        let ok = reply_to(Dialect::V2, Some("4"), Ok(value.clone()));
        assert_eq!(ok.id, Some(4));
        assert_eq!(ok.outcome, Ok(value.clone()));

        let error = RpcError::new(code::TOO_MANY_SERIES, "too many series").with_data(value);
        let refused = reply_to(Dialect::V2, Some("5"), Err(error.clone()));
        assert_eq!(
            refused,
            Reply {
                id: Some(5),
                outcome: Err(error)
            }
        );

        let too_long = reply_to(
            Dialect::V2,
            None,
            Err(RpcError::new(code::LINE_TOO_LONG, "line too long")),
        );
        assert_eq!(too_long.id, None);
        assert_eq!(too_long.outcome.unwrap_err().code, code::LINE_TOO_LONG);

        // Go's dialect: both members, one null; errors are strings.
        assert_eq!(
            reply_to(Dialect::Go, Some("6"), Ok(json!(0))).outcome,
            Ok(json!(0))
        );
        let go_error = reply_to(
            Dialect::Go,
            Some("6"),
            Err(RpcError::new(-32602, "bad metric")),
        );
        assert_eq!(go_error.outcome, Err(RpcError::new(NO_CODE, "bad metric")));
    }

    #[test]
    fn odd_replies_are_read_without_losing_the_error() {
        let read = |line: &str| decode_reply(line).unwrap();
        assert_eq!(read(r#"{"id":1}"#).outcome, Ok(Value::Null));
        assert_eq!(
            read(r#"{"id":"1","result":2}"#).id,
            None,
            "ids this side sends are numbers"
        );
        let e = read(r#"{"id":1,"error":{"code":-32004}}"#)
            .outcome
            .unwrap_err();
        assert_eq!(e.code, code::LINE_TOO_LONG);
        assert_eq!(e.message, r#"{"code":-32004}"#);
        let e = read(r#"{"id":1,"error":{"code":"x","message":"m"},"result":1}"#)
            .outcome
            .unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (NO_CODE, "m"));
        assert_eq!(
            read(r#"{"id":1,"error":7}"#).outcome.unwrap_err().message,
            "7"
        );
        for bad in ["", "not json", "[1]", r#"{"id":1"#, "42"] {
            assert!(decode_reply(bad).is_err(), "{bad}");
        }
    }
}
