//! The names of the Redis keys, the entries of a name's series index, and
//! which shard of a name a series lives in. The schema is described in
//! docs/storage.md ("Keys").

use std::fmt;

use hawkeye_protocol::MetricKind;

/// One hash tag: a metric name, or one shard of it. Shard 0 is `{name}`
/// itself, so a store with one shard per name keeps the layout it always
/// had; shard `s` > 0 is `{name#s}` (`#` cannot occur in a metric name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Slot<'a> {
    pub name: &'a str,
    pub shard: u32,
}

impl<'a> Slot<'a> {
    pub(crate) fn new(name: &'a str, shard: u32) -> Slot<'a> {
        Slot { name, shard }
    }
}

impl Slot<'_> {
    /// Appends `{name}` or `{name#shard}` to `out` (reads build a key per
    /// series and minute: no formatting machinery).
    pub(crate) fn push_into(self, out: &mut String) {
        out.push('{');
        out.push_str(self.name);
        if self.shard != 0 {
            out.push('#');
            out.push_str(itoa::Buffer::new().format(self.shard));
        }
        out.push('}');
    }
}

impl fmt::Display for Slot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(self.name.len() + 8);
        self.push_into(&mut s);
        f.write_str(&s)
    }
}

/// Builds every data key of one key prefix (`HAWKEYE_KEY_PREFIX`).
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

    /// The sorted set of a slot's series, scored by their last second.
    pub(crate) fn index(&self, slot: Slot) -> String {
        format!("{}:{slot}:series", self.prefix)
    }

    /// The hash of one counter, gauge or distribution series for one minute.
    pub(crate) fn minute(&self, slot: Slot, kind: MetricKind, minute: i64, tags: &str) -> String {
        let mut key = String::new();
        self.minute_into(&mut key, slot, kind, minute, tags);
        key
    }

    /// [`Keys::minute`], appended to `out` (reads build many, into one buffer).
    pub(crate) fn minute_into(
        &self,
        out: &mut String,
        slot: Slot,
        kind: MetricKind,
        minute: i64,
        tags: &str,
    ) {
        self.series_key_into(out, slot, kind, "", minute, tags);
    }

    /// `P:{slot}:<kind>:<mark><n>:<tags>`: a series' key for one bucket of
    /// time (a minute, `h` an hour, `d` a day), pushed piece by piece (no
    /// formatting machinery: the agent builds one per series and minute).
    fn series_key_into(
        &self,
        out: &mut String,
        slot: Slot,
        kind: MetricKind,
        mark: &str,
        n: i64,
        tags: &str,
    ) {
        self.series_head_into(out, slot, kind);
        Keys::series_tail_into(out, mark, n, tags);
    }

    /// `P:{slot}:<kind>:`, the start of every key of the series of a slot
    /// and kind (a read plan keeps it: `read_plan.rs`).
    pub(crate) fn series_head_into(&self, out: &mut String, slot: Slot, kind: MetricKind) {
        out.push_str(&self.prefix);
        out.push(':');
        slot.push_into(out);
        out.push(':');
        out.push_str(kind.code());
        out.push(':');
    }

    /// `<mark><n>:<tags>`, the rest of a series' key after its head: `""`
    /// for a minute hash, `h` an hour hash, `d` a day string.
    pub(crate) fn series_tail_into(out: &mut String, mark: &str, n: i64, tags: &str) {
        out.push_str(mark);
        out.push_str(itoa::Buffer::new().format(n));
        out.push(':');
        out.push_str(tags);
    }

    /// The rollup hash of one counter, gauge or distribution series for one
    /// hour (unix seconds / 3600): per-minute fields, the minute hash's
    /// layout with minutes of the hour in place of seconds of the minute.
    pub(crate) fn hour(&self, slot: Slot, kind: MetricKind, hour: i64, tags: &str) -> String {
        let mut key = String::new();
        self.hour_into(&mut key, slot, kind, hour, tags);
        key
    }

    /// [`Keys::hour`], appended to `out`.
    pub(crate) fn hour_into(
        &self,
        out: &mut String,
        slot: Slot,
        kind: MetricKind,
        hour: i64,
        tags: &str,
    ) {
        self.series_key_into(out, slot, kind, "h", hour, tags);
    }

    /// The compacted rollups of one counter, gauge or distribution series
    /// for one day (unix seconds / 86 400): a binary string
    /// (`rollup_codec.rs`).
    pub(crate) fn day(&self, slot: Slot, kind: MetricKind, day: i64, tags: &str) -> String {
        let mut key = String::new();
        self.series_key_into(&mut key, slot, kind, "d", day, tags);
        key
    }

    /// The rollup HyperLogLog of one set series for one minute.
    pub(crate) fn set_minute(&self, name: &str, minute: i64, tags: &str) -> String {
        format!("{}:{}:s:m{minute}:{tags}", self.prefix, Slot::new(name, 0))
    }

    /// The HyperLogLog of one set series for one second (sets live in shard 0).
    pub(crate) fn set(&self, name: &str, second: i64, tags: &str) -> String {
        format!("{}:{}:s:{second}:{tags}", self.prefix, Slot::new(name, 0))
    }

    /// The sorted set of a slot's rollup hour hashes that may exist (written,
    /// not compacted): members `<hour>|<kind>|<tags>`, scored by the hour.
    /// A long read asks it which hour hashes to read.
    pub(crate) fn open_hours(&self, slot: Slot) -> String {
        format!("{}:{slot}:hours", self.prefix)
    }

    /// The hash of the last flush each server applied to a slot.
    pub(crate) fn flushes(&self, slot: Slot) -> String {
        format!("{}:{slot}:flushes", self.prefix)
    }

    /// The sorted set of when each server last wrote a slot (to trim markers).
    pub(crate) fn flush_times(&self, slot: Slot) -> String {
        format!("{}:{slot}:flush_times", self.prefix)
    }

    /// How many shards writers have spread a name over (absent: one).
    pub(crate) fn shards(&self, name: &str) -> String {
        format!("{}:{}:shards", self.prefix, Slot::new(name, 0))
    }

    /// The stream of names whose series index changed (`index_cache.rs`),
    /// beside the servers' watermarks.
    pub(crate) fn index_changes(&self) -> String {
        format!("{}:{{alerts}}:index_changes", self.prefix)
    }

    /// A short-lived key in a name's slot to merge HyperLogLogs into.
    pub(crate) fn union_scratch(&self, name: &str, suffix: u64) -> String {
        format!("{}:{}:union:{suffix}", self.prefix, Slot::new(name, 0))
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

/// The shard of a name that series (`kind`, `tags`) lives in, out of
/// `shards`. A fixed hash (FNV-1a), so every server and version agrees.
/// Sets stay in shard 0: a window's unique count is one `PFCOUNT` over the
/// HyperLogLogs of all series, which must share a slot.
pub(crate) fn shard_of(kind: MetricKind, tags: &str, shards: u32) -> u32 {
    if shards <= 1 || kind == MetricKind::Set {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in kind.code().bytes().chain(tags.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(shards)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_slot_as_hash_tag() {
        let keys = Keys::new("hk");
        let slot = Slot::new("a.b", 0);
        assert_eq!(keys.index(slot), "hk:{a.b}:series");
        assert_eq!(
            keys.minute(slot, MetricKind::Gauge, 7, "x:1"),
            "hk:{a.b}:g:7:x:1"
        );
        assert_eq!(keys.set("a.b", 420, ""), "hk:{a.b}:s:420:");
        assert_eq!(
            keys.hour(slot, MetricKind::Counter, 9, "x:1"),
            "hk:{a.b}:c:h9:x:1"
        );
        assert_eq!(keys.set_minute("a.b", 7, "x:1"), "hk:{a.b}:s:m7:x:1");
        let shard = Slot::new("a.b", 3);
        assert_eq!(keys.index(shard), "hk:{a.b#3}:series");
        assert_eq!(
            keys.minute(shard, MetricKind::Counter, -2, ""),
            "hk:{a.b#3}:c:-2:"
        );
        assert_eq!(keys.flushes(shard), "hk:{a.b#3}:flushes");
        assert_eq!(keys.shards("a.b"), "hk:{a.b}:shards");
        assert_eq!(
            keys.day(shard, MetricKind::Gauge, 20_000, ""),
            "hk:{a.b#3}:g:d20000:"
        );
        assert_eq!(keys.index_changes(), "hk:{alerts}:index_changes");
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

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of(MetricKind::Counter, "host:a", 1), 0);
        assert_eq!(shard_of(MetricKind::Set, "host:a", 8), 0);
        // Fixed values: changing the hash would move stored series.
        assert_eq!(shard_of(MetricKind::Counter, "host:a", 8), 1);
        assert_eq!(shard_of(MetricKind::Counter, "host:b", 8), 0);
        assert_eq!(shard_of(MetricKind::Gauge, "x:1", 3), 2);
        let mut seen = [0; 4];
        for i in 0..400 {
            seen[shard_of(MetricKind::Counter, &format!("host:{i}"), 4) as usize] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
    }
}
