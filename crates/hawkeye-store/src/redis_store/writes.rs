//! Writing a flush: the batch's series grouped by slot (a metric name, or
//! one shard of it), each slot written by one call of the write script (a
//! few, in order, for a very large one). What the script does and why a
//! retry counts nothing twice: docs/storage.md ("Writes").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use hawkeye_protocol::MetricKind;
use redis::{ServerErrorKind, Value};

use super::connection::Group;
use super::field::Field;
use super::index_cache::{CHANGES_KEPT, NAMES_PER_CHANGE, WAKE_SECS};
use super::keys::{shard_of, IndexMember, Slot};
use super::scripts::WRITE_SCRIPT;
use super::RedisStore;
use crate::aggregate::Aggregate;
use crate::batch::{SeriesWrite, WriteBatch};
use crate::error::StoreError;
use crate::tiers;
use crate::tiers::wall_secs;

/// Arguments in one script call at most. Bounds how long one call blocks
/// Redis, and keeps a set's members within what Lua's `unpack` takes.
const MAX_ARGS_PER_CALL: usize = 4096;
/// Data keys written in one round trip at most. Bounds the memory a large
/// flush needs (the packed request), at the cost of more round trips only
/// for very large ones.
const MAX_KEYS_PER_ROUND_TRIP: usize = 10_000;
/// Script arguments sent in one round trip at most: a backfill writes
/// whole rollup hours (60 fields a key), and a round trip of 10 000 of
/// them would outlast `REDIS_TIMEOUT` and be retried for ever.
const MAX_ARGS_PER_ROUND_TRIP: usize = 200_000;
/// Script arguments before the first record: ttl, server, seq, chunk,
/// shards, wake, rollup ttl.
const HEADER_ARGS: usize = 7;
/// Script arguments of a record before its items: member, score, expiry,
/// hour, count.
const RECORD_ARGS: usize = 5;
/// The field of a rollup hash that every write to it bumps, so that a
/// compaction can tell whether the hash changed since it read it
/// (`compaction.rs`). Fields starting with `_` hold no data.
pub(crate) const VERSION_FIELD: &str = "_v";

/// What every call of one flush starts with.
struct Header {
    ttl: u64,
    rollup_ttl: u64,
    server: u64,
    seq: u64,
}

/// What a record writes: `(field, value)` pairs into a minute hash, or
/// members into a set's HyperLogLog.
enum Items<'a> {
    Fields(Vec<(Field, f64)>),
    Members(Vec<&'a str>),
}

impl Items<'_> {
    /// Script arguments the items take (a rollup hash's version field aside).
    fn args(&self) -> usize {
        match self {
            Items::Fields(f) => 2 * f.len(),
            Items::Members(m) => m.len(),
        }
    }
}

/// When a data key expires.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    /// This many seconds after its last write (per-second data).
    After(u64),
    /// At this unix second (rollups: the rollup retention after the end
    /// of the key's hour or minute, whenever it is written).
    At(i64),
}

/// What one call writes into one data key.
struct Record<'a> {
    key: String,
    member: String,
    /// The newest second written to the key: the index entry's score.
    score: i64,
    expiry: Expiry,
    /// A rollup hash: its hour. The write bumps its version field and lists
    /// it among the slot's open hours (`Keys::open_hours`).
    hour: Option<i64>,
    items: Items<'a>,
}

/// One call of the write script: chunk `chunk` of a slot's writes.
struct Call<'a> {
    /// The metric name of the slot.
    slot_name: &'a str,
    chunk: usize,
    /// The shard count to record (0: none), with its key last in `keys`.
    shards: u32,
    keys: Vec<String>,
    records: Vec<Record<'a>>,
    args: usize,
}

