//! Writing a flush: the batch's series grouped by slot (a metric name, or
//! one shard of it), each slot written by one call of the write script (a
//! few, in order, for a very large one). What the script does and why a
//! retry counts nothing twice: docs/storage.md ("Writes").

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hawkeye_protocol::MetricKind;
use redis::{ServerErrorKind, Value};

use super::connection::Group;
use super::field::Field;
use super::keys::{shard_of, IndexMember, Slot};
use super::RedisStore;
use crate::aggregate::Aggregate;
use crate::{SeriesWrite, StoreError, WriteBatch};

/// Arguments in one script call at most. Bounds how long one call blocks
/// Redis, and keeps a set's members within what Lua's `unpack` takes.
const MAX_ARGS_PER_CALL: usize = 4096;
/// Data keys written in one round trip at most. Bounds the memory a large
/// flush needs (the packed request), at the cost of more round trips only
/// for very large ones.
const MAX_KEYS_PER_ROUND_TRIP: usize = 10_000;
/// Script arguments before the first record (ttl, server, seq, chunk,
/// now, shards).
const HEADER_ARGS: usize = 6;

/// The arguments every call of one flush starts with.
struct Header {
    ttl: String,
    server: String,
    seq: String,
    now: String,
}

/// What one call writes into one data key.
struct Record {
    key: String,
    member: String,
    /// The newest second written to the key: the index entry's score.
    score: i64,
    /// Set members, or `<op><field>`, value pairs.
    items: Vec<String>,
}

/// One call of the write script.
struct Call {
    keys: Vec<String>,
    args: Vec<String>,
    records: usize,
}

impl Call {
    fn cmd(&self, sha: &str, eval_body: Option<&str>) -> redis::Cmd {
        let mut cmd = match eval_body {
            Some(body) => redis::cmd("EVAL").arg(body).clone(),
            None => redis::cmd("EVALSHA").arg(sha).clone(),
        };
        cmd.arg(self.keys.len()).arg(&self.keys).arg(&self.args);
        cmd
    }
}

impl RedisStore {
    pub(super) async fn write_batch(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let header = Header {
            ttl: self.ttl_secs.to_string(),
            server: batch.server_id.to_string(),
            seq: batch.seq.to_string(),
            now: crate::now_secs().to_string(),
        };
        // A BTreeMap, so that a retried batch is cut into the same calls.
        let mut slots: BTreeMap<Slot, Vec<&SeriesWrite>> = BTreeMap::new();
        for write in &batch.series {
            let shard = shard_of(write.key.kind, &write.key.tags, self.shards);
            let slot = Slot::new(&write.key.name, shard);
            slots.entry(slot).or_default().push(write);
            if self.shards > 1 {
                // Shard 0 records the shard count, for readers (see `reads`).
                slots.entry(Slot::new(&write.key.name, 0)).or_default();
            }
        }
        let mut round: Vec<Vec<Call>> = Vec::new();
        let mut queued = 0;
        for (slot, writes) in slots {
            round.push(Vec::new());
            for call in self.slot_calls(slot, &writes, &header) {
                queued += call.keys.len();
                if let Some(group) = round.last_mut() {
                    group.push(call);
                }
                if queued >= MAX_KEYS_PER_ROUND_TRIP {
                    // Safe to split, even within a slot: its calls apply in order.
                    self.send_calls(std::mem::take(&mut round)).await?;
                    round.push(Vec::new());
                    queued = 0;
                }
            }
        }
        self.send_calls(round).await
    }

    /// The calls that write `writes` into `slot`, chunk 0 first.
    fn slot_calls(&self, slot: Slot, writes: &[&SeriesWrite], header: &Header) -> Vec<Call> {
        let base = [
            self.keys.index(slot),
            self.keys.flushes(slot),
            self.keys.flush_times(slot),
        ];
        // Chunk 0 of shard 0 records the shard count, when there are shards.
        let shards_key = (self.shards > 1 && slot.shard == 0).then(|| self.keys.shards(slot.name));
        let start = |chunk: usize| {
            let mut keys = base.to_vec();
            let mut shards = 0;
            if let (0, Some(key)) = (chunk, &shards_key) {
                keys.push(key.clone());
                shards = self.shards;
            }
            let args = vec![
                header.ttl.clone(),
                header.server.clone(),
                header.seq.clone(),
                chunk.to_string(),
                header.now.clone(),
                shards.to_string(),
            ];
            Call {
                keys,
                args,
                records: 0,
            }
        };
        let mut calls = Vec::new();
        let mut call = start(0);
        for write in writes {
            for record in self.records(slot, write) {
                for part in split(record) {
                    if call.records > 0
                        && call.args.len() + 3 + part.items.len() > MAX_ARGS_PER_CALL
                    {
                        calls.push(call);
                        call = start(calls.len());
                    }
                    let n = match write.key.kind {
                        MetricKind::Set => part.items.len(),
                        _ => part.items.len() / 2,
                    };
                    call.keys.push(part.key);
                    call.args.push(part.member);
                    call.args.push(part.score.to_string());
                    call.args.push(n.to_string());
                    call.args.extend(part.items);
                    call.records += 1;
                }
            }
        }
        calls.push(call);
        calls
    }

