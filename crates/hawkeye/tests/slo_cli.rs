//! `hawkeye check` and `hawkeye slo` on SLO monitors: a 30-day period is
//! within the default rollup retention, a mistake is printed at its
//! `file:line:col`, and `hawkeye slo` says when it has no store to read.

use std::process::{Command, Output};

fn hawkeye(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawkeye"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("HAWKEYE_RETENTION")
        .env_remove("HAWKEYE_ROLLUP_RETENTION")
        .env_remove("MONITOR_CONFIG_FILE")
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const SLO: &str = "version: 1
monitors:
  - metric: checkout.errors
    ratio_of: checkout.requests
    slo: {objective: 99.9, period: 30d, page: oncall@example.com}
";

#[test]
fn check_accepts_a_30_day_slo_and_locates_its_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("monitors.yaml"), SLO).unwrap();
    let out = hawkeye(dir.path(), &["check", "monitors.yaml"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "monitors.yaml: ok (1 monitors, 3 triggers)\n");

    // A rollup retention shorter than the period: refused where it is written.
    let out = hawkeye(
        dir.path(),
        &["check", "monitors.yaml"],
        &[("HAWKEYE_ROLLUP_RETENTION", "7d")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("monitors.yaml:5:36: period 30d is longer than the rollup retention 7d"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("monitors.yaml"),
        SLO.replace("objective: 99.9", "objective: 100"),
    )
    .unwrap();
    let out = hawkeye(dir.path(), &["check", "monitors.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("monitors.yaml:5:22: objective must be a percentage between 0 and 100"),
        "{stderr}"
    );
}

#[test]
fn slo_needs_the_store_the_agents_share() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("monitors.yaml"), SLO).unwrap();
    let out = hawkeye(dir.path(), &["slo"], &[("REDIS_URL", "memory://")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("hawkeye slo reads the store the agents and servers share (REDIS_URL)"),
        "{stderr}"
    );
}
