//! Reading Redis replies without building more than needed.

use redis::Value;

use crate::StoreError;

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

/// The field/value pairs of an `HGETALL` reply.
pub(crate) fn hash_pairs(v: &Value) -> Result<Vec<(&str, &str)>, StoreError> {
    let bad = || StoreError::Protocol(format!("expected a hash, got {v:?}"));
    match v {
        Value::Array(items) => items
            .chunks(2)
            .map(|c| match c {
                [k, v] => Some((as_str(k)?, as_str(v)?)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad),
        Value::Map(items) => items
            .iter()
            .map(|(k, v)| Some((as_str(k)?, as_str(v)?)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad),
        Value::Nil => Ok(Vec::new()),
        _ => Err(bad()),
    }
}

/// The field/value pairs of an `HMGET` reply, skipping absent fields.
pub(crate) fn named_pairs<'a>(
    fields: &'a [String],
    v: &'a Value,
) -> Result<Vec<(&'a str, &'a str)>, StoreError> {
    let Value::Array(values) = v else {
        return Err(StoreError::Protocol(format!(
            "expected an array, got {v:?}"
        )));
    };
    Ok(fields
        .iter()
        .zip(values)
        .filter_map(|(f, v)| Some((f.as_str(), as_str(v)?)))
        .collect())
}
