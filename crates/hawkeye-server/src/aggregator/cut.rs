//! Cutting waiting aggregates into batches for the store, a bounded number
//! at a time: a flush takes the list of series with waiting aggregates (its
//! [`CutQueue`]), then cuts batches of at most [`MAX_CUT_UNITS`] and
//! [`MAX_CUT_KEY_BYTES`] from it, each written before the next is cut. A batch owns its keys (the store's
//! `WriteBatch`), so one batch of every series would double the server's
//! memory for a moment at each flush of a million series; cut in pieces, a
//! flush needs a few megabytes whatever the number of series.

use std::sync::Arc;

use hawkeye_store::{SeriesWrite, WriteBatch};

use super::queue::{Cut, CutQueue};
use super::state::Dirty;

use super::values::units;
use super::Aggregator;

/// Buffer units (see `max_buffered`) in one batch at most, the last series
/// whole: a series' points are never split between two batches.
pub const MAX_CUT_UNITS: usize = 10_000;
/// Bytes of series keys (names and tags) in one batch at most, the last
/// series whole: the store's commands repeat a key several times, so with
/// keys of kilobytes a batch of `MAX_CUT_UNITS` series would take hundreds
/// of megabytes.
pub const MAX_CUT_KEY_BYTES: usize = 1 << 20;

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
        let (mut cut_units, mut key_bytes, mut events) = (0, 0, 0);
        while cut_units < MAX_CUT_UNITS && key_bytes < MAX_CUT_KEY_BYTES {
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
                key_bytes += key.name.len() + key.tags.len();
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

#[cfg(test)]
mod tests {
    use super::*;
    use hawkeye_protocol::parse_line;
    use hawkeye_store::aggregate::Aggregate;

    const NOW: i64 = 1_700_000_000;

    fn apply(a: &mut Aggregator, text: &str) {
        a.apply(&parse_line(text).unwrap(), NOW).unwrap();
    }

    #[test]
    fn a_flush_is_cut_in_bounded_batches_each_series_once_by_name() {
        let mut a = Aggregator::new(100_000, usize::MAX, 3600);
        // Names interleaved, as traffic lists them.
        for i in 0..25_000 {
            apply(&mut a, &format!("name{}:1|c|#id:{i}", i % 3));
        }
        let mut queue = CutQueue::default();
        a.take_dirty(&mut queue);
        queue.sort();
        // Arrives after the flush began, for a series not yet cut: in its batch.
        apply(&mut a, "name2:5|c|#id:24998");
        // A new series after the flush began: the next flush's.
        apply(&mut a, "late:1|c");
        let mut seen = std::collections::HashSet::new();
        let mut names = Vec::new();
        let mut total = 0.0;
        let (mut cuts, mut events) = (0, 0);
        while !queue.is_empty() {
            let cut = a.cut(&mut queue, 1, cuts);
            cuts += 1;
            events += cut.events;
            assert!(cut.units <= MAX_CUT_UNITS, "{}", cut.units);
            for s in &cut.batch.series {
                assert!(seen.insert((s.key.name.clone(), s.key.tags.clone())));
                if names.last() != Some(&s.key.name) {
                    names.push(s.key.name.clone());
                }
                for (_, agg) in &s.points {
                    let Aggregate::Counter(n) = agg else { panic!() };
                    total += n;
                }
            }
            a.written(&cut);
        }
        assert_eq!(cuts, 3);
        assert_eq!(seen.len(), 25_000);
        assert_eq!(total, 25_005.0);
        assert_eq!(events, 25_001);
        assert_eq!(
            names,
            ["name0", "name1", "name2"],
            "each name's series together"
        );
        assert_eq!(a.unwritten_events(), 1, "the late series waits");
        a.take_dirty(&mut queue);
        let cut = a.cut(&mut queue, 1, 9);
        assert_eq!(cut.batch.series.len(), 1);
        assert_eq!(cut.batch.series[0].key.name, "late");
    }

    #[test]
    fn long_keys_make_smaller_batches() {
        let mut a = Aggregator::new(1000, usize::MAX, 3600);
        let tag = "v".repeat(4000);
        for i in 0..600 {
            apply(&mut a, &format!("long:1|c|#id:{i},t:{tag}"));
        }
        let mut queue = CutQueue::default();
        a.take_dirty(&mut queue);
        let mut sizes = Vec::new();
        while !queue.is_empty() {
            let cut = a.cut(&mut queue, 1, 1);
            let bytes: usize = cut.batch.series.iter().map(|s| s.key.tags.len() + 4).sum();
            assert!(bytes < MAX_CUT_KEY_BYTES + 4100, "{bytes}");
            sizes.push(cut.batch.series.len());
            a.written(&cut);
        }
        assert_eq!(sizes.iter().sum::<usize>(), 600);
        assert_eq!(sizes.len(), 3, "{sizes:?}");
    }

    #[test]
    fn an_undone_call_leaves_a_queued_series_in_the_queue() {
        let mut a = Aggregator::new(100, 1000, 3600);
        apply(&mut a, "a:1|c");
        let mut queue = CutQueue::default();
        a.take_dirty(&mut queue);
        // A call touching the queued series, then refused.
        let mut journal = crate::aggregator::Journal::default();
        for text in ["a:2|c", "b:1|c"] {
            a.apply_logged(&parse_line(text).unwrap(), NOW, Some(&mut journal))
                .unwrap();
        }
        a.undo(journal);
        assert_eq!((a.buffered(), a.unwritten_events()), (1, 1));
        let cut = a.cut(&mut queue, 1, 1);
        assert_eq!(cut.batch.series.len(), 1);
        assert_eq!(cut.batch.series[0].points, [(NOW, Aggregate::Counter(1.0))]);
        a.written(&cut);
        // Nothing else is listed: the undone series is gone.
        a.take_dirty(&mut queue);
        assert!(queue.is_empty());
        assert_eq!(a.series_count(), 1);
    }
}
