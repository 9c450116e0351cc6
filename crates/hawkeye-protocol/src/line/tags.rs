//! The `#<tag>[:<value>],...` field of a line, and the bounds on what it may
//! hold (docs/protocol.md, "Limits").
//!
//! Parsing a line must cost time in proportion to its length whatever it
//! holds: one line of 120 000 tags once stalled every client for seconds
//! because each key was compared with every earlier one. Here the tag count
//! is bounded ([`Limits::max_tags`]) and tags are never compared with each
//! other: a key may repeat (`#team:a,team:b`, as DogStatsD keeps both).

use super::error::{snippet, LineError};
use super::types::GaugeMode;

/// Bounds on one line, so that what one line costs (parsing time, and the
/// memory of the series it creates) is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most tags on one line (`HAWKEYE_MAX_TAGS`).
    pub max_tags: usize,
    /// Longest series key, in bytes: the name plus the tags as stored
    /// (`k:v` joined by `,`); also the longest set member
    /// (`HAWKEYE_MAX_KEY_BYTES`).
    pub max_key_bytes: usize,
    /// What a gauge value written with a sign means (`HAWKEYE_GAUGE_MODE`).
    /// Not a bound, but read per listener with them.
    pub gauge_mode: GaugeMode,
}

impl Limits {
    pub const DEFAULT_MAX_TAGS: usize = 100;
    pub const DEFAULT_MAX_KEY_BYTES: usize = 4096;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tags: Limits::DEFAULT_MAX_TAGS,
            max_key_bytes: Limits::DEFAULT_MAX_KEY_BYTES,
            gauge_mode: GaugeMode::Statsd,
        }
    }
}

/// Parses the text after `#`. `name_len` counts towards the key bound.
pub(super) fn parse_tags<'a>(
    text: &'a str,
    name_len: usize,
    limits: &Limits,
) -> Result<Vec<(&'a str, &'a str)>, LineError> {
    let mut tags: Vec<(&'a str, &'a str)> = Vec::new();
    let mut key_bytes = name_len;
    for raw in text.split(',') {
        if tags.len() == limits.max_tags {
            // Stop here: the rest of the line is not even scanned.
            return Err(LineError::TooManyTags {
                max: limits.max_tags,
            });
        }
        let tag = parse_tag(raw)?;
        // As stored: `k` or `k:v`, joined by `,`.
        key_bytes += usize::from(!tags.is_empty())
            + tag.0.len()
            + if tag.1.is_empty() { 0 } else { 1 + tag.1.len() };
        if key_bytes > limits.max_key_bytes {
            return Err(LineError::KeyTooLong {
                max: limits.max_key_bytes,
            });
        }
        tags.push(tag);
    }
    Ok(tags)
}

/// One tag, with the spaces around it and around its `:` trimmed (as
/// DogStatsD does: `#a:b, c:d` is two tags, `env:prod ` is `env:prod`).
fn parse_tag(raw: &str) -> Result<(&str, &str), LineError> {
    let tag = raw.trim_matches(is_space);
    let invalid = |reason: &str| LineError::InvalidTag {
        tag: snippet(tag),
        reason: reason.to_string(),
    };
    let (key, value) = match tag.split_once(':') {
        Some((k, v)) => (k.trim_end_matches(is_space), v.trim_start_matches(is_space)),
        None => (tag, ""),
    };
    if key.is_empty() {
        return Err(invalid("empty tag key"));
    }
    if key
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '#')
    {
        return Err(invalid(
            "keys may not hold spaces, control characters or '#'",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid("values may not hold control characters"));
    }
    Ok((key, value))
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNBOUNDED: Limits = Limits {
        max_tags: usize::MAX,
        max_key_bytes: usize::MAX,
        gauge_mode: GaugeMode::Statsd,
    };

    #[test]
    fn a_repeated_key_is_kept_with_each_value() {
        let tags = parse_tags("team:a,team:b,env:prod,team:a", 1, &UNBOUNDED).unwrap();
        assert_eq!(
            tags,
            vec![("team", "a"), ("team", "b"), ("env", "prod"), ("team", "a")]
        );
    }

    #[test]
    fn a_line_of_120_000_tags_is_read_without_comparing_them() {
        // It once took 13 s (each key compared with every earlier one).
        let text: Vec<String> = (0..120_000).map(|i| format!("{i:06}:v")).collect();
        let text = text.join(",");
        let tags = parse_tags(&text, 1, &UNBOUNDED).unwrap();
        assert_eq!(tags.len(), 120_000);
    }

    #[test]
    fn the_tag_bound_stops_the_scan() {
        let limits = Limits {
            max_tags: 3,
            ..Limits::default()
        };
        assert_eq!(parse_tags("a,b,c", 1, &limits).unwrap().len(), 3);
        let e = parse_tags("a,b,c,d", 1, &limits).unwrap_err();
        assert_eq!(e, LineError::TooManyTags { max: 3 });
    }

    #[test]
    fn the_key_bound_counts_the_key_as_stored() {
        // Name of 4 bytes + "ab:cd" (5) + "," + "e" (1) = 11.
        let limits = Limits {
            max_key_bytes: 11,
            ..Limits::default()
        };
        assert!(parse_tags("ab:cd,e", 4, &limits).is_ok());
        let e = parse_tags("ab:cd,ef", 4, &limits).unwrap_err();
        assert_eq!(e, LineError::KeyTooLong { max: 11 });
    }

    #[test]
    fn spaces_around_tags_and_colons_are_trimmed() {
        let tags = parse_tags(" a:b , c : d\t,e ", 1, &Limits::default()).unwrap();
        assert_eq!(tags, vec![("a", "b"), ("c", "d"), ("e", "")]);
        // Inside a value a space stays.
        let tags = parse_tags("route:/a b", 1, &Limits::default()).unwrap();
        assert_eq!(tags, vec![("route", "/a b")]);
    }
}
