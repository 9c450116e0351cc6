//! DogStatsD's two other kinds of datagram, read as metric lines so that a
//! DogStatsD client sending them loses nothing and pollutes no error count:
//!
//! ```text
//! _e{<title bytes>,<text bytes>}:<title>|<text>[|d:<ts>][|h:<host>][|k:<key>][|p:<priority>][|s:<source>][|t:<alert type>][|#<tags>]
//! _sc|<name>|<status>[|d:<ts>][|h:<host>][|#<tags>][|m:<message>]
//! ```
//!
//! An event counts one in the counter `events`, tagged with its own tags and
//! `alert_type` (default `info`), `priority` (default `normal`) and
//! `source_type_name` when given; its title and text are not kept. A service
//! check sets the gauge named after the check to its status (0 OK,
//! 1 WARNING, 2 CRITICAL, 3 UNKNOWN), with its tags. The host and the
//! message are not kept. The format and what is kept: docs/protocol.md.

use super::error::{snippet, LineError};
use super::fields::{check_name, is_ignored_dogstatsd_field, parse_timestamp};
use super::tags::{parse_tags, Limits};
use super::types::{MetricLine, Origin, Value};
use crate::series::MetricKind;

/// The counter every event increments.
pub const EVENTS_METRIC: &str = "events";

/// Reads `_e{...}` (the caller saw the prefix).
pub(super) fn parse_event<'a>(line: &'a str, limits: &Limits) -> Result<MetricLine<'a>, LineError> {
    let bad = |reason: &str| LineError::InvalidEvent {
        line: snippet(line),
        reason: reason.to_string(),
    };
    let after = &line["_e{".len()..];
    let (lengths, rest) = after
        .split_once("}:")
        .ok_or_else(|| bad("expected _e{<title length>,<text length>}:"))?;
    let (title_len, text_len) = lengths
        .split_once(',')
        .and_then(|(t, x)| Some((t.parse::<usize>().ok()?, x.parse::<usize>().ok()?)))
        .ok_or_else(|| bad("the lengths must be two byte counts"))?;
    if title_len == 0 {
        return Err(bad("an event needs a title"));
    }
    // Title and text are read by length: either may hold `|`.
    let fields = rest
        .get(title_len..)
        .and_then(|r| r.strip_prefix('|'))
        .and_then(|r| r.get(text_len..))
        .ok_or_else(|| bad("the title or the text is shorter than its length says"))?;
    let mut event = EventFields::default();
    if !fields.is_empty() {
        let fields = fields
            .strip_prefix('|')
            .ok_or_else(|| bad("the text is longer than its length says"))?;
        for field in fields.split('|') {
            event.read(field)?;
        }
    }
    event.into_line(limits)
}

/// The optional fields of an event.
#[derive(Default)]
struct EventFields<'a> {
    tags: Option<&'a str>,
    timestamp: Option<i64>,
    priority: Option<&'a str>,
    alert_type: Option<&'a str>,
    source: Option<&'a str>,
}

impl<'a> EventFields<'a> {
    fn read(&mut self, field: &'a str) -> Result<(), LineError> {
        if let Some(tags) = field.strip_prefix('#') {
            set_once(&mut self.tags, tags, "#<tags>")
        } else if let Some(ts) = field.strip_prefix("d:") {
            set_once(&mut self.timestamp, parse_timestamp(ts)?, "d:<timestamp>")
        } else if let Some(p) = field.strip_prefix("p:") {
            let p = one_of(p, &["normal", "low"], "p:<priority>")?;
            set_once(&mut self.priority, p, "p:<priority>")
        } else if let Some(t) = field.strip_prefix("t:") {
            let t = one_of(
                t,
                &["error", "warning", "info", "success"],
                "t:<alert type>",
            )?;
            set_once(&mut self.alert_type, t, "t:<alert type>")
        } else if let Some(s) = field.strip_prefix("s:") {
            set_once(&mut self.source, tag_value(s, "s:<source>")?, "s:<source>")
        } else if is_ignored_dogstatsd_field(field) {
            // Host (`h:`), aggregation key (`k:`), and the fields about the
            // sender that metric lines carry too (`c:`, `card:`, `e:`): not
            // kept.
            Ok(())
        } else {
            Err(LineError::UnknownField(snippet(field)))
        }
    }

