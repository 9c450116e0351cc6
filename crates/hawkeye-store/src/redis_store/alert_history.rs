//! Listing the alert states and the history stream (`hawkeye alerts`),
//! in the `{alerts}` slot with the rest of the alert data (`alerts.rs`).

use redis::Value;

use super::connection::Group;
use super::reply::as_string;
use super::state_index;
use super::RedisStore;
use crate::error::StoreError;

/// How long a history stream lives after its last entry (30 days).
const HISTORY_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

impl RedisStore {
    pub(crate) async fn alerts_list(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let strip = self.state_key("");
        let mut g = Group::default();
        g.cmd("SMEMBERS").arg(self.state_index_key());
        let reply = self.conn.run(vec![g]).await?;
        let index = reply.first().and_then(|r| r.first()).unwrap_or(&Value::Nil);
        let mut keys = state_index::members(index)?;
        keys.retain(|k| {
            k.strip_prefix(&strip)
                .is_some_and(|k| k.starts_with(prefix))
        });
        keys.sort();
        self.indexed_states(&keys).await
    }

    fn history_key(&self, stream: &str) -> String {
        format!("{}:{{alerts}}:history:{stream}", self.keys.prefix())
    }

    pub(crate) async fn alerts_append_history(
        &self,
        stream: &str,
        entries: &[String],
        max_len: usize,
    ) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let key = self.history_key(stream);
        let mut g = Group::default();
        for e in entries {
            g.cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg(max_len.max(1))
                .arg("*")
                .arg("e")
                .arg(e);
        }
        // A history nobody appends to for this long goes away, as every
        // key of the store does.
        g.cmd("PEXPIRE").arg(&key).arg(HISTORY_TTL_MS);
        self.conn.run(vec![g]).await.map(|_| ())
    }

    pub(crate) async fn alerts_history(
        &self,
        stream: &str,
        since_ms: u64,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let mut g = Group::default();
        g.cmd("XRANGE")
            .arg(self.history_key(stream))
            .arg(since_ms)
            .arg("+");
        let reply = self.conn.run(vec![g]).await?;
        let items = match reply.first().and_then(|r| r.first()) {
            Some(Value::Array(items)) => items,
            other => return Err(StoreError::Protocol(format!("XRANGE replied {other:?}"))),
        };
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let bad = || StoreError::Protocol(format!("unexpected history entry {item:?}"));
            let Value::Array(parts) = item else {
                return Err(bad());
            };
            let (Some(id), Some(Value::Array(fields))) =
                (parts.first().and_then(as_string), parts.get(1))
            else {
                return Err(bad());
            };
            let at = id
                .split('-')
                .next()
                .and_then(|ms| ms.parse().ok())
                .ok_or_else(bad)?;
            let entry = fields.get(1).and_then(as_string).ok_or_else(bad)?;
            out.push((at, entry));
        }
        Ok(out)
    }
}
