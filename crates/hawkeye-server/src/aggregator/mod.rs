//! Pre-aggregation: events become per-series, per-second aggregates in memory
//! until the flusher takes them. This is why Redis sees a few commands per
//! series per flush instead of one per event, and why counts are exact: every
//! event lands in an aggregate, and aggregates are only ever added up.
//!
//! Bounds: at most `max_series` series are known at once (series idle longer
//! than the retention are forgotten), and at most `max_buffered` units wait in
//! memory (one per series-second aggregate, plus one per set member and per
//! sketch bucket). Past it, events are refused and counted, except counter
//! and gauge events for an aggregate that already exists: they cost nothing.
//!
//! A line is taken whole or refused whole; several lines are taken all or
//! none through a [`Journal`](crate::aggregator::Journal) (Go's `Metric.Handle`).
//!
//! Memory: a series is named once in series.rs (interned names, tags in
//! one arena), its state here is 16 bytes, and its waiting aggregates are
//! 32-byte points in one reused vector (points.rs); batches for the store
//! are cut a bounded number at a time (cut.rs). README "Server ingest" has
//! the figures.

mod cut;
mod journal;
#[cfg(test)]
mod memory_tests;
mod points;
mod queue;
mod series;
mod state;
mod undo;
mod values;

use std::sync::{Mutex, MutexGuard};

use hawkeye_protocol::series::write_canonical_tags;
use hawkeye_protocol::{MetricKind, MetricLine};

pub use journal::Journal;
pub use queue::{Cut, CutQueue};

use points::Points;
use series::{Full, Series};
use state::{Dirty, State, FRESH};

/// Why an event was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("series limit reached: the server holds {0} series (HAWKEYE_MAX_SERIES); this line would start a new one")]
    TooManySeries(usize),
    #[error("series limit reached: the tags of the series held fill 4 GiB; this line would start a new series")]
    KeyBytesFull,
    #[error(
        "buffer full: {0} aggregates wait for the store (HAWKEYE_MAX_BUFFERED); event dropped"
    )]
    BufferFull(usize),
    #[error("timestamp is older than the rollup retention (HAWKEYE_ROLLUP_RETENTION) or more than 5 minutes ahead")]
    TimestampOutOfRange,
    #[error("value out of range: a value, or its sum in this second, would pass ±1e200 (so that every total the store adds up stays a number)")]
    OutOfRange,
}

/// Locks the aggregator. It is only mutated by code that cannot panic
/// half-way through an update; keep serving if a panic elsewhere poisoned it.
pub fn lock(cell: &Mutex<Aggregator>) -> MutexGuard<'_, Aggregator> {
    cell.lock().unwrap_or_else(|e| e.into_inner())
}

/// Timestamps may run ahead of the server's clock by this much (clock skew).
const MAX_FUTURE_SECS: i64 = 300;

pub struct Aggregator {
    series: Series,
    /// By slot number (see [`Series`]).
    state: Vec<State>,
    points: Points,
    /// Series that got points since the last flush began.
    dirty: Vec<Dirty>,
    /// Aggregates waiting in `points` (not those already cut into a batch).
    pending_count: usize,
    /// Aggregates cut into a batch that is not written yet.
    in_flight_count: usize,
    /// Events (values of taken lines) in `pending` aggregates, and in the
    /// batch in flight: what a failed last flush would lose.
    pending_events: u64,
    in_flight_events: u64,
    max_series: usize,
    max_buffered: usize,
    retention_secs: i64,
    /// How far back a `|T` timestamp may reach (the rollup retention:
    /// docs/protocol.md, "Timestamps").
    backfill_secs: i64,
    /// Scratch space for canonical tags, so a lookup allocates nothing.
    tags_scratch: String,
}

