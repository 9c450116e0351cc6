//! Reading windows: round trip 1 finds the series of each name in the
//! indexes of its shards (or the index cache: `index_read.rs`), round trip
//! 2 (more only for very large reads) fetches their minute hashes
//! (`minute_read.rs`) and folds each series into its window as the replies
//! arrive. docs/storage.md ("Reads").

use std::collections::BTreeMap;

use hawkeye_protocol::MetricKind;
use redis::Value;

use super::connection::Group;
use super::read_job::{Bucket, Fields, ReadJob};
use super::read_plan::Planned;
use super::RedisStore;
use crate::aggregate::Aggregate;
use crate::error::StoreError;
use crate::tiers::wall_secs;
use crate::tiers::{self, Split};
use crate::window::QueryOutcome;
use crate::window::{self, SecondsFold, SeriesWindow, WindowQuery};

/// Commands sent in one round trip at most. Bounds the memory a query of
/// many series needs (commands, packed request and replies), at the cost of
/// more round trips only for very large ones.
const MAX_COMMANDS_PER_ROUND_TRIP: usize = 10_000;

/// Reads in progress: queued jobs, the series being decoded, and the
/// query being combined. A query's jobs are queued (and decoded) one after
/// the other, so one [`window::Combined`] serves every query in turn and
/// each query's outcome is written when its last series is done: no
/// combination per query is made and dropped at each read.
pub(super) struct Reads<'a> {
    queries: &'a [WindowQuery],
    plans: &'a [Planned],
    pub(super) jobs: Vec<ReadJob>,
    /// The query and series whose seconds `fold` or `seconds` holds.
    current: Option<(usize, usize)>,
    /// The series' seconds reduced as they come, for a series read from
    /// its minute hashes alone, in one shard: they arrive in order.
    pub(super) fold: SecondsFold,
    /// One minute hash's seconds (by second of the minute), before they
    /// join `fold` in order (a whole hash answers in no order).
    pub(super) minute: Vec<Option<Aggregate>>,
    /// The series' seconds by second, where they arrive out of order: a
    /// series split over shards, or read partly from rollups.
    pub(super) seconds: BTreeMap<i64, Aggregate>,
    /// One shard's seconds of a series split over shards, before merging.
    pub(super) scratch: BTreeMap<i64, Aggregate>,
    /// The query whose finished series `combined` holds.
    combining: Option<usize>,
    combined: window::Combined,
    /// One per query: its plan's error, `Ok(None)` until its series are
    /// combined (and for a query that matches none).
    outcomes: Vec<QueryOutcome>,
}

impl<'a> Reads<'a> {
    fn new(queries: &'a [WindowQuery], plans: &'a [Planned]) -> Reads<'a> {
        let outcomes = plans
            .iter()
            .map(|plan| match plan {
                Err(e) => Err(e.clone()),
                Ok(_) => Ok(None),
            })
            .collect();
        Reads {
            queries,
            plans,
            jobs: Vec::new(),
            current: None,
            fold: SecondsFold::default(),
            minute: vec![None; 60],
            seconds: BTreeMap::new(),
            scratch: BTreeMap::new(),
            combining: None,
            combined: window::Combined::default(),
            outcomes,
        }
    }

    /// Makes `(query, series)` the series being decoded, finishing the
    /// previous one (and its query, when this is another).
    pub(super) fn start_series(&mut self, query: usize, series: usize) {
        if self.current == Some((query, series)) {
            return;
        }
        self.finish_series();
        if self.combining != Some(query) {
            self.finish_query();
            self.combining = Some(query);
        }
        self.current = Some((query, series));
    }

    /// Reduces the series just decoded to its window.
    fn finish_series(&mut self) {
        if self.current.take().is_some() {
            // A series' jobs all go to the fold or all to the map.
            let window = match self.fold.is_empty() {
                true => SeriesWindow::from_seconds(self.seconds.values()),
                false => self.fold.finish(),
            };
            if let Some(w) = window {
                self.combined.add(w);
            }
            if !self.seconds.is_empty() {
                self.seconds.clear();
            }
        }
    }

    /// Writes the outcome of the query whose series were combined.
    fn finish_query(&mut self) {
        let Some(qi) = self.combining.take() else {
            return;
        };
        if let Ok(Some(plan)) = &self.plans[qi] {
            let value = self
                .combined
                .value(plan.aggregation, self.queries[qi].window_secs);
            self.outcomes[qi] = Ok(value);
        }
        self.combined.clear();
    }

    /// Each query's value, once every job was decoded.
    fn outcomes(mut self) -> Vec<QueryOutcome> {
        self.finish_series();
        self.finish_query();
        self.outcomes
    }
}

