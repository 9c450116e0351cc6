//! Compaction: a closed rollup hour (an hour hash per series) is merged
//! into the series' day string (`rollup_codec.rs`), about 20 times smaller,
//! by the server that wrote it. docs/storage.md ("Compaction").
//!
//! Exact and idempotent: the hash and the day string are read, merged in
//! Rust, and written back by one script (`scripts/compact.lua`) that
//! replaces the string and deletes the hash only if neither changed since
//! the read (the hash's version field is bumped by every write; the day
//! string's generation by every compaction). A write in between, another
//! server compacting the same hour, a compaction stopped between its read
//! and its write: the script changes nothing, or the whole hour moves.
//! Readers merge the day string with any hour hash, so data is counted
//! once whether an hour was compacted or not.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;

use hawkeye_protocol::MetricKind;
use redis::Value;

use super::config::COMPACTION_GRACE_SECS as GRACE_SECS;
use super::connection::Group;
use super::field::Field;
use super::keys::{IndexMember, Slot};
use super::pending_compactions::SlotId;
use super::scripts::COMPACT_SCRIPT;
use super::writes::VERSION_FIELD;
use super::RedisStore;
use crate::aggregate::Aggregate;
use crate::batch::WriteBatch;
use crate::error::StoreError;
use crate::rollup_codec::{self, Day};
use crate::store::Compaction;

/// Series-hours compacted per round trip pair, and found per slot and
/// round trip.
const PER_ROUND_TRIP: usize = 2_000;

/// One series: name, shard, kind, tags.
type SeriesId = (String, u32, MetricKind, String);
/// Series-hours found to compact, and the slots that may hold more.
type SlotHours = (Vec<(i64, SeriesId)>, Vec<(i64, SlotId)>);

impl RedisStore {
    /// Remembers the slots and rollup hours a written batch touched.
    pub(super) fn note_rollup_hours(&self, batch: &WriteBatch) {
        let mut seen: HashSet<(&str, u32, i64)> = HashSet::new();
        for write in &batch.series {
            let key = &write.key;
            if key.kind == MetricKind::Set {
                continue;
            }
            let shard = super::keys::shard_of(key.kind, &key.tags, self.shards);
            for (second, _) in &write.points {
                let hour = second.div_euclid(3600);
                if seen.insert((&key.name, shard, hour)) {
                    self.pending.add(hour, (key.name.clone(), shard));
                }
            }
        }
    }

    /// The closed hours still open in the slots of `slots` (their hashes
    /// not yet packed), at most [`PER_ROUND_TRIP`] per slot, read from each
    /// slot's open hours in one round trip; and the slots that may hold
    /// more.
    async fn closed_hours_of(
        &self,
        slots: Vec<(i64, SlotId)>,
        closed_before: i64,
    ) -> Result<SlotHours, StoreError> {
        let mut unique: BTreeMap<SlotId, i64> = BTreeMap::new();
        for (hour, slot) in slots {
            let first = unique.entry(slot).or_insert(hour);
            *first = (*first).min(hour);
        }
        let groups = unique
            .keys()
            .map(|(name, shard)| {
                let mut g = Group::default();
                g.cmd("ZRANGEBYSCORE")
                    .arg(self.keys.open_hours(Slot::new(name, *shard)))
                    .arg("-inf")
                    .arg(format!("({closed_before}"))
                    .arg("LIMIT")
                    .arg(0)
                    .arg(PER_ROUND_TRIP);
                g
            })
            .collect();
        let replies = match self.conn.run(groups).await {
            Ok(replies) => replies,
            Err(e) => {
                for (slot, hour) in unique {
                    self.pending.add(hour, slot);
                }
                return Err(e);
            }
        };
        let mut found = Vec::new();
        let mut more = Vec::new();
        for (((name, shard), first), reply) in unique.into_iter().zip(replies) {
            let members = match reply.first() {
                Some(Value::Array(items) | Value::Set(items)) => items.as_slice(),
                _ => &[],
            };
            if members.len() >= PER_ROUND_TRIP {
                more.push((first, (name.clone(), shard)));
            }
            for member in members {
                let Value::BulkString(bytes) = member else {
                    continue;
                };
                let text = String::from_utf8_lossy(bytes);
                let Some((hour, rest)) = text.split_once('|') else {
                    continue;
                };
                let (Ok(hour), Some((kind, tags))) = (hour.parse(), IndexMember::decode(rest))
                else {
                    continue;
                };
                found.push((hour, (name.clone(), shard, kind, tags.to_string())));
            }
        }
        Ok((found, more))
    }

    /// Compacts every remembered hour closed at `now` (unix seconds).
    pub(super) async fn compact_closed(&self, now: i64) -> Result<Compaction, StoreError> {
        self.compact_pausing(now, || async { true }).await
    }

