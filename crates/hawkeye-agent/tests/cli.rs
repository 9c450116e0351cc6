//! The `hawkeye-agent` binary: `--check`, SIGHUP reload keeping the last
//! good file, graceful SIGTERM.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::processes::{agent_binary, clean_command, Proc};
use hawkeye_testkit::RedisServer;

const DEADLINE: Duration = Duration::from_secs(30);

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A temporary directory holding the original fixture as `monitors.yaml`,
/// and that file's path.
fn dir_with_monitors() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitors.yaml");
    std::fs::copy(fixture("monitors-original.yaml"), &path).unwrap();
    (dir, path)
}

/// The agent on the monitors file `path` (run in its directory) over
/// `redis`, mailing to the log, logging at info.
fn running_agent(path: &Path, redis: &RedisServer) -> std::process::Command {
    let mut cmd = clean_command(&agent_binary());
    cmd.env("MONITOR_CONFIG_FILE", path)
        .env("REDIS_URL", redis.url())
        .env("MAILER", "log")
        .env("RUST_LOG", "info")
        .current_dir(path.parent().expect("a file in a directory"));
    cmd
}

#[test]
fn check_accepts_both_fixtures() {
    for name in ["monitors-original.yaml", "monitors-extended.yaml"] {
        let out = clean_command(&agent_binary())
            .arg("--check")
            .arg(fixture(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(": ok ("));
    }
}

/// `hawkeye-agent --check` on a file holding `text`: the file's directory
/// (kept while the output is read), its path and the output.
fn check_text(text: &str) -> (tempfile::TempDir, PathBuf, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitors.yaml");
    std::fs::write(&path, text).unwrap();
    let out = clean_command(&agent_binary())
        .arg("--check")
        .arg(&path)
        .output()
        .unwrap();
    (dir, path, out)
}

#[test]
fn check_accepts_interval_zero_and_prints_its_warning() {
    let (_dir, path, out) = check_text(
        "version: 1\nmonitors:\n  - metric: a\n    interval: 0\n    triggers:\n      - {threshold: 1, to: a@b.example}\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}:4:15: interval: 0 is read as 60s",
            path.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains(": ok (1 monitors"), "{stdout}");
}

#[test]
fn check_prints_every_problem_and_exits_1() {
    let (_dir, path, out) = check_text(
        "version: 1\nmonitors:\n  - metric: a\n    aggregate: p95\n    triggers:\n      - threshold: 1\n        op: '=>'\n        to: []\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let origin = path.display().to_string();
    assert_eq!(
        lines,
        [
            format!("{origin}:4:16: p95 does not apply to a counter (use sum, rate)"),
            format!("{origin}:7:13: unknown op \"=>\" (expected >=, >, < or <=)"),
            format!("{origin}:8:9: `to` needs at least one address (or give a `webhook`, or use `notifier: log`)"),
        ],
        "{stdout}"
    );
}

#[test]
fn refuses_to_start_on_an_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitors.yaml");
    std::fs::write(
        &path,
        "version: 1\nmonitors:\n  - metric: a\n    triggers: []\n",
    )
    .unwrap();
    let out = clean_command(&agent_binary())
        .env("MONITOR_CONFIG_FILE", &path)
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(":4:15: a monitor needs at least one trigger"),
        "{stderr}"
    );
}

#[test]
fn a_missing_required_setting_is_a_one_line_error() {
    let (dir, _) = dir_with_monitors();
    let out = clean_command(&agent_binary())
        .env("MAILER", "smtp")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SMTP_HOST is not set"), "{stderr}");
}

#[test]
fn dotenv_files_are_read_and_the_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    // .env names the monitors file and ENV; .prod.env overrides MAILER;
    // the real environment overrides SMTP_HOST from .prod.env. A missing
    // SMTP_PORT default and a bad host make the error show which won.
    std::fs::write(
        dir.path().join(".env"),
        "ENV=prod\nMONITOR_CONFIG_FILE=from-dotenv.yaml\nMAILER=log\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".prod.env"),
        "MAILER=smtp\nSMTP_TLS=bogus\n",
    )
    .unwrap();
    let out = clean_command(&agent_binary())
        .env("SMTP_HOST", "mail.example.com")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // MAILER=smtp came from .prod.env (over .env), SMTP_HOST from the
    // environment, and the SMTP_TLS error shows .prod.env was read.
    assert!(stderr.contains("SMTP_TLS=\"bogus\""), "{stderr}");
    std::fs::write(dir.path().join(".prod.env"), "MAILER=smtp\n").unwrap();
    let out = clean_command(&agent_binary())
        .env("SMTP_HOST", "mail.example.com")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("from-dotenv.yaml"),
        "the monitors file named by .env: {stderr}"
    );
}

