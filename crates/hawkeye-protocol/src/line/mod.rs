//! The statsd / DogStatsD metric line:
//!
//! ```text
//! <name>:<value>[:<value>...]|<type>[|@<sample_rate>][|#<tag>[:<value>],...][|c:<container>][|T<unix-seconds>]
//!   [|card:<cardinality>][|e:<external-data>][|<letter>:<anything>]
//! ```
//!
//! Parsing borrows from the input and allocates only for tags and for lines
//! that pack several values, because it sits on the server's hot path. It
//! takes time in proportion to the line's length, and [`Limits`] bound what
//! one line may hold. The format and its limits: docs/protocol.md.

mod dogstatsd;
mod tags;

pub use dogstatsd::EVENTS_METRIC;
pub use tags::Limits;

use crate::series::MetricKind;

/// Longest accepted metric name, in bytes.
pub const MAX_NAME_LEN: usize = 200;
/// Error messages quote at most this many bytes of the offending input.
const SNIPPET_LEN: usize = 64;

/// What a gauge value written with a sign (`-3`, `+3`) means. statsd reads
/// it as an adjustment of the current value; DogStatsD clients send it
/// meaning "set to -3" (a DogStatsD gauge has no adjustments).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GaugeMode {
    /// `x:-3|g` lowers the gauge by 3 (statsd, Etsy's daemon).
    #[default]
    Statsd,
    /// `x:-3|g` sets the gauge to -3 (DogStatsD).
    DogStatsd,
}

impl std::str::FromStr for GaugeMode {
    type Err = String;

    fn from_str(s: &str) -> Result<GaugeMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "statsd" => Ok(GaugeMode::Statsd),
            "dogstatsd" => Ok(GaugeMode::DogStatsd),
            other => Err(format!(
                "{other:?} is not a gauge mode (expected statsd or dogstatsd)"
            )),
        }
    }
}

/// One value of a line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A counter increment, a gauge's new value or an observation.
    Number(f64),
    /// A gauge adjustment written `+N` or `-N` ([`GaugeMode::Statsd`]).
    Delta(f64),
    /// A set member.
    Member(&'a str),
}

/// A parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricLine<'a> {
    pub name: &'a str,
    pub kind: MetricKind,
    pub values: Vec<Value<'a>>,
    /// `1.0` when the line has no `@rate`.
    pub sample_rate: f64,
    /// In the order written, without the spaces around them; a key may
    /// repeat (`#team:a,team:b`).
    pub tags: Vec<(&'a str, &'a str)>,
    /// `|T<unix-seconds>`: the second the event belongs to.
    pub timestamp: Option<i64>,
    /// What the client sent: a metric, or a DogStatsD event or service
    /// check read as one.
    pub origin: Origin,
}

/// What a [`MetricLine`] was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Metric,
    /// `_e{...}`: one in the counter [`EVENTS_METRIC`].
    Event,
    /// `_sc|...`: the check's status as a gauge.
    ServiceCheck,
}

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

/// Quotes at most [`SNIPPET_LEN`] bytes of `s`, cut on a character boundary.
pub(crate) fn snippet(s: &str) -> String {
    if s.len() <= SNIPPET_LEN {
        return s.to_string();
    }
    let mut end = SNIPPET_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Parses one line (without its trailing newline) under the default [`Limits`].
pub fn parse_line(line: &str) -> Result<MetricLine<'_>, LineError> {
    parse_line_with(line, &Limits::default())
}

/// Parses one line (without its trailing newline) under `limits`.
pub fn parse_line_with<'a>(line: &'a str, limits: &Limits) -> Result<MetricLine<'a>, LineError> {
    let line = line.trim_matches(|c: char| c == '\r' || c == ' ' || c == '\t');
    if line.is_empty() {
        return Err(LineError::Empty);
    }
    if line.starts_with("_e{") {
        return dogstatsd::parse_event(line, limits);
    }
    if line.starts_with("_sc|") {
        return dogstatsd::parse_service_check(line, limits);
    }
    let Some((name, rest)) = line.split_once(':') else {
        return Err(LineError::MissingValue(snippet(line)));
    };
    check_name(name)?;
    let mut fields = rest.split('|');
    let values_text = fields.next().unwrap_or_default();
    let Some(type_text) = fields.next() else {
        return Err(LineError::MissingType(snippet(line)));
    };
    let kind = MetricKind::from_statsd(type_text)
        .ok_or_else(|| LineError::UnknownType(snippet(type_text)))?;
    let values = parse_values(values_text, kind, limits)?;

    let mut parsed = MetricLine {
        name,
        kind,
        values,
        sample_rate: 1.0,
        tags: Vec::new(),
        timestamp: None,
        origin: Origin::Metric,
    };
    let (mut seen_rate, mut seen_tags, mut seen_container) = (false, false, false);
    for field in fields {
        if let Some(rate) = field.strip_prefix('@') {
            once(&mut seen_rate, "@<sample rate>")?;
            parsed.sample_rate = parse_sample_rate(rate)?;
        } else if let Some(tags) = field.strip_prefix('#') {
            once(&mut seen_tags, "#<tags>")?;
            parsed.tags = tags::parse_tags(tags, name.len(), limits)?;
        } else if field.starts_with("c:") {
            // DogStatsD container id: accepted and ignored.
            once(&mut seen_container, "c:<container-id>")?;
        } else if is_ignored_dogstatsd_field(field) {
            // `card:<level>`, `e:<external-data>` and whatever one-letter
            // field DogStatsD adds next: a client that sends one (the
            // Datadog admission controller sets DD_EXTERNAL_ENV) must not
            // lose its metrics over a field that only says where it ran.
        } else if let Some(ts) = field.strip_prefix('T') {
            if parsed.timestamp.is_some() {
                return Err(LineError::DuplicateField("T<unix-seconds>"));
            }
            parsed.timestamp = Some(parse_timestamp(ts)?);
        } else {
            return Err(LineError::UnknownField(snippet(field)));
        }
    }
    Ok(parsed)
}

