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
//! lines costs one pass over the bytes. The contract: docs/protocol.md.

mod array;
mod error;
mod go_call;
mod params;

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

pub use array::{array_items, string_items, ArrayItems, NotAString, StringItems};
pub use error::{code, RpcError};
pub use go_call::{go_handle_call, GoHandleCall};
pub use params::*;

/// The method names.
pub mod method {
    pub const SEND: &str = "metric.send";
    pub const GO_HANDLE: &str = "Metric.Handle";
    pub const QUERY: &str = "metric.query";
    pub const RANGE: &str = "metric.range";
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
            check_id(id.get())?;
        }
        Ok(())
    }
}

/// An id is echoed as written, so it must be one a client can read back: a
/// string, null, or a number that is a finite double (`1e6666666` is not).
fn check_id(id: &str) -> Result<(), RpcError> {
    match id.as_bytes().first() {
        Some(b'"') | Some(b'n') => Ok(()),
        Some(b'-' | b'0'..=b'9') if id.parse::<f64>().is_ok_and(f64::is_finite) => Ok(()),
        Some(b'-' | b'0'..=b'9') => Err(RpcError::new(
            code::INVALID_REQUEST,
            "id is a number out of range: use a string or a number within a double's range",
        )),
        _ => Err(RpcError::new(
            code::INVALID_REQUEST,
            "id must be a string, a number or null",
        )),
    }
}

/// What one line of input holds.
pub enum Incoming<'a> {
    Single(Result<Request<'a>, RpcError>),
    Batch(Batch<'a>),
    /// The line is not JSON, or is JSON of the wrong shape; the id cannot be
    /// known, so the response carries `id: null`.
    Invalid(RpcError),
    /// A batch of more than `max_batch` requests, refused whole (the error
    /// to answer, with `id: null`).
    BatchTooLarge(RpcError),
}

/// A batch, checked to be a well-formed array of 1 to `max_batch` items;
/// its requests are read one at a time by [`Batch::requests`].
pub struct Batch<'a> {
    text: &'a str,
    len: usize,
}

impl<'a> Batch<'a> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn requests(&self) -> impl Iterator<Item = Result<Request<'a>, RpcError>> + 'a {
        // The array was read once already: an item error cannot happen.
        array_items(self.text).map(|item| match item {
            Ok(raw) => parse_request(raw.get()),
            Err(e) => Err(parse_error(&e)),
        })
    }
}

/// Reads one line. The common case (a well-formed request object) is parsed
/// in one pass; only a failure is looked at again to pick the right code. A
/// batch of more than `max_batch` requests is refused whole: its array is
/// read only up to the first request past the bound.
pub fn parse_incoming(line: &str, max_batch: usize) -> Incoming<'_> {
    match line.trim_start().as_bytes().first() {
        Some(b'{') => Incoming::Single(parse_request(line)),
        Some(b'[') => parse_batch(line, max_batch),
        _ => match serde_json::from_str::<&RawValue>(line) {
            Ok(_) => Incoming::Invalid(RpcError::new(
                code::INVALID_REQUEST,
                "a request must be a JSON object or an array of them",
            )),
            Err(e) => Incoming::Invalid(parse_error(&e)),
        },
    }
}

fn parse_batch(line: &str, max_batch: usize) -> Incoming<'_> {
    let mut len = 0;
    for item in array_items(line) {
        if let Err(e) = item {
            return Incoming::Invalid(parse_error(&e));
        }
        len += 1;
        if len > max_batch {
            return Incoming::BatchTooLarge(batch_too_large(max_batch));
        }
    }
    if len == 0 {
        return Incoming::Invalid(RpcError::new(code::INVALID_REQUEST, "empty batch"));
    }
    Incoming::Batch(Batch { text: line, len })
}

/// The error for a batch of more than `max` requests.
fn batch_too_large(max: usize) -> RpcError {
    RpcError::new(
        code::INVALID_REQUEST,
        format!("batch too large: a batch holds at most {max} requests (HAWKEYE_MAX_BATCH); none of this one was read"),
    )
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
    write_response_id(out, dialect, id.map_or("null", RawValue::get), outcome);
}

