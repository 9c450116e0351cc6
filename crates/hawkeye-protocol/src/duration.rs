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

/// `d` in whole seconds as people write it back: `30d`, `1h 30m`, `5m`,
/// `0s` (days are the largest unit: a month is not a fixed length). Parses
/// back with [`parse_duration`].
pub fn format_duration(d: Duration) -> String {
    format_units(d.as_secs(), usize::MAX)
}

/// `d` to its two largest units, rounded down: `2d 3h`, `14m 20s`, `45s`.
pub fn format_duration_short(d: Duration) -> String {
    format_units(d.as_secs(), 2)
}

fn format_units(secs: u64, most: usize) -> String {
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut rest = secs;
    let mut parts = Vec::new();
    for (size, name) in units {
        // Once a unit is written, the next ones count even if zero, so
        // `2d 0h 5m` is cut at two units to `2d`, not `2d 5m`.
        if rest >= size && parts.len() < most {
            parts.push(format!("{}{name}", rest / size));
            rest %= size;
        } else if !parts.is_empty() && parts.len() < most {
            parts.push(String::new());
        }
    }
    let parts: Vec<String> = parts.into_iter().filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        "0s".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_in_days_hours_minutes_seconds() {
        assert_eq!(format_duration(Duration::from_secs(35 * 86_400)), "35d");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(
            format_duration(Duration::from_secs(86_400 + 61)),
            "1d 1m 1s"
        );
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(
            format_duration_short(Duration::from_secs(183_600 + 59)),
            "2d 3h"
        );
        assert_eq!(
            format_duration_short(Duration::from_secs(2 * 86_400 + 300)),
            "2d"
        );
        assert_eq!(format_duration_short(Duration::from_secs(860)), "14m 20s");
        for s in [35 * 86_400, 5400, 86_461] {
            let d = Duration::from_secs(s);
            assert_eq!(
                parse_duration(&format_duration(d), PlainUnit::Seconds),
                Ok(d)
            );
        }
    }

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