impl Aggregator {
    pub fn new(max_series: usize, max_buffered: usize, retention_secs: i64) -> Aggregator {
        Aggregator {
            series: Series::new(),
            state: Vec::new(),
            points: Points::default(),
            dirty: Vec::new(),
            pending_count: 0,
            in_flight_count: 0,
            pending_events: 0,
            in_flight_events: 0,
            max_series,
            max_buffered,
            retention_secs,
            backfill_secs: retention_secs,
            tags_scratch: String::new(),
        }
    }

    /// This aggregator taking `|T` timestamps up to `secs` old (by default
    /// the retention): the rollup retention, so that old data can be
    /// backfilled into the rollups.
    pub fn accepting_timestamps_within(mut self, secs: i64) -> Aggregator {
        self.backfill_secs = secs.max(self.retention_secs);
        self
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Aggregates held in memory: waiting plus in flight.
    pub fn buffered(&self) -> usize {
        self.pending_count + self.in_flight_count
    }

    /// Events taken but not yet written (waiting plus in flight).
    pub fn unwritten_events(&self) -> u64 {
        self.pending_events + self.in_flight_events
    }

    /// Bytes the aggregator's own tables hold on the heap (capacities),
    /// without what boxed aggregates (gauges, sketches, sets) and batches in
    /// flight hold: what its series cost.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.series.heap_bytes()
            + self.state.capacity() * size_of::<State>()
            + self.points.heap_bytes()
            + self.dirty.capacity() * size_of::<Dirty>()
            + self.tags_scratch.capacity()
    }

    /// Adds one parsed line at `now` (unix seconds): all of its values are
    /// taken, or none is. Returns whether the line started a new series.
    pub fn apply(&mut self, line: &MetricLine<'_>, now: i64) -> Result<bool, Refusal> {
        self.apply_logged(line, now, None)
    }

    /// [`Aggregator::apply`], noting in `journal` (when given) how to undo it.
    pub fn apply_logged(
        &mut self,
        line: &MetricLine<'_>,
        now: i64,
        journal: Option<&mut Journal>,
    ) -> Result<bool, Refusal> {
        let second = match line.timestamp {
            None => now,
            Some(t) if t > now - self.backfill_secs && t <= now + MAX_FUTURE_SECS => t,
            Some(_) => return Err(Refusal::TimestampOutOfRange),
        };
        let (slot, new_series) = self.slot_for(line)?;
        let before = self.state[slot as usize];
        let weight = 1.0 / line.sample_rate;
        let existing = self.points.find(before.head, second);
        let plan = match existing {
            Some(p) => self
                .points
                .with(p, |agg| values::plan(Some(agg), before.gauge, line, weight)),
            None => values::plan(None, before.gauge, line, weight),
        };
        // Sets and distributions grow with new members and buckets, so
        // when the buffer is full they are refused even for an existing second.
        let grows = matches!(line.kind, MetricKind::Set | MetricKind::Distribution);
        let buffer_full = self.buffered() >= self.max_buffered;
        let refusal = match plan {
            // Redis would refuse "inf", and a window total past the
            // largest double would read back as no data.
            None => Some(Refusal::OutOfRange),
            Some(_) if buffer_full && (existing.is_none() || grows) => {
                Some(Refusal::BufferFull(self.max_buffered))
            }
            Some(_) => None,
        };
        let (Some(plan), None) = (plan, refusal) else {
            if new_series {
                // A refused line does not take one of the series slots.
                self.forget(slot);
            }
            return Err(refusal.unwrap_or(Refusal::OutOfRange));
        };
        let events = line.values.len();
        if let Some(journal) = journal {
            let existing = existing.map(|p| (p, self.points.with(p, |agg| agg.clone())));
            journal.before_change(slot, before, existing, new_series, events);
        }
        let state = &mut self.state[slot as usize];
        state.last_seen = state.last_seen.max(second.clamp(0, u32::MAX.into()) as u32);
        let p = existing.unwrap_or_else(|| {
            self.pending_count += 1;
            let fresh = values::fresh(line.kind, state.gauge);
            self.points.push(&mut state.head, second, fresh)
        });
        self.pending_count += self.points.with(p, |agg| {
            values::commit(agg, &mut state.gauge, plan, line, weight)
        });
        self.points.count_events(p, events as i64);
        self.pending_events += events as u64;
        if !before.dirty() {
            let name = self.series.name_id(slot);
            self.dirty.push(Dirty { name, slot });
        }
        Ok(new_series)
    }

