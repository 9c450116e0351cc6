//! What the aggregator keeps of each series it holds, and how it lists
//! the series with aggregates waiting for a flush.

use super::points::NONE;

/// What the aggregator keeps of a series besides its name (in series.rs):
/// 16 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct State {
    /// A gauge's current value, which `+N`/`-N` adjust.
    pub gauge: f64,
    /// Unix seconds (a timestamp is refused unless within the retention of
    /// the clock: positive, and below 2^32 until 2106).
    pub last_seen: u32,
    /// Its first waiting point (in points.rs), or `NONE`. A series with
    /// points is listed once, in `dirty` or in a flush's `CutQueue`.
    pub head: u32,
}

impl State {
    pub fn dirty(&self) -> bool {
        self.head != NONE
    }
}

pub(super) const FRESH: State = State {
    gauge: 0.0,
    last_seen: 0,
    head: NONE,
};

/// A series with waiting aggregates, as the cut finds it: ordered by
/// metric name so that a name's series go to the store together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Dirty {
    pub name: u32,
    pub slot: u32,
}
