//! Reading the levels of a monitors file structurally: each level is a
//! mapping whose keys are compared with the list of keys it may have, so
//! unknown and missing keys are found from the document itself (with a
//! suggestion for a misspelt key), and each known key is read on its own.

use std::fmt;

use hawkeye_protocol::{parse_duration, PlainUnit};
use serde::de::{self, DeserializeOwned, Visitor};
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::problems::Problems;
use crate::yaml_location::YamlPath;

/// The keys a level may have, and those it must have.
pub(crate) struct Keys {
    /// What the level is, for messages ("a monitor").
    pub what: &'static str,
    pub known: &'static [&'static str],
    pub required: &'static [&'static str],
}

pub(crate) const FILE: Keys = Keys {
    what: "the file",
    known: &["version", "monitors"],
    required: &["monitors"],
};

pub(crate) const MONITOR: Keys = Keys {
    what: "a monitor",
    known: &[
        "id",
        "metric",
        "type",
        "interval",
        "window",
        "aggregate",
        "tags",
        "group_by",
        "max_groups",
        "group_stale_after",
        "ratio_of",
        "percent",
        "notifier",
        "subject",
        "gauge_stale_after",
        "inhibit_lower",
        "runbook",
        "annotations",
        "maintenance",
        "slo",
        "triggers",
    ],
    // `triggers` may be left out of an SLO monitor (see `convert`).
    required: &["metric"],
};

pub(crate) const TRIGGER: Keys = Keys {
    what: "a trigger",
    known: &[
        "id",
        "threshold",
        "op",
        "for",
        "run_every",
        "keep_firing_for",
        "recovery_threshold",
        "text",
        "subject",
        "to",
        "cc",
        "bcc",
        "webhook",
        "webhook_format",
        "send_resolved",
        "missing",
        "runbook",
        "annotations",
        "burn_rate",
        "long_window",
        "short_window",
    ],
    // `threshold`, or `burn_rate` (see `convert`).
    required: &[],
};

pub(crate) const SLO: Keys = Keys {
    what: "an slo",
    known: &["objective", "period", "page", "ticket"],
    required: &["objective", "period"],
};

pub(crate) const MAINTENANCE: Keys = Keys {
    what: "a maintenance window",
    known: &["days", "from", "to", "time_zone"],
    required: &["from", "to"],
};

/// One mapping of the file, its keys checked.
pub(crate) struct Level<'a> {
    map: &'a Mapping,
    pub at: YamlPath,
}

/// Checks the keys of the mapping at `at`. `None` when it is not a mapping
/// at all; missing keys are reported but the level is still returned, so
/// the keys that are there are checked too.
pub(crate) fn level<'a>(
    value: &'a Value,
    at: &YamlPath,
    keys: &Keys,
    problems: &mut Problems,
) -> Option<Level<'a>> {
    let map = match value {
        Value::Mapping(map) => map,
        Value::Null => {
            problems.at(
                at.clone(),
                format!("{} is empty (expected its keys)", keys.what),
            );
            return None;
        }
        other => {
            problems.at(
                at.clone(),
                format!(
                    "{} must be a mapping of keys, not {}",
                    keys.what,
                    kind(other)
                ),
            );
            return None;
        }
    };
    for key in map.keys() {
        let Some(name) = key.as_str() else {
            problems.at(at.clone(), format!("keys must be text, not {}", kind(key)));
            continue;
        };
        if !keys.known.contains(&name) {
            let hint = closest(name, keys.known)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_else(|| format!(" (known keys: {})", keys.known.join(", ")));
            problems.at_key(
                at.key(name),
                format!("unknown key `{name}` in {}{hint}", keys.what),
            );
        }
    }
    for required in keys.required {
        if !map.contains_key(*required) {
            problems.at(at.clone(), format!("{} needs `{required}`", keys.what));
        }
    }
    Some(Level {
        map,
        at: at.clone(),
    })
}

