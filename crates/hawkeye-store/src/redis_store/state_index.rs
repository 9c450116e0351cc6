//! The state index, `P:{alerts}:states`: the set of state keys written.
//! The commit script adds a key with its state and removes it with its
//! state, atomically, so every state is in the index; a state that
//! expired leaves its key behind until a read finds it missing and prunes
//! it. Reads find states only through the index: a tick of an agent with
//! 100 000 triggers and no alert in progress reads an empty set instead of
//! 100 000 absent keys (docs/alerts.md, "Where states live").

use redis::Value;

use super::connection::Group;
use super::reply::as_string;
use super::RedisStore;
use crate::error::StoreError;

const PRUNE: &str = include_str!("scripts/alerts/prune_index.lua");

/// Keys per `MGET`, and per prune script call (how long one call blocks
/// Redis).
const CHUNK: usize = 1000;

/// The members of an index set as read (`SMEMBERS`).
pub(super) fn members(reply: &Value) -> Result<Vec<String>, StoreError> {
    match reply {
        Value::Array(items) | Value::Set(items) => Ok(items.iter().filter_map(as_string).collect()),
        other => Err(StoreError::Protocol(format!("SMEMBERS replied {other:?}"))),
    }
}

impl RedisStore {
    pub(super) fn state_index_key(&self) -> String {
        format!("{}:{{alerts}}:states", self.keys.prefix())
    }

    /// The states of the indexed `keys` (full Redis keys): `(trigger key,
    /// state)` for each that still exists, in the order of `keys`. Those
    /// that expired are pruned from the index.
    pub(super) async fn indexed_states(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let strip = self.state_key("").len();
        let mut g = Group::default();
        for chunk in keys.chunks(CHUNK) {
            g.cmd("MGET").arg(chunk);
        }
        let replies = self.conn.run(vec![g]).await?.pop().unwrap_or_default();
        let mut values = replies.iter().flat_map(|r| match r {
            Value::Array(items) => items.as_slice(),
            _ => &[],
        });
        let mut found = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for key in keys {
            match values.next() {
                Some(Value::Nil) => missing.push(key),
                Some(v) => {
                    let state = as_string(v).ok_or_else(|| {
                        StoreError::Protocol(format!("the state of {key} is {v:?}"))
                    })?;
                    found.push((key.get(strip..).unwrap_or_default().to_string(), state));
                }
                None => {
                    return Err(StoreError::Protocol(format!(
                        "MGET answered fewer values than the {} keys asked",
                        keys.len()
                    )))
                }
            }
        }
        if !missing.is_empty() {
            self.prune_state_index(&missing).await?;
        }
        Ok(found)
    }

    /// Removes the keys of expired states from the index (a key written
    /// again meanwhile stays: the script checks).
    async fn prune_state_index(&self, missing: &[&String]) -> Result<(), StoreError> {
        let index = self.state_index_key();
        let mut g = Group::default();
        for chunk in missing.chunks(CHUNK) {
            let cmd = g.cmd("EVAL").arg(PRUNE).arg(chunk.len() + 1).arg(&index);
            for key in chunk {
                cmd.arg(key.as_str());
            }
        }
        self.conn.run(vec![g]).await.map(|_| ())
    }
}
