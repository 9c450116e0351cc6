//! Why a metric line is refused: one message per cause, naming the field
//! and quoting (a bounded snippet of) the offending input.

/// Error messages quote at most this many bytes of the offending input.
const SNIPPET_LEN: usize = 64;

/// Why a line was rejected. Each message names the field and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("empty line")]
    Empty,
    #[error("missing ':' between the name and the value in {0:?}")]
    MissingValue(String),
    #[error("missing '|<type>' after the value in {0:?}")]
    MissingType(String),
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("invalid value {value:?}: {reason}")]
    InvalidValue { value: String, reason: String },
    #[error("unknown type {0:?} (expected c, g, ms, h, d or s)")]
    UnknownType(String),
    #[error("invalid sample rate {0:?}: expected a number greater than 0 and at most 1")]
    InvalidSampleRate(String),
    #[error("invalid tag {tag:?}: {reason}")]
    InvalidTag { tag: String, reason: String },
    #[error("invalid timestamp {0:?}: expected unix seconds, a positive integer")]
    InvalidTimestamp(String),
    #[error(
        "unknown field {0:?} (expected @<rate>, #<tags>, T<unix-seconds>, c:<container-id>, card:<level> or <letter>:<value>)"
    )]
    UnknownField(String),
    #[error("invalid event {line:?}: {reason}")]
    InvalidEvent { line: String, reason: String },
    #[error("invalid service check {line:?}: {reason}")]
    InvalidServiceCheck { line: String, reason: String },
    #[error("invalid {field} {value:?}: expected {expected}")]
    InvalidFieldValue {
        field: &'static str,
        value: String,
        expected: String,
    },
    #[error("field {0} appears twice")]
    DuplicateField(&'static str),
    #[error("a set takes one value per line")]
    SetWithSeveralValues,
    #[error("too many tags: a line holds at most {max} (HAWKEYE_MAX_TAGS)")]
    TooManyTags { max: usize },
    #[error(
        "series key too long: the name and tags take more than {max} bytes (HAWKEYE_MAX_KEY_BYTES)"
    )]
    KeyTooLong { max: usize },
    #[error("set member too long: {len} bytes, the limit is {max} (HAWKEYE_MAX_KEY_BYTES)")]
    MemberTooLong { len: usize, max: usize },
}

/// Quotes at most 64 bytes (`SNIPPET_LEN`) of `s`, cut on a character boundary
/// (as error messages and logs quote input).
pub fn snippet(s: &str) -> String {
    if s.len() <= SNIPPET_LEN {
        return s.to_string();
    }
    let mut end = SNIPPET_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
