//! Round trip 2 of a read: the minute hashes of the series found, read by
//! the read script (`scripts/read.lua`), which answers each call with one
//! string; the reader cuts it in place, without a reply value per field.
//! docs/storage.md ("Reads").

use std::collections::HashMap;

use hawkeye_protocol::MetricKind;
use redis::{ServerErrorKind, Value};

use super::connection::Group;
use super::field::{BadField, Field, Part};
use super::keys::Slot;
use super::reads::{Plan, Planned, Reads};
use super::reply::as_str;
use super::scripts::READ_SCRIPT;
use super::RedisStore;
use crate::aggregate::Aggregate;
use crate::rollup_codec;
use crate::window::WindowQuery;
use crate::StoreError;

/// Windows covering at most this many seconds of a minute read their
/// fields by name.
const MAX_SECONDS_BY_NAME: i64 = 10;
/// Minute hashes per call of the read script: bounds how long one call
/// blocks Redis.
const KEYS_PER_CALL: usize = 500;

/// The fields of a minute hash a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fields {
    /// The fixed `parts` of seconds `first..=last` of the minute.
    Named {
        first: i64,
        last: i64,
        parts: &'static [Part],
    },
    /// The whole hash.
    Whole,
}

impl Fields {
    /// The fields of a minute hash that hold the seconds `[start, end]`,
    /// named when they are known and few: counters and gauges have fixed
    /// fields per second; a distribution's bucket fields are not known in
    /// advance, so it is read whole.
    pub(super) fn in_window(kind: MetricKind, minute: i64, start: i64, end: i64) -> Fields {
        let first = start.max(minute * 60) - minute * 60;
        let last = end.min(minute * 60 + 59) - minute * 60;
        // Naming fields pays only for a few seconds (the agent's short
        // windows); past that, the whole hash is cheaper to ask for.
        match Field::fixed_parts(kind) {
            Some(parts) if last - first < MAX_SECONDS_BY_NAME => {
                Fields::Named { first, last, parts }
            }
            _ => Fields::Whole,
        }
    }

    /// The named fields, in the order they are asked for (none for a whole hash).
    fn named(self) -> impl Iterator<Item = Field> {
        let (first, last, parts) = match self {
            Fields::Named { first, last, parts } => (first, last, parts),
            Fields::Whole => (0, -1, &[][..]),
        };
        (first..=last).flat_map(move |s| parts.iter().map(move |p| Field::new(s, *p)))
    }

    fn count(self) -> usize {
        match self {
            Fields::Named { first, last, parts } => {
                (last - first + 1).max(0) as usize * parts.len()
            }
            Fields::Whole => 0,
        }
    }
}

/// A hash a read job reads: a minute hash (fields per second of the
/// minute) or a rollup hash (fields per minute of the hour). Both have the
/// same layout ([`Field`]); only the unit of a field's index differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bucket {
    Minute(i64),
    Hour(i64),
    /// A compacted day string (`rollup_codec.rs`), read with `MGET`.
    Day(i64),
}

impl Bucket {
    /// The bucket's number and how many seconds one of its field indexes
    /// spans.
    fn unit(self) -> (i64, i64) {
        match self {
            Bucket::Minute(m) => (m, 1),
            Bucket::Hour(h) => (h, 60),
            Bucket::Day(d) => (d, 1440 * 60),
        }
    }
}

/// One hash to read for one series of one query.
pub(super) struct ReadJob {
    pub(super) query: usize,
    /// The series' id (shared by its entries in several shards).
    pub(super) series: usize,
    /// Its entry in the plan's series.
    pub(super) entry: usize,
    pub(super) merge: bool,
    pub(super) bucket: Bucket,
    /// What the read keeps, in the bucket's unit (seconds for a minute
    /// hash, minutes for a rollup hash), inclusive.
    pub(super) span: (i64, i64),
    pub(super) fields: Fields,
}

fn plan_of(plans: &[Planned], query: usize) -> Option<&Plan> {
    match plans.get(query) {
        Some(Ok(Some(plan))) => Some(plan),
        _ => None,
    }
}

