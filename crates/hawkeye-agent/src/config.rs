//! `monitors.yaml`: the file format, loading, and validation that reports
//! every problem with its line and column.
//!
//! Loading happens in three passes over one parse:
//! 1. The text is parsed into a `serde_yaml::Value`. A syntax error stops
//!    here (its position comes from serde_yaml).
//! 2. Each level (the file, each monitor, each trigger) is deserialized on
//!    its own into `Raw*` structs with `deny_unknown_fields`, through
//!    `serde_path_to_error` so every error carries its path. When a level
//!    fails, the offending key is recorded, removed, and the level tried
//!    again, so several problems in one monitor are all reported and one bad
//!    monitor does not hide problems in the next.
//! 3. The raw values are converted and checked (durations, aggregation for
//!    the type, `op`, addresses, templates, …), each problem with its path.
//!
//! Paths become line and column through [`crate::yaml_location`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use hawkeye_protocol::{parse_duration, MetricKind, PlainUnit, TagFilter};
use hawkeye_store::Aggregation;
use serde::de::{self, DeserializeOwned, Visitor};
use serde::Deserialize;
use serde_yaml::Value;

use crate::template;
use crate::yaml_location::{locate_nearest, Location, Part, Segment, YamlPath};

/// Default check period when a monitor names none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default least time between repeated emails when a trigger names none.
pub const DEFAULT_RUN_EVERY: Duration = Duration::from_secs(3600);

/// A loaded, valid monitors file.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorsFile {
    pub version: u32,
    pub monitors: Vec<Monitor>,
}

impl Default for MonitorsFile {
    fn default() -> Self {
        MonitorsFile {
            version: 1,
            monitors: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    pub metric: String,
    pub kind: MetricKind,
    /// Check period.
    pub interval: Duration,
    /// The window read at each check (whole seconds; defaults to `interval`).
    pub window: Duration,
    pub aggregation: Aggregation,
    /// Series filter; empty: every series of the name, summed.
    pub tags: TagFilter,
    /// value = metric / ratio_of over the same window.
    pub ratio_of: Option<String>,
    /// With `ratio_of`: the ratio × 100.
    pub percent: bool,
    pub notifier: Notifier,
    /// Subject template for every trigger without its own.
    pub subject: Option<String>,
    pub triggers: Vec<Trigger>,
}

impl Monitor {
    /// The window in whole seconds (at least 1), as the store reads it.
    pub fn window_secs(&self) -> u64 {
        (self.window.as_millis().div_ceil(1000) as u64).max(1)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub threshold: f64,
    pub op: Op,
    /// Consecutive breaching checks before firing.
    pub for_checks: u32,
    /// Least time between repeated emails while firing.
    pub run_every: Duration,
    pub text: Option<String>,
    pub subject: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub send_resolved: bool,
    /// What a window with no data means; `None`: not written in the file
    /// (`ok`, except for counters, whose empty window is 0).
    pub missing: Option<Missing>,
}

/// Comparison of the value with the threshold that counts as a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Op {
    #[default]
    Ge,
    Gt,
    Lt,
    Le,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Ge => ">=",
            Op::Gt => ">",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }

    /// Whether `value` breaches `threshold`.
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Ge => value >= threshold,
            Op::Gt => value > threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            ">=" => Ok(Op::Ge),
            ">" => Ok(Op::Gt),
            "<" => Ok(Op::Lt),
            "<=" => Ok(Op::Le),
            other => Err(format!("unknown op {other:?} (expected >=, >, < or <=)")),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// What a window with no data means for a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Not breaching (resolves a firing alert).
    Ok,
    /// Breaching.
    Breach,
    /// As if the check had not happened: the state stays as it is.
    Keep,
}

impl FromStr for Missing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "ok" => Ok(Missing::Ok),
            "breach" => Ok(Missing::Breach),
            "keep" => Ok(Missing::Keep),
            other => Err(format!(
                "unknown missing {other:?} (expected ok, breach or keep)"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Notifier {
    #[default]
    Email,
    /// Alerts go to the agent's log only.
    Log,
}

/// One problem found in a monitors file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Where it is written; `None` for a file built in code.
    pub location: Option<Location>,
    /// The node, as `monitors[0].triggers[1].op`.
    pub path: String,
    pub message: String,
}

/// Every problem of a monitors file, one per line as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub origin: String,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match p.location {
                Some(l) => write!(f, "{}:{}:{}: {}", self.origin, l.line, l.column, p.message)?,
                None if p.path.is_empty() => write!(f, "{}: {}", self.origin, p.message)?,
                None => write!(f, "{}: {}: {}", self.origin, p.path, p.message)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A problem before it is located.
#[derive(Debug, Clone)]
struct Problem {
    path: YamlPath,
    part: Part,
    message: String,
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn at(&mut self, path: YamlPath, message: impl Into<String>) {
        self.0.push(Problem {
            path,
            part: Part::Value,
            message: message.into(),
        });
    }

    fn at_key(&mut self, path: YamlPath, message: impl Into<String>) {
        self.0.push(Problem {
            path,
            part: Part::Key,
            message: message.into(),
        });
    }

    fn into_errors(self, origin: &str, text: Option<&str>) -> ConfigErrors {
        let mut problems: Vec<ConfigProblem> = self
            .0
            .into_iter()
            .map(|p| ConfigProblem {
                location: text.map(|t| locate_nearest(t, &p.path, p.part)),
                path: p.path.to_string(),
                message: p.message,
            })
            .collect();
        problems.sort_by_key(|p| p.location);
        problems.dedup();
        ConfigErrors {
            origin: origin.to_string(),
            problems,
        }
    }
}

/// How long the store keeps data when `HAWKEYE_RETENTION` is not set.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3600);

/// `HAWKEYE_RETENTION` from the environment, else [`DEFAULT_RETENTION`]
/// (also when it cannot be parsed; [`crate::AgentConfig::from_env`]
/// reports that).
pub fn retention_from_env() -> Duration {
    hawkeye_mail::env::env_var("HAWKEYE_RETENTION")
        .and_then(|s| hawkeye_protocol::parse_duration(&s, PlainUnit::Seconds).ok())
        .unwrap_or(DEFAULT_RETENTION)
}

/// Reads and validates the monitors file at `path`, against the retention
/// from the environment ([`retention_from_env`]).
pub fn load_monitors(path: &Path) -> Result<MonitorsFile, ConfigErrors> {
    load_monitors_with(path, retention_from_env())
}

/// Reads and validates the monitors file at `path`; no `window` or
/// `interval` may be longer than `retention` (the store has no older data).
pub fn load_monitors_with(path: &Path, retention: Duration) -> Result<MonitorsFile, ConfigErrors> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_monitors_with(&text, &origin, retention),
        Err(e) => Err(ConfigErrors {
            origin,
            problems: vec![ConfigProblem {
                location: None,
                path: String::new(),
                message: format!("cannot read the monitors file: {e}"),
            }],
        }),
    }
}

