//! Round trip 2 of a read: the minute hashes of the series found, read by
//! the read script (`scripts/read.lua`), which answers each call with one
//! string; the reader cuts it in place, without a reply value per field.
//! docs/storage.md ("Reads").

use std::collections::HashMap;

use redis::{Cmd, ServerErrorKind, Value};

use super::connection::Group;
use super::keys::Keys;
use super::read_decode::{decode_answer, decode_in_order, split_reply, Answer};
use super::read_job::{Bucket, Fields, ReadJob};
use super::read_plan::{Plan, Planned};
use super::reads::Reads;
use super::scripts::READ_SCRIPT;
use super::RedisStore;
use crate::error::StoreError;

/// Minute hashes per call of the read script: bounds how long one call
/// blocks Redis.
const KEYS_PER_CALL: usize = 500;

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
        reads: &mut Reads<'_>,
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
            let calls = calls.iter().map(|call| self.read_call(call, &jobs, plans));
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
            reads.start_series(job.query, job.series);
            if job.in_order {
                let (minute, fold) = (&mut reads.minute, &mut reads.fold);
                decode_in_order(plan.kind, job, answer, minute, fold)?;
                continue;
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

    /// One call of the read script over the minute hashes of `call` (or
    /// an `MGET` of day strings), its arguments written once into a
    /// command sized for them.
    fn read_call(&self, call: &[usize], jobs: &[ReadJob], plans: &[Planned]) -> Group {
        let keyed = || {
            call.iter().filter_map(|&j| {
                let job = &jobs[j];
                plan_of(plans, job.query).map(|p| (job, p, &p.series[job.entry]))
            })
        };
        let days = call
            .first()
            .is_some_and(|&j| matches!(jobs[j].bucket, Bucket::Day(_)));
        // Runs of keys asking for the same fields (one run for the agent's
        // windows, which all end at the same second).
        let runs: Vec<(usize, Fields)> = match days {
            true => Vec::new(),
            false => call
                .chunk_by(|&a, &b| jobs[a].fields == jobs[b].fields)
                .map(|run| (run.len(), jobs[run[0]].fields))
                .collect(),
        };
        let named: usize = runs.iter().map(|(_, fields)| fields.count()).sum();
        let key_bytes: usize = keyed()
            .map(|(_, p, s)| p.head(s).len() + p.tags(s).len() + 24)
            .sum();
        let mut cmd = Cmd::with_capacity(
            3 + call.len() + 2 * runs.len() + named,
            64 + key_bytes + 16 * runs.len() + 8 * named,
        );
        if days {
            cmd.arg("MGET");
        } else {
            cmd.arg("EVALSHA")
                .arg(self.read_script.get_hash())
                .arg(call.len());
        }
        let mut buf = String::with_capacity(128);
        // `<mark><n>:` of the bucket last written: the same for most keys.
        let mut middle: (Option<Bucket>, String) = (None, String::new());
        for (job, p, s) in keyed() {
            if middle.0 != Some(job.bucket) {
                let (mark, n) = match job.bucket {
                    Bucket::Minute(m) => ("", m),
                    Bucket::Hour(h) => ("h", h),
                    Bucket::Day(d) => ("d", d),
                };
                middle.1.clear();
                Keys::series_tail_into(&mut middle.1, mark, n, "");
                middle.0 = Some(job.bucket);
            }
            buf.clear();
            buf.push_str(p.head(s));
            buf.push_str(&middle.1);
            buf.push_str(p.tags(s));
            cmd.arg(buf.as_str());
        }
        for (keys, fields) in runs {
            cmd.arg(keys).arg(fields.count());
            for field in fields.named() {
                buf.clear();
                field.push_into(&mut buf);
                cmd.arg(buf.as_str());
            }
        }
        Group(vec![cmd])
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
