//! One hash a window read asks for, for one series of one query: which
//! bucket of time (a minute hash, a rollup hour hash, a day string), the
//! span it keeps and the fields it names. Queued by `reads.rs`, sent by
//! `minute_read.rs`, its answer decoded by `read_decode.rs`.
//! docs/storage.md ("Reads").

use hawkeye_protocol::MetricKind;

use super::field::{Field, Part};

/// Windows covering at most this many seconds of a minute read their
/// fields by name.
const MAX_SECONDS_BY_NAME: i64 = 10;
/// The fields of a minute hash a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fields {
    /// The fixed `parts` of seconds `first..=last` of the minute.
    Named {
        first: i64,
        last: i64,
        parts: &'static [Part],
    },
    /// The whole hash.
    Whole,
}

impl Fields {
    /// The fields of a minute hash that hold the seconds `[start, end]`,
    /// named when they are known and few: counters and gauges have fixed
    /// fields per second; a distribution's bucket fields are not known in
    /// advance, so it is read whole.
    pub(super) fn in_window(kind: MetricKind, minute: i64, start: i64, end: i64) -> Fields {
        let first = start.max(minute * 60) - minute * 60;
        let last = end.min(minute * 60 + 59) - minute * 60;
        // Naming fields pays only for a few seconds (the agent's short
        // windows); past that, the whole hash is cheaper to ask for.
        match Field::fixed_parts(kind) {
            Some(parts) if last - first < MAX_SECONDS_BY_NAME => {
                Fields::Named { first, last, parts }
            }
            _ => Fields::Whole,
        }
    }

    /// The named fields, in the order they are asked for (none for a whole hash).
    pub(super) fn named(self) -> impl Iterator<Item = Field> {
        let (first, last, parts) = match self {
            Fields::Named { first, last, parts } => (first, last, parts),
            Fields::Whole => (0, -1, &[][..]),
        };
        (first..=last).flat_map(move |s| parts.iter().map(move |p| Field::new(s, *p)))
    }

    pub(super) fn count(self) -> usize {
        match self {
            Fields::Named { first, last, parts } => {
                (last - first + 1).max(0) as usize * parts.len()
            }
            Fields::Whole => 0,
        }
    }
}

/// A hash a read job reads: a minute hash (fields per second of the
/// minute) or a rollup hash (fields per minute of the hour). Both have the
/// same layout ([`Field`]); only the unit of a field's index differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bucket {
    Minute(i64),
    Hour(i64),
    /// A compacted day string (`rollup_codec.rs`), read with `MGET`.
    Day(i64),
}

impl Bucket {
    /// The bucket's number and how many seconds one of its field indexes
    /// spans.
    pub(super) fn unit(self) -> (i64, i64) {
        match self {
            Bucket::Minute(m) => (m, 1),
            Bucket::Hour(h) => (h, 60),
            Bucket::Day(d) => (d, 1440 * 60),
        }
    }
}

/// One hash to read for one series of one query.
pub(super) struct ReadJob {
    pub(super) query: usize,
    /// The series' id (shared by its entries in several shards).
    pub(super) series: usize,
    /// Its entry in the plan's series.
    pub(super) entry: usize,
    pub(super) merge: bool,
    /// The series is read from its minute hashes alone, in one shard: its
    /// seconds arrive in order and are folded without a map.
    pub(super) in_order: bool,
    pub(super) bucket: Bucket,
    /// What the read keeps, in the bucket's unit (seconds for a minute
    /// hash, minutes for a rollup hash), inclusive.
    pub(super) span: (i64, i64),
    pub(super) fields: Fields,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_seconds_of_fixed_fields_are_named() {
        let f = Fields::in_window(MetricKind::Counter, 10, 600 + 58, 600 + 80);
        assert_eq!(
            f.named().map(|f| f.to_string()).collect::<Vec<_>>(),
            ["58", "59"]
        );
        assert_eq!(f.count(), 2);
        let g = Fields::in_window(MetricKind::Gauge, 10, 600, 600);
        assert_eq!(g.count(), 5);
        assert_eq!(
            Fields::in_window(MetricKind::Counter, 10, 0, 10_000),
            Fields::Whole
        );
        assert_eq!(
            Fields::in_window(MetricKind::Distribution, 10, 600, 600),
            Fields::Whole
        );
        assert_eq!(Fields::Whole.count(), 0);
    }
}
