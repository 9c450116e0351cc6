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

/// Loads the files and returns the ones found. A missing file is not an
/// error; an unreadable or malformed one is.
pub fn load_env_files() -> Result<Vec<PathBuf>, dotenvy::Error> {
    load_env_files_from(Path::new("."))
}

/// [`load_env_files`] from `dir` instead of the working directory.
pub fn load_env_files_from(dir: &Path) -> Result<Vec<PathBuf>, dotenvy::Error> {
    let mut loaded = Vec::new();
    let mut values = BTreeMap::new();
    let base = dir.join(".env");
    if read_into(&base, &mut values)? {
        loaded.push(base);
    }
    let env_name = std::env::var("ENV")
        .ok()
        .or_else(|| values.get("ENV").cloned())
        .filter(|e| !e.trim().is_empty());
    if let Some(env_name) = env_name {
        let specific = dir.join(format!(".{}.env", env_name.trim()));
        if read_into(&specific, &mut values)? {
            loaded.push(specific);
        }
    }
    for (key, value) in values {
        if std::env::var_os(&key).is_none() {
            // Single-threaded at this point: called first thing in main.
            std::env::set_var(key, value);
        }
    }
    Ok(loaded)
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