impl RedisStore {
    /// Sends the queued minute reads and folds their answers into windows.
    pub(super) async fn read_chunk(
        &self,
        reads: &mut Reads,
        queries: &[WindowQuery],
        plans: &[Planned],
    ) -> Result<(), StoreError> {
        if reads.jobs.is_empty() {
            return Ok(());
        }
        let mut jobs = std::mem::take(&mut reads.jobs);
        // On a cluster a call's keys share a slot: one query and shard; one
        // node takes any keys together.
        let mut batches: Vec<Vec<usize>> = Vec::new();
        if self.conn.is_cluster().await? {
            let mut batch_of: HashMap<(usize, u32), usize> = HashMap::new();
            for (j, job) in jobs.iter().enumerate() {
                let shard = plan_of(plans, job.query).map_or(0, |p| p.series[job.entry].shard);
                let b = *batch_of.entry((job.query, shard)).or_insert_with(|| {
                    batches.push(Vec::new());
                    batches.len() - 1
                });
                batches[b].push(j);
            }
        } else {
            batches.push((0..jobs.len()).collect());
        }
        // Day strings are binary: read with MGET, beside the script calls.
        let calls: Vec<&[usize]> = batches
            .iter_mut()
            .flat_map(|b| {
                b.sort_by_key(|&j| matches!(jobs[j].bucket, Bucket::Day(_)));
                let days = b.partition_point(|&j| !matches!(jobs[j].bucket, Bucket::Day(_)));
                let (hashes, days) = b.split_at(days);
                hashes
                    .chunks(KEYS_PER_CALL)
                    .chain(days.chunks(KEYS_PER_CALL))
            })
            .collect();
        let build = || {
            let calls = calls
                .iter()
                .map(|call| self.read_call(call, &jobs, queries, plans));
            calls.collect::<Vec<Group>>()
        };
        let replies = self.run_read_script(build).await?;
        let mut answers: Vec<Answer> = vec![Answer::Text(""); jobs.len()];
        for (call, reply) in calls.iter().zip(&replies) {
            split_reply(call, &jobs, reply, &mut answers)?;
        }
        for (job, answer) in jobs.iter().zip(answers) {
            let Some(plan) = plan_of(plans, job.query) else {
                continue;
            };
            if reads.current != Some((job.query, job.series)) {
                reads.finish_series();
                reads.current = Some((job.query, job.series));
            }
            // Rollups of a minute may sit both in a day string and in an
            // hour hash (written after the compaction): merged, not set.
            if !job.merge && matches!(job.bucket, Bucket::Minute(_)) {
                decode_answer(plan.kind, job, answer, &mut reads.seconds)?;
                continue;
            }
            decode_answer(plan.kind, job, answer, &mut reads.scratch)?;
            for (second, agg) in std::mem::take(&mut reads.scratch) {
                match reads.seconds.get_mut(&second) {
                    Some(existing) => existing.merge(&agg),
                    None => {
                        reads.seconds.insert(second, agg);
                    }
                }
            }
        }
        // The queue's buffer serves the next chunk (up to 10 000 jobs).
        jobs.clear();
        reads.jobs = jobs;
        Ok(())
    }

    /// One call of the read script over the minute hashes of `call`.
    fn read_call(
        &self,
        call: &[usize],
        jobs: &[ReadJob],
        queries: &[WindowQuery],
        plans: &[Planned],
    ) -> Group {
        let mut g = Group::default();
        if call
            .first()
            .is_some_and(|&j| matches!(jobs[j].bucket, Bucket::Day(_)))
        {
            let cmd = g.cmd("MGET");
            for &j in call {
                let job = &jobs[j];
                let (q, plan) = (&queries[job.query], plan_of(plans, job.query));
                if let (Some(p), Bucket::Day(day)) = (plan, job.bucket) {
                    let s = &p.series[job.entry];
                    let slot = Slot::new(&q.name, s.shard);
                    cmd.arg(self.keys.day(slot, p.kind, day, &s.tags));
                }
            }
            return g;
        }
        let cmd = g
            .cmd("EVALSHA")
            .arg(self.read_script.get_hash())
            .arg(call.len());
        let mut buf = String::with_capacity(128);
        for &j in call {
            let job = &jobs[j];
            let (q, plan) = (&queries[job.query], plan_of(plans, job.query));
            if let Some(s) = plan.map(|p| (p.kind, &p.series[job.entry])) {
                buf.clear();
                let slot = Slot::new(&q.name, s.1.shard);
                match job.bucket {
                    Bucket::Minute(m) => self.keys.minute_into(&mut buf, slot, s.0, m, &s.1.tags),
                    Bucket::Hour(h) => self.keys.hour_into(&mut buf, slot, s.0, h, &s.1.tags),
                    Bucket::Day(_) => {}
                }
                cmd.arg(buf.as_str());
            }
        }
        for &j in call {
            let fields = jobs[j].fields;
            cmd.arg(fields.count());
            for field in fields.named() {
                buf.clear();
                field.push_into(&mut buf);
                cmd.arg(buf.as_str());
            }
        }
        g
    }

