//! What a flush cuts: the queue of series it has still to cut, and each
//! batch cut from it (how: cut.rs).

use hawkeye_store::WriteBatch;

use super::state::Dirty;

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
    pub(super) series: Vec<Dirty>,
    pub(super) next: usize,
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
