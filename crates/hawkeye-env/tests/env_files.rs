//! The precedence of SPEC §2: the real environment over `.{ENV}.env` over
//! `.env`. One test, because the loader writes the process environment.

use hawkeye_env::load_env_files_from;

#[test]
fn env_files_load_in_the_specified_order() {
    // No files: nothing loaded, no error.
    let empty = tempfile::tempdir().unwrap();
    assert!(load_env_files_from(empty.path()).unwrap().is_empty());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "ENV=hkenvtest\nHK_ENV_TEST_BASE=base\nHK_ENV_TEST_OVERRIDDEN=base\nHK_ENV_TEST_REAL=base\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".hkenvtest.env"),
        "HK_ENV_TEST_OVERRIDDEN=specific\nHK_ENV_TEST_REAL=specific\n",
    )
    .unwrap();
    std::env::set_var("HK_ENV_TEST_REAL", "real");
    let loaded = load_env_files_from(dir.path()).unwrap();
    assert_eq!(loaded.len(), 2, "{loaded:?}");
    let var = |k: &str| std::env::var(k).unwrap();
    assert_eq!(var("HK_ENV_TEST_BASE"), "base");
    assert_eq!(
        var("HK_ENV_TEST_OVERRIDDEN"),
        "specific",
        ".{{ENV}}.env wins over .env"
    );
    assert_eq!(
        var("HK_ENV_TEST_REAL"),
        "real",
        "the real environment wins over both"
    );

    // A malformed file is an error, not silently skipped.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join(".env"), "NOT A VALID LINE\n").unwrap();
    assert!(load_env_files_from(bad.path()).is_err());
}
