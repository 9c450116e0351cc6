//! Fields every kind of line shares: the name, the timestamp, and the
//! DogStatsD fields about the sender that are accepted and not kept.

use super::error::{snippet, LineError};

/// Longest accepted metric name, in bytes.
pub const MAX_NAME_LEN: usize = 200;

/// `card:<level>`, or a lower-case letter and `:` (`e:<external-data>`):
/// DogStatsD's fields about the sender, which hawkeye does not use.
pub(super) fn is_ignored_dogstatsd_field(field: &str) -> bool {
    let b = field.as_bytes();
    field.starts_with("card:") || (b.len() >= 2 && b[0].is_ascii_lowercase() && b[1] == b':')
}

/// Names are 1–200 bytes of `[A-Za-z0-9_.-]`.
pub fn check_name(name: &str) -> Result<(), LineError> {
    let invalid = |reason: String| LineError::InvalidName {
        name: snippet(name),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("empty".into()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(format!(
            "{} bytes long, the limit is {MAX_NAME_LEN}",
            name.len()
        )));
    }
    // Byte by byte: a byte outside the set (any byte of a multi-byte
    // character is) sends the search to the characters for the message.
    if let Some(at) = name.bytes().position(|b| !NAME_BYTES[usize::from(b)]) {
        let c = name[at..].chars().next().unwrap_or_default();
        return Err(invalid(format!(
            "character {c:?} is not allowed (use A-Z a-z 0-9 _ . -)"
        )));
    }
    Ok(())
}

/// The bytes a name may hold: `[A-Za-z0-9_.-]`.
const NAME_BYTES: [bool; 256] = {
    let mut allowed = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        allowed[b] = c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-';
        b += 1;
    }
    allowed
};

pub(super) fn parse_timestamp(text: &str) -> Result<i64, LineError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LineError::InvalidTimestamp(snippet(text)));
    }
    match text.parse::<i64>() {
        Ok(t) if t > 0 => Ok(t),
        _ => Err(LineError::InvalidTimestamp(snippet(text))),
    }
}
