//! Putting back what the lines of a refused all-or-none call changed, from
//! the [`Journal`] they kept (see journal.rs for why).

use super::journal::{Journal, Undo};
use super::values::units;
use super::Aggregator;

impl Aggregator {
    /// Puts back everything the journal's lines changed, newest first.
    pub fn undo(&mut self, journal: Journal) {
        for entry in journal.newest_first() {
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
