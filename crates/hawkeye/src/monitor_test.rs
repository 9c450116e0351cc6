//! `hawkeye test FILE`: runs the unit tests of a monitors file
//! (docs/monitor-tests.md) and prints a diff of every failure.

use std::path::Path;
use std::process::ExitCode;

/// Runs the tests of `file`; exit status 1 when one fails. The monitors are
/// validated against `HAWKEYE_RETENTION` (default 1h) and
/// `HAWKEYE_ROLLUP_RETENTION` (default 35d), as `hawkeye check`.
pub async fn run(file: &Path) -> anyhow::Result<ExitCode> {
    let retention = hawkeye_agent::retention_from_env(&hawkeye_env::Env::process())?;
    let report = hawkeye_agent::monitor_tests::run_file(file, retention).await?;
    print!("{}", report.render());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