impl RedisStore {
    pub(super) async fn read_windows(
        &self,
        queries: &[WindowQuery],
    ) -> Result<Vec<QueryOutcome>, StoreError> {
        let plans = self.plan(queries).await?;
        self.read_planned(queries, &plans).await
    }

    /// Round trip 2: reads the series each plan found and reduces each
    /// query's to its window.
    pub(super) async fn read_planned(
        &self,
        queries: &[WindowQuery],
        plans: &[Planned],
    ) -> Result<Vec<QueryOutcome>, StoreError> {
        let mut reads = Reads::new(queries, plans);
        let held_from = tiers::seconds_held_from(wall_secs(), self.ttl_secs);
        let splits: Vec<Option<Split>> = queries
            .iter()
            .zip(plans)
            .map(|(q, plan)| match plan {
                Ok(Some(p)) if p.kind != MetricKind::Set => {
                    Some(tiers::split(p.start(q), q.end, held_from))
                }
                _ => None,
            })
            .collect();
        let open = self.open_hours(queries, plans, &splits).await?;
        // Most series read one minute hash: one allocation for the queue.
        let series: usize = plans
            .iter()
            .map(|p| {
                p.as_ref()
                    .map_or(0, |p| p.as_ref().map_or(0, |p| p.series.len()))
            })
            .sum();
        reads.jobs.reserve(series.min(MAX_COMMANDS_PER_ROUND_TRIP));
        let mut buckets = Vec::new();
        // What `buckets` was made for, while it holds every series' buckets
        // of a query without open hours: the agent's windows all share one
        // kind and split, so most queries reuse the previous one's.
        let mut buckets_of: Option<(MetricKind, Split)> = None;
        for (qi, (q, plan)) in queries.iter().zip(plans).enumerate() {
            let Ok(Some(plan)) = plan else { continue };
            let split = tiers::split(plan.start(q), q.end, held_from);
            if plan.kind == MetricKind::Set {
                let keys = plan
                    .series
                    .iter()
                    .flat_map(|s| self.set_keys(&q.name, plan.tags(s), split))
                    .collect();
                let count = self.count_union(&q.name, keys).await?;
                let mut combined = window::Combined::default();
                if count > 0.0 {
                    combined.add(SeriesWindow::SetCount(count));
                }
                reads.outcomes[qi] = Ok(combined.value(plan.aggregation, q.window_secs));
                continue;
            }
            let open = open.get(qi).filter(|open| !open.is_empty());
            // Only minute hashes, of a series in one shard: the seconds
            // arrive in order, folded without a map.
            let in_order = split.minutes.is_none();
            // Without open hours, every series reads the same buckets; with
            // them, each its own (made below).
            if open.is_some() {
                buckets_of = None;
            } else if buckets_of != Some((plan.kind, split)) {
                buckets.clear();
                buckets.extend(jobs_of(plan.kind, split, &[]));
                buckets_of = Some((plan.kind, split));
            }
            for (entry, s) in plan.series.iter().enumerate() {
                if let Some(open) = open {
                    let hours = open.get(&(s.shard, plan.member(s).to_string()));
                    buckets.clear();
                    buckets.extend(jobs_of(plan.kind, split, hours.map_or(&[], Vec::as_slice)));
                }
                for &(bucket, span, fields) in &buckets {
                    reads.jobs.push(ReadJob {
                        query: qi,
                        series: s.id,
                        entry,
                        merge: s.split,
                        in_order: in_order && !s.split,
                        bucket,
                        span,
                        fields,
                    });
                    if reads.jobs.len() >= MAX_COMMANDS_PER_ROUND_TRIP {
                        self.read_chunk(&mut reads, plans).await?;
                    }
                }
            }
        }
        self.read_chunk(&mut reads, plans).await?;
        Ok(reads.outcomes())
    }

