//! What identifies a series: its kind, its name and its tags in canonical
//! (sorted) order. Two lines with the same tags in a different order are the
//! same series.

use std::collections::BTreeMap;
use std::fmt;

/// How the values of a series are aggregated. The statsd types `ms`, `h` and
/// `d` are all observations of a distribution and share one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    Counter,
    Gauge,
    Distribution,
    Set,
}

impl MetricKind {
    /// The one-letter code used in storage keys and the JSON-RPC `type` field.
    pub fn code(self) -> &'static str {
        match self {
            MetricKind::Counter => "c",
            MetricKind::Gauge => "g",
            MetricKind::Distribution => "d",
            MetricKind::Set => "s",
        }
    }

    /// Reads a statsd type (`c`, `g`, `ms`, `h`, `d`, `s`).
    pub fn from_statsd(t: &str) -> Option<MetricKind> {
        Some(match t {
            "c" => MetricKind::Counter,
            "g" => MetricKind::Gauge,
            "ms" | "h" | "d" => MetricKind::Distribution,
            "s" => MetricKind::Set,
            _ => return None,
        })
    }
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Distribution => "distribution",
            MetricKind::Set => "set",
        })
    }
}

/// A series: kind + name + canonical tags (`k:v` pairs sorted by key, joined
/// by `,`; a tag without value is written as its key alone).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    pub kind: MetricKind,
    pub name: String,
    pub tags: String,
}

impl SeriesKey {
    pub fn new(kind: MetricKind, name: &str, tags: &[(&str, &str)]) -> SeriesKey {
        let mut canonical = String::new();
        write_canonical_tags(tags, &mut canonical);
        SeriesKey {
            kind,
            name: name.to_string(),
            tags: canonical,
        }
    }

    /// The tags as pairs, parsed back from the canonical string.
    pub fn tag_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        split_canonical_tags(&self.tags)
    }
}

/// Writes `tags` sorted by key, then value, into `out` (cleared first), in
/// canonical form. A key may repeat with several values (`team:a,team:b`,
/// kept as DogStatsD keeps them); a tag written twice is one tag.
pub fn write_canonical_tags(tags: &[(&str, &str)], out: &mut String) {
    out.clear();
    if tags.is_empty() {
        return;
    }
    let mut sorted: Vec<Tag<'_>> = tags.iter().map(|(k, v)| Tag(k, v)).collect();
    sorted.sort_unstable();
    sorted.dedup();
    for (i, Tag(k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        if !v.is_empty() {
            out.push(':');
            out.push_str(v);
        }
    }
}

/// A tag while a series key is made, ordered by key then value. Its
/// comparisons are counted in test builds: a line's tags must cost
/// n log n comparisons, never n² (a line of 120 000 tags once stalled every
/// client for seconds because each key was compared with every other; see
/// `tests::canonical_tags_take_n_log_n_comparisons`).
#[derive(Clone, Copy, Eq)]
struct Tag<'a>(&'a str, &'a str);

impl PartialEq for Tag<'_> {
    fn eq(&self, other: &Self) -> bool {
        #[cfg(test)]
        tests::COMPARISONS.with(|c| c.set(c.get() + 1));
        (self.0, self.1) == (other.0, other.1)
    }
}

impl PartialOrd for Tag<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Tag<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        #[cfg(test)]
        tests::COMPARISONS.with(|c| c.set(c.get() + 1));
        (self.0, self.1).cmp(&(other.0, other.1))
    }
}

/// Splits a canonical tag string back into `(key, value)` pairs.
pub fn split_canonical_tags(tags: &str) -> impl Iterator<Item = (&str, &str)> {
    tags.split(',')
        .filter(|t| !t.is_empty())
        .map(|t| t.split_once(':').unwrap_or((t, "")))
}

/// A tag filter: a series matches when it has every listed tag with that
/// value (a series tagged `team:a,team:b` matches `team=a` and `team=b`).
/// An empty filter matches every series of the name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagFilter(pub BTreeMap<String, String>);