    /// [`RedisStore::compact_closed`], calling `between` after each batch's
    /// read and before its write; the batch is written only if it returns
    /// true (tests stop a compaction there, or write in between).
    #[doc(hidden)]
    pub async fn compact_pausing<F, Fut>(
        &self,
        now: i64,
        mut between: F,
    ) -> Result<Compaction, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let closed_before = (now - GRACE_SECS).div_euclid(3600);
        let mut report = Compaction::default();
        // Slots with more closed hours than one batch found, taken again
        // in this pass only while batches make progress (an hour listed
        // whose hash is gone is never packed: no pass may spin on it).
        let mut later = Vec::new();
        loop {
            let slots = self.pending.take(closed_before, PER_ROUND_TRIP);
            if slots.is_empty() {
                break;
            }
            let (batch, more) = self.closed_hours_of(slots, closed_before).await?;
            let result = if batch.is_empty() {
                Ok((0, Vec::new()))
            } else {
                self.compact_batch(&batch, &mut between).await
            };
            let retry = match result {
                Ok((done, retry)) => {
                    report.compacted += done;
                    if done > 0 {
                        for (hour, slot) in more {
                            self.pending.add(hour, slot);
                        }
                    } else {
                        later.extend(more);
                    }
                    retry
                }
                Err(e) => {
                    for (hour, (name, shard, ..)) in batch {
                        self.pending.add(hour, (name, shard));
                    }
                    for (hour, slot) in more {
                        self.pending.add(hour, slot);
                    }
                    return Err(e);
                }
            };
            report.retried += retry.len();
            let stop = !retry.is_empty();
            for (hour, (name, shard, ..)) in retry {
                self.pending.add(hour, (name, shard));
            }
            if stop {
                // Changed since read: the next pass (a minute on) takes them.
                break;
            }
        }
        for (hour, slot) in later {
            self.pending.add(hour, slot);
        }
        report.waiting = self.pending.len();
        report.not_remembered = self.pending.not_remembered();
        Ok(report)
    }

    /// Reads, merges and writes back one batch of series-hours, all hours
    /// of a series-day in one script call. Returns how many moved into
    /// their day strings, and those to try again.
    async fn compact_batch<F, Fut>(
        &self,
        batch: &[(i64, SeriesId)],
        between: &mut F,
    ) -> Result<(usize, Vec<(i64, SeriesId)>), StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let mut days: BTreeMap<(&SeriesId, i64), Vec<i64>> = BTreeMap::new();
        for (hour, id) in batch {
            days.entry((id, hour.div_euclid(24)))
                .or_default()
                .push(*hour);
        }
        let days: Vec<_> = days.into_iter().collect();
        let reads = days
            .iter()
            .map(|(((name, shard, kind, tags), day), hours)| {
                let slot = Slot::new(name, *shard);
                let mut g = Group::default();
                g.cmd("GET").arg(self.keys.day(slot, *kind, *day, tags));
                for hour in hours {
                    g.cmd("HGETALL")
                        .arg(self.keys.hour(slot, *kind, *hour, tags));
                }
                g
            })
            .collect();
        let replies = self.conn.run(reads).await?;
        let mut writes = Vec::new();
        let mut written = Vec::new();
        for (((id, day), hours), reply) in days.iter().zip(&replies) {
            let (name, shard, kind, tags) = id;
            let Some((old, hashes)) = reply.split_first() else {
                return Err(StoreError::Protocol(
                    "a compaction read got no reply".into(),
                ));
            };
            let old = match old {
                Value::BulkString(bytes) => bytes.clone(),
                _ => Vec::new(),
            };
            let slot = Slot::new(name, *shard);
            let mut found = Vec::new();
            let mut minutes = BTreeMap::new();
            for (hour, hash) in hours.iter().zip(hashes) {
                // None: compacted already, or expired.
                if let Some((version, by_minute)) = hour_hash(*kind, hash)? {
                    let first = hour.rem_euclid(24) * 60;
                    minutes.extend(by_minute.into_iter().map(|(m, agg)| (first + m, agg)));
                    found.push((*hour, version));
                }
            }
            if found.is_empty() {
                continue;
            }
            let new = merged(*kind, &old, minutes)?;
            let expire_at = (day + 1) * 86_400 + self.rollup_ttl_secs as i64;
            let mut g = Group::default();
            let cmd = g.cmd("EVAL");
            cmd.arg(COMPACT_SCRIPT).arg(2 + found.len());
            cmd.arg(self.keys.day(slot, *kind, *day, tags));
            cmd.arg(self.keys.open_hours(slot));
            for (hour, _) in &found {
                cmd.arg(self.keys.hour(slot, *kind, *hour, tags));
            }
            cmd.arg(old).arg(new).arg(expire_at);
            for (hour, version) in &found {
                cmd.arg(version).arg(open_hour(*hour, *kind, tags));
            }
            writes.push(g);
            written.push(
                found
                    .iter()
                    .map(|(h, _)| (*h, (*id).clone()))
                    .collect::<Vec<_>>(),
            );
        }
        if !between().await {
            return Ok((0, batch.to_vec()));
        }
        let replies = self.conn.run(writes).await?;
        let mut done = 0;
        let mut retry = Vec::new();
        for (hours, reply) in written.into_iter().zip(&replies) {
            match reply.first() {
                Some(Value::Int(1)) => done += hours.len(),
                Some(Value::Int(0)) => retry.extend(hours),
                other => {
                    return Err(StoreError::Protocol(format!(
                        "the compaction script answered {other:?}"
                    )))
                }
            }
        }
        Ok((done, retry))
    }
}