    /// One record per data key a series writes: a minute hash per minute, or
    /// a HyperLogLog per second for a set.
    fn records(&self, slot: Slot, write: &SeriesWrite) -> Vec<Record> {
        let key = &write.key;
        let member = IndexMember::encode(key.kind, &key.tags);
        if key.kind == MetricKind::Set {
            return write
                .points
                .iter()
                .filter_map(|(second, agg)| match agg {
                    Aggregate::Set(members) if !members.is_empty() => Some(Record {
                        key: self.keys.set(&key.name, *second, &key.tags),
                        member: member.clone(),
                        score: *second,
                        items: members.iter().cloned().collect(),
                    }),
                    _ => None,
                })
                .collect();
        }
        let mut by_minute: BTreeMap<i64, (i64, Vec<String>)> = BTreeMap::new();
        for (second, agg) in &write.points {
            let (score, items) = by_minute
                .entry(second.div_euclid(60))
                .or_insert((*second, Vec::new()));
            *score = (*score).max(*second);
            Field::each_of(second.rem_euclid(60), agg, |field, value| {
                let mut name = String::with_capacity(8);
                name.push(field.merge().code());
                let _ = write!(name, "{field}");
                items.push(name);
                items.push(value.to_string());
            });
        }
        by_minute
            .into_iter()
            .map(|(minute, (score, items))| Record {
                key: self.keys.minute(slot, key.kind, minute, &key.tags),
                member: member.clone(),
                score,
                items,
            })
            .collect()
    }

    /// Sends the calls of one round trip (one group per slot). A node that
    /// does not know the script (restarted, promoted, flushed) answers
    /// `NOSCRIPT` without running it; those calls go again, the first one
    /// to each node as `EVAL` with the script's text, which makes the node
    /// keep it.
    async fn send_calls(&self, round: Vec<Vec<Call>>) -> Result<(), StoreError> {
        let sha = self.write_script.get_hash();
        let groups = round
            .iter()
            .map(|calls| Group(calls.iter().map(|c| c.cmd(sha, None)).collect()))
            .collect();
        let replies = self.conn.run_keeping_errors(groups).await?;
        let mut again: Vec<Vec<&Call>> = Vec::new();
        for (calls, replies) in round.iter().zip(&replies) {
            let mut missing = Vec::new();
            for (call, reply) in calls.iter().zip(replies) {
                match reply {
                    Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript) => {
                        missing.push(call);
                    }
                    other => check_reply(other)?,
                }
            }
            if !missing.is_empty() {
                again.push(missing);
            }
        }
        if again.is_empty() {
            return Ok(());
        }
        // One node runs all groups as one pipeline: its first call is
        // enough to carry the script. On a cluster each group may be on
        // another node.
        let per_group = self.conn.is_cluster().await?;
        let body = super::scripts::WRITE_SCRIPT;
        let groups = again
            .iter()
            .enumerate()
            .map(|(g, calls)| {
                let carries = |i: usize| i == 0 && (g == 0 || per_group);
                let cmds = calls.iter().enumerate();
                Group(
                    cmds.map(|(i, c)| c.cmd(sha, carries(i).then_some(body)))
                        .collect(),
                )
            })
            .collect();
        for reply in self.conn.run_keeping_errors(groups).await?.iter().flatten() {
            check_reply(reply)?;
        }
        Ok(())
    }
}

/// A write script's reply: 1 applied, 0 already applied.
fn check_reply(reply: &Value) -> Result<(), StoreError> {
    match reply {
        Value::Int(0 | 1) => Ok(()),
        Value::ServerError(e) => Err(StoreError::Unavailable(format!(
            "Redis refused a write: {}",
            redis::RedisError::from(e.clone())
        ))),
        other => Err(StoreError::Protocol(format!(
            "the write script answered {other:?}"
        ))),
    }
}

/// A record whose items do not fit one call, cut into parts that do (a
/// hash record at a pair boundary).
fn split(record: Record) -> Vec<Record> {
    let most = MAX_ARGS_PER_CALL - HEADER_ARGS - 3;
    if record.items.len() <= most {
        return vec![record];
    }
    let most = most - most % 2;
    let Record {
        key,
        member,
        score,
        items,
    } = record;
    items
        .chunks(most)
        .map(|chunk| Record {
            key: key.clone(),
            member: member.clone(),
            score,
            items: chunk.to_vec(),
        })
        .collect()
}