    /// Runs the read script calls `build` makes, loading the script first
    /// where a node does not know it (restarted, promoted, flushed): reads
    /// change nothing, so every call simply goes again behind a load.
    async fn run_read_script(
        &self,
        build: impl Fn() -> Vec<Group>,
    ) -> Result<Vec<Value>, StoreError> {
        let replies = self.conn.run_keeping_errors(build()).await?;
        let no_script = |v: &Value| matches!(v, Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript));
        let replies = if replies.iter().flatten().any(no_script) {
            let mut groups = build();
            for g in &mut groups {
                let load = {
                    let mut l = Group::default();
                    l.cmd("SCRIPT").arg("LOAD").arg(READ_SCRIPT);
                    l.0
                };
                g.0.splice(0..0, load);
            }
            let replies = self.conn.run_keeping_errors(groups).await?;
            // Each group's first reply is the load's (the script's hash).
            replies
                .into_iter()
                .map(|r| r.into_iter().skip(1).collect())
                .collect()
        } else {
            replies
        };
        replies
            .into_iter()
            .map(|mut r| match r.pop() {
                Some(Value::ServerError(e)) => Err(StoreError::Unavailable(format!(
                    "Redis refused a read: {}",
                    redis::RedisError::from(e)
                ))),
                Some(v) => Ok(v),
                None => Err(StoreError::Protocol("a read got no reply".into())),
            })
            .collect()
    }
}

/// What one job got: a hash's fields as the read script wrote them, or a
/// day string's bytes (`None`: no such key).
#[derive(Clone, Copy)]
enum Answer<'a> {
    Text(&'a str),
    Bytes(Option<&'a [u8]>),
}

/// Cuts one call's reply into the answers of its jobs.
fn split_reply<'a>(
    call: &[usize],
    jobs: &[ReadJob],
    reply: &'a Value,
    answers: &mut [Answer<'a>],
) -> Result<(), StoreError> {
    let unexpected = || StoreError::Protocol(format!("a read answered {reply:?}"));
    if call
        .first()
        .is_some_and(|&j| matches!(jobs[j].bucket, Bucket::Day(_)))
    {
        let Value::Array(values) = reply else {
            return Err(unexpected());
        };
        if values.len() != call.len() {
            return Err(unexpected());
        }
        for (&j, value) in call.iter().zip(values) {
            answers[j] = Answer::Bytes(match value {
                Value::BulkString(bytes) => Some(bytes),
                _ => None,
            });
        }
        return Ok(());
    }
    let text = as_str(reply).ok_or_else(unexpected)?;
    let mut parts = text.split(';');
    for &j in call.iter() {
        answers[j] = Answer::Text(parts.next().ok_or_else(|| {
            StoreError::Protocol("the read script answered too few hashes".into())
        })?);
    }
    Ok(())
}

/// Decodes one job's answer into aggregates inside the job's span, keyed
/// by the first second each covers (a second, or a rollup's minute).
fn decode_answer(
    kind: MetricKind,
    job: &ReadJob,
    answer: Answer,
    out: &mut std::collections::BTreeMap<i64, Aggregate>,
) -> Result<(), StoreError> {
    let answer = match answer {
        Answer::Text(text) => text,
        Answer::Bytes(None) => return Ok(()),
        Answer::Bytes(Some(bytes)) => return decode_day(job, bytes, out),
    };
    let bad = |what: &str| StoreError::Protocol(format!("unexpected field {what:?}"));
    if job.fields == Fields::Whole {
        for pair in answer.split(',').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').ok_or_else(|| bad(pair))?;
            let Some(field) = Field::parse(name).map_err(|_| bad(pair))? else {
                continue;
            };
            decode_value(kind, job, field, value, out).map_err(|_| bad(pair))?;
        }
        return Ok(());
    }
    for (field, value) in job.fields.named().zip(answer.split(',')) {
        if !value.is_empty() {
            decode_value(kind, job, field, value, out).map_err(|_| bad(value))?;
        }
    }
    Ok(())
}