impl TagFilter {
    pub fn matches(&self, canonical_tags: &str) -> bool {
        self.0
            .iter()
            .all(|(fk, fv)| split_canonical_tags(canonical_tags).any(|(k, v)| k == fk && v == fv))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;

    thread_local! {
        /// Tag comparisons made on this thread.
        pub(super) static COMPARISONS: Cell<u64> = const { Cell::new(0) };
    }

    /// The comparisons a series key of `n` tags (keys repeating every
    /// `distinct`, values all different) takes.
    fn comparisons_for(n: usize, distinct: usize) -> u64 {
        let tags: Vec<(String, String)> = (0..n)
            .map(|i| (format!("k{}", i % distinct), format!("{}", n - i)))
            .collect();
        let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut out = String::new();
        COMPARISONS.with(|c| c.set(0));
        write_canonical_tags(&tags, &mut out);
        COMPARISONS.with(Cell::get)
    }

    /// A bound of c·n·log2(n) with room for the sort's constant: a
    /// quadratic step makes n²/2, far past it from a few hundred tags on.
    fn n_log_n(n: usize) -> u64 {
        let n = n as f64;
        (4.0 * n * (n.log2() + 1.0)) as u64 + 16
    }

    #[test]
    fn canonical_tags_take_n_log_n_comparisons() {
        // 120 000 tags: the line that once took 13 s.
        for n in [1, 8, 100, 1_000, 10_000, 120_000] {
            let ops = comparisons_for(n, n);
            assert!(ops <= n_log_n(n), "{n} tags took {ops} comparisons");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the count and however often keys repeat.
        #[test]
        fn comparisons_stay_within_n_log_n(n in 1usize..3_000, distinct in 1usize..50) {
            let ops = comparisons_for(n, distinct.min(n));
            prop_assert!(ops <= n_log_n(n), "{n} tags: {ops} comparisons");
        }
    }

    #[test]
    fn tags_are_sorted_so_order_does_not_make_a_new_series() {
        let a = SeriesKey::new(MetricKind::Counter, "x", &[("b", "2"), ("a", "1")]);
        let b = SeriesKey::new(MetricKind::Counter, "x", &[("a", "1"), ("b", "2")]);
        assert_eq!(a, b);
        assert_eq!(a.tags, "a:1,b:2");
    }

    #[test]
    fn a_repeated_key_is_one_series_whatever_the_order_and_matches_each_value() {
        let a = SeriesKey::new(MetricKind::Counter, "x", &[("team", "b"), ("team", "a")]);
        let b = SeriesKey::new(
            MetricKind::Counter,
            "x",
            &[("team", "a"), ("team", "b"), ("team", "a")],
        );
        assert_eq!(a, b);
        assert_eq!(a.tags, "team:a,team:b");
        let filter = |v: &str| TagFilter([("team".to_string(), v.to_string())].into());
        assert!(filter("a").matches(&a.tags));
        assert!(filter("b").matches(&a.tags));
        assert!(!filter("c").matches(&a.tags));
    }

    #[test]
    fn tags_without_value_round_trip() {
        let k = SeriesKey::new(MetricKind::Gauge, "x", &[("canary", ""), ("env", "prod")]);
        assert_eq!(k.tags, "canary,env:prod");
        let pairs: Vec<_> = k.tag_pairs().collect();
        assert_eq!(pairs, vec![("canary", ""), ("env", "prod")]);
    }

    #[test]
    fn filter_needs_every_tag() {
        let mut f = TagFilter::default();
        assert!(f.matches("route:/a,code:200"));
        f.0.insert("route".into(), "/a".into());
        assert!(f.matches("code:200,route:/a"));
        assert!(!f.matches("code:200,route:/b"));
        f.0.insert("code".into(), "500".into());
        assert!(!f.matches("code:200,route:/a"));
    }
}
