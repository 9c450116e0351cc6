//! Writing a flush: one script call per series-minute, set members through
//! `PFADD`. What the script does and why a retry counts nothing twice:
//! docs/storage.md ("Writes").

use std::collections::BTreeMap;

use hawkeye_protocol::MetricKind;

use super::connection::Group;
use super::field::Field;
use super::keys::IndexMember;
use super::scripts::WRITE_SCRIPT;
use super::{RedisStore, MAX_COMMANDS_PER_ROUND_TRIP};
use crate::aggregate::Aggregate;
use crate::{SeriesWrite, StoreError, WriteBatch};

impl RedisStore {
    pub(super) async fn write_batch(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let header = Header {
            ttl: self.ttl_secs.to_string(),
            server: batch.server_id.to_string(),
            seq: batch.seq.to_string(),
        };
        let mut pipes: Vec<Group> = Vec::new();
        if !self.conn.is_cluster() {
            // Makes every EVALSHA below succeed even right after a Redis
            // restart. (A restart between two chunks fails the write, and the
            // retry starts with this again.)
            let mut load = Group::default();
            load.cmd("SCRIPT").arg("LOAD").arg(WRITE_SCRIPT);
            pipes.push(load);
        }
        let mut queued = 0;
        for write in &batch.series {
            let pipe = self.series_commands(write, &header);
            queued += pipe.len();
            pipes.push(pipe);
            if queued >= MAX_COMMANDS_PER_ROUND_TRIP {
                // Safe to split: each series-minute applies a flush at most once.
                self.conn.run(std::mem::take(&mut pipes)).await?;
                queued = 0;
            }
        }
        self.conn.run(pipes).await?;
        Ok(())
    }

    /// The commands that write one series.
    fn series_commands(&self, write: &SeriesWrite, header: &Header) -> Group {
        let key = &write.key;
        let mut pipe = Group::default();
        let index = self.keys.index(&key.name);
        let member = IndexMember::encode(key.kind, &key.tags);
        let last_second = write.points.iter().map(|(s, _)| *s).max().unwrap_or(0);
        if key.kind == MetricKind::Set {
            for (second, agg) in &write.points {
                let Aggregate::Set(members) = agg else {
                    continue;
                };
                if members.is_empty() {
                    continue;
                }
                let set_key = self.keys.set(&key.name, *second, &key.tags);
                pipe.cmd("PFADD")
                    .arg(&set_key)
                    .arg(members.iter().collect::<Vec<_>>());
                pipe.cmd("EXPIRE").arg(&set_key).arg(self.ttl_secs);
            }
            pipe.cmd("ZADD")
                .arg(&index)
                .arg("GT")
                .arg(last_second)
                .arg(&member);
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(&index)
                .arg("-inf")
                .arg(last_second - self.ttl_secs as i64);
            pipe.cmd("EXPIRE").arg(&index).arg(self.ttl_secs);
            return pipe;
        }
        let mut by_minute: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for (second, agg) in &write.points {
            let args = by_minute.entry(second.div_euclid(60)).or_default();
            Field::each_of(second.rem_euclid(60), agg, |field, value| {
                args.push(field.merge().code().to_string());
                args.push(field.to_string());
                args.push(value.to_string());
            });
        }
        for (minute, ops) in by_minute {
            let mut args = Vec::with_capacity(5 + ops.len());
            args.extend([
                header.ttl.clone(),
                header.server.clone(),
                header.seq.clone(),
                member.clone(),
                last_second.to_string(),
            ]);
            args.extend(ops);
            let data = self.keys.minute(&key.name, key.kind, minute, &key.tags);
            self.add_write(&mut pipe, [data, index.clone()], args);
        }
        pipe
    }

    /// Adds the script invocation for one series-minute to `pipe`.
    fn add_write(&self, pipe: &mut Group, keys: [String; 2], args: Vec<String>) {
        if self.conn.is_cluster() {
            // No SCRIPT LOAD can be relied on per node: send the script itself.
            let cmd = pipe.cmd("EVAL").arg(WRITE_SCRIPT).arg(2);
            cmd.arg(&keys[0]).arg(&keys[1]).arg(args);
        } else {
            let cmd = pipe.cmd("EVALSHA").arg(self.write_script.get_hash()).arg(2);
            cmd.arg(&keys[0]).arg(&keys[1]).arg(args);
        }
    }
}

/// The arguments every script call of one flush starts with.
struct Header {
    ttl: String,
    server: String,
    seq: String,
}
