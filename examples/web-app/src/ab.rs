//! Running ApacheBench (`ab`, from apache2-utils) and reading its report.

use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum AbError {
    #[error("cannot run ab (install apache2-utils): {0}")]
    Spawn(#[source] std::io::Error),
    #[error("ab failed ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    #[error("ab's report has no {0:?} line:\n{1}")]
    Report(&'static str, String),
}

/// What one ab run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct AbReport {
    pub complete: u64,
    pub failed: u64,
    /// Responses other than 2xx (ab counts them separately from failures).
    pub non_2xx: u64,
    pub requests_per_second: f64,
}

/// Runs `ab -q -n requests -c concurrency [-k] url`.
pub fn run_ab(
    url: &str,
    requests: u64,
    concurrency: u64,
    keep_alive: bool,
) -> Result<AbReport, AbError> {
    let mut cmd = Command::new("ab");
    cmd.arg("-q")
        .arg("-n")
        .arg(requests.to_string())
        .arg("-c")
        .arg(concurrency.to_string());
    if keep_alive {
        cmd.arg("-k");
    }
    let out = cmd.arg(url).output().map_err(AbError::Spawn)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(AbError::Failed {
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    parse_report(&stdout)
}

/// Reads the figures out of ab's report.
pub fn parse_report(text: &str) -> Result<AbReport, AbError> {
    let field = |label: &'static str| -> Option<&str> {
        text.lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
    };
    let number = |label: &'static str| -> Result<f64, AbError> {
        field(label)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| AbError::Report(label, text.to_string()))
    };
    Ok(AbReport {
        complete: number("Complete requests:")? as u64,
        failed: number("Failed requests:")? as u64,
        non_2xx: field("Non-2xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        requests_per_second: number("Requests per second:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_abs_report() {
        let text = "Concurrency Level:      50\nComplete requests:      20000\nFailed requests:        0\nNon-2xx responses:      20000\nRequests per second:    15234.56 [#/sec] (mean)\n";
        let r = parse_report(text).unwrap();
        assert_eq!(r.complete, 20000);
        assert_eq!(r.failed, 0);
        assert_eq!(r.non_2xx, 20000);
        assert!((r.requests_per_second - 15234.56).abs() < 1e-9);
        assert!(parse_report("garbage").is_err());
    }
}
