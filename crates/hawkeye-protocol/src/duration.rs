//! Durations as users write them: a plain number in a unit fixed by context
//! (the original Go tool used seconds for `interval` and minutes for `run_every`),
//! or a string with units (`500ms`, `30s`, `5m`, `1h`, `1h 30m`).

use std::time::Duration;

/// The unit a plain number is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainUnit {
    Milliseconds,
    Seconds,
    Minutes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct DurationError {
    pub input: String,
    pub reason: String,
}

/// Parses `s` as a duration; a bare number is taken in `plain`.
pub fn parse_duration(s: &str, plain: PlainUnit) -> Result<Duration, DurationError> {
    let trimmed = s.trim();
    let err = |reason: &str| DurationError {
        input: s.to_string(),
        reason: reason.to_string(),
    };
    if trimmed.is_empty() {
        return Err(err("empty"));
    }
    if let Ok(n) = trimmed.parse::<f64>() {
        return from_number(n, plain).ok_or_else(|| err("must be a finite number >= 0"));
    }
    humantime::parse_duration(trimmed)
        .map_err(|e| err(&format!("{e} (write e.g. 500ms, 30s, 5m, 1h)")))
}

/// A plain number in `unit`, or `None` when it is negative or not finite.
pub fn from_number(n: f64, unit: PlainUnit) -> Option<Duration> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let secs = match unit {
        PlainUnit::Milliseconds => n / 1000.0,
        PlainUnit::Seconds => n,
        PlainUnit::Minutes => n * 60.0,
    };
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_take_the_contexts_unit() {
        assert_eq!(
            parse_duration("20", PlainUnit::Seconds).unwrap(),
            Duration::from_secs(20)
        );
        assert_eq!(
            parse_duration("5", PlainUnit::Minutes).unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            parse_duration("200", PlainUnit::Milliseconds).unwrap(),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn strings_with_units() {
        for (s, d) in [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("5m", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            ("1h 30m", Duration::from_secs(5400)),
        ] {
            assert_eq!(parse_duration(s, PlainUnit::Seconds).unwrap(), d, "{s}");
        }
    }

    #[test]
    fn bad_durations_are_errors() {
        for s in ["", "abc", "-5", "5 parsecs", "NaN", "inf"] {
            assert!(parse_duration(s, PlainUnit::Seconds).is_err(), "{s:?}");
        }
    }
}
