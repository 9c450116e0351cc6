//! The agent's alert state: one string key per trigger, read in bulk and
//! changed by compare-and-swap.

use std::sync::LazyLock;

use redis::Value;

use super::connection::{unavailable, Group};
use super::reply::as_string;
use super::RedisStore;
use crate::StoreError;

/// Compare-and-swap of one alert state (KEYS and ARGV in the file).
const SWAP_SCRIPT: &str = include_str!("scripts/swap.lua");

static SWAP: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SWAP_SCRIPT));

impl RedisStore {
    fn alert_key(&self, key: &str) -> String {
        format!("{}:alert:{{{}}}", self.keys.prefix(), key)
    }

    pub(super) async fn read_alert_states(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let groups: Vec<Group> = if self.conn.is_cluster().await? {
            // Each state key has its own hash tag, so one GET per key.
            keys.iter()
                .map(|k| {
                    let mut g = Group::default();
                    g.cmd("GET").arg(self.alert_key(k));
                    g
                })
                .collect()
        } else {
            keys.chunks(1000)
                .map(|chunk| {
                    let mut g = Group::default();
                    let cmd = g.cmd("MGET");
                    for k in chunk {
                        cmd.arg(self.alert_key(k));
                    }
                    g
                })
                .collect()
        };
        let replies = self.conn.run(groups).await?;
        let mut states = Vec::with_capacity(keys.len());
        for reply in replies.iter().flatten() {
            match reply {
                Value::Array(values) => states.extend(values.iter().map(as_string)),
                other => states.push(as_string(other)),
            }
        }
        if states.len() != keys.len() {
            return Err(StoreError::Protocol(format!(
                "{} alert states for {} keys",
                states.len(),
                keys.len()
            )));
        }
        Ok(states)
    }

    pub(super) async fn swap_alert(
        &self,
        key: &str,
        expected: Option<&str>,
        new: &str,
    ) -> Result<bool, StoreError> {
        let mut invocation = SWAP.prepare_invoke();
        invocation
            .key(self.alert_key(key))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or(""))
            .arg(new);
        let mut conn = self.conn.handle().await?;
        let swapped: i64 = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(swapped == 1)
    }
}