/// Parses and validates a monitors file; `origin` names it in messages.
/// Checked against the retention from the environment
/// ([`retention_from_env`]).
pub fn parse_monitors(text: &str, origin: &str) -> Result<MonitorsFile, ConfigErrors> {
    parse_monitors_with(text, origin, retention_from_env())
}

/// [`parse_monitors`] against the store's `retention`.
pub fn parse_monitors_with(
    text: &str,
    origin: &str,
    retention: Duration,
) -> Result<MonitorsFile, ConfigErrors> {
    let value: Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let location = e.location().map(|l| Location {
                line: l.line(),
                column: l.column(),
            });
            return Err(ConfigErrors {
                origin: origin.to_string(),
                problems: vec![ConfigProblem {
                    location: Some(location.unwrap_or(Location { line: 1, column: 1 })),
                    path: String::new(),
                    message: e.to_string(),
                }],
            });
        }
    };
    let mut problems = Problems::default();
    let file = convert_file(&value, retention, &mut problems);
    if problems.0.is_empty() {
        if let Some(file) = file {
            return Ok(file);
        }
    }
    if problems.0.is_empty() {
        problems.at(YamlPath::root(), "invalid monitors file");
    }
    Err(problems.into_errors(origin, Some(text)))
}

impl MonitorsFile {
    /// Checks a file built in code (a parsed file has passed these checks),
    /// against the retention from the environment ([`retention_from_env`]).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        self.validate_with(retention_from_env())
    }

    /// Checks a file built in code against the store's `retention`.
    pub fn validate_with(&self, retention: Duration) -> Result<(), ConfigErrors> {
        let mut problems = Problems::default();
        let root = YamlPath::root().key("monitors");
        for (i, m) in self.monitors.iter().enumerate() {
            let at = root.index(i);
            check_monitor(m, &at, true, m.triggers.len(), retention, &mut problems);
            for (j, t) in m.triggers.iter().enumerate() {
                check_trigger(t, m.notifier, &at.key("triggers").index(j), &mut problems);
            }
        }
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(problems.into_errors("<monitors>", None))
        }
    }
}

