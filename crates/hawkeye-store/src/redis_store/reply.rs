//! Reading Redis replies without building more than needed.

use redis::Value;

/// A reply as owned text (index members, alert states).
pub(crate) fn as_string(v: &Value) -> Option<String> {
    as_str(v).map(str::to_owned)
}

/// A reply as text, borrowed (no allocation on the read path).
pub(crate) fn as_str(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::VerbatimString { text, .. } => Some(text),
        _ => None,
    }
}
