//! `hawkeye check`: validates a monitors file and reports every problem with
//! its line and column.

use std::path::Path;
use std::process::ExitCode;

/// Checks `file` against `HAWKEYE_RETENTION` (default 1h): the CLI cannot
/// ask the server for it.
pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let retention = hawkeye_env::Env::process().duration(
        "HAWKEYE_RETENTION",
        hawkeye_agent::AgentConfig::default().retention,
    )?;
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