impl Call<'_> {
    /// The `EVALSHA` of this call (layout in scripts/write.lua).
    fn cmd(&self, sha: &str, h: &Header) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(sha).arg(self.keys.len() + self.records.len());
        cmd.arg(&self.keys);
        for record in &self.records {
            cmd.arg(&record.key);
        }
        cmd.arg(h.ttl).arg(h.server).arg(h.seq);
        cmd.arg(self.chunk).arg(self.shards).arg(WAKE_SECS);
        cmd.arg(h.rollup_ttl);
        let mut name = String::with_capacity(16);
        for record in &self.records {
            cmd.arg(&record.member).arg(record.score);
            match record.expiry {
                Expiry::After(secs) => cmd.arg(secs),
                Expiry::At(at) => cmd.arg(format!("@{at}")),
            };
            match record.hour {
                Some(hour) => cmd.arg(hour),
                None => cmd.arg("-"),
            };
            match &record.items {
                Items::Fields(fields) => {
                    cmd.arg(fields.len() + usize::from(record.hour.is_some()));
                    if record.hour.is_some() {
                        cmd.arg(format!("+{VERSION_FIELD}")).arg(1);
                    }
                    for (field, value) in fields {
                        name.clear();
                        name.push(field.merge().code());
                        let _ = write!(name, "{field}");
                        cmd.arg(name.as_str()).arg(*value);
                    }
                }
                Items::Members(members) => {
                    cmd.arg(members.len()).arg(members);
                }
            }
        }
        cmd
    }
}