    /// The HyperLogLogs of one set series that `split` reads: per-minute
    /// rollups, then per-second ones.
    fn set_keys<'a>(
        &'a self,
        name: &'a str,
        tags: &'a str,
        split: Split,
    ) -> impl Iterator<Item = String> + 'a {
        let minutes = split.minutes.map(|(a, b)| a..=b).into_iter().flatten();
        let seconds = split.seconds.map(|(a, b)| a..=b).into_iter().flatten();
        let minutes = minutes.map(move |m| self.keys.set_minute(name, m, tags));
        minutes.chain(seconds.map(move |s| self.keys.set(name, s, tags)))
    }

    /// The number of distinct members across HyperLogLog `keys` (all of one
    /// name, so one slot). Very many keys are merged in chunks first.
    async fn count_union(&self, name: &str, keys: Vec<String>) -> Result<f64, StoreError> {
        // The count is the first reply of the last pipeline (a DEL may follow it).
        let count = |replies: Vec<Vec<Value>>| match replies.last().and_then(|r| r.first()) {
            Some(Value::Int(n)) => Ok(*n as f64),
            other => Err(StoreError::Protocol(format!("PFCOUNT replied {other:?}"))),
        };
        if keys.len() <= MAX_COMMANDS_PER_ROUND_TRIP {
            let mut p = Group::default();
            p.cmd("PFCOUNT").arg(keys);
            return count(self.conn.run(vec![p]).await?);
        }
        let scratch = self.keys.union_scratch(name, rand_suffix());
        for chunk in keys.chunks(MAX_COMMANDS_PER_ROUND_TRIP) {
            let mut p = Group::default();
            p.cmd("PFMERGE").arg(&scratch).arg(chunk);
            p.cmd("EXPIRE").arg(&scratch).arg(60);
            self.conn.run(vec![p]).await?;
        }
        let mut p = Group::default();
        p.cmd("PFCOUNT").arg(&scratch);
        p.cmd("DEL").arg(&scratch);
        count(self.conn.run(vec![p]).await?)
    }
}

/// The keys a counter, gauge or distribution series is read from for
/// `split`: its compacted days and its `open` rollup hours (a minute may be
/// in both: written after its hour was compacted), then the minute hashes
/// of its seconds, each with the span it keeps (in its unit) and the fields
/// it asks for.
fn jobs_of(
    kind: MetricKind,
    split: Split,
    open: &[i64],
) -> impl Iterator<Item = (Bucket, (i64, i64), Fields)> + '_ {
    let days = split.minutes.into_iter().flat_map(move |(first, last)| {
        (first.div_euclid(1440)..=last.div_euclid(1440))
            .map(move |day| (Bucket::Day(day), (first, last), Fields::Whole))
    });
    let hours = split.minutes.into_iter().flat_map(move |(first, last)| {
        open.iter().map(move |&hour| {
            let fields = Fields::in_window(kind, hour, first, last);
            (Bucket::Hour(hour), (first, last), fields)
        })
    });
    let minutes = split.seconds.into_iter().flat_map(move |(first, last)| {
        (first.div_euclid(60)..=last.div_euclid(60)).map(move |minute| {
            let fields = Fields::in_window(kind, minute, first, last);
            (Bucket::Minute(minute), (first, last), fields)
        })
    });
    days.chain(hours).chain(minutes)
}

/// A unique-enough suffix for a scratch key.
fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
