//! `hawkeye check`: validates a monitors file and reports every problem with
//! its line and column.

use std::path::Path;
use std::process::ExitCode;

/// Checks `file` against `HAWKEYE_RETENTION` (default 1h) and
/// `HAWKEYE_ROLLUP_RETENTION` (default 35d): the CLI cannot ask the server.
pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let retention = hawkeye_agent::retention_from_env(&hawkeye_env::Env::process())?;
    match hawkeye_agent::load_monitors(file, retention) {
        Ok(monitors) => {
            for w in &monitors.warnings {
                eprintln!("{w}");
            }
            let triggers: usize = monitors.monitors.iter().map(|m| m.triggers.len()).sum();
            println!(
                "{}: ok ({} monitors, {triggers} triggers)",
                file.display(),
                monitors.monitors.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "{}: {} problem{}",
                file.display(),
                errors.problems.len(),
                if errors.problems.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
