//! Grouped window reads (`group_by` in monitors.yaml, docs/monitors.md):
//! one query split by the values of some tags, each group reduced to its own
//! value, in one store call whatever the number of groups. Both stores
//! find the series as for [`crate::Store::query_many`] and share
//! [`group_of`], so they cannot disagree on what a group is.

use hawkeye_protocol::series::split_canonical_tags;

use crate::window::{QueryError, WindowQuery};

/// A window read split by the values of `group_by` tags.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupedQuery {
    pub query: WindowQuery,
    /// Tag names; series with the same values of all of them form a group.
    pub group_by: Vec<String>,
}

/// One group of a [`GroupedQuery`] and its window's value.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupValue {
    /// The value of each `group_by` tag, in order; empty where the series
    /// have no such tag (as Prometheus' `by` does).
    pub values: Vec<String>,
    pub value: f64,
}

/// The groups of one grouped query, sorted by their values: every group
/// with a value in the window (for a gauge read with `last`, within its
/// staleness), and only those.
pub type GroupedOutcome = Result<Vec<GroupValue>, QueryError>;

/// The group a series (its canonical tags) belongs to.
pub fn group_of(canonical_tags: &str, group_by: &[String]) -> Vec<String> {
    let mut values = vec![String::new(); group_by.len()];
    for (k, v) in split_canonical_tags(canonical_tags) {
        if let Some(i) = group_by.iter().position(|g| g == k) {
            values[i] = v.to_string();
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawkeye_protocol::MetricKind;
    use hawkeye_protocol::SeriesKey;

    #[test]
    fn groups_follow_the_tag_values_in_group_by_order() {
        let key = SeriesKey::new(MetricKind::Counter, "x", &[("route", "/a"), ("host", "h1")]);
        let by = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(group_of(&key.tags, &by(&["host", "route"])), ["h1", "/a"]);
        assert_eq!(group_of(&key.tags, &by(&["zone"])), [""]);
        assert_eq!(group_of("", &by(&[])), Vec::<String>::new());
    }
}
