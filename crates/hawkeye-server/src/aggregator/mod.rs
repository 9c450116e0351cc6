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

mod journal;
mod undo;
mod values;

use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::HashTable;
use hawkeye_protocol::series::write_canonical_tags;
use hawkeye_protocol::{MetricKind, MetricLine, SeriesKey};
use hawkeye_store::aggregate::Aggregate;
use hawkeye_store::{SeriesWrite, WriteBatch};
use rapidhash::quality::RandomState;

pub use journal::Journal;

use values::units;

/// Why an event was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("series limit reached: the server holds {0} series (HAWKEYE_MAX_SERIES); this line would start a new one")]
    TooManySeries(usize),
    #[error(
        "buffer full: {0} aggregates wait for the store (HAWKEYE_MAX_BUFFERED); event dropped"
    )]
    BufferFull(usize),
    #[error("timestamp is outside the retention window or too far in the future")]
    TimestampOutOfRange,
    #[error("value out of range: a value, or its sum in this second, would pass ±1e200 (so that every total the store adds up stays a number)")]
    OutOfRange,
}

/// Locks the aggregator. It is only mutated by code that cannot panic
/// half-way through an update; keep serving if a panic elsewhere poisoned it.
pub fn lock(cell: &Mutex<Aggregator>) -> MutexGuard<'_, Aggregator> {
    cell.lock().unwrap_or_else(|e| e.into_inner())
}

/// A batch cut for the store, with what it holds of the buffer.
pub struct Cut {
    pub batch: WriteBatch,
    /// Buffer units (see `max_buffered`).
    pub units: usize,
    /// Events (values of taken lines).
    pub events: u64,
}

/// Timestamps may run ahead of the server's clock by this much (clock skew).
const MAX_FUTURE_SECS: i64 = 300;

struct Slot {
    key: Arc<SeriesKey>,
    /// A gauge's current value, which `+N`/`-N` adjust.
    gauge: f64,
    /// Aggregates by second, not yet cut into a batch. Nearly always one or
    /// two entries, so a vector sized exactly: a map would allocate a whole
    /// node (over a kilobyte) per series, which at 100 000 series dominates
    /// the server's memory.
    pending: Vec<(i64, Aggregate)>,
    last_seen: i64,
    dirty: bool,
}

pub struct Aggregator {
    /// Indexes into `slots`, hashed by series. The table holds only the
    /// index: lookups compare against the slot's own key, so a series' name
    /// and tags are stored once.
    index: HashTable<usize>,
    hasher: RandomState,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    dirty: Vec<usize>,
    /// Aggregates waiting in `pending` maps (not those already cut into a batch).
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
    /// Scratch space for canonical tags, so a lookup allocates nothing.
    tags_scratch: String,
}

impl Aggregator {
    pub fn new(max_series: usize, max_buffered: usize, retention_secs: i64) -> Aggregator {
        Aggregator {
            index: HashTable::new(),
            hasher: RandomState::new(),
            slots: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            pending_count: 0,
            in_flight_count: 0,
            pending_events: 0,
            in_flight_events: 0,
            max_series,
            max_buffered,
            retention_secs,
            tags_scratch: String::new(),
        }
    }

    pub fn series_count(&self) -> usize {
        self.index.len()
    }

    /// Aggregates held in memory: waiting plus in flight.
    pub fn buffered(&self) -> usize {
        self.pending_count + self.in_flight_count
    }