impl RedisStore {
    pub(super) async fn write_batch(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let header = Header {
            ttl: self.ttl_secs,
            rollup_ttl: self.rollup_ttl_secs,
            server: batch.server_id,
            seq: batch.seq,
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
        let (mut queued, mut args) = (0, 0);
        let mut changed = BTreeSet::new();
        for (slot, writes) in slots {
            round.push(Vec::new());
            for call in self.slot_calls(slot, &writes) {
                queued += call.records.len();
                args += call.args;
                if let Some(group) = round.last_mut() {
                    group.push(call);
                }
                if queued >= MAX_KEYS_PER_ROUND_TRIP || args >= MAX_ARGS_PER_ROUND_TRIP {
                    // Safe to split, even within a slot: its calls apply in order.
                    let sent = std::mem::take(&mut round);
                    changed.extend(self.send_calls(sent, &header).await?);
                    round.push(Vec::new());
                    (queued, args) = (0, 0);
                }
            }
        }
        changed.extend(self.send_calls(round, &header).await?);
        self.note_rollup_hours(batch);
        self.record_changes(&changed).await
    }

    /// Records the names whose index changed in the change stream that
    /// readers use to keep their index cache (`index_cache.rs`); trimmed to
    /// the newest entries. Only after the writes: a reader that has seen
    /// the record finds the change in the index.
    async fn record_changes(&self, names: &BTreeSet<&str>) -> Result<(), StoreError> {
        if names.is_empty() {
            return Ok(());
        }
        let key = self.keys.index_changes();
        let names: Vec<&str> = names.iter().copied().collect();
        let mut g = Group::default();
        for chunk in names.chunks(NAMES_PER_CHANGE) {
            let cmd = g.cmd("XADD");
            cmd.arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(CHANGES_KEPT)
                .arg("*");
            for name in chunk {
                cmd.arg("n").arg(*name);
            }
        }
        g.cmd("EXPIRE").arg(&key).arg(self.ttl_secs);
        self.conn.run(vec![g]).await.map(|_| ())
    }

    /// The calls that write `writes` into `slot`, chunk 0 first.
    fn slot_calls<'a>(&self, slot: Slot<'a>, writes: &[&'a SeriesWrite]) -> Vec<Call<'a>> {
        let base = [
            self.keys.index(slot),
            self.keys.flushes(slot),
            self.keys.flush_times(slot),
            self.keys.open_hours(slot),
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
            Call {
                slot_name: slot.name,
                chunk,
                shards,
                keys,
                records: Vec::new(),
                args: HEADER_ARGS,
            }
        };
        let mut calls = Vec::new();
        let mut call = start(0);
        let now = wall_secs();
        for write in writes {
            for record in self.records(slot, write, now) {
                for part in split(record) {
                    let cost =
                        RECORD_ARGS + part.items.args() + 2 * usize::from(part.hour.is_some());
                    if !call.records.is_empty() && call.args + cost > MAX_ARGS_PER_CALL {
                        calls.push(call);
                        call = start(calls.len());
                    }
                    call.args += cost;
                    call.records.push(part);
                }
            }
        }
        calls.push(call);
        calls
    }

    /// One record per data key a series writes: a minute hash per minute
    /// (or a HyperLogLog per second for a set) for the seconds still inside
    /// the retention at `now`, and a rollup hash per hour (a HyperLogLog
    /// per minute for a set) for every point.
    fn records<'a>(&self, slot: Slot, write: &'a SeriesWrite, now: i64) -> Vec<Record<'a>> {
        let key = &write.key;
        let member = IndexMember::encode(key.kind, &key.tags);
        let held_from = tiers::seconds_held_from(now, self.ttl_secs);
        let rollup_until = |end: i64| Expiry::At(end.saturating_add(self.rollup_ttl_secs as i64));
        let record = |key, score, expiry, hour, items| Record {
            key,
            member: member.clone(),
            score,
            expiry,
            hour,
            items,
        };
        if key.kind == MetricKind::Set {
            let mut minutes: BTreeMap<i64, (i64, Vec<&str>)> = BTreeMap::new();
            let mut out = Vec::new();
            for (second, agg) in &write.points {
                let Aggregate::Set(members) = agg else {
                    continue;
                };
                if members.is_empty() {
                    continue;
                }
                let members = members.iter().map(String::as_str);
                let (score, all) = minutes
                    .entry(second.div_euclid(60))
                    .or_insert((*second, Vec::new()));
                *score = (*score).max(*second);
                all.extend(members.clone());
                if *second >= held_from {
                    let k = self.keys.set(&key.name, *second, &key.tags);
                    let items = Items::Members(members.collect());
                    out.push(record(
                        k,
                        *second,
                        Expiry::After(self.ttl_secs),
                        None,
                        items,
                    ));
                }
            }
            for (minute, (score, mut members)) in minutes {
                members.sort_unstable();
                members.dedup();
                let k = self.keys.set_minute(&key.name, minute, &key.tags);
                let expiry = rollup_until(minute * 60 + 60);
                out.push(record(k, score, expiry, None, Items::Members(members)));
            }
            return out;
        }
        let minutes = by_minute(&write.points);
        let mut by_minute: BTreeMap<i64, (i64, Vec<(Field, f64)>)> = BTreeMap::new();
        for (second, agg) in write.points.iter().filter(|(s, _)| *s >= held_from) {
            let (score, fields) = by_minute
                .entry(second.div_euclid(60))
                .or_insert((*second, Vec::new()));
            *score = (*score).max(*second);
            Field::each_of(second.rem_euclid(60), agg, |field, value| {
                fields.push((field, value))
            });
        }
        let mut by_hour: BTreeMap<i64, (i64, Vec<(Field, f64)>)> = BTreeMap::new();
        for (minute, (score, agg)) in &minutes {
            let (newest, fields) = by_hour
                .entry(minute.div_euclid(60))
                .or_insert((*score, Vec::new()));
            *newest = (*newest).max(*score);
            Field::each_of(minute.rem_euclid(60), agg, |field, value| {
                fields.push((field, value))
            });
        }
        let seconds = by_minute.into_iter().map(|(minute, (score, fields))| {
            let k = self.keys.minute(slot, key.kind, minute, &key.tags);
            record(
                k,
                score,
                Expiry::After(self.ttl_secs),
                None,
                Items::Fields(fields),
            )
        });
        let hours = by_hour.into_iter().map(|(hour, (score, fields))| {
            let k = self.keys.hour(slot, key.kind, hour, &key.tags);
            let expiry = rollup_until(hour * 3600 + 3600);
            record(k, score, expiry, Some(hour), Items::Fields(fields))
        });
        seconds.chain(hours).collect()
    }

