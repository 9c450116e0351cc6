//! Undoing lines already applied, so that a call is taken all or none.
//!
//! Go's `Metric.Handle` answers one error or `0` for a whole text of lines:
//! an error must mean nothing was counted, or a client that retries would
//! count the good lines twice. Its lines are applied one by one under one
//! lock hold (no flush can cut in), each noting here what it changed; when a
//! later line is refused, `Aggregator::undo` (undo.rs) puts everything back.
//! The journal only records: it knows nothing of the aggregator's insides.

use hawkeye_store::aggregate::Aggregate;

use super::state::State;

/// What a transaction changed, in order.
#[derive(Default)]
pub struct Journal {
    undo: Vec<Undo>,
}

pub(super) enum Undo {
    /// The transaction created the series in this slot.
    Series(u32),
    /// The transaction changed one aggregate of a series.
    Point {
        slot: u32,
        /// The point changed and its aggregate before; `None` when the
        /// transaction added the point.
        before: Option<(u32, Aggregate)>,
        /// The series' state before.
        state: State,
        events: u64,
    },
}

impl Journal {
    /// Notes the state of the series in `slot` before a line of `events`
    /// values changes one of its points (`existing`, with its aggregate) or
    /// adds one.
    pub(super) fn before_change(
        &mut self,
        slot: u32,
        state: State,
        existing: Option<(u32, Aggregate)>,
        new_series: bool,
        events: usize,
    ) {
        if new_series {
            self.undo.push(Undo::Series(slot));
        }
        self.undo.push(Undo::Point {
            slot,
            before: existing,
            state,
            events: events as u64,
        });
    }

    /// The changes, newest first.
    pub(super) fn newest_first(self) -> impl Iterator<Item = Undo> {
        self.undo.into_iter().rev()
    }
}
