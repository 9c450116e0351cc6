//! Reading settings from the environment, the same way in every binary: a
//! blank value (`SMTP_USERNAME=` in `.env`) is unset, durations take units
//! (a plain number is seconds), and a bad value is an error naming the
//! variable. Tests read from a map instead of the process environment.

use std::collections::HashMap;
use std::time::Duration;

use hawkeye_protocol::{parse_duration, PlainUnit};

/// A setting that could not be read; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct EnvError {
    pub variable: String,
    pub reason: String,
}

/// Where settings are read from.
pub struct Env {
    vars: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment (after [`crate::load_env_files`]).
    pub fn process() -> Env {
        Env { vars: None }
    }

    /// Fixed values, for tests.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env {
            vars: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
        }
    }

    /// The value of `variable`; `None` when unset or blank.
    pub fn get(&self, variable: &str) -> Option<String> {
        let value = match &self.vars {
            Some(map) => map.get(variable).cloned(),
            None => std::env::var(variable).ok(),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    pub fn string_or(&self, variable: &str, default: &str) -> String {
        self.get(variable).unwrap_or_else(|| default.to_string())
    }

    /// A duration with units (`500ms`, `30s`, `5m`); a plain number is seconds.
    pub fn duration(&self, variable: &str, default: Duration) -> Result<Duration, EnvError> {
        match self.get(variable) {
            None => Ok(default),
            Some(v) => parse_duration(&v, PlainUnit::Seconds).map_err(|e| EnvError {
                variable: variable.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// A positive whole number.
    pub fn count(&self, variable: &str, default: usize) -> Result<usize, EnvError> {
        match self.get(variable) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(EnvError {
                    variable: variable.to_string(),
                    reason: format!("{v:?} is not a positive whole number"),
                }),
            },
        }
    }
}

impl Env {
    /// An `ip:port` address (`127.0.0.1:8125`, `[::1]:8125`); `None` when unset.
    pub fn socket_addr(&self, variable: &str) -> Result<Option<std::net::SocketAddr>, EnvError> {
        self.get(variable)
            .map(|v| {
                v.trim().parse().map_err(|_| EnvError {
                    variable: variable.to_string(),
                    reason: format!("{v:?} is not an address such as 127.0.0.1:8125"),
                })
            })
            .transpose()
    }

    /// A value read with its `FromStr`, whose error says what is expected.
    pub fn parsed<T: std::str::FromStr<Err = String>>(
        &self,
        variable: &str,
        default: T,
    ) -> Result<T, EnvError> {
        match self.get(variable) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|reason| EnvError {
                variable: variable.to_string(),
                reason,
            }),
        }
    }

    /// An octal file mode (`0660`, `0o600`), at most `0777`.
    pub fn mode(&self, variable: &str, default: u32) -> Result<u32, EnvError> {
        match self.get(variable) {
            None => Ok(default),
            Some(v) => u32::from_str_radix(v.trim().trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| EnvError {
                    variable: variable.to_string(),
                    reason: format!("{v:?} is not an octal file mode such as 0660"),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_unset_and_bad_values_name_the_variable() {
        let env = Env::from_pairs(&[("A", " "), ("D", "5m"), ("N", "0"), ("X", "soon")]);
        assert_eq!(env.get("A"), None);
        assert_eq!(env.string_or("A", "dflt"), "dflt");
        assert_eq!(
            env.duration("D", Duration::ZERO).unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            env.duration("missing", Duration::from_secs(1)).unwrap(),
            Duration::from_secs(1)
        );
        assert_eq!(env.duration("X", Duration::ZERO).unwrap_err().variable, "X");
        assert!(env
            .count("N", 1)
            .unwrap_err()
            .to_string()
            .starts_with("N: "));
        assert_eq!(env.count("missing", 7).unwrap(), 7);
    }

    #[test]
    fn addresses_modes_and_parsed_values() {
        let env = Env::from_pairs(&[
            ("ADDR", " 127.0.0.1:8125 "),
            ("HOST", "localhost"),
            ("MODE", "0o640"),
            ("BAD_MODE", "1777"),
            ("N", " 42 "),
        ]);
        assert_eq!(
            env.socket_addr("ADDR").unwrap(),
            Some("127.0.0.1:8125".parse().unwrap())
        );
        assert_eq!(env.socket_addr("missing").unwrap(), None);
        assert_eq!(env.socket_addr("HOST").unwrap_err().variable, "HOST");
        assert_eq!(env.mode("MODE", 0o600).unwrap(), 0o640);
        assert_eq!(env.mode("missing", 0o600).unwrap(), 0o600);
        assert!(env
            .mode("BAD_MODE", 0)
            .unwrap_err()
            .reason
            .contains("octal"));
        #[derive(Debug)]
        struct Small(u8);
        impl std::str::FromStr for Small {
            type Err = String;
            fn from_str(s: &str) -> Result<Small, String> {
                s.parse()
                    .map(Small)
                    .map_err(|e: std::num::ParseIntError| e.to_string())
            }
        }
        assert_eq!(env.parsed("N", Small(0)).unwrap().0, 42);
        assert_eq!(env.parsed("missing", Small(7)).unwrap().0, 7);
        assert_eq!(env.parsed("HOST", Small(0)).unwrap_err().variable, "HOST");
    }
}
