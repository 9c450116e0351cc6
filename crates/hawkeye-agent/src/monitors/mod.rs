//! `monitors.yaml`: what a monitor is, and loading a file with every
//! problem reported at its line and column. The reference of every key is
//! `docs/monitors.md`.
//!
//! Loading is one YAML parse and three steps:
//! - `raw`: each level (the file, a monitor, a trigger, a maintenance
//!   window) is a mapping whose keys are compared with the keys it may
//!   have: unknown and missing keys are found from the structure itself,
//!   then each known key is read on its own, so one bad value does not hide
//!   the next;
//! - `convert`: raw values become typed ones (durations, ops, types…);
//! - `check`: the rules between values (aggregation for the type, windows
//!   within the retention, addresses, templates), shared with files built
//!   in code.
//!
//! `problems` turns paths into `file:line:col: message`.

mod check;
mod convert;
pub mod maintenance;
mod model;
mod problems;
mod raw;
mod slo;

use std::path::Path;

pub use maintenance::{MaintenanceWindow, Weekday};
pub use model::{
    BurnWindows, Missing, Monitor, MonitorsFile, Notifier, Op, Retention, Slo, Trigger,
    WebhookFormat, DEFAULT_GAUGE_STALE_AFTER, DEFAULT_INTERVAL, DEFAULT_RUN_EVERY,
};
pub use problems::{ConfigErrors, ConfigProblem};

/// Reads and validates the monitors file at `path`; no `interval` may be
/// longer than the per-second retention, no `window` or SLO `period` longer
/// than the rollup retention (the store has no older data). A plain
/// [`std::time::Duration`] is both.
pub fn load_monitors(
    path: &Path,
    retention: impl Into<Retention>,
) -> Result<MonitorsFile, ConfigErrors> {
    let origin = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_monitors(&text, &origin, retention),
        Err(e) => Err(ConfigErrors::whole_file(
            &origin,
            format!("cannot read the monitors file: {e}"),
        )),
    }
}

/// Parses and validates a monitors file against the store's `retention`;
/// `origin` names it in messages.
pub fn parse_monitors(
    text: &str,
    origin: &str,
    retention: impl Into<Retention>,
) -> Result<MonitorsFile, ConfigErrors> {
    let retention = retention.into();
    let value: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => return Err(problems::syntax_error(&e, text, origin)),
    };
    let mut problems = problems::Problems::default();
    let file = convert::file(&value, retention, &mut problems);
    match file {
        Some(mut file) if problems.is_empty() => {
            let warnings = problems.into_warnings(origin, Some(text)).to_string();
            file.warnings = warnings.lines().map(str::to_string).collect();
            Ok(file)
        }
        _ => Err(problems.into_errors(origin, Some(text))),
    }
}

impl MonitorsFile {
    /// Checks a file built in code (a parsed file has passed these checks)
    /// against the store's `retention`.
    pub fn validate(&self, retention: impl Into<Retention>) -> Result<(), ConfigErrors> {
        let retention = retention.into();
        let mut problems = problems::Problems::default();
        check::file(self, retention, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.into_errors("<monitors>", None))
        }
    }
}

/// The path read when neither the environment nor the command line names one.
pub fn default_monitors_path() -> std::path::PathBuf {
    std::path::PathBuf::from("monitors.yaml")
}
