//! Unit tests of a monitors file, as `promtool test rules` does for
//! Prometheus (`docs/monitor-tests.md`): a YAML file names a monitors file,
//! gives input series step by step and expects alerts and mail at given
//! times. Each test runs the agent's own evaluation ([`crate::Engine`]) on
//! a fresh in-memory store with a simulated clock.
//!
//! Modules: [`spec`] (the file as written), [`series`] (the compact
//! notation), [`simulate`] (running the checks), [`compare`] (the diff).

mod alert_line;
pub mod compare;
pub mod series;
pub mod simulate;
pub mod spec;

pub use alert_line::AlertLine;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hawkeye_protocol::duration::{from_number, parse_duration, PlainUnit};
use hawkeye_protocol::{MetricKind, SeriesKey};

use crate::engine::{EngineSettings, DEFAULT_STATE_TTL};
use crate::monitors::{load_monitors, ConfigErrors, MonitorsFile};
pub use compare::Mismatch;
use simulate::{Input, Moment};
use spec::{Expectation, RawDuration, TestCase, TestFile};

/// The most checks one test may run (a bound on its time): monitors ×
/// checks each up to the last expectation.
pub const MAX_CHECKS: u64 = 1_000_000;

/// The largest set value (members written per step).
const MAX_SET_MEMBERS: f64 = 100_000.0;

/// Why a test file cannot be run (as opposed to a test that fails).
#[derive(Debug, thiserror::Error)]
pub enum TestFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("{0}")]
    Monitors(#[from] ConfigErrors),
    /// A test that does not make sense: which, and why.
    #[error("{path}: {test}: {reason}")]
    Invalid {
        path: PathBuf,
        test: String,
        reason: String,
    },
    #[error("{path}: {test}: {source}")]
    Store {
        path: PathBuf,
        test: String,
        source: hawkeye_store::StoreError,
    },
}

/// The outcome of one test of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOutcome {
    pub name: String,
    pub mismatches: Vec<Mismatch>,
}

/// The outcome of a test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    pub file: PathBuf,
    pub cases: Vec<CaseOutcome>,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.mismatches.is_empty())
    }

    /// One line per test, each failure followed by its diff.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for case in &self.cases {
            if case.mismatches.is_empty() {
                out.push_str(&format!("ok    {}\n", case.name));
                continue;
            }
            out.push_str(&format!(
                "FAIL  {}  (- expected, not got; + got, not expected)\n",
                case.name
            ));
            for m in &case.mismatches {
                m.render(&mut out);
            }
        }
        let failed = self
            .cases
            .iter()
            .filter(|c| !c.mismatches.is_empty())
            .count();
        out.push_str(&format!(
            "{}: {} tests, {} passed, {failed} failed\n",
            self.file.display(),
            self.cases.len(),
            self.cases.len() - failed
        ));
        out
    }
}

/// Runs every test of the file at `path`. The monitors file is validated
/// against `retention` as the agent would.
pub async fn run_file(
    path: &Path,
    retention: impl Into<crate::monitors::Retention>,
) -> Result<TestReport, TestFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| TestFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file: TestFile = serde_yaml::from_str(&text).map_err(|source| TestFileError::Yaml {
        path: path.to_path_buf(),
        source,
    })?;
    let monitors_path = path.parent().unwrap_or(Path::new(".")).join(&file.monitors);
    let monitors = load_monitors(&monitors_path, retention)?;
    let settings = EngineSettings {
        service: file.service.clone().unwrap_or_else(|| "hawkeye".into()),
        environment: file.environment.clone().unwrap_or_else(|| "dev".into()),
        mail_from: "hawkeye@localhost".into(),
        evaluation_delay_ms: 0,
        state_ttl: DEFAULT_STATE_TTL,
    };
    let mut cases = Vec::new();
    for (n, case) in file.tests.iter().enumerate() {
        let name = case
            .name
            .clone()
            .unwrap_or_else(|| format!("test {}", n + 1));
        let invalid = |reason: String| TestFileError::Invalid {
            path: path.to_path_buf(),
            test: name.clone(),
            reason,
        };
        let mismatches =
            run_case(&monitors, case, settings.clone())
                .await
                .map_err(|e| match e {
                    CaseError::Invalid(reason) => invalid(reason),
                    CaseError::Store(source) => TestFileError::Store {
                        path: path.to_path_buf(),
                        test: name.clone(),
                        source,
                    },
                })?;
        cases.push(CaseOutcome { name, mismatches });
    }
    Ok(TestReport {
        file: path.to_path_buf(),
        cases,
    })
}

enum CaseError {
    Invalid(String),
    Store(hawkeye_store::StoreError),
}

impl From<String> for CaseError {
    fn from(reason: String) -> CaseError {
        CaseError::Invalid(reason)
    }
}

async fn run_case(
    monitors: &MonitorsFile,
    case: &TestCase,
    settings: EngineSettings,
) -> Result<Vec<Mismatch>, CaseError> {
    let step = match &case.interval {
        None => Duration::from_secs(60),
        Some(d) => duration(d).map_err(|e| format!("interval: {e}"))?,
    };
    if step.as_millis() % 1000 != 0 || step.is_zero() {
        return Err(
            format!("interval: {step:?} is not a whole number of seconds (at least 1s)").into(),
        );
    }
    let inputs = case
        .input
        .iter()
        .map(input)
        .collect::<Result<Vec<_>, String>>()?;
    let labels = labels(monitors);
    let mut times = Vec::with_capacity(case.expect.len());
    for e in &case.expect {
        times.push(duration(&e.at).map_err(|err| format!("at: {err}"))?);
    }
    let until = times.iter().max().copied().unwrap_or_default();
    let checks: u64 = monitors
        .monitors
        .iter()
        .map(|m| until.as_millis() as u64 / (m.interval.as_millis() as u64).max(1) + 1)
        .sum();
    if checks > MAX_CHECKS {
        return Err(format!(
            "the expectations run {checks} checks, more than {MAX_CHECKS}: test a shorter time"
        )
        .into());
    }
    let moments = simulate::simulate(
        monitors,
        &labels,
        settings,
        &inputs,
        step.as_millis() as u64,
        until.as_millis() as u64,
    )
    .await
    .map_err(CaseError::Store)?;
    let mut mismatches = Vec::new();
    for (e, at) in case.expect.iter().zip(times) {
        mismatches.extend(check(e, at, &moments, monitors, &labels)?);
    }
    Ok(mismatches)
}