/// A day string's minutes inside the job's span (in minutes), merged into
/// one aggregate keyed by the last of them: a 30-day read of 1 000 series
/// would otherwise sort 43 million minutes. The order that matters (a
/// gauge's last value) is kept: a minute of an hour hash before that key
/// is merged before it, one after it (or at it: written later) after it.
fn decode_day(
    job: &ReadJob,
    bytes: &[u8],
    out: &mut std::collections::BTreeMap<i64, Aggregate>,
) -> Result<(), StoreError> {
    let (first, _) = job.bucket.unit();
    let mut folded: Option<(i64, Aggregate)> = None;
    // Folded as decoded: no map of the day's minutes.
    rollup_codec::decode_each(bytes, |minute, agg| {
        let at = first * rollup_codec::MINUTES_PER_DAY + minute;
        if at < job.span.0 || at > job.span.1 {
            return;
        }
        match &mut folded {
            Some((last, acc)) => {
                acc.merge(&agg);
                *last = at;
            }
            None => folded = Some((at, agg)),
        }
    })
    .map_err(|e| StoreError::Protocol(e.to_string()))?;
    if let Some((last, agg)) = folded {
        match out.get_mut(&(last * 60)) {
            Some(existing) => existing.merge(&agg),
            None => {
                out.insert(last * 60, agg);
            }
        }
    }
    Ok(())
}

fn decode_value(
    kind: MetricKind,
    job: &ReadJob,
    field: Field,
    value: &str,
    out: &mut std::collections::BTreeMap<i64, Aggregate>,
) -> Result<(), BadField> {
    let (bucket, seconds) = job.bucket.unit();
    let at = bucket * 60 + field.second;
    if at < job.span.0 || at > job.span.1 {
        return Ok(());
    }
    let second = at * seconds;
    let v: f64 = value.parse().map_err(|_| BadField)?;
    let empty = Field::empty(kind).ok_or(BadField)?;
    field.apply(v, out.entry(second).or_insert(empty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn few_seconds_of_fixed_fields_are_named() {
        let f = Fields::in_window(MetricKind::Counter, 10, 600 + 58, 600 + 80);
        assert_eq!(
            f.named().map(|f| f.to_string()).collect::<Vec<_>>(),
            ["58", "59"]
        );
        assert_eq!(f.count(), 2);
        let g = Fields::in_window(MetricKind::Gauge, 10, 600, 600);
        assert_eq!(g.count(), 5);
        assert_eq!(
            Fields::in_window(MetricKind::Counter, 10, 0, 10_000),
            Fields::Whole
        );
        assert_eq!(
            Fields::in_window(MetricKind::Distribution, 10, 600, 600),
            Fields::Whole
        );
        assert_eq!(Fields::Whole.count(), 0);
    }

    #[test]
    fn answers_decode_in_place() {
        let mut out = std::collections::BTreeMap::new();
        let job = |fields, span| ReadJob {
            query: 0,
            series: 0,
            entry: 0,
            merge: false,
            bucket: Bucket::Minute(1),
            span,
            fields,
        };
        let named = Fields::in_window(MetricKind::Counter, 1, 60, 62);
        decode_answer(
            MetricKind::Counter,
            &job(named, (60, 62)),
            Answer::Text("1.5,,2"),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            [(60, Aggregate::Counter(1.5)), (62, Aggregate::Counter(2.0))]
        );
        let mut out = std::collections::BTreeMap::new();
        let whole = job(Fields::Whole, (60, 100));
        decode_answer(
            MetricKind::Counter,
            &whole,
            Answer::Text("3=4,_f:9=1,59=5"),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            [(63, Aggregate::Counter(4.0))]
        );
        let mut out = std::collections::BTreeMap::new();
        assert!(decode_answer(MetricKind::Counter, &whole, Answer::Text("3=x"), &mut out).is_err());
        assert!(decode_answer(MetricKind::Counter, &whole, Answer::Text("q=1"), &mut out).is_err());
        assert!(decode_answer(MetricKind::Counter, &whole, Answer::Text(""), &mut out).is_ok());
        // A rollup hash: minutes of the hour, keyed by their first second.
        let mut out = std::collections::BTreeMap::new();
        let hour = ReadJob {
            bucket: Bucket::Hour(2),
            span: (121, 122),
            ..job(Fields::Whole, (0, 0))
        };
        decode_answer(
            MetricKind::Counter,
            &hour,
            Answer::Text("0=1,1=2,2=3,3=4,_v=9"),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out.into_iter().collect::<Vec<_>>(),
            [
                (121 * 60, Aggregate::Counter(2.0)),
                (122 * 60, Aggregate::Counter(3.0))
            ]
        );
    }
}