    fn into_line(self, limits: &Limits) -> Result<MetricLine<'a>, LineError> {
        let mut added: Vec<(&'a str, &'a str)> = vec![
            ("alert_type", self.alert_type.unwrap_or("info")),
            ("priority", self.priority.unwrap_or("normal")),
        ];
        if let Some(source) = self.source {
            added.push(("source_type_name", source));
        }
        // The added tags count towards the key bound as the line's own do.
        let added_bytes: usize = added.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut tags = match self.tags {
            Some(text) => parse_tags(text, EVENTS_METRIC.len() + added_bytes, limits)?,
            None => Vec::new(),
        };
        if tags.len() + added.len() > limits.max_tags {
            return Err(LineError::TooManyTags {
                max: limits.max_tags,
            });
        }
        if EVENTS_METRIC.len() + added_bytes > limits.max_key_bytes {
            return Err(LineError::KeyTooLong {
                max: limits.max_key_bytes,
            });
        }
        tags.extend(added);
        Ok(MetricLine {
            name: EVENTS_METRIC,
            kind: MetricKind::Counter,
            values: smallvec::smallvec![Value::Number(1.0)],
            sample_rate: 1.0,
            tags,
            timestamp: self.timestamp,
            origin: Origin::Event,
        })
    }
}

/// Reads `_sc|...` (the caller saw the prefix).
pub(super) fn parse_service_check<'a>(
    line: &'a str,
    limits: &Limits,
) -> Result<MetricLine<'a>, LineError> {
    let bad = |reason: &str| LineError::InvalidServiceCheck {
        line: snippet(line),
        reason: reason.to_string(),
    };
    // The message comes last and is free text: cut it off first.
    let body = &line["_sc|".len()..];
    let body = match body.find("|m:") {
        Some(at) => &body[..at],
        None => body,
    };
    let mut fields = body.split('|');
    let name = fields.next().unwrap_or_default();
    check_name(name)?;
    let status = match fields.next() {
        Some("0") => 0.0,
        Some("1") => 1.0,
        Some("2") => 2.0,
        Some("3") => 3.0,
        _ => return Err(bad("the status must be 0, 1, 2 or 3")),
    };
    let (mut tags, mut timestamp) = (None, None);
    for field in fields {
        if let Some(text) = field.strip_prefix('#') {
            set_once(&mut tags, text, "#<tags>")?;
        } else if let Some(ts) = field.strip_prefix("d:") {
            set_once(&mut timestamp, parse_timestamp(ts)?, "d:<timestamp>")?;
        } else if !is_ignored_dogstatsd_field(field) {
            // The host (`h:`) and the fields about the sender pass, unkept.
            return Err(LineError::UnknownField(snippet(field)));
        }
    }
    Ok(MetricLine {
        name,
        kind: MetricKind::Gauge,
        values: smallvec::smallvec![Value::Number(status)],
        sample_rate: 1.0,
        tags: match tags {
            Some(text) => parse_tags(text, name.len(), limits)?,
            None => Vec::new(),
        },
        timestamp,
        origin: Origin::ServiceCheck,
    })
}

fn set_once<T>(slot: &mut Option<T>, value: T, field: &'static str) -> Result<(), LineError> {
    if slot.replace(value).is_some() {
        return Err(LineError::DuplicateField(field));
    }
    Ok(())
}

fn one_of<'a>(value: &'a str, allowed: &[&str], field: &'static str) -> Result<&'a str, LineError> {
    if allowed.contains(&value) {
        return Ok(value);
    }
    Err(LineError::InvalidFieldValue {
        field,
        value: snippet(value),
        expected: allowed.join(", "),
    })
}

/// A value that becomes a tag value: no `,` (it would split the series'
/// tags), no control characters, not empty.
fn tag_value<'a>(value: &'a str, field: &'static str) -> Result<&'a str, LineError> {
    if value.is_empty() || value.contains(',') || value.chars().any(char::is_control) {
        return Err(LineError::InvalidFieldValue {
            field,
            value: snippet(value),
            expected: "text without ',' or control characters".into(),
        });
    }
    Ok(value)
}