#[test]
fn the_go_hawkeyes_lower_case_dotenv_keys_are_read_with_a_notice() {
    let (dir, _) = dir_with_monitors();
    // mailer=smtp without an SMTP host: the error shows the key was read.
    std::fs::write(dir.path().join(".env"), "service_name=shop\nmailer=smtp\n").unwrap();
    let out = clean_command(&agent_binary())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SMTP_HOST is not set"), "{stderr}");
    let notices: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("notice:"))
        .collect();
    assert_eq!(notices.len(), 1, "{stderr}");
    assert!(
        notices[0].contains("mailer as MAILER, service_name as SERVICE_NAME"),
        "{stderr}"
    );
}

#[test]
fn sighup_reloads_and_keeps_the_last_good_file_then_sigterm_exits_0() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitors.yaml");
    std::fs::copy(fixture("monitors-original.yaml"), &path).unwrap();
    let cmd = running_agent(&path, &redis);
    let mut agent = Proc::spawn("agent", cmd);
    assert!(agent.wait_for_line("agent started", DEADLINE));

    std::fs::write(
        &path,
        "version: 1\nmonitors:\n  - metric: a\n    bogus: 1\n",
    )
    .unwrap();
    agent.signal(libc::SIGHUP);
    assert!(agent.wait_for_line("keeping the last good monitors", DEADLINE));
    // Every problem is logged, not only the first.
    assert!(agent.wait_for_line(":4:5: unknown key `bogus`", DEADLINE));
    assert!(agent.wait_for_line(":3:5: a monitor needs `triggers`", DEADLINE));

    std::fs::copy(fixture("monitors-extended.yaml"), &path).unwrap();
    agent.signal(libc::SIGHUP);
    assert!(agent.wait_for_line("monitors reloaded", DEADLINE));

    agent.signal(libc::SIGTERM);
    let status = agent
        .wait_exit(DEADLINE)
        .expect("the agent exits on SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitors.yaml");
    std::fs::copy(fixture("monitors-original.yaml"), &path).unwrap();
    let mut cmd = running_agent(&path, &redis);
    // NO_COLOR removed: the agent itself must see its stderr is no terminal.
    cmd.env_remove("NO_COLOR");
    let mut agent = Proc::spawn("agent", cmd);
    assert!(agent.wait_for_line("agent started", DEADLINE));
    agent.signal(libc::SIGTERM);
    agent
        .wait_exit(DEADLINE)
        .expect("the agent exits on SIGTERM");
    let lines = agent.lines();
    assert!(lines.iter().any(|l| l.contains(" INFO ")), "{lines:?}");
    let coloured: Vec<&String> = lines.iter().filter(|l| l.contains('\x1b')).collect();
    assert!(coloured.is_empty(), "escape codes in {coloured:?}");
}

#[test]
fn check_refuses_a_window_longer_than_hawkeye_rollup_retention() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitors.yaml");
    std::fs::write(
        &path,
        "version: 1\nmonitors:\n  - metric: a\n    interval: 30s\n    window: 40d\n    triggers:\n      - threshold: 1\n        to: [x@example.com]\n",
    )
    .unwrap();
    let run = |rollup: Option<&str>| {
        let mut cmd = clean_command(&agent_binary());
        cmd.current_dir(dir.path()).arg("--check").arg(&path);
        if let Some(r) = rollup {
            cmd.env("HAWKEYE_ROLLUP_RETENTION", r);
        }
        cmd.output().unwrap()
    };
    // Default rollup retention 35d.
    let out = run(None);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            ":5:13: monitor a: window 40d is longer than the data retention 35d (HAWKEYE_ROLLUP_RETENTION)"
        ),
        "{stdout}"
    );
    let out = run(Some("50d"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn mail_max_age_is_read_from_the_environment() {
    let (dir, _) = dir_with_monitors();
    let out = clean_command(&agent_binary())
        .env("MAIL_MAX_AGE", "soon")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MAIL_MAX_AGE:"), "{stderr}");
}
