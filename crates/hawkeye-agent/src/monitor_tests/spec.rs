//! The test file as written (`docs/monitor-tests.md`): which monitors file,
//! the input series and what is expected when. Unknown keys are errors, as
//! in monitors.yaml.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

/// A duration as the monitors file writes it: seconds, or a string with
/// units (`30s`, `5m`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawDuration {
    Seconds(f64),
    Text(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The monitors file, relative to the test file.
    pub monitors: PathBuf,
    /// `SERVICE_NAME` and `ENVIRONMENT` as the agent would have them (they
    /// are in the default subject); default `hawkeye` and `dev`.
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    pub tests: Vec<TestCase>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    #[serde(default)]
    pub name: Option<String>,
    /// The time between two values of a series; default `1m`.
    #[serde(default)]
    pub interval: Option<RawDuration>,
    #[serde(default)]
    pub input: Vec<InputSeries>,
    pub expect: Vec<Expectation>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSeries {
    pub metric: String,
    /// `c`, `g`, `ms`/`h`/`d`, `s`; default `c`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, serde_yaml::Value>,
    /// One value per step in the compact notation (`0 5x10 _x3`).
    pub values: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// The time of the checks, from the start of the test.
    pub at: RawDuration,
    /// Exactly the alerts firing after the checks at `at`, and those these
    /// checks resolved; `None`: not checked.
    #[serde(default)]
    pub alerts: Option<Vec<ExpectedAlert>>,
    /// Exactly the subjects of the mail the checks at `at` sent; `None`:
    /// not checked.
    #[serde(default)]
    pub mails: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAlert {
    /// The monitor's `id`, or its metric.
    pub monitor: String,
    /// The trigger's level; default 1.
    #[serde(default)]
    pub level: Option<usize>,
    /// The group, for a monitor with `group_by`: its tags' values.
    #[serde(default)]
    pub group: BTreeMap<String, serde_yaml::Value>,
    /// `firing` (default) or `resolved`.
    #[serde(default)]
    pub status: Option<String>,
}
