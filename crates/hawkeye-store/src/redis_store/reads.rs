//! Reading windows: round trip 1 finds the series of each name in the index,
//! round trip 2 (more only for very large reads) fetches their minute hashes
//! and folds each series into its window as the replies arrive.

use std::collections::BTreeMap;

use hawkeye_protocol::MetricKind;
use redis::Value;

use super::connection::Group;
use super::field::{BadField, Field};
use super::keys::IndexMember;
use super::reply::{as_string, hash_pairs, named_pairs};
use super::{RedisStore, MAX_COMMANDS_PER_ROUND_TRIP};
use crate::aggregate::Aggregate;
use crate::window::{self, SeriesWindow, WindowQuery};
use crate::{QueryOutcome, StoreError};

/// Windows covering at most this many seconds of a minute read their fields by name.
const MAX_SECONDS_BY_NAME: i64 = 10;

/// One minute hash to read for one series of one query.
struct ReadJob {
    query: usize,
    series: usize,
    minute: i64,
    key: String,
    /// The fields to read (`HMGET`), or `None` for the whole hash (`HGETALL`).
    fields: Option<Vec<String>>,
}

/// Reads in progress: queued jobs, the series being decoded, and each
/// query's finished series combined so far.
struct Reads {
    jobs: Vec<ReadJob>,
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
struct Plan {
    kind: MetricKind,
    aggregation: window::Aggregation,
    /// For each series: its tags.
    series: Vec<String>,
}

type Planned = Result<Option<Plan>, window::QueryError>;

impl RedisStore {
    pub(super) async fn read_windows(
        &self,
        queries: &[WindowQuery],
    ) -> Result<Vec<QueryOutcome>, StoreError> {
        let plans = self.plan(queries).await?;

        // Round trip 2 (more for very large reads): the data of those series,
        // folded into one window per series as its replies arrive.
        let mut reads = Reads::new(queries.len());
        for (qi, (q, plan)) in queries.iter().zip(&plans).enumerate() {
            let Ok(Some(plan)) = plan else { continue };
            if plan.kind == MetricKind::Set {
                let keys: Vec<String> = plan
                    .series
                    .iter()
                    .flat_map(|tags| (q.start()..=q.end).map(move |s| (s, tags)))
                    .map(|(s, tags)| self.keys.set(&q.name, s, tags))
                    .collect();
                reads.set_counts[qi] = Some(self.count_union(&q.name, keys).await?);
                continue;
            }
            let first_minute = q.start().div_euclid(60);
            for (si, tags) in plan.series.iter().enumerate() {
                for minute in first_minute..=q.end.div_euclid(60) {
                    reads.jobs.push(ReadJob {
                        query: qi,
                        series: si,
                        minute,
                        key: self.keys.minute(&q.name, plan.kind, minute, tags),
                        fields: fields_in_window(plan.kind, minute, q.start(), q.end),
                    });
                    if reads.jobs.len() >= MAX_COMMANDS_PER_ROUND_TRIP {
                        self.read_chunk(&mut reads, queries, &plans).await?;
                    }
                }
            }
        }
        self.read_chunk(&mut reads, queries, &plans).await?;
        reads.finish_series();

        let mut outcomes = Vec::with_capacity(queries.len());
        for (qi, (q, plan)) in queries.iter().zip(plans).enumerate() {
            outcomes.push(match plan {
                Err(e) => Err(e),
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

    /// Round trip 1: which series of each name had data in the window.
    async fn plan(&self, queries: &[WindowQuery]) -> Result<Vec<Planned>, StoreError> {
        let index_pipes: Vec<Group> = queries
            .iter()
            .map(|q| {
                let mut p = Group::default();
                p.cmd("ZRANGEBYSCORE")
                    .arg(self.keys.index(&q.name))
                    .arg(q.start())
                    .arg("+inf");
                p
            })
            .collect();
        let index_replies = self.conn.run(index_pipes).await?;
        Ok(queries
            .iter()
            .zip(&index_replies)
            .map(|(q, reply)| plan_one(q, reply.first()))
            .collect())
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
        // One pipeline per query, so that on a cluster each stays in one slot.
        let mut pipes: Vec<Group> = Vec::new();
        let mut last_query = usize::MAX;
        for job in &reads.jobs {
            if job.query != last_query {
                pipes.push(Group::default());
                last_query = job.query;
            }
            if let Some(p) = pipes.last_mut() {
                match &job.fields {
                    Some(fields) => p.cmd("HMGET").arg(&job.key).arg(fields),
                    None => p.cmd("HGETALL").arg(&job.key),
                };
            }
        }
        let replies = self.conn.run(pipes).await?;
        let jobs = std::mem::take(&mut reads.jobs);
        for (job, reply) in jobs.iter().zip(replies.iter().flatten()) {
            let (q, Ok(Some(plan))) = (&queries[job.query], &plans[job.query]) else {
                continue;
            };
            if reads.current != Some((job.query, job.series)) {
                reads.finish_series();
                reads.current = Some((job.query, job.series));
            }
            let pairs = match &job.fields {
                Some(fields) => named_pairs(fields, reply)?,
                None => hash_pairs(reply)?,
            };
            decode_minute(
                plan.kind,
                job.minute,
                &pairs,
                q.start(),
                q.end,
                &mut reads.seconds,
            )?;
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

/// What one query reads, from its name's index entries.
fn plan_one(q: &WindowQuery, index_reply: Option<&Value>) -> Planned {
    let members: Vec<String> = match index_reply {
        Some(Value::Array(items)) | Some(Value::Set(items)) => {
            items.iter().filter_map(as_string).collect()
        }
        _ => Vec::new(),
    };
    let matching: Vec<(MetricKind, &str)> = members
        .iter()
        .filter_map(|m| IndexMember::decode(m))
        .filter(|(kind, tags)| q.kind.is_none_or(|k| k == *kind) && q.tags.matches(tags))
        .collect();
    let Some(kind) = window::resolve_kind(q, matching.iter().map(|(k, _)| *k))? else {
        return Ok(None);
    };
    let aggregation = window::aggregation_for(q, kind)?;
    let series = matching
        .into_iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, t)| t.to_string())
        .collect();
    Ok(Some(Plan {
        kind,
        aggregation,
        series,
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
