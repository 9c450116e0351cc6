//! Undoing lines already applied, so that a call is taken all or none.
//!
//! Go's `Metric.Handle` answers one error or `0` for a whole text of lines:
//! an error must mean nothing was counted, or a client that retries would
//! count the good lines twice. Its lines are applied one by one under one
//! lock hold (no flush can cut in), each noting here what it changed; when a
//! later line is refused, [`Aggregator::undo`] puts everything back.

use hawkeye_store::aggregate::Aggregate;

use super::{values::units, Aggregator, Slot};

/// What a transaction changed, in order.
#[derive(Default)]
pub struct Journal {
    undo: Vec<Undo>,
}

enum Undo {
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

impl Journal {
    /// Notes the state of `slot` before a line of `events` values changes its
    /// aggregate at `existing` (or appends one).
    pub(super) fn before_change(
        &mut self,
        slot_index: usize,
        slot: &Slot,
        existing: Option<usize>,
        new_series: bool,
        events: usize,
    ) {
        if new_series {
            self.undo.push(Undo::Series(slot_index));
        }
        self.undo.push(Undo::Point {
            slot: slot_index,
            before: existing.map(|p| (p, slot.pending[p].1.clone())),
            gauge: slot.gauge,
            last_seen: slot.last_seen,
            marked_dirty: !slot.dirty,
            events: events as u64,
        });
    }
}

impl Aggregator {
    /// Puts back everything the journal's lines changed, newest first.
    pub fn undo(&mut self, journal: Journal) {
        for entry in journal.undo.into_iter().rev() {
            match entry {
                Undo::Series(i) => self.forget(i),
                Undo::Point {
                    slot,
                    before,
                    gauge,
                    last_seen,
                    marked_dirty,
                    events,
                } => {
                    let Some(s) = self.slots[slot].as_mut() else {
                        continue;
                    };
                    let added_units = match before {
                        Some((p, agg)) => {
                            let after = units(&s.pending[p].1);
                            let before = units(&agg);
                            s.pending[p].1 = agg;
                            after - before
                        }
                        None => s.pending.pop().map_or(0, |(_, appended)| units(&appended)),
                    };
                    self.pending_count -= added_units;
                    s.gauge = gauge;
                    s.last_seen = last_seen;
                    if marked_dirty {
                        s.dirty = false;
                        // It was pushed by this change, after anything older.
                        self.dirty.pop();
                    }
                    self.pending_events -= events;
                }
            }
        }
    }
}
