//! `hawkeye test`: the shipped monitors.test.yaml passes against the root
//! monitors.yaml, and a broken expectation fails with a readable diff.

use std::path::PathBuf;
use std::process::{Command, Output};

fn hawkeye_test(file: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hawkeye"))
        .arg("test")
        .arg(file)
        .env_remove("HAWKEYE_RETENTION")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run the hawkeye binary")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_shipped_tests_pass_on_the_shipped_monitors() {
    let out = hawkeye_test(&root().join("monitors.test.yaml"));
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("3 tests, 3 passed, 0 failed"), "{text}");
}

#[test]
fn a_broken_expectation_fails_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("monitors.yaml"),
        dir.path().join("monitors.yaml"),
    )
    .unwrap();
    let file = dir.path().join("broken.test.yaml");
    // The burst fires level 1 (not level 2) and mails its subject; the test
    // expects level 2 and another subject.
    std::fs::write(
        &file,
        "monitors: monitors.yaml
tests:
  - name: wrong level and subject
    interval: 20s
    input:
      - {metric: http.response.400, values: '0 5'}
    expect:
      - at: 40s
        alerts: [{monitor: http.response.400, level: 2}]
        mails: ['4xx errors!']
  - name: right
    interval: 20s
    input:
      - {metric: http.response.400, values: '0 5'}
    expect:
      - {at: 40s, alerts: [{monitor: http.response.400}]}
",
    )
    .unwrap();
    let out = hawkeye_test(&file);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let expected = "\
FAIL  wrong level and subject  (- expected, not got; + got, not expected)
    at 40s, alerts:
      + http.response.400 level 1 firing
      - http.response.400 level 2 firing
    at 40s, mails:
      + 4xx errors exceeded
      - 4xx errors!
ok    right
";
    let text = stdout(&out);
    assert!(text.starts_with(expected), "{text}");
    assert!(text.ends_with("2 tests, 1 passed, 1 failed\n"), "{text}");
}

#[test]
fn a_test_file_that_makes_no_sense_is_an_error_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("monitors.yaml"),
        dir.path().join("monitors.yaml"),
    )
    .unwrap();
    let file = dir.path().join("bad.test.yaml");
    std::fs::write(
        &file,
        "monitors: monitors.yaml\ntests:\n  - input: [{metric: x, values: '1 two'}]\n    expect: [{at: 1m, mails: []}]\n",
    )
    .unwrap();
    let out = hawkeye_test(&file);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("test 1: input x: series item \"two\": not a number"),
        "{err}"
    );
}