// ---- pass 2: the raw structure ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    version: Option<u64>,
    monitors: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMonitor {
    metric: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    interval: Option<RawDuration>,
    window: Option<RawDuration>,
    aggregate: Option<String>,
    tags: Option<BTreeMap<String, Scalar>>,
    ratio_of: Option<String>,
    percent: Option<bool>,
    notifier: Option<String>,
    subject: Option<String>,
    triggers: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    threshold: f64,
    op: Option<String>,
    #[serde(rename = "for")]
    for_checks: Option<u32>,
    run_every: Option<RawDuration>,
    text: Option<String>,
    subject: Option<String>,
    to: Option<Addresses>,
    cc: Option<Addresses>,
    bcc: Option<Addresses>,
    send_resolved: Option<bool>,
    missing: Option<String>,
}

/// A duration as written: a plain number (unit depends on the field) or a
/// string with units.
enum RawDuration {
    Number(f64),
    Text(String),
}

impl RawDuration {
    fn resolve(&self, plain: PlainUnit) -> Result<Duration, String> {
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

/// A tag value: written as a string, number or boolean, compared as text.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a tag value (string or number)")
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
struct Addresses(Vec<String>);

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

/// Deserializes one level, collecting every error (see the module doc).
/// Returns the value when the level could be read at all, possibly with
/// keys that had problems left out.
fn read_level<T: DeserializeOwned>(
    value: &Value,
    at: &YamlPath,
    problems: &mut Problems,
) -> Option<T> {
    let mut value = value.clone();
    let mut removed: Vec<String> = Vec::new();
    // Bounded: every retry removes one key.
    for _ in 0..64 {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let rel = YamlPath(
            err.path()
                .iter()
                .filter_map(|s| match s {
                    serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
                    serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                    _ => None,
                })
                .collect(),
        );
        let message = err.inner().to_string();
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            // A required key we removed ourselves was already reported.
            if !removed.iter().any(|r| r == field) {
                problems.at(at.join(&rel), message.clone());
            }
            return None;
        }
        if message.starts_with("unknown field") {
            problems.at_key(at.join(&rel), message);
        } else if value.is_null() {
            problems.at(at.join(&rel), "empty (expected a mapping)");
            return None;
        } else {
            problems.at(at.join(&rel), message);
        }
        // Drop the key the error is under and read the rest again.
        let Some(Segment::Key(key)) = rel.0.first() else {
            return None;
        };
        value.as_mapping_mut()?.remove(key.as_str())?;
        removed.push(key.clone());
    }
    None
}

// ---- pass 3: conversion and checks ----

fn convert_file(
    value: &Value,
    retention: Duration,
    problems: &mut Problems,
) -> Option<MonitorsFile> {
    let root = YamlPath::root();
    if value.is_null() {
        problems.at(
            root,
            "the file is empty (expected `version: 1` and `monitors:`)",
        );
        return None;
    }
    let raw: RawFile = read_level(value, &root, problems)?;
    let version = match raw.version {
        None | Some(1) => 1,
        Some(v) => {
            problems.at(
                root.key("version"),
                format!("unsupported version {v} (this agent reads version 1)"),
            );
            1
        }
    };
    let list = root.key("monitors");
    let monitors: Vec<Monitor> = raw
        .monitors
        .iter()
        .enumerate()
        .filter_map(|(i, m)| convert_monitor(m, &list.index(i), retention, problems))
        .collect();
    Some(MonitorsFile { version, monitors })
}

fn convert_monitor(
    value: &Value,
    at: &YamlPath,
    retention: Duration,
    problems: &mut Problems,
) -> Option<Monitor> {
    let raw: RawMonitor = read_level(value, at, problems)?;
    let before = problems.0.len();

    let kind = match raw.kind.as_deref() {
        None => Some(MetricKind::Counter),
        Some(t) => match MetricKind::from_statsd(t.trim()) {
            Some(k) => Some(k),
            None => {
                problems.at(
                    at.key("type"),
                    format!("unknown type {t:?} (expected c, g, ms, h, d or s)"),
                );
                None
            }
        },
    };
    let duration = |d: &Option<RawDuration>, name: &str, plain, problems: &mut Problems| {
        d.as_ref().and_then(|d| match d.resolve(plain) {
            Ok(v) => Some(v),
            Err(e) => {
                problems.at(at.key(name), e);
                None
            }
        })
    };
    let interval = duration(&raw.interval, "interval", PlainUnit::Seconds, problems)
        .unwrap_or(DEFAULT_INTERVAL);
    let window = duration(&raw.window, "window", PlainUnit::Seconds, problems).unwrap_or(interval);
    // Without a valid type, an aggregation cannot be checked against it.
    let aggregation = match (&raw.aggregate, kind) {
        (Some(a), Some(_)) => match a.trim().parse::<Aggregation>() {
            Ok(agg) => agg,
            Err(e) => {
                problems.at(at.key("aggregate"), e.to_string());
                Aggregation::default_for(kind.unwrap_or(MetricKind::Counter))
            }
        },
        (_, kind) => Aggregation::default_for(kind.unwrap_or(MetricKind::Counter)),
    };
    let notifier = match raw.notifier.as_deref().map(str::trim) {
        None | Some("email") => Notifier::Email,
        Some("log") => Notifier::Log,
        Some(other) => {
            problems.at(
                at.key("notifier"),
                format!("unknown notifier {other:?} (expected email or log)"),
            );
            Notifier::Email
        }
    };
    let triggers_at = at.key("triggers");
    let triggers: Vec<Trigger> = raw
        .triggers
        .iter()
        .enumerate()
        .filter_map(|(j, t)| convert_trigger(t, notifier, &triggers_at.index(j), problems))
        .collect();
    let monitor = Monitor {
        metric: raw.metric,
        kind: kind.unwrap_or(MetricKind::Counter),
        interval,
        window,
        aggregation,
        tags: TagFilter(
            raw.tags
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
        ),
        ratio_of: raw.ratio_of,
        percent: raw.percent.unwrap_or(false),
        notifier,
        subject: raw.subject,
        triggers,
    };
    // The checks shared with files built in code. Those that depend on the
    // type are skipped when the type itself is wrong, so one mistake gives
    // one message.
    check_monitor(
        &monitor,
        at,
        kind.is_some(),
        raw.triggers.len(),
        retention,
        problems,
    );
    (problems.0.len() == before).then_some(monitor)
}

fn convert_trigger(
    value: &Value,
    notifier: Notifier,
    at: &YamlPath,
    problems: &mut Problems,
) -> Option<Trigger> {
    let raw: RawTrigger = read_level(value, at, problems)?;
    let before = problems.0.len();
    let op = match raw.op.as_deref() {
        None => Op::Ge,
        Some(s) => s.parse().unwrap_or_else(|e: String| {
            problems.at(at.key("op"), e);
            Op::Ge
        }),
    };
    let missing = raw.missing.as_deref().and_then(|s| {
        s.parse()
            .map_err(|e: String| problems.at(at.key("missing"), e))
            .ok()
    });
    let run_every = match &raw.run_every {
        None => DEFAULT_RUN_EVERY,
        Some(d) => d.resolve(PlainUnit::Minutes).unwrap_or_else(|e| {
            problems.at(at.key("run_every"), e);
            DEFAULT_RUN_EVERY
        }),
    };
    let trigger = Trigger {
        threshold: raw.threshold,
        op,
        for_checks: raw.for_checks.unwrap_or(1),
        run_every,
        text: raw.text,
        subject: raw.subject,
        to: raw.to.map(|a| a.0).unwrap_or_default(),
        cc: raw.cc.map(|a| a.0).unwrap_or_default(),
        bcc: raw.bcc.map(|a| a.0).unwrap_or_default(),
        send_resolved: raw.send_resolved.unwrap_or(false),
        missing,
    };
    check_trigger(&trigger, notifier, at, problems);
    (problems.0.len() == before).then_some(trigger)
}

/// Monitor-level checks; `kind_known` is false when `type` was invalid
/// (then nothing that depends on it is checked), `written_triggers` is how
/// many triggers the file lists.
fn check_monitor(
    m: &Monitor,
    at: &YamlPath,
    kind_known: bool,
    written_triggers: usize,
    retention: Duration,
    problems: &mut Problems,
) {
    if let Err(e) = hawkeye_protocol::line::check_name(&m.metric) {
        problems.at(at.key("metric"), format!("invalid metric name: {e}"));
    }
    if m.interval < Duration::from_secs(1) || m.interval.subsec_nanos() != 0 {
        problems.at(
            at.key("interval"),
            "interval must be a whole number of seconds, at least 1s (data is kept per second)",
        );
    }
    if m.window < Duration::from_secs(1) {
        problems.at(at.key("window"), "window must be at least 1s");
    }
    // The store keeps `retention` of data: a longer window would silently
    // read less than it says (and make the store enumerate every second).
    let fmt = |d: Duration| humantime::format_duration(d).to_string();
    if m.interval > retention {
        problems.at(
            at.key("interval"),
            format!(
                "monitor {}: interval {} is longer than the data retention {} (HAWKEYE_RETENTION); shorten it or raise HAWKEYE_RETENTION",
                m.metric,
                fmt(m.interval),
                fmt(retention)
            ),
        );
    } else if m.window > retention {
        problems.at(
            at.key("window"),
            format!(
                "monitor {}: window {} is longer than the data retention {} (HAWKEYE_RETENTION), so it would only see {}; shorten it or raise HAWKEYE_RETENTION",
                m.metric,
                fmt(m.window),
                fmt(retention),
                fmt(retention)
            ),
        );
    }
    if kind_known && !m.aggregation.applies_to(m.kind) {
        problems.at(
            at.key("aggregate"),
            format!(
                "{} does not apply to a {} (use {})",
                m.aggregation,
                m.kind,
                Aggregation::names_for(m.kind)
            ),
        );
    }
    for (k, v) in &m.tags.0 {
        if k.is_empty() || k.contains([',', ':', '|', '#']) || v.contains([',', '|', '#']) {
            problems.at(at.key("tags").key(k), format!("invalid tag {k}:{v}"));
        }
    }
    match &m.ratio_of {
        Some(other) => {
            if let Err(e) = hawkeye_protocol::line::check_name(other) {
                problems.at(at.key("ratio_of"), format!("invalid metric name: {e}"));
            }
            if kind_known && m.kind != MetricKind::Counter {
                problems.at(
                    at.key("ratio_of"),
                    format!("ratio_of needs counters, but the type of this monitor is {} (write `type: c`)", m.kind),
                );
            }
        }
        None if m.percent => {
            problems.at(at.key("percent"), "percent only applies with ratio_of");
        }
        None => {}
    }
    if let Some(s) = &m.subject {
        check_template(s, at.key("subject"), problems);
    }
    if written_triggers == 0 {
        problems.at(at.key("triggers"), "a monitor needs at least one trigger");
    }
}

fn check_trigger(t: &Trigger, notifier: Notifier, at: &YamlPath, problems: &mut Problems) {
    if !t.threshold.is_finite() {
        problems.at(at.key("threshold"), "threshold must be a finite number");
    }
    if t.for_checks < 1 {
        problems.at(
            at.key("for"),
            "for must be at least 1 (the number of breaching checks before firing)",
        );
    }
    for (name, template) in [("text", &t.text), ("subject", &t.subject)] {
        if let Some(src) = template {
            check_template(src, at.key(name), problems);
        }
    }
    if notifier == Notifier::Email && t.to.is_empty() {
        problems.at_key(
            at.key("to"),
            "`to` needs at least one address (or use `notifier: log`)",
        );
    }
    for (name, list) in [("to", &t.to), ("cc", &t.cc), ("bcc", &t.bcc)] {
        for (k, address) in list.iter().enumerate() {
            if let Err(e) = hawkeye_mail::parse_mailbox(address) {
                problems.at(at.key(name).index(k), e.to_string());
            }
        }
    }
}

fn check_template(src: &str, at: YamlPath, problems: &mut Problems) {
    if let Err(e) = template::check(src) {
        problems.at(at, e.to_string());
    }
}

/// The path given to [`load_monitors`] when the file is named by the
/// environment or the command line.
pub fn default_monitors_path() -> PathBuf {
    PathBuf::from("monitors.yaml")
}