    fn slot_for(&mut self, line: &MetricLine<'_>) -> Result<(u32, bool), Refusal> {
        write_canonical_tags(&line.tags, &mut self.tags_scratch);
        let found =
            self.series
                .find_or_add(line.kind, line.name, &self.tags_scratch, self.max_series);
        let (slot, new) = found.map_err(|full| match full {
            Full::Series => Refusal::TooManySeries(self.max_series),
            Full::KeyBytes => Refusal::KeyBytesFull,
        })?;
        if new {
            match self.state.get_mut(slot as usize) {
                Some(state) => *state = FRESH,
                None => self.state.push(FRESH),
            }
        }
        Ok((slot, new))
    }

    /// Removes a series (with nothing waiting) and frees its slot.
    fn forget(&mut self, slot: u32) {
        self.series.remove(slot);
        self.state[slot as usize] = FRESH;
    }

    /// Forgets series with nothing waiting that were last seen before
    /// `now - retention`, making room under `max_series`. Returns how many.
    pub fn forget_idle(&mut self, now: i64) -> usize {
        let cutoff = now - self.retention_secs;
        let mut forgotten = 0;
        for slot in 0..self.series.slots() as u32 {
            let state = &self.state[slot as usize];
            if self.series.is_held(slot) && !state.dirty() && i64::from(state.last_seen) < cutoff {
                self.forget(slot);
                forgotten += 1;
            }
        }
        forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hawkeye_protocol::parse_line;

    const NOW: i64 = 1_700_000_000;

    fn lines(text: &[&'static str]) -> Vec<MetricLine<'static>> {
        text.iter().map(|l| parse_line(l).unwrap()).collect()
    }

    /// Applies all lines in one journal, or undoes them at the first refusal.
    fn all_or_none(a: &mut Aggregator, text: &[&'static str]) -> Result<(), Refusal> {
        let mut journal = Journal::default();
        for line in &lines(text) {
            if let Err(r) = a.apply_logged(line, NOW, Some(&mut journal)) {
                a.undo(journal);
                return Err(r);
            }
        }
        Ok(())
    }

    /// Cuts everything waiting, in one batch (the tests cut fewer than
    /// `MAX_CUT_UNITS`).
    fn cut_all(a: &mut Aggregator) -> Cut {
        let mut queue = CutQueue::default();
        a.take_dirty(&mut queue);
        let cut = a.cut(&mut queue, 1, 1);
        assert!(queue.is_empty());
        cut
    }

    /// Everything the aggregator would write, in a comparable form.
    fn snapshot(a: &mut Aggregator) -> (usize, usize, u64, Vec<String>) {
        let state = (a.series_count(), a.buffered(), a.unwritten_events());
        let cut = cut_all(a);
        let mut points: Vec<String> = cut
            .batch
            .series
            .iter()
            .map(|s| format!("{:?} {:?}", s.key, s.points))
            .collect();
        points.sort();
        (state.0, state.1, state.2, points)
    }

    #[test]
    fn a_refused_line_undoes_the_lines_before_it() {
        let refusals = [
            ("late:1|c|T1", Refusal::TimestampOutOfRange),
            ("c:1e250|c", Refusal::OutOfRange),
            ("new.series:1|c", Refusal::TooManySeries(4)),
        ];
        for (bad, want) in refusals {
            let mut with = Aggregator::new(4, 1000, 3600);
            let mut without = Aggregator::new(4, 1000, 3600);
            for a in [&mut with, &mut without] {
                all_or_none(a, &["c:1|c", "g:10|g", "d:5|ms", "s:u1|s"]).unwrap();
            }
            let text = ["c:2|c", "g:+5|g", "d:7:8|ms|@0.5", "s:u2|s", "c:1|c", bad];
            assert_eq!(all_or_none(&mut with, &text), Err(want), "{bad}");
            assert_eq!(snapshot(&mut with), snapshot(&mut without), "{bad}");
            // The gauge's current value was put back too: +1 adjusts 10.
            for a in [&mut with, &mut without] {
                a.apply(&parse_line("g:+1|g").unwrap(), NOW).unwrap();
            }
            assert_eq!(snapshot(&mut with), snapshot(&mut without), "{bad}");
        }
    }

    #[test]
    fn a_full_buffer_refuses_the_whole_call() {
        let mut a = Aggregator::new(100, 3, 3600);
        all_or_none(&mut a, &["one:1|c"]).unwrap();
        let before = snapshot(&mut a);
        // Cut, not written: still buffered. Two more units fit, not three.
        let r = all_or_none(&mut a, &["two:1|c", "three:1|c", "four:1|c"]);
        assert_eq!(r, Err(Refusal::BufferFull(3)));
        assert_eq!(a.buffered(), 1);
        assert_eq!(a.series_count(), 1, "no series slot is kept");
        assert_eq!(snapshot(&mut a).3, Vec::<String>::new());
        assert_eq!(before.0, 1);
    }

    #[test]
    fn events_are_counted_until_written() {
        let mut a = Aggregator::new(100, 1000, 3600);
        a.apply(&parse_line("a:1:2:3|c").unwrap(), NOW).unwrap();
        a.apply(&parse_line("b:1|ms").unwrap(), NOW).unwrap();
        assert_eq!(a.unwritten_events(), 4);
        let cut = cut_all(&mut a);
        a.apply(&parse_line("a:1|c").unwrap(), NOW).unwrap();
        assert_eq!(a.unwritten_events(), 5, "in flight and waiting");
        a.written(&cut);
        assert_eq!(a.unwritten_events(), 1);
        assert_eq!(cut.events, 4);
    }

    #[test]
    fn idle_series_are_forgotten_after_the_retention() {
        let mut a = Aggregator::new(2, 1000, 60);
        a.apply(&parse_line("a:1|c").unwrap(), NOW).unwrap();
        a.apply(&parse_line("b:1|c").unwrap(), NOW).unwrap();
        assert_eq!(
            a.apply(&parse_line("c:1|c").unwrap(), NOW),
            Err(Refusal::TooManySeries(2))
        );
        let cut = cut_all(&mut a);
        a.written(&cut);
        assert_eq!(a.forget_idle(NOW + 60), 0, "not idle long enough");
        assert_eq!(a.forget_idle(NOW + 61), 2);
        assert!(a.apply(&parse_line("c:1|c").unwrap(), NOW + 61).is_ok());
    }

    #[test]
    fn timestamps_reach_back_to_the_rollup_retention() {
        let day = 86_400;
        let mut a = Aggregator::new(10, 1000, 3600).accepting_timestamps_within(35 * day);
        let at = |t: i64| format!("a:1|c|T{t}");
        for ok in [NOW - 35 * day + 1, NOW - 2 * day, NOW - 3601, NOW + 300] {
            assert!(a.apply(&parse_line(&at(ok)).unwrap(), NOW).is_ok(), "{ok}");
        }
        for refused in [NOW - 35 * day, NOW + 301] {
            assert_eq!(
                a.apply(&parse_line(&at(refused)).unwrap(), NOW),
                Err(Refusal::TimestampOutOfRange),
                "{refused}"
            );
        }
        // Without rollups, the retention is the bound, as before.
        let mut plain = Aggregator::new(10, 1000, 3600);
        assert_eq!(
            plain.apply(&parse_line(&at(NOW - 3600)).unwrap(), NOW),
            Err(Refusal::TimestampOutOfRange)
        );
    }
}