    /// Sends the calls of one round trip (one group per slot). A node that
    /// does not know the script (restarted, promoted, flushed) answers
    /// `NOSCRIPT` without running it; those calls go again behind a
    /// `SCRIPT LOAD` to that node (on a cluster, a pipeline goes to the node
    /// of its keys).
    /// Returns the names whose index the calls changed.
    async fn send_calls<'a>(
        &self,
        round: Vec<Vec<Call<'a>>>,
        header: &Header,
    ) -> Result<Vec<&'a str>, StoreError> {
        let sha = self.write_script.get_hash();
        let groups = round
            .iter()
            .map(|calls| Group(calls.iter().map(|c| c.cmd(sha, header)).collect()))
            .collect();
        let replies = self.conn.run_and_wait(groups, self.replica_wait).await?;
        let mut again: Vec<Vec<&Call>> = Vec::new();
        let mut changed = Vec::new();
        for (calls, replies) in round.iter().zip(&replies) {
            let mut missing = Vec::new();
            for (call, reply) in calls.iter().zip(replies) {
                match reply {
                    Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript) => {
                        missing.push(call);
                    }
                    other if check_reply(other)? => changed.push(call.slot_name),
                    _ => {}
                }
            }
            if !missing.is_empty() {
                again.push(missing);
            }
        }
        if again.is_empty() {
            return Ok(changed);
        }
        // One node runs all groups as one pipeline: one load is enough there.
        let per_group = self.conn.is_cluster().await?;
        let groups = again
            .iter()
            .enumerate()
            .map(|(g, calls)| {
                let mut group = Group::default();
                if g == 0 || per_group {
                    group.cmd("SCRIPT").arg("LOAD").arg(WRITE_SCRIPT);
                }
                group.0.extend(calls.iter().map(|c| c.cmd(sha, header)));
                group
            })
            .collect();
        let replies = self.conn.run_and_wait(groups, self.replica_wait).await?;
        for (calls, replies) in again.iter().zip(&replies) {
            // SCRIPT LOAD answers the script's hash.
            let replies = replies
                .iter()
                .filter(|r| !matches!(r, Value::BulkString(_)));
            for (call, reply) in calls.iter().zip(replies) {
                if check_reply(reply)? {
                    changed.push(call.slot_name);
                }
            }
        }
        Ok(changed)
    }
}

/// A write script's reply (scripts/write.lua): whether the name's index
/// changed for readers. A chunk applied before may have changed it, and
/// its change record may be lost (the write that applied it failed after):
/// it counts as a change.
fn check_reply(reply: &Value) -> Result<bool, StoreError> {
    match reply {
        Value::Int(1) => Ok(false),
        Value::Int(0 | 2) => Ok(true),
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
/// hash record at a field boundary).
fn split(record: Record<'_>) -> Vec<Record<'_>> {
    // Two arguments are kept for a rollup hash's version field.
    let most = MAX_ARGS_PER_CALL - HEADER_ARGS - RECORD_ARGS - 2;
    if record.items.args() <= most {
        return vec![record];
    }
    let Record {
        key,
        member,
        score,
        expiry,
        hour,
        items,
    } = record;
    let part = |items| Record {
        key: key.clone(),
        member: member.clone(),
        score,
        expiry,
        hour,
        items,
    };
    match items {
        Items::Fields(fields) => fields
            .chunks(most / 2)
            .map(|c| part(Items::Fields(c.to_vec())))
            .collect(),
        Items::Members(members) => members
            .chunks(most)
            .map(|c| part(Items::Members(c.to_vec())))
            .collect(),
    }
}

/// A series' points merged per minute: `minute -> (newest second, aggregate)`,
/// merged in order of second so that a gauge's last value is the minute's last.
fn by_minute(points: &[(i64, Aggregate)]) -> BTreeMap<i64, (i64, Aggregate)> {
    let mut ordered: Vec<&(i64, Aggregate)> = points.iter().collect();
    ordered.sort_by_key(|(second, _)| *second);
    let mut minutes: BTreeMap<i64, (i64, Aggregate)> = BTreeMap::new();
    for (second, agg) in ordered {
        match minutes.get_mut(&second.div_euclid(60)) {
            Some((newest, acc)) => {
                *newest = (*newest).max(*second);
                acc.merge(agg);
            }
            None => {
                minutes.insert(second.div_euclid(60), (*second, agg.clone()));
            }
        }
    }
    minutes
}