    /// Events taken but not yet written (waiting plus in flight).
    pub fn unwritten_events(&self) -> u64 {
        self.pending_events + self.in_flight_events
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
            Some(t) if t > now - self.retention_secs && t <= now + MAX_FUTURE_SECS => t,
            Some(_) => return Err(Refusal::TimestampOutOfRange),
        };
        let (slot_index, new_series) = self.slot_for(line)?;
        let buffer_full = self.buffered() >= self.max_buffered;
        let slot = self.slots[slot_index]
            .as_mut()
            .expect("index points at a live slot");
        let weight = 1.0 / line.sample_rate;
        let existing = slot.pending.iter().position(|(s, _)| *s == second);
        // Sets and distributions grow with new members and buckets, so
        // when the buffer is full they are refused even for an existing second.
        let grows = matches!(line.kind, MetricKind::Set | MetricKind::Distribution);
        let plan = values::plan(
            existing.map(|p| &slot.pending[p].1),
            slot.gauge,
            line,
            weight,
        );
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
                self.forget(slot_index);
            }
            return Err(refusal.unwrap_or(Refusal::OutOfRange));
        };
        if let Some(journal) = journal {
            let before = journal::Before {
                slot: slot_index,
                existing: existing.map(|p| (p, &slot.pending[p].1)),
                gauge: slot.gauge,
                last_seen: slot.last_seen,
                dirty: slot.dirty,
            };
            journal.before_change(before, new_series, line.values.len());
        }
        slot.last_seen = slot.last_seen.max(second);
        let position = existing.unwrap_or_else(|| {
            slot.pending.reserve_exact(1);
            slot.pending
                .push((second, values::fresh(line.kind, slot.gauge)));
            self.pending_count += 1;
            slot.pending.len() - 1
        });
        let agg = &mut slot.pending[position].1;
        self.pending_count += values::commit(agg, &mut slot.gauge, plan, line, weight);
        self.pending_events += line.values.len() as u64;
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(slot_index);
        }
        Ok(new_series)
    }

    fn slot_for(&mut self, line: &MetricLine<'_>) -> Result<(usize, bool), Refusal> {
        write_canonical_tags(&line.tags, &mut self.tags_scratch);
        let Aggregator {
            index,
            slots,
            free,
            hasher,
            tags_scratch,
            max_series,
            ..
        } = self;
        let (kind, name, tags) = (line.kind, line.name, tags_scratch.as_str());
        let hash = series_hash(hasher, kind, name, tags);
        let same = |i: &usize| {
            slots[*i]
                .as_ref()
                .is_some_and(|s| s.key.kind == kind && s.key.name == name && s.key.tags == tags)
        };
        if let Some(&i) = index.find(hash, same) {
            return Ok((i, false));
        }
        if index.len() >= *max_series {
            return Err(Refusal::TooManySeries(*max_series));
        }
        let slot = Slot {
            key: Arc::new(SeriesKey {
                kind,
                name: name.to_string(),
                tags: tags.to_string(),
            }),
            gauge: 0.0,
            pending: Vec::new(),
            last_seen: 0,
            dirty: false,
        };
        let i = match free.pop() {
            Some(i) => {
                slots[i] = Some(slot);
                i
            }
            None => {
                slots.push(Some(slot));
                slots.len() - 1
            }
        };
        index.insert_unique(hash, i, |j| slot_hash(hasher, slots, *j));
        Ok((i, true))
    }

    /// Takes every waiting aggregate into a batch numbered `seq`. They stay
    /// counted as buffered (and their events as unwritten) until
    /// [`Aggregator::written`].
    pub fn cut(&mut self, server_id: u64, seq: u64) -> Cut {
        let mut series = Vec::with_capacity(self.dirty.len());
        for i in std::mem::take(&mut self.dirty) {
            let Some(slot) = self.slots[i].as_mut() else {
                continue;
            };
            slot.dirty = false;
            let points: Vec<(i64, Aggregate)> =
                std::mem::take(&mut slot.pending).into_iter().collect();
            if !points.is_empty() {
                series.push(SeriesWrite {
                    key: slot.key.clone(),
                    points,
                });
            }
        }
        let batch = WriteBatch {
            server_id,
            seq,
            series,
        };
        let n: usize = batch
            .series
            .iter()
            .flat_map(|s| &s.points)
            .map(|(_, agg)| units(agg))
            .sum();
        self.pending_count -= n;
        self.in_flight_count += n;
        let events = std::mem::take(&mut self.pending_events);
        self.in_flight_events += events;
        Cut {
            batch,
            units: n,
            events,
        }
    }

    /// The batch cut earlier is in the store.
    pub fn written(&mut self, cut: &Cut) {
        self.in_flight_count = self.in_flight_count.saturating_sub(cut.units);
        self.in_flight_events = self.in_flight_events.saturating_sub(cut.events);
    }

    /// Removes a series from the table and frees its slot.
    fn forget(&mut self, i: usize) {
        let hash = slot_hash(&self.hasher, &self.slots, i);
        if let Ok(entry) = self.index.find_entry(hash, |j| *j == i) {
            entry.remove();
        }
        self.slots[i] = None;
        self.free.push(i);
    }

    /// Forgets series with nothing waiting that were last seen before
    /// `now - retention`, making room under `max_series`. Returns how many.
    pub fn forget_idle(&mut self, now: i64) -> usize {
        let cutoff = now - self.retention_secs;
        let mut forgotten = 0;
        for i in 0..self.slots.len() {
            let idle = matches!(&self.slots[i], Some(s) if !s.dirty && s.last_seen < cutoff);
            if idle {
                self.forget(i);
                forgotten += 1;
            }
        }
        forgotten
    }
}

fn series_hash(hasher: &RandomState, kind: MetricKind, name: &str, tags: &str) -> u64 {
    let mut h = hasher.build_hasher();
    kind.hash(&mut h);
    name.hash(&mut h);
    tags.hash(&mut h);
    h.finish()
}

fn slot_hash(hasher: &RandomState, slots: &[Option<Slot>], i: usize) -> u64 {
    slots[i].as_ref().map_or(0, |s| {
        series_hash(hasher, s.key.kind, &s.key.name, &s.key.tags)
    })
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

    /// Everything the aggregator would write, in a comparable form.
    fn snapshot(a: &mut Aggregator) -> (usize, usize, u64, Vec<String>) {
        let state = (a.series_count(), a.buffered(), a.unwritten_events());
        let cut = a.cut(1, 1);
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
        let cut = a.cut(1, 1);
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
        let cut = a.cut(1, 1);
        a.written(&cut);
        assert_eq!(a.forget_idle(NOW + 60), 0, "not idle long enough");
        assert_eq!(a.forget_idle(NOW + 61), 2);
        assert!(a.apply(&parse_line("c:1|c").unwrap(), NOW + 61).is_ok());
    }
}
