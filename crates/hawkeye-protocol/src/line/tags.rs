//! The `#<tag>[:<value>],...` field of a line, and the bounds on what it may
//! hold (docs/protocol.md, "Limits").
//!
//! Parsing a line must cost time in proportion to its length whatever it
//! holds: one line of 120 000 tags once stalled every client for seconds
//! because each key was compared with every earlier one. Here the tag count
//! is bounded ([`Limits::max_tags`]) and a repeated key is found in linear
//! time (pairwise only for a handful of tags, a hash set beyond).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use super::error::{snippet, LineError};

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
        }
    }
}

/// Up to this many tags, a repeated key is looked for by comparing every
/// pair (at most 28 comparisons); beyond, through a hash set.
const PAIRWISE_MAX: usize = 8;

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
    if let Some(key) = repeated_key(&tags) {
        return Err(LineError::InvalidTag {
            tag: snippet(key),
            reason: "this key appears twice".into(),
        });
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

/// The first key that appears twice, found in time linear in the number of
/// tags.
fn repeated_key<'a>(tags: &[(&'a str, &str)]) -> Option<&'a str> {
    if tags.len() <= PAIRWISE_MAX {
        for (i, (a, _)) in tags.iter().enumerate() {
            if tags[..i].iter().any(|(b, _)| Key(a) == Key(b)) {
                return Some(a);
            }
        }
        return None;
    }
    let mut seen = HashSet::with_capacity(tags.len());
    tags.iter()
        .find(|(k, _)| !seen.insert(Key(k)))
        .map(|(k, _)| *k)
}

/// A tag key whose comparisons are counted in test builds, so that a test
/// can assert that parsing does work in proportion to the tags, not to
/// their square (see `tests::comparisons_grow_linearly`).
#[derive(Clone, Copy, Eq)]
struct Key<'a>(&'a str);

impl PartialEq for Key<'_> {
    fn eq(&self, other: &Self) -> bool {
        #[cfg(test)]
        tests::COMPARISONS.with(|c| c.set(c.get() + 1));
        self.0 == other.0
    }
}

impl Hash for Key<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    thread_local! {
        /// Key comparisons made on this thread.
        pub(super) static COMPARISONS: Cell<u64> = const { Cell::new(0) };
    }

    const UNBOUNDED: Limits = Limits {
        max_tags: usize::MAX,
        max_key_bytes: usize::MAX,
    };

    /// Parses `n` distinct tags and returns the key comparisons it took.
    fn comparisons_for(n: usize, key_len: usize) -> u64 {
        let text: Vec<String> = (0..n).map(|i| format!("{i:0key_len$}:v")).collect();
        let text = text.join(",");
        COMPARISONS.with(|c| c.set(0));
        let tags = parse_tags(&text, 1, &UNBOUNDED).unwrap();
        assert_eq!(tags.len(), n);
        COMPARISONS.with(Cell::get)
    }

    #[test]
    fn comparisons_grow_linearly() {
        // 120 000 tags: the line that once took 13 s takes 120 000
        // comparisons at most, not 7 200 000 000.
        for n in [1, 8, 9, 100, 1_000, 10_000, 120_000] {
            let ops = comparisons_for(n, 6);
            assert!(ops <= 4 * n as u64, "{n} tags took {ops} key comparisons");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the count and the key length, the comparisons stay
        /// within a constant times the tags (a quadratic search makes n²/2:
        /// past the pairwise start, far more). The constant is loose
        /// because hash-set comparisons come from random hash collisions.
        #[test]
        fn comparisons_stay_proportional(n in 1usize..3_000, key_len in 1usize..12) {
            let key_len = key_len.max(n.to_string().len());
            let ops = comparisons_for(n, key_len);
            prop_assert!(ops <= 4 * n as u64, "{n} tags: {ops} comparisons");
        }

        /// A repeated key is found wherever it stands.
        #[test]
        fn a_repeated_key_is_always_found(n in 2usize..200, a in 0usize..200, b in 0usize..200) {
            let (a, b) = (a % n, b % n);
            prop_assume!(a != b);
            let mut keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            keys[b] = keys[a].clone();
            let text = keys.join(",");
            let e = parse_tags(&text, 1, &UNBOUNDED).unwrap_err();
            prop_assert!(e.to_string().contains("appears twice"), "{}", e);
        }
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
