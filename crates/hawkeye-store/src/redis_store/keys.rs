//! The names of the Redis keys, and the entries of a name's series index.
//! The schema is described in docs/storage.md ("Keys").

use hawkeye_protocol::MetricKind;

/// Builds every data key of one key prefix (`HAWKEYE_KEY_PREFIX`). All keys
/// of a metric name carry `{name}` as their hash tag, so they share a
/// cluster slot.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The sorted set of a name's series, scored by their last second.
    pub(crate) fn index(&self, name: &str) -> String {
        format!("{}:{{{}}}:series", self.prefix, name)
    }

    /// The hash of one counter, gauge or distribution series for one minute.
    pub(crate) fn minute(&self, name: &str, kind: MetricKind, minute: i64, tags: &str) -> String {
        format!(
            "{}:{{{}}}:{}:{}:{}",
            self.prefix,
            name,
            kind.code(),
            minute,
            tags
        )
    }

    /// The HyperLogLog of one set series for one second.
    pub(crate) fn set(&self, name: &str, second: i64, tags: &str) -> String {
        format!("{}:{{{}}}:s:{}:{}", self.prefix, name, second, tags)
    }

    /// A short-lived key in a name's slot to merge HyperLogLogs into.
    pub(crate) fn union_scratch(&self, name: &str, suffix: u64) -> String {
        format!("{}:{{{}}}:union:{}", self.prefix, name, suffix)
    }
}

/// An entry of a name's series index: `<kind>|<tags>`.
pub(crate) struct IndexMember;

impl IndexMember {
    pub(crate) fn encode(kind: MetricKind, tags: &str) -> String {
        format!("{}|{}", kind.code(), tags)
    }

    /// The kind and tags of an entry; `None` for one this version cannot read.
    pub(crate) fn decode(member: &str) -> Option<(MetricKind, &str)> {
        let (code, tags) = member.split_once('|')?;
        Some((MetricKind::from_statsd(code)?, tags))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_name_as_hash_tag() {
        let keys = Keys::new("hk");
        assert_eq!(keys.index("a.b"), "hk:{a.b}:series");
        assert_eq!(
            keys.minute("a.b", MetricKind::Gauge, 7, "x:1"),
            "hk:{a.b}:g:7:x:1"
        );
        assert_eq!(keys.set("a.b", 420, ""), "hk:{a.b}:s:420:");
    }

    #[test]
    fn index_members_read_back() {
        let m = IndexMember::encode(MetricKind::Distribution, "route:/a|b");
        assert_eq!(
            IndexMember::decode(&m),
            Some((MetricKind::Distribution, "route:/a|b"))
        );
        assert_eq!(IndexMember::decode("q|x"), None);
        assert_eq!(IndexMember::decode("c"), None);
    }
}
