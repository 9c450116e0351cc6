//! Reading windows: round trip 1 finds the series of each name in the
//! indexes of its shards, round trip 2 (more only for very large reads)
//! fetches their minute hashes and folds each series into its window as the
//! replies arrive. docs/storage.md ("Reads").

use std::collections::{BTreeMap, HashMap};

use hawkeye_protocol::MetricKind;
use redis::Value;

use super::config::MAX_SHARDS_PER_NAME;
use super::connection::Group;
use super::field::{BadField, Field};
use super::keys::{IndexMember, Slot};
use super::reply::{as_str, hash_pairs, named_pairs};
use super::RedisStore;
use crate::aggregate::Aggregate;
use crate::staleness;
use crate::window::{self, SeriesWindow, WindowQuery};
use crate::{QueryOutcome, StoreError};

/// Commands sent in one round trip at most. Bounds the memory a query of
/// many series needs (commands, packed request and replies), at the cost of
/// more round trips only for very large ones.
const MAX_COMMANDS_PER_ROUND_TRIP: usize = 10_000;
/// Windows covering at most this many seconds of a minute read their fields by name.
const MAX_SECONDS_BY_NAME: i64 = 10;

/// One series of a query, in one shard. A series found in several shards
/// (after `HAWKEYE_SHARDS_PER_NAME` changed) has one entry per shard, all
/// with the same `id`, side by side.
#[derive(Clone)]
pub(super) struct SeriesRef {
    pub(super) tags: String,
    shard: u32,
    id: usize,
    /// Other entries share this series: merge its seconds, do not overwrite.
    split: bool,
}

/// One minute hash to read for one series of one query.
struct ReadJob {
    query: usize,
    series: usize,
    merge: bool,
    minute: i64,
    key: String,
    /// The fields to read (`HMGET`), or `None` for the whole hash (`HGETALL`).
    fields: Option<Vec<String>>,
}

/// Reads in progress: queued jobs, the series being decoded, and each
/// query's finished series combined so far.
struct Reads {
    jobs: Vec<(ReadJob, u32)>,
    current: Option<(usize, usize)>,
    seconds: BTreeMap<i64, Aggregate>,
    combined: Vec<window::Combined>,
    set_counts: Vec<Option<f64>>,
}

impl Reads {
    fn new(queries: usize) -> Reads {
        Reads {
            jobs: Vec::new(),
            current: None,
            seconds: BTreeMap::new(),
            combined: (0..queries).map(|_| window::Combined::default()).collect(),
            set_counts: vec![None; queries],
        }
    }

    /// Reduces the series just decoded to its window.
    fn finish_series(&mut self) {
        if let Some((query, _)) = self.current.take() {
            let seconds = std::mem::take(&mut self.seconds);
            if let Some(w) = SeriesWindow::from_seconds(seconds.values()) {
                self.combined[query].add(w);
            }
        }
    }
}

/// What the first round trip of a query found: the series to read.
pub(super) struct Plan {
    pub(super) kind: MetricKind,
    pub(super) aggregation: window::Aggregation,
    pub(super) series: Vec<SeriesRef>,
}

impl Plan {
    /// The first second read: the window's, or earlier for a gauge that
    /// keeps its last value (see [`staleness`]).
    fn start(&self, q: &WindowQuery) -> i64 {
        staleness::read_start(q, self.kind, self.aggregation)
    }
}

