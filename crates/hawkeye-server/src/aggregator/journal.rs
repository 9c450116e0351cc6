//! Undoing lines already applied, so that a call is taken all or none.
//!
//! Go's `Metric.Handle` answers one error or `0` for a whole text of lines:
//! an error must mean nothing was counted, or a client that retries would
//! count the good lines twice. Its lines are applied one by one under one
//! lock hold (no flush can cut in), each noting here what it changed; when a
//! later line is refused, `Aggregator::undo` (undo.rs) puts everything back.
//! The journal only records: it knows nothing of the aggregator's insides.

use hawkeye_store::aggregate::Aggregate;

/// What a transaction changed, in order.
#[derive(Default)]
pub struct Journal {
    undo: Vec<Undo>,
}

pub(super) enum Undo {
    /// The transaction created this series.
    Series(usize),
    /// The transaction changed one aggregate of a series.
    Point {
        slot: usize,
        /// The aggregate before, at its position; `None` when the
        /// transaction appended it.
        before: Option<(usize, Aggregate)>,
        gauge: f64,
        last_seen: i64,
        /// The change marked the series dirty.
        marked_dirty: bool,
        events: u64,
    },
}

/// A series' state before a change, as the journal keeps it.
pub(super) struct Before<'a> {
    pub slot: usize,
    /// The aggregate the change will modify, at its position in the
    /// series' pending list; `None` when the change appends one.
    pub existing: Option<(usize, &'a Aggregate)>,
    pub gauge: f64,
    pub last_seen: i64,
    pub dirty: bool,
}

impl Journal {
    /// Notes the state of a series before a line of `events` values changes
    /// one of its aggregates (or appends one).
    pub(super) fn before_change(&mut self, before: Before<'_>, new_series: bool, events: usize) {
        if new_series {
            self.undo.push(Undo::Series(before.slot));
        }
        self.undo.push(Undo::Point {
            slot: before.slot,
            before: before.existing.map(|(p, agg)| (p, agg.clone())),
            gauge: before.gauge,
            last_seen: before.last_seen,
            marked_dirty: !before.dirty,
            events: events as u64,
        });
    }

    /// The changes, newest first.
    pub(super) fn newest_first(self) -> impl Iterator<Item = Undo> {
        self.undo.into_iter().rev()
    }
}