impl Level<'_> {
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    pub(crate) fn value(&self, key: &str) -> Option<&Value> {
        self.map.get(key)
    }

    /// Reads `key` as a `T`; `None` when absent (or null) or invalid (then
    /// reported at the value).
    pub(crate) fn get<T: DeserializeOwned>(&self, key: &str, problems: &mut Problems) -> Option<T> {
        let value = self.map.get(key).filter(|v| !v.is_null())?;
        match serde_yaml::from_value(value.clone()) {
            Ok(v) => Some(v),
            Err(e) => {
                let message = match expected::<T>() {
                    Some(want) => format!("`{key}` must be {want}, not {}", shown(value)),
                    None => e.to_string(),
                };
                problems.at(self.at.key(key), message);
                None
            }
        }
    }
}

/// What a value of `T` is called in a message (serde's own words are
/// Rust's: "expected f64").
fn expected<T>() -> Option<&'static str> {
    Some(match std::any::type_name::<T>() {
        "f64" | "f32" => "a number",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "bool" => "true or false",
        _ => return None,
    })
}

/// A value as written, on one line.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Bool(_) | Value::Number(_) => serde_yaml::to_string(v)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        other => kind(other).to_string(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// The known key nearest to a misspelt one, if it is near enough.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// A duration as written: a plain number (unit depends on the key) or a
/// string with units.
pub(crate) enum RawDuration {
    Number(f64),
    Text(String),
}

impl RawDuration {
    pub(crate) fn resolve(&self, plain: PlainUnit) -> Result<std::time::Duration, String> {
        match self {
            RawDuration::Number(n) => hawkeye_protocol::duration::from_number(*n, plain)
                .ok_or_else(|| format!("invalid duration {n}: must be a finite number >= 0")),
            RawDuration::Text(s) => parse_duration(s, plain).map_err(|e| e.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RawDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration: a number, or a string with units such as 30s, 5m, 1h")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawDuration, E> {
                Ok(RawDuration::Number(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawDuration, E> {
                Ok(RawDuration::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawDuration, E> {
                Ok(RawDuration::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A scalar written as a string, number or boolean, used as text (tag
/// values, annotations).
pub(crate) struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Recipients: a list, or one address written alone.
pub(crate) struct Addresses(pub Vec<String>);

impl<'de> Deserialize<'de> for Addresses {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Addresses;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an email address or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Addresses, E> {
                Ok(Addresses(vec![v.to_string()]))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Addresses, E> {
                Ok(Addresses(Vec::new()))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Addresses, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(Addresses(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a list of mappings (`monitors`, `triggers`, `maintenance`): each
/// element with its path. A value that is not a list is reported.
pub(crate) fn list<'a>(
    level: &Level<'a>,
    key: &str,
    problems: &mut Problems,
) -> Vec<(&'a Value, YamlPath)> {
    let at = level.at.key(key);
    match level.map.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (v, at.index(i)))
            .collect(),
        Some(other) => {
            problems.at(at, format!("`{key}` must be a list, not {}", kind(other)));
            Vec::new()
        }
    }
}

/// Reads `key` as a mapping of text to text (`tags`, `annotations`).
pub(crate) fn text_map(
    level: &Level,
    key: &str,
    problems: &mut Problems,
) -> std::collections::BTreeMap<String, String> {
    level
        .get::<std::collections::BTreeMap<String, Scalar>>(key, problems)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

/// Reads `key` as a string when present.
pub(crate) fn text(level: &Level, key: &str, problems: &mut Problems) -> Option<String> {
    level.get::<String>(key, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_keys_get_a_suggestion() {
        assert_eq!(closest("intervall", MONITOR.known), Some("interval"));
        assert_eq!(closest("runevery", TRIGGER.known), Some("run_every"));
        assert_eq!(closest("zzzzzz", TRIGGER.known), None);
    }
}