/// Each monitor's name in tests: its `id`, or its metric.
fn labels(file: &MonitorsFile) -> Vec<String> {
    file.monitors
        .iter()
        .map(|m| m.id.clone().unwrap_or_else(|| m.metric.clone()))
        .collect()
}

fn duration(d: &RawDuration) -> Result<Duration, String> {
    match d {
        RawDuration::Seconds(n) => from_number(*n, PlainUnit::Seconds)
            .ok_or_else(|| format!("{n} is not a duration (a number of seconds >= 0)")),
        RawDuration::Text(s) => parse_duration(s, PlainUnit::Seconds).map_err(|e| e.to_string()),
    }
}

fn written(d: &RawDuration) -> String {
    match d {
        RawDuration::Seconds(n) => format!("{n}s"),
        RawDuration::Text(s) => s.clone(),
    }
}

fn input(s: &spec::InputSeries) -> Result<Input, String> {
    let what = format!("input {}", s.metric);
    let kind = match s.kind.as_deref() {
        None => MetricKind::Counter,
        Some(t) => MetricKind::from_statsd(t)
            .ok_or_else(|| format!("{what}: type {t:?} is none of c, g, ms, h, d, s"))?,
    };
    let values = series::parse_series(&s.values).map_err(|e| format!("{what}: {e}"))?;
    if kind == MetricKind::Set {
        if let Some(v) = values
            .iter()
            .flatten()
            .find(|v| v.fract() != 0.0 || **v < 0.0 || **v > MAX_SET_MEMBERS)
        {
            return Err(format!(
                "{what}: a set's value is its number of members, a whole number from 0 to {MAX_SET_MEMBERS}; not {v}"
            ));
        }
    }
    let mut tags = Vec::with_capacity(s.tags.len());
    for (k, v) in &s.tags {
        let v = scalar(v)
            .ok_or_else(|| format!("{what}: tag {k}: a value must be a string or a number"))?;
        tags.push((k.clone(), v));
    }
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Ok(Input {
        key: SeriesKey::new(kind, &s.metric, &tags),
        values,
    })
}

/// A tag value as written: a string, number or boolean.
fn scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The mismatches of one expectation against what the checks did.
fn check(
    e: &Expectation,
    at: Duration,
    moments: &[Moment],
    monitors: &MonitorsFile,
    labels: &[String],
) -> Result<Vec<Mismatch>, String> {
    let at_ms = at.as_millis() as u64;
    let written = written(&e.at);
    let exact = moments.iter().find(|m| m.at_ms == at_ms);
    let latest = moments.iter().rev().find(|m| m.at_ms <= at_ms);
    let mut out = Vec::new();
    if let Some(alerts) = &e.alerts {
        let expected = alerts
            .iter()
            .map(|a| expected_alert(a, monitors, labels).map(|l| l.to_string()))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|err| format!("at {written}: {err}"))?;
        let mut got: BTreeSet<String> = latest.map_or_else(BTreeSet::new, |m| {
            m.firing.iter().map(|l| l.to_string()).collect()
        });
        got.extend(
            exact
                .iter()
                .flat_map(|m| m.resolved.iter().map(|l| l.to_string())),
        );
        out.extend(compare::compare(
            &written,
            "alerts",
            expected,
            got.into_iter().collect(),
        ));
    }
    if let Some(mails) = &e.mails {
        let got = exact.map_or_else(Vec::new, |m| m.mails.clone());
        out.extend(compare::compare(&written, "mails", mails.clone(), got));
    }
    Ok(out)
}

/// An expected alert in the form the checks produce, or why it names no
/// trigger of the file.
fn expected_alert(
    a: &spec::ExpectedAlert,
    monitors: &MonitorsFile,
    labels: &[String],
) -> Result<AlertLine, String> {
    let i = monitors
        .monitors
        .iter()
        .position(|m| m.id.as_deref() == Some(&a.monitor))
        .or_else(|| monitors.monitors.iter().position(|m| m.metric == a.monitor))
        .ok_or_else(|| format!("no monitor has the id or metric {:?}", a.monitor))?;
    let level = a.level.unwrap_or(1);
    let triggers = monitors.monitors[i].triggers.len();
    if level == 0 || level > triggers {
        return Err(format!(
            "{}: level {level}, but it has {triggers} trigger{}",
            a.monitor,
            if triggers == 1 { "" } else { "s" }
        ));
    }
    let mut group = BTreeMap::new();
    for (k, v) in &a.group {
        let v = scalar(v)
            .ok_or_else(|| format!("group: the value of {k} must be a string or a number"))?;
        group.insert(k.clone(), v);
    }
    let line = AlertLine::firing(&labels[i], group, level);
    match a.status.as_deref() {
        None | Some("firing") => Ok(line),
        Some("resolved") => Ok(line.resolved()),
        Some(other) => Err(format!("status {other:?} is neither firing nor resolved")),
    }
}