/// [`write_response`] with the id as its JSON text (`"null"` when it could
/// not be read).
pub fn write_response_id<T: Serialize>(
    out: &mut Vec<u8>,
    dialect: Dialect,
    id: &str,
    outcome: &Result<T, RpcError>,
) {
    // Writing into a Vec cannot fail; serializing our own types cannot either.
    let json = |out: &mut Vec<u8>, v: &dyn erased::Ser| v.write(out);
    match (dialect, outcome) {
        (_, Ok(result)) => {
            begin_result(out, dialect);
            json(out, result);
        }
        (Dialect::V2, Err(error)) => {
            begin_error(out, dialect);
            json(out, error);
        }
        (Dialect::Go, Err(error)) => {
            begin_error(out, dialect);
            json(out, &error.message);
        }
    }
    end_response_id(out, id);
}

/// Appends the answer `0` to the call with id `id` in Go's dialect: what
/// [`write_response_id`] writes for `Ok(0)`, without the serializer (it is
/// the answer to every accepted `Metric.Handle` call).
pub fn write_go_zero(out: &mut Vec<u8>, id: &str) {
    const HEAD: &[u8] = b"{\"error\":null,\"result\":0,\"id\":";
    out.reserve(HEAD.len() + id.len() + 2);
    out.extend_from_slice(HEAD);
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"}\n");
}

/// Starts a response whose result follows (for answers written in pieces).
pub fn begin_result(out: &mut Vec<u8>, dialect: Dialect) {
    out.extend_from_slice(match dialect {
        Dialect::V2 => b"{\"jsonrpc\":\"2.0\",\"result\":",
        Dialect::Go => b"{\"error\":null,\"result\":",
    });
}

/// Starts a response whose error follows: an error object in 2.0, a string
/// in Go's dialect.
pub fn begin_error(out: &mut Vec<u8>, dialect: Dialect) {
    out.extend_from_slice(match dialect {
        Dialect::V2 => b"{\"jsonrpc\":\"2.0\",\"error\":",
        Dialect::Go => b"{\"result\":null,\"error\":",
    });
}

/// Ends a response begun with [`begin_result`] or [`begin_error`].
pub fn end_response(out: &mut Vec<u8>, id: Option<&RawValue>) {
    end_response_id(out, id.map_or("null", RawValue::get));
}

fn end_response_id(out: &mut Vec<u8>, id: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn single(line: &str) -> Result<Request<'_>, RpcError> {
        match parse_incoming(line, 10) {
            Incoming::Single(r) => r,
            _ => panic!("not single"),
        }
    }

    #[test]
    fn go_zero_is_what_the_serializer_writes() {
        for id in ["0", "7", "18446744073709551615"] {
            let (mut direct, mut serialized) = (b"x".to_vec(), b"x".to_vec());
            write_go_zero(&mut direct, id);
            write_response_id(&mut serialized, Dialect::Go, id, &Ok::<u8, RpcError>(0));
            assert_eq!(direct, serialized, "{id}");
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
        let code_of = |line: &str| match parse_incoming(line, 3) {
            Incoming::Invalid(e) | Incoming::BatchTooLarge(e) => e.code,
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
        // An id a client could not read back is not echoed.
        for id in ["1e6666666", "-1e400", "1e309"] {
            let line = format!(r#"{{"jsonrpc":"2.0","method":"x","id":{id}}}"#);
            assert_eq!(code_of(&line), code::INVALID_REQUEST, "{id}");
        }
        for id in [
            "1e300",
            "-7",
            "123456789012345678901234567890",
            "\"x\"",
            "null",
        ] {
            let line = format!(r#"{{"jsonrpc":"2.0","method":"x","id":{id}}}"#);
            assert_eq!(code_of(&line), 0, "{id}");
        }
        // Past the batch bound, the batch is refused whole; at it, it is read.
        assert_eq!(code_of("[1,2,3]"), 1);
        assert_eq!(code_of("[1,2,3,4]"), code::INVALID_REQUEST);
        assert_eq!(code_of("[1,2,3,4,oops"), code::INVALID_REQUEST);
    }

    #[test]
    fn batch_items_are_parsed_each() {
        let line = r#"[{"jsonrpc":"2.0","method":"a","id":1}, 5, {"jsonrpc":"2.0","method":"b"}]"#;
        let Incoming::Batch(batch) = parse_incoming(line, 3) else {
            panic!("not a batch")
        };
        assert_eq!(batch.len(), 3);
        let items: Vec<_> = batch.requests().collect();
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
}
