//! The precedence of SPEC §2: the real environment over `.{ENV}.env` over
//! `.env`. One test, because the loader writes the process environment.

use hawkeye_env::load_env_files_from;

#[test]
fn env_files_load_in_the_specified_order() {
    // No files: nothing loaded, no error.
    let empty = tempfile::tempdir().unwrap();
    assert!(load_env_files_from(empty.path()).unwrap().files.is_empty());

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
    assert_eq!(loaded.files.len(), 2, "{loaded:?}");
    assert!(loaded.notices.is_empty(), "{loaded:?}");
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

    // The Go hawkeye's lower-case keys are read as the settings they name,
    // with one notice; an upper-case key written too wins; a lower-case key
    // of the application's own is left alone.
    let go = tempfile::tempdir().unwrap();
    std::fs::write(
        go.path().join(".env"),
        "hawkeye_test_service=shop\nhawkeye_test_both=lower\nHAWKEYE_TEST_BOTH=upper\napp_key=1\n",
    )
    .unwrap();
    let loaded = load_env_files_from(go.path()).unwrap();
    assert_eq!(var("HAWKEYE_TEST_SERVICE"), "shop");
    assert_eq!(var("HAWKEYE_TEST_BOTH"), "upper");
    assert_eq!(var("app_key"), "1");
    assert!(std::env::var("APP_KEY").is_err());
    assert_eq!(loaded.notices.len(), 1, "{loaded:?}");
    assert!(
        loaded.notices[0].contains("hawkeye_test_service as HAWKEYE_TEST_SERVICE"),
        "{loaded:?}"
    );
    assert!(!loaded.notices[0].contains("both"), "{loaded:?}");

    // A malformed file is an error, not silently skipped.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join(".env"), "NOT A VALID LINE\n").unwrap();
    assert!(load_env_files_from(bad.path()).is_err());
}