pub(super) type Planned = Result<Option<Plan>, window::QueryError>;

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
        let mut reads = Reads::new(queries.len());
        for (qi, (q, plan)) in queries.iter().zip(plans).enumerate() {
            let Ok(Some(plan)) = plan else { continue };
            if plan.kind == MetricKind::Set {
                let keys: Vec<String> = plan
                    .series
                    .iter()
                    .flat_map(|s| (q.start()..=q.end).map(move |second| (second, &s.tags)))
                    .map(|(second, tags)| self.keys.set(&q.name, second, tags))
                    .collect();
                reads.set_counts[qi] = Some(self.count_union(&q.name, keys).await?);
                continue;
            }
            for s in &plan.series {
                let slot = Slot::new(&q.name, s.shard);
                for minute in plan.start(q).div_euclid(60)..=q.end.div_euclid(60) {
                    let job = ReadJob {
                        query: qi,
                        series: s.id,
                        merge: s.split,
                        minute,
                        key: self.keys.minute(slot, plan.kind, minute, &s.tags),
                        fields: fields_in_window(plan.kind, minute, plan.start(q), q.end),
                    };
                    reads.jobs.push((job, s.shard));
                    if reads.jobs.len() >= MAX_COMMANDS_PER_ROUND_TRIP {
                        self.read_chunk(&mut reads, queries, plans).await?;
                    }
                }
            }
        }
        self.read_chunk(&mut reads, queries, plans).await?;
        reads.finish_series();

        let mut outcomes = Vec::with_capacity(queries.len());
        for (qi, (q, plan)) in queries.iter().zip(plans).enumerate() {
            outcomes.push(match plan {
                Err(e) => Err(e.clone()),
                Ok(None) => Ok(None),
                Ok(Some(plan)) => {
                    let combined = &mut reads.combined[qi];
                    if let Some(count) = reads.set_counts[qi].filter(|c| *c > 0.0) {
                        combined.add(SeriesWindow::SetCount(count));
                    }
                    Ok(combined.value(plan.aggregation, q.window_secs))
                }
            });
        }
        Ok(outcomes)
    }

    /// Round trip 1: which series of each name had data in the window, in
    /// the shards this store writes and any more a writer recorded (one more
    /// round trip, only then).
    pub(super) async fn plan(&self, queries: &[WindowQuery]) -> Result<Vec<Planned>, StoreError> {
        let mut found: Vec<Vec<(u32, String)>> = vec![Vec::new(); queries.len()];
        let wanted: Vec<(usize, u32)> = (0..queries.len())
            .flat_map(|qi| (0..self.shards).map(move |s| (qi, s)))
            .collect();
        let replies = self.read_indexes(queries, &wanted, &mut found).await?;
        let mut more = Vec::new();
        for ((qi, shard), reply) in wanted.iter().zip(&replies) {
            if *shard != 0 {
                continue;
            }
            // Shard 0 also answered with the recorded shard count.
            let recorded = reply
                .get(1)
                .and_then(as_str)
                .and_then(|s| s.parse::<u32>().ok())
                .unwrap_or(1)
                .min(MAX_SHARDS_PER_NAME);
            more.extend((self.shards..recorded).map(|s| (*qi, s)));
        }
        if !more.is_empty() {
            self.read_indexes(queries, &more, &mut found).await?;
        }
        Ok(queries
            .iter()
            .zip(found)
            .map(|(q, members)| plan_one(q, members))
            .collect())
    }

    /// Reads the index of each `(query, shard)` and adds its members to
    /// `found`; returns the replies (shard 0's second one is the shard count).
    async fn read_indexes(
        &self,
        queries: &[WindowQuery],
        wanted: &[(usize, u32)],
        found: &mut [Vec<(u32, String)>],
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let groups: Vec<Group> = wanted
            .iter()
            .map(|(qi, shard)| {
                let q = &queries[*qi];
                let mut g = Group::default();
                g.cmd("ZRANGEBYSCORE")
                    .arg(self.keys.index(Slot::new(&q.name, *shard)))
                    .arg(staleness::candidates_start(q))
                    .arg("+inf");
                if *shard == 0 {
                    g.cmd("GET").arg(self.keys.shards(&q.name));
                }
                g
            })
            .collect();
        let replies = self.conn.run(groups).await?;
        for ((qi, shard), reply) in wanted.iter().zip(&replies) {
            if let Some(Value::Array(items) | Value::Set(items)) = reply.first() {
                let members = items.iter().filter_map(as_str);
                found[*qi].extend(members.map(|m| (*shard, m.to_string())));
            }
        }
        Ok(replies)
    }

    /// Sends the queued minute reads and folds their replies into windows.
    async fn read_chunk(
        &self,
        reads: &mut Reads,
        queries: &[WindowQuery],
        plans: &[Planned],
    ) -> Result<(), StoreError> {
        if reads.jobs.is_empty() {
            return Ok(());
        }
        // One pipeline per query and shard, so that on a cluster each stays
        // in one slot.
        let mut pipes: Vec<Group> = Vec::new();
        let mut pipe_of: HashMap<(usize, u32), usize> = HashMap::new();
        let mut places = Vec::with_capacity(reads.jobs.len());
        for (job, shard) in &reads.jobs {
            let g = *pipe_of.entry((job.query, *shard)).or_insert_with(|| {
                pipes.push(Group::default());
                pipes.len() - 1
            });
            places.push((g, pipes[g].len()));
            match &job.fields {
                Some(fields) => pipes[g].cmd("HMGET").arg(&job.key).arg(fields),
                None => pipes[g].cmd("HGETALL").arg(&job.key),
            };
        }
        let replies = self.conn.run(pipes).await?;
        let jobs = std::mem::take(&mut reads.jobs);
        let mut scratch = BTreeMap::new();
        for ((job, _), (g, i)) in jobs.iter().zip(places) {
            let (q, Ok(Some(plan))) = (&queries[job.query], &plans[job.query]) else {
                continue;
            };
            let reply = replies
                .get(g)
                .and_then(|r| r.get(i))
                .ok_or_else(|| StoreError::Protocol("a read got no reply".into()))?;
            if reads.current != Some((job.query, job.series)) {
                reads.finish_series();
                reads.current = Some((job.query, job.series));
            }
            let pairs = match &job.fields {
                Some(fields) => named_pairs(fields, reply)?,
                None => hash_pairs(reply)?,
            };
            let (start, end) = (plan.start(q), q.end);
            if !job.merge {
                decode_minute(
                    plan.kind,
                    job.minute,
                    &pairs,
                    start,
                    end,
                    &mut reads.seconds,
                )?;
                continue;
            }
            decode_minute(plan.kind, job.minute, &pairs, start, end, &mut scratch)?;
            for (second, agg) in std::mem::take(&mut scratch) {
                match reads.seconds.get_mut(&second) {
                    Some(existing) => existing.merge(&agg),
                    None => {
                        reads.seconds.insert(second, agg);
                    }
                }
            }
        }
        Ok(())
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

/// What one query reads, from the index entries of its name's shards.
fn plan_one(q: &WindowQuery, members: Vec<(u32, String)>) -> Planned {
    let matching: Vec<(MetricKind, &str, u32)> = members
        .iter()
        .filter_map(|(shard, m)| IndexMember::decode(m).map(|(k, t)| (k, t, *shard)))
        .filter(|(kind, tags, _)| q.kind.is_none_or(|k| k == *kind) && q.tags.matches(tags))
        .collect();
    let Some(kind) = window::resolve_kind(q, matching.iter().map(|(k, _, _)| *k))? else {
        return Ok(None);
    };
    let aggregation = window::aggregation_for(q, kind)?;
    let mut series: Vec<(&str, u32)> = matching
        .into_iter()
        .filter(|(k, _, _)| *k == kind)
        .map(|(_, tags, shard)| (tags, shard))
        .collect();
    if members.iter().any(|(shard, _)| *shard != 0) {
        // The same series may sit in two shards: put its entries side by side.
        series.sort_unstable();
    }
    let mut refs: Vec<SeriesRef> = Vec::with_capacity(series.len());
    for (i, (tags, shard)) in series.iter().enumerate() {
        let same_as_previous = i > 0 && series[i - 1].0 == *tags;
        let split = same_as_previous || series.get(i + 1).is_some_and(|next| next.0 == *tags);
        let id = match refs.last() {
            Some(last) if same_as_previous => last.id,
            _ => i,
        };
        refs.push(SeriesRef {
            tags: tags.to_string(),
            shard: *shard,
            id,
            split,
        });
    }
    Ok(Some(Plan {
        kind,
        aggregation,
        series: refs,
    }))
}

/// Decodes a minute hash into per-second aggregates inside `[start, end]`.
fn decode_minute(
    kind: MetricKind,
    minute: i64,
    fields: &[(&str, &str)],
    start: i64,
    end: i64,
    out: &mut BTreeMap<i64, Aggregate>,
) -> Result<(), StoreError> {
    for &(name, value) in fields {
        let bad = |_| StoreError::Protocol(format!("unexpected field {name:?} = {value:?}"));
        let Some(field) = Field::parse(name).map_err(bad)? else {
            continue;
        };
        let second = minute * 60 + field.second;
        if second < start || second > end {
            continue;
        }
        let v: f64 = value.parse().map_err(|_| bad(BadField))?;
        let Some(empty) = Field::empty(kind) else {
            return Err(bad(BadField));
        };
        let agg = out.entry(second).or_insert(empty);
        field.apply(v, agg).map_err(bad)?;
    }
    Ok(())
}

/// The fields of a minute hash that hold the seconds `[start, end]`, when
/// they are known and few: counters and gauges have fixed fields per second;
/// a distribution's bucket fields are not known in advance, so it is read
/// whole (`None`).
fn fields_in_window(kind: MetricKind, minute: i64, start: i64, end: i64) -> Option<Vec<String>> {
    let first = start.max(minute * 60) - minute * 60;
    let last = end.min(minute * 60 + 59) - minute * 60;
    // Naming fields pays only for a few seconds (the agent's short windows);
    // past that, the whole hash is cheaper to ask for than the list of names.
    if last - first + 1 > MAX_SECONDS_BY_NAME {
        return None;
    }
    let parts = Field::fixed_parts(kind)?;
    Some(
        (first..=last)
            .flat_map(|s| parts.iter().map(move |p| Field::new(s, *p).to_string()))
            .collect(),
    )
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
