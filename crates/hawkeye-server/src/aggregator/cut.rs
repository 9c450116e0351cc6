//! Cutting waiting aggregates into batches for the store, a bounded number
//! at a time: a flush takes the list of series with waiting aggregates (its
//! [`CutQueue`]), then cuts batches of at most [`MAX_CUT_UNITS`] from it,
//! each written before the next is cut. A batch owns its keys (the store's
//! `WriteBatch`), so one batch of every series would double the server's
//! memory for a moment at each flush of a million series; cut in pieces, a
//! flush needs a few megabytes whatever the number of series.

use std::sync::Arc;

use hawkeye_store::{SeriesWrite, WriteBatch};

use super::values::units;
use super::{Aggregator, Dirty};

/// Buffer units (see `max_buffered`) in one batch at most, the last series
/// whole: a series' points are never split between two batches.
pub const MAX_CUT_UNITS: usize = 10_000;

/// A batch cut for the store, with what it holds of the buffer.
pub struct Cut {
    pub batch: WriteBatch,
    /// Buffer units (see `max_buffered`).
    pub units: usize,
    /// Events (values of taken lines).
    pub events: u64,
}

/// The series a flush has still to cut. Reused from flush to flush, so its
/// vector is allocated once.
#[derive(Default)]
pub struct CutQueue {
    series: Vec<Dirty>,
    next: usize,
}

impl CutQueue {
    /// Everything was cut.
    pub fn is_empty(&self) -> bool {
        self.next >= self.series.len()
    }

    /// Orders the series by metric name, so that each name's series go to
    /// the store in as few batches as possible. Done outside the
    /// aggregator's lock.
    pub fn sort(&mut self) {
        self.series[self.next..].sort_unstable();
    }
}

impl Aggregator {
    /// Moves every series with waiting aggregates into `queue`, which must
    /// have been cut to the end. Their aggregates (and any that arrive
    /// before they are cut) will be in a batch cut from `queue`; later
    /// series go to the next flush.
    pub fn take_dirty(&mut self, queue: &mut CutQueue) {
        debug_assert!(queue.is_empty());
        queue.series.clear();
        queue.next = 0;
        std::mem::swap(&mut self.dirty, &mut queue.series);
    }

    /// Takes the waiting aggregates of the next series of `queue` into a
    /// batch numbered `seq`, up to [`MAX_CUT_UNITS`]. They stay counted as
    /// buffered (and their events as unwritten) until
    /// [`Aggregator::written`].
    pub fn cut(&mut self, queue: &mut CutQueue, server_id: u64, seq: u64) -> Cut {
        let mut series = Vec::new();
        let (mut cut_units, mut events) = (0, 0);
        while cut_units < MAX_CUT_UNITS {
            let Some(&Dirty { slot, .. }) = queue.series.get(queue.next) else {
                break;
            };
            queue.next += 1;
            let state = &mut self.state[slot as usize];
            let key = self.series.key(slot);
            let (Some(key), true) = (key, state.dirty()) else {
                continue;
            };
            let mut points = Vec::new();
            events += self.points.take_all(&mut state.head, &mut points);
            cut_units += points.iter().map(|(_, agg)| units(agg)).sum::<usize>();
            if !points.is_empty() {
                let key = Arc::new(key);
                series.push(SeriesWrite { key, points });
            }
        }
        self.pending_count -= cut_units;
        self.in_flight_count += cut_units;
        self.pending_events -= events;
        self.in_flight_events += events;
        Cut {
            batch: WriteBatch {
                server_id,
                seq,
                series,
            },
            units: cut_units,
            events,
        }
    }

    /// The batch cut earlier is in the store.
    pub fn written(&mut self, cut: &Cut) {
        self.in_flight_count = self.in_flight_count.saturating_sub(cut.units);
        self.in_flight_events = self.in_flight_events.saturating_sub(cut.events);
    }
}
