//! The servers' watermark in Redis: one hash, `P:{alerts}:watermarks`, a
//! field per server id holding `<second> <live until, ms>` (Redis's clock),
//! in the slot the agent reads its alert data from. docs/cluster.md,
//! "Watermark".

use std::time::Duration;

use redis::Value;

use super::connection::Group;
use super::reply::as_str;
use super::RedisStore;
use crate::error::StoreError;
use crate::store::Watermark;

const PUT: &str = include_str!("scripts/watermark/put.lua");
const READ: &str = include_str!("scripts/watermark/read.lua");

impl RedisStore {
    fn watermarks_key(&self) -> String {
        format!("{}:{{alerts}}:watermarks", self.keys.prefix())
    }

    pub(super) async fn watermark_put(
        &self,
        server_id: u64,
        second: i64,
        live_for: Duration,
    ) -> Result<(), StoreError> {
        let live_ms = (live_for.as_millis().min(u64::MAX as u128) as u64).max(1);
        let mut g = Group::default();
        g.cmd("EVAL")
            .arg(PUT)
            .arg(1)
            .arg(self.watermarks_key())
            .arg(server_id)
            .arg(second)
            .arg(live_ms);
        self.conn.run(vec![g]).await.map(|_| ())
    }

    pub(super) async fn watermark_remove(&self, server_id: u64) -> Result<(), StoreError> {
        let mut g = Group::default();
        g.cmd("HDEL").arg(self.watermarks_key()).arg(server_id);
        self.conn.run(vec![g]).await.map(|_| ())
    }

    pub(super) async fn watermark_read(&self) -> Result<Option<Watermark>, StoreError> {
        let mut g = Group::default();
        g.cmd("EVAL").arg(READ).arg(1).arg(self.watermarks_key());
        let replies = self.conn.run(vec![g]).await?;
        let reply = replies.first().and_then(|r| r.first());
        let bad = || StoreError::Protocol(format!("the watermark read replied {reply:?}"));
        let Some(Value::Array(items)) = reply else {
            return Err(bad());
        };
        match items.as_slice() {
            [Value::Int(0), _] => Ok(None),
            [Value::Int(live), second] => {
                let second = as_str(second)
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(bad)?;
                Ok(Some(Watermark {
                    second,
                    servers: *live as usize,
                }))
            }
            _ => Err(bad()),
        }
    }
}
