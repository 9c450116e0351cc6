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
mod error;
mod fields;
mod split;
mod tags;
mod types;

pub use dogstatsd::EVENTS_METRIC;
pub use error::LineError;
pub use fields::check_name;
pub use tags::Limits;
pub use types::{GaugeMode, MetricLine, Origin, Value, Values};

pub use error::snippet;
pub use fields::MAX_NAME_LEN;
use fields::{is_ignored_dogstatsd_field, parse_timestamp};

use crate::series::MetricKind;

/// Parses one line (without its trailing newline) under the default [`Limits`].
pub fn parse_line(line: &str) -> Result<MetricLine<'_>, LineError> {
    parse_line_with(line, &Limits::default())
}

/// Parses one line (without its trailing newline) under `limits`.
pub fn parse_line_with<'a>(line: &'a str, limits: &Limits) -> Result<MetricLine<'a>, LineError> {
    let line = split::trim_blanks(line);
    if line.is_empty() {
        return Err(LineError::Empty);
    }
    if line.starts_with("_e{") {
        return dogstatsd::parse_event(line, limits);
    }
    if line.starts_with("_sc|") {
        return dogstatsd::parse_service_check(line, limits);
    }
    let Some((name, rest)) = split::split_once(line, b':') else {
        return Err(LineError::MissingValue(snippet(line)));
    };
    check_name(name)?;
    let mut fields = split::split(rest, b'|');
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
    split::split(payload, b'\n').filter(|l| !l.trim().is_empty())
}

fn once(seen: &mut bool, field: &'static str) -> Result<(), LineError> {
    if std::mem::replace(seen, true) {
        return Err(LineError::DuplicateField(field));
    }
    Ok(())
}

fn parse_values<'a>(
    text: &'a str,
    kind: MetricKind,
    limits: &Limits,
) -> Result<Values<'a>, LineError> {
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
        return Ok(smallvec::smallvec![Value::Member(text)]);
    }
    let value = |v: &str| {
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
    };
    if !text.as_bytes().contains(&b':') {
        // One value, as most lines carry: no collecting through an iterator
        // of results.
        return Ok(smallvec::smallvec![value(text)?]);
    }
    split::split(text, b':').map(value).collect()
}

/// A finite decimal number. Rust's float parser also takes `inf` and `NaN`,
/// which no statsd client means.
fn parse_number(v: &str) -> Option<f64> {
    // Most values are small integers (`1|c`): read them without the float
    // parser. Up to 15 digits they are below 2^53, so exact as an f64.
    if v.len() <= 15 && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(v.bytes().fold(0u64, |n, b| n * 10 + u64::from(b - b'0')) as f64);
    }
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
