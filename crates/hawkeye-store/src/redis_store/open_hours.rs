//! Which rollup hour hashes a long read has to ask for: the slot's open
//! hours (`Keys::open_hours`) list every hour hash written and not yet
//! compacted, so a 30-day read asks for the few that exist instead of 720
//! per series. The write script adds an hour with its hash, the compaction
//! script removes it with its hash: the list never misses a hash.
//! docs/storage.md ("Compaction").

use std::collections::HashMap;

use super::connection::Group;
use super::keys::Slot;
use super::read_plan::Planned;
use super::reply::as_str;
use super::RedisStore;
use crate::error::StoreError;
use crate::tiers::Split;
use crate::window::WindowQuery;

/// Per query: per `(shard, index member)`, the hours whose hash may exist
/// (empty: no query reads rollups).
pub(super) type OpenHours = Vec<HashMap<(u32, String), Vec<i64>>>;

impl RedisStore {
    /// The open hours inside each query's rollup minutes, in one round trip
    /// (none when no query reaches the rollups).
    pub(super) async fn open_hours(
        &self,
        queries: &[WindowQuery],
        plans: &[Planned],
        splits: &[Option<Split>],
    ) -> Result<OpenHours, StoreError> {
        let mut asked: Vec<(usize, u32)> = Vec::new();
        let mut groups = Vec::new();
        for (qi, (q, plan)) in queries.iter().zip(plans).enumerate() {
            let (Ok(Some(plan)), Some(Some(split))) = (plan, splits.get(qi)) else {
                continue;
            };
            let Some((first, last)) = split.minutes else {
                continue;
            };
            let mut shards: Vec<u32> = plan.series.iter().map(|s| s.shard).collect();
            shards.sort_unstable();
            shards.dedup();
            for shard in shards {
                let mut g = Group::default();
                g.cmd("ZRANGEBYSCORE")
                    .arg(self.keys.open_hours(Slot::new(&q.name, shard)))
                    .arg(first.div_euclid(60))
                    .arg(last.div_euclid(60));
                groups.push(g);
                asked.push((qi, shard));
            }
        }
        if groups.is_empty() {
            // No query reaches the rollups (the agent's): nothing per query.
            return Ok(Vec::new());
        }
        let mut open: OpenHours = vec![HashMap::new(); queries.len()];
        let replies = self.conn.run(groups).await?;
        for ((qi, shard), reply) in asked.into_iter().zip(replies) {
            let members = match reply.first() {
                Some(redis::Value::Array(items) | redis::Value::Set(items)) => items,
                other => {
                    return Err(StoreError::Protocol(format!(
                        "the open hours replied {other:?}"
                    )))
                }
            };
            for member in members.iter().filter_map(as_str) {
                let Some((hour, series)) = member.split_once('|') else {
                    continue;
                };
                let Ok(hour) = hour.parse::<i64>() else {
                    continue;
                };
                open[qi]
                    .entry((shard, series.to_string()))
                    .or_default()
                    .push(hour);
            }
        }
        Ok(open)
    }
}