/// Parses a payload of lines separated by `\n` under the default [`Limits`],
/// skipping blank lines (so a trailing newline is fine). Each item carries
/// the line's index among the non-blank lines.
pub fn parse_payload(
    payload: &str,
) -> impl Iterator<Item = (usize, Result<MetricLine<'_>, LineError>)> {
    parse_payload_with(payload, Limits::default())
}

/// [`parse_payload`] under `limits`.
pub fn parse_payload_with(
    payload: &str,
    limits: Limits,
) -> impl Iterator<Item = (usize, Result<MetricLine<'_>, LineError>)> {
    payload_lines(payload)
        .enumerate()
        .map(move |(i, l)| (i, parse_line_with(l, &limits)))
}

/// The non-blank lines of a payload, unparsed.
pub fn payload_lines(payload: &str) -> impl Iterator<Item = &str> {
    payload.split('\n').filter(|l| !l.trim().is_empty())
}

/// `card:<level>`, or a lower-case letter and `:` (`e:<external-data>`):
/// DogStatsD's fields about the sender, which hawkeye does not use.
fn is_ignored_dogstatsd_field(field: &str) -> bool {
    let b = field.as_bytes();
    field.starts_with("card:") || (b.len() >= 2 && b[0].is_ascii_lowercase() && b[1] == b':')
}

fn once(seen: &mut bool, field: &'static str) -> Result<(), LineError> {
    if std::mem::replace(seen, true) {
        return Err(LineError::DuplicateField(field));
    }
    Ok(())
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
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(invalid(format!(
            "character {c:?} is not allowed (use A-Z a-z 0-9 _ . -)"
        )));
    }
    Ok(())
}

fn parse_values<'a>(
    text: &'a str,
    kind: MetricKind,
    limits: &Limits,
) -> Result<Vec<Value<'a>>, LineError> {
    let invalid = |value: &str, reason: &str| LineError::InvalidValue {
        value: snippet(value),
        reason: reason.to_string(),
    };
    if kind == MetricKind::Set {
        if text.is_empty() {
            return Err(invalid(text, "empty set member"));
        }
        // A member is kept in memory until the flush, like a series key.
        if text.len() > limits.max_key_bytes {
            return Err(LineError::MemberTooLong {
                len: text.len(),
                max: limits.max_key_bytes,
            });
        }
        if text.contains(':') {
            return Err(LineError::SetWithSeveralValues);
        }
        if text.chars().any(char::is_control) {
            return Err(invalid(text, "control characters are not allowed"));
        }
        return Ok(vec![Value::Member(text)]);
    }
    text.split(':')
        .map(|v| {
            if v.is_empty() {
                return Err(invalid(v, "empty value"));
            }
            let number = parse_number(v).ok_or_else(|| invalid(v, "not a finite number"))?;
            let signed = v.starts_with('+') || v.starts_with('-');
            let adjusts = signed && limits.gauge_mode == GaugeMode::Statsd;
            Ok(if kind == MetricKind::Gauge && adjusts {
                Value::Delta(number)
            } else {
                Value::Number(number)
            })
        })
        .collect()
}

/// A finite decimal number. Rust's float parser also takes `inf` and `NaN`,
/// which no statsd client means.
fn parse_number(v: &str) -> Option<f64> {
    let first_digit = v.trim_start_matches(['+', '-']).chars().next()?;
    if !(first_digit.is_ascii_digit() || first_digit == '.') {
        return None;
    }
    v.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn parse_sample_rate(text: &str) -> Result<f64, LineError> {
    match parse_number(text) {
        // The weight 1/r must be finite too (a rate of 1e-309 is not).
        Some(r) if r > 0.0 && r <= 1.0 && (1.0 / r).is_finite() => Ok(r),
        _ => Err(LineError::InvalidSampleRate(snippet(text))),
    }
}

fn parse_timestamp(text: &str) -> Result<i64, LineError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LineError::InvalidTimestamp(snippet(text)));
    }
    match text.parse::<i64>() {
        Ok(t) if t > 0 => Ok(t),
        _ => Err(LineError::InvalidTimestamp(snippet(text))),
    }
}
