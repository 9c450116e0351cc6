//! Loading `.env` files as the README's configuration section says: `.env` in the working directory when
//! present, then `.{ENV}.env` when `ENV` is set (in the environment or in
//! `.env`); a value in `.{ENV}.env` overrides the one in `.env`. Variables
//! already in the environment win over both, and CLI flags win over
//! everything (clap reads the environment after this ran).
//!
//! [`Env`] then reads the settings, the same way for every binary.

mod reader;

pub use reader::{Env, EnvError};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What [`load_env_files`] did: the files it read, and notices for the
/// user (one line each) that the binary prints once logging is possible.
#[derive(Debug, Default)]
pub struct Loaded {
    pub files: Vec<PathBuf>,
    pub notices: Vec<String>,
}

/// Loads the files and returns the ones found. A missing file is not an
/// error; an unreadable or malformed one is.
pub fn load_env_files() -> Result<Loaded, dotenvy::Error> {
    load_env_files_from(Path::new("."))
}

/// [`load_env_files`] from `dir` instead of the working directory.
pub fn load_env_files_from(dir: &Path) -> Result<Loaded, dotenvy::Error> {
    let mut loaded = Loaded::default();
    let mut values = BTreeMap::new();
    let base = dir.join(".env");
    if read_into(&base, &mut values)? {
        loaded.files.push(base);
    }
    let env_name = std::env::var("ENV")
        .ok()
        .or_else(|| values.get("ENV").cloned())
        .filter(|e| !e.trim().is_empty());
    if let Some(env_name) = env_name {
        let specific = dir.join(format!(".{}.env", env_name.trim()));
        if read_into(&specific, &mut values)? {
            loaded.files.push(specific);
        }
    }
    loaded.notices.extend(upper_case_legacy_keys(&mut values));
    for (key, value) in values {
        if std::env::var_os(&key).is_none() {
            // Single-threaded at this point: called first thing in main.
            std::env::set_var(key, value);
        }
    }
    Ok(loaded)
}

/// Where hawkeye's settings start: a lower-case key of an application's
/// own (sharing the `.env` file) is left alone and not reported.
const SETTING_PREFIXES: &[&str] = &[
    "SERVICE_NAME",
    "ENVIRONMENT",
    "ENV",
    "REDIS_",
    "HAWKEYE_",
    "SMTP_",
    "MAIL",
    "MONITOR_",
    "ALERT_",
    "AGENT_",
];

/// The Go hawkeye's `.env` spelt its keys in lower case (`service_name`,
/// `redis_url`, `environment`). Every setting here is upper case, so a
/// lower-case key naming a setting is also read as its upper-case name,
/// unless that name is written too (in a file or the environment), which
/// wins. One notice names the keys so read.
fn upper_case_legacy_keys(values: &mut BTreeMap<String, String>) -> Option<String> {
    let legacy: Vec<(String, String, String)> = values
        .iter()
        .filter(|(key, _)| !key.bytes().any(|b| b.is_ascii_uppercase()))
        .map(|(key, value)| (key.clone(), key.to_ascii_uppercase(), value.clone()))
        .filter(|(_, upper, _)| SETTING_PREFIXES.iter().any(|p| upper.starts_with(p)))
        .filter(|(_, upper, _)| !values.contains_key(upper) && std::env::var_os(upper).is_none())
        .collect();
    if legacy.is_empty() {
        return None;
    }
    let read: Vec<String> = legacy
        .iter()
        .map(|(key, upper, _)| format!("{key} as {upper}"))
        .collect();
    for (_, upper, value) in legacy {
        values.insert(upper, value);
    }
    Some(format!(
        "the .env files use the Go hawkeye's lower-case keys: read {} (write them in upper case to silence this)",
        read.join(", ")
    ))
}

/// Reads `path` into `values`; false when it does not exist.
fn read_into(path: &Path, values: &mut BTreeMap<String, String>) -> Result<bool, dotenvy::Error> {
    let items = match dotenvy::from_path_iter(path) {
        Ok(items) => items,
        Err(e) if e.not_found() => return Ok(false),
        Err(e) => return Err(e),
    };
    for item in items {
        let (key, value) = item?;
        values.insert(key, value);
    }
    Ok(true)
}
