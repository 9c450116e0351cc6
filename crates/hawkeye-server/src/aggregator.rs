//! Pre-aggregation: events become per-series, per-second aggregates in memory
//! until the flusher takes them. This is why Redis sees a few commands per
//! series per flush instead of one per event, and why counts are exact: every
//! event lands in an aggregate, and aggregates are only ever added up.
//!
//! Bounds: at most `max_series` series are known at once (series idle longer
//! than the retention are forgotten), and at most `max_buffered`
//! (series, second) aggregates wait in memory; past it, events that would need
//! a new aggregate are dropped and counted, while events for aggregates that
//! already exist are still added (they cost no memory).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use hawkeye_protocol::series::write_canonical_tags;
use hawkeye_protocol::{MetricKind, MetricLine, SeriesKey, Value};
use hawkeye_store::aggregate::{Aggregate, DistributionStats, GaugeStats};
use hawkeye_store::{SeriesWrite, WriteBatch};

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
}

/// Timestamps may run ahead of the server's clock by this much (clock skew).
const MAX_FUTURE_SECS: i64 = 300;

struct Slot {
    key: Arc<SeriesKey>,
    /// A gauge's current value, which `+N`/`-N` adjust.
    gauge: f64,
    pending: BTreeMap<i64, Aggregate>,
    last_seen: i64,
    dirty: bool,
}

pub struct Aggregator {
    /// `kind|name|tags` → index into `slots`.
    index: HashMap<Box<str>, usize>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    dirty: Vec<usize>,
    /// Aggregates waiting in `pending` maps (not those already cut into a batch).
    pending_count: usize,
    /// Aggregates cut into a batch that is not written yet.
    in_flight_count: usize,
    max_series: usize,
    max_buffered: usize,
    retention_secs: i64,
    /// Scratch space for building lookup keys without allocating per event.
    scratch: String,
    tags_scratch: String,
}

impl Aggregator {
    pub fn new(max_series: usize, max_buffered: usize, retention_secs: i64) -> Aggregator {
        Aggregator {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            pending_count: 0,
            in_flight_count: 0,
            max_series,
            max_buffered,
            retention_secs,
            scratch: String::new(),
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

    /// Adds one parsed line at `now` (unix seconds): all of its values are
    /// taken, or none is.
    /// Returns whether the line started a new series.
    pub fn apply(&mut self, line: &MetricLine<'_>, now: i64) -> Result<bool, Refusal> {
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
        slot.last_seen = slot.last_seen.max(second);
        let weight = 1.0 / line.sample_rate;
        if !slot.pending.contains_key(&second) {
            if buffer_full {
                return Err(Refusal::BufferFull(self.max_buffered));
            }
            let fresh = match line.kind {
                MetricKind::Counter => Aggregate::Counter(0.0),
                MetricKind::Gauge => Aggregate::Gauge(GaugeStats {
                    last: slot.gauge,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    sum: 0.0,
                    count: 0.0,
                }),
                MetricKind::Distribution => Aggregate::Distribution(DistributionStats::default()),
                MetricKind::Set => Aggregate::Set(HashSet::new()),
            };
            slot.pending.insert(second, fresh);
            self.pending_count += 1;
        }
        let agg = slot.pending.get_mut(&second).expect("inserted above");
        for value in &line.values {
            match (&mut *agg, value) {
                (Aggregate::Counter(sum), Value::Number(v)) => *sum += v * weight,
                (Aggregate::Gauge(g), Value::Number(v)) => {
                    slot.gauge = *v;
                    observe_gauge(g, *v);
                }
                (Aggregate::Gauge(g), Value::Delta(d)) => {
                    slot.gauge += d;
                    observe_gauge(g, slot.gauge);
                }
                (Aggregate::Distribution(d), Value::Number(v)) => d.observe(*v, weight),
                // Look up before inserting so a repeated member allocates nothing.
                (Aggregate::Set(members), Value::Member(m)) if !members.contains(*m) => {
                    members.insert((*m).to_string());
                }
                // The parser only pairs kinds with their value forms.
                _ => {}
            }
        }
        if !slot.dirty {
            slot.dirty = true;
            self.dirty.push(slot_index);
        }
        Ok(new_series)
    }

    fn slot_for(&mut self, line: &MetricLine<'_>) -> Result<(usize, bool), Refusal> {
        write_canonical_tags(&line.tags, &mut self.tags_scratch);
        self.scratch.clear();
        self.scratch.push_str(line.kind.code());
        self.scratch.push('|');
        self.scratch.push_str(line.name);
        self.scratch.push('|');
        self.scratch.push_str(&self.tags_scratch);
        if let Some(&i) = self.index.get(self.scratch.as_str()) {
            return Ok((i, false));
        }
        if self.index.len() >= self.max_series {
            return Err(Refusal::TooManySeries(self.max_series));
        }
        let slot = Slot {
            key: Arc::new(SeriesKey {
                kind: line.kind,
                name: line.name.to_string(),
                tags: self.tags_scratch.clone(),
            }),
            gauge: 0.0,
            pending: BTreeMap::new(),
            last_seen: 0,
            dirty: false,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(slot);
                i
            }
            None => {
                self.slots.push(Some(slot));
                self.slots.len() - 1
            }
        };
        self.index.insert(self.scratch.as_str().into(), i);
        Ok((i, true))
    }

    /// Takes every waiting aggregate into a batch numbered `seq`. The
    /// aggregates stay counted as buffered until [`Aggregator::written`].
    pub fn cut(&mut self, server_id: u64, seq: u64) -> WriteBatch {
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
        let n = batch.len();
        self.pending_count -= n;
        self.in_flight_count += n;
        batch
    }

    /// The batch cut earlier is in the store.
    pub fn written(&mut self, batch_len: usize) {
        self.in_flight_count = self.in_flight_count.saturating_sub(batch_len);
    }

    /// Forgets series with nothing waiting that were last seen before
    /// `now - retention`, making room under `max_series`. Returns how many.
    pub fn forget_idle(&mut self, now: i64) -> usize {
        let cutoff = now - self.retention_secs;
        let mut forgotten = 0;
        for i in 0..self.slots.len() {
            let idle = matches!(&self.slots[i], Some(s) if !s.dirty && s.last_seen < cutoff);
            if idle {
                let slot = self.slots[i].take().expect("checked above");
                let key = format!(
                    "{}|{}|{}",
                    slot.key.kind.code(),
                    slot.key.name,
                    slot.key.tags
                );
                self.index.remove(key.as_str());
                self.free.push(i);
                forgotten += 1;
            }
        }
        forgotten
    }
}

fn observe_gauge(g: &mut GaugeStats, v: f64) {
    if g.count == 0.0 {
        *g = GaugeStats::new(v);
    } else {
        g.observe(v);
    }
}
