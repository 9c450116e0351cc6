//! What a server's flush hands the store: the aggregates of each series,
//! per second, named by the flush (docs/storage.md, "Exactly once").

use std::sync::Arc;

use hawkeye_protocol::SeriesKey;

use crate::aggregate::Aggregate;

/// Everything one server flush writes.
///
/// `(server_id, seq)` names the flush: a store applies a flush to each
/// metric name at most once, so a flush that failed half-way can be retried
/// whole without counting anything twice. A server numbers its flushes in
/// increasing order and retries a failed one before it writes a later one.
/// The store keeps, per name and server id, the last flush applied
/// (docs/storage.md, "Exactly once"): a server id must never come back with
/// a smaller `seq` (hawkeye's server keeps its id across restarts and
/// numbers its flushes from the clock in microseconds). `seq` stays below
/// 2^53: the Redis store compares it as a Lua number.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub server_id: u64,
    pub seq: u64,
    pub series: Vec<SeriesWrite>,
}

/// One series' aggregates, one per second (unix seconds).
#[derive(Debug, Clone)]
pub struct SeriesWrite {
    pub key: Arc<SeriesKey>,
    pub points: Vec<(i64, Aggregate)>,
}

impl WriteBatch {
    /// How many (series, second) aggregates the batch holds.
    pub fn len(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}
