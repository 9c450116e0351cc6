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
                Undo::Series(slot) => self.forget(slot),
                Undo::Point {
                    slot,
                    before,
                    state,
                    events,
                } => {
                    let now = &mut self.state[slot as usize];
                    // The change listed the series (it had no points before).
                    let listed = now.dirty() && !state.dirty();
                    let added_units = match before {
                        Some((p, agg)) => {
                            let after = self.points.with(p, |now| units(now));
                            let before = units(&agg);
                            self.points.set(p, agg);
                            self.points.count_events(p, -(events as i64));
                            after - before
                        }
                        // The change added the point: it is the newest.
                        None => self.points.pop(&mut now.head).map_or(0, |a| units(&a)),
                    };
                    self.pending_count -= added_units;
                    if listed {
                        // Listed last: after anything older.
                        self.dirty.pop();
                    }
                    *now = state;
                    self.pending_events -= events;
                }
            }
        }
    }
}