/// The open-hours member of a series' hour (`Keys::open_hours`).
pub(super) fn open_hour(hour: i64, kind: MetricKind, tags: &str) -> String {
    format!("{hour}|{}", IndexMember::encode(kind, tags))
}

/// An hour hash as read: its version and its aggregates by minute of the hour.
type HourHash = (String, BTreeMap<i64, Aggregate>);

/// An hour hash's version and its aggregates by minute of the hour; `None`
/// when the hash does not exist.
pub(super) fn hour_hash(kind: MetricKind, reply: &Value) -> Result<Option<HourHash>, StoreError> {
    let pairs: Vec<(&Value, &Value)> = match reply {
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|p| match p {
                [k, v] => Some((k, v)),
                _ => None,
            })
            .collect(),
        other => {
            return Err(StoreError::Protocol(format!(
                "HGETALL of an hour hash replied {other:?}"
            )))
        }
    };
    if pairs.is_empty() {
        return Ok(None);
    }
    let bad = |what: &str| StoreError::Protocol(format!("unexpected hour hash field {what:?}"));
    let text = |v: &Value| super::reply::as_str(v).map(str::to_string);
    let mut version = String::new();
    let mut minutes = BTreeMap::new();
    for (name, value) in pairs {
        let (Some(name), Some(value)) = (text(name), text(value)) else {
            return Err(bad("not text"));
        };
        if name == VERSION_FIELD {
            version = value;
            continue;
        }
        let Some(field) = Field::parse(&name).map_err(|_| bad(&name))? else {
            continue;
        };
        let v: f64 = value.parse().map_err(|_| bad(&value))?;
        let empty = Field::empty(kind).ok_or_else(|| bad(&name))?;
        let agg = minutes.entry(field.second).or_insert(empty);
        field.apply(v, agg).map_err(|_| bad(&name))?;
    }
    Ok(Some((version, minutes)))
}

/// The day string `old` (empty: none yet) with `minutes` (by minute of the
/// day) merged in, and its generation bumped.
fn merged(
    kind: MetricKind,
    old: &[u8],
    minutes: BTreeMap<i64, Aggregate>,
) -> Result<Vec<u8>, StoreError> {
    let mut day = if old.is_empty() {
        Day::default()
    } else {
        rollup_codec::decode(old)
            .map_err(|e| StoreError::Protocol(e.to_string()))?
            .1
    };
    for (minute, agg) in minutes {
        match day.minutes.get_mut(&minute) {
            Some(existing) => existing.merge(&agg),
            None => {
                day.minutes.insert(minute, agg);
            }
        }
    }
    day.generation += 1;
    Ok(rollup_codec::encode(kind, &day))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn hour_hashes_merge_into_the_day_once_per_minute() {
        let hash = Value::Array(vec![
            bulk("_v"),
            bulk("3"),
            bulk("0"),
            bulk("2"),
            bulk("59"),
            bulk("1.5"),
        ]);
        let (version, minutes) = hour_hash(MetricKind::Counter, &hash).unwrap().unwrap();
        assert_eq!(version, "3");
        let minutes: BTreeMap<i64, Aggregate> =
            minutes.into_iter().map(|(m, a)| (60 + m, a)).collect();
        let once = merged(MetricKind::Counter, &[], minutes.clone()).unwrap();
        let twice = merged(MetricKind::Counter, &once, minutes).unwrap();
        let (_, day) = rollup_codec::decode(&twice).unwrap();
        assert_eq!(day.generation, 2);
        assert_eq!(
            day.minutes.into_iter().collect::<Vec<_>>(),
            [
                (60, Aggregate::Counter(4.0)),
                (119, Aggregate::Counter(3.0))
            ]
        );
        assert_eq!(
            hour_hash(MetricKind::Counter, &Value::Array(vec![])).unwrap(),
            None
        );
        let bad = Value::Array(vec![bulk("x"), bulk("1")]);
        assert!(hour_hash(MetricKind::Counter, &bad).is_err());
    }
}
