//! The Redis store's alert data (see [`crate::alerts`] for the semantics
//! and `docs/alerts.md` for the layout a user sees).
//!
//! Every key carries the hash tag `{alerts}`, so on a cluster they all live
//! in one slot and a state change and its outbox entry are one script
//! (atomic). `P` is `HAWKEYE_KEY_PREFIX`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:{alerts}:state:<trigger key>` | string, expires | one trigger's state (JSON) |
//! | `P:{alerts}:outbox` | hash | id → mail not yet accepted by a relay |
//! | `P:{alerts}:outbox:due` | sorted set | id → when it may be claimed (unix ms) |
//! | `P:{alerts}:silences` | hash | id → silence (JSON) |
//! | `P:{alerts}:silences:ends` | sorted set | id → when it ends (unix ms) |
//! | `P:{alerts}:marker` | string | set once per store life: changes when the store lost its data |
//! | `P:{alerts}:states` | set | the state index: every state key, written and removed with its state; reads and listings find states through it (`state_index.rs`) |
//! | `P:{alerts}:history:<stream>` | stream, capped, expires 30 days after its last entry | state transitions, for `hawkeye alerts --history` |
//! | `P:alert:{<old key>}` | string | states of agents before versioned keys; migrated and deleted |
//!
//! Every command goes through the store's connection (`Connection::run`, with its deadline), like the rest of the store.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rapidhash::quality::RandomState;

use redis::Value;

use super::connection::Group;
use super::key_sieve::Sieve;
use super::reply::as_string;
use super::state_index;
use super::RedisStore;
use crate::alerts::{AlertCommit, AlertRead, AlertSnapshot, OutboxEntry, Settle};
use crate::error::StoreError;

const COMMIT: &str = include_str!("scripts/alerts/commit.lua");
const CLAIM: &str = include_str!("scripts/alerts/claim.lua");
const MARKER: &str = include_str!("scripts/alerts/marker.lua");
const SILENCES: &str = include_str!("scripts/alerts/silences.lua");
const PUT_SILENCE: &str = include_str!("scripts/alerts/put_silence.lua");
const EXPIRE_SILENCE: &str = include_str!("scripts/alerts/expire_silence.lua");

/// Keys per `MGET` (legacy states).
const MGET_CHUNK: usize = 1000;

fn ms(d: Duration) -> u64 {
    // At least 1: `PX 0` is an error.
    (d.as_millis().min(u64::MAX as u128) as u64).max(1)
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The state of each of `keys` (trigger keys), from the `(trigger key,
/// state)` pairs found: `None` for those without.
fn states_of(keys: &[String], found: Vec<(String, String)>) -> Vec<Option<String>> {
    if found.is_empty() {
        return vec![None; keys.len()];
    }
    // An agent asks for every trigger's key (100 000 a tick) and a few
    // have states: a sieve of the found keys' fingerprints passes most
    // keys without hashing them into the map.
    let sieve = Sieve::of(found.iter().map(|(k, _)| k.as_str()));
    let found: HashMap<String, String, RandomState> = found.into_iter().collect();
    keys.iter()
        .map(|k| match sieve.may_hold(k) {
            true => found.get(k).cloned(),
            false => None,
        })
        .collect()
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) | Value::Set(items) => items,
        _ => &[],
    }
}

fn unexpected(what: &str, v: Option<&Value>) -> StoreError {
    StoreError::Protocol(format!("{what} replied {v:?}"))
}

impl RedisStore {
    fn alerts_key(&self, suffix: &str) -> String {
        format!("{}:{{alerts}}:{suffix}", self.keys.prefix())
    }

    pub(crate) fn state_key(&self, key: &str) -> String {
        self.alerts_key(&format!("state:{key}"))
    }

    fn legacy_key(&self, key: &str) -> String {
        format!("{}:alert:{{{}}}", self.keys.prefix(), key)
    }

    fn eval<'a>(group: &'a mut Group, script: &str, keys: &[String]) -> &'a mut redis::Cmd {
        let cmd = group.cmd("EVAL").arg(script).arg(keys.len());
        for k in keys {
            cmd.arg(k);
        }
        cmd
    }

    fn silence_keys(&self) -> [String; 2] {
        [
            self.alerts_key("silences"),
            self.alerts_key("silences:ends"),
        ]
    }

    fn outbox_keys(&self) -> [String; 2] {
        [self.alerts_key("outbox"), self.alerts_key("outbox:due")]
    }

    /// One pipeline (one slot): the state index, the marker, the
    /// silences; then, only when the index lists states, those states
    /// (`state_index.rs`: an agent with no alert in progress reads an empty
    /// set, not one absent key per trigger).
    pub(crate) async fn alerts_read(&self, read: &AlertRead) -> Result<AlertSnapshot, StoreError> {
        let mut g = Group::default();
        g.cmd("SMEMBERS").arg(self.state_index_key());
        Self::eval(&mut g, MARKER, &[self.alerts_key("marker")])
            .arg(&read.marker)
            .arg(ms(read.marker_ttl));
        Self::eval(&mut g, SILENCES, &self.silence_keys()).arg(read.now_ms);
        let replies = self.conn.run(vec![g]).await?.pop().unwrap_or_default();
        let [index, marker, silences] = replies.as_slice() else {
            return Err(unexpected("the alert read", None));
        };
        let found = self.indexed_states(&state_index::members(index)?).await?;
        Ok(AlertSnapshot {
            states: states_of(&read.keys, found),
            marker: as_string(marker).ok_or_else(|| unexpected("the marker", Some(marker)))?,
            silences: items(silences).iter().filter_map(as_string).collect(),
        })
    }

    pub(crate) async fn alerts_commit(&self, c: &AlertCommit) -> Result<bool, StoreError> {
        let [outbox, due] = self.outbox_keys();
        let mut g = Group::default();
        let keys = [self.state_key(&c.key), outbox, due, self.state_index_key()];
        let cmd = Self::eval(&mut g, COMMIT, &keys)
            .arg(if c.expected.is_some() { "1" } else { "0" })
            .arg(c.expected.as_deref().unwrap_or(""))
            .arg(if c.new.is_some() { "1" } else { "0" })
            .arg(c.new.as_deref().unwrap_or(""))
            .arg(ms(c.ttl));
        for entry in &c.outbox {
            cmd.arg(&entry.id).arg(&entry.body);
        }
        let reply = self.conn.run(vec![g]).await?;
        match reply.first().and_then(|r| r.first()) {
            Some(Value::Int(n)) => Ok(*n == 1),
            other => Err(unexpected("the alert commit", other)),
        }
    }

    pub(crate) async fn alerts_claim(
        &self,
        now_ms: u64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut g = Group::default();
        Self::eval(&mut g, CLAIM, &self.outbox_keys())
            .arg(now_ms)
            .arg(now_ms.saturating_add(ms(lease)))
            .arg(max.max(1));
        let reply = self.conn.run(vec![g]).await?;
        let reply = reply.first().and_then(|r| r.first());
        let flat = reply.map(items).unwrap_or_default();
        flat.chunks(2)
            .map(|pair| match pair {
                [id, body] => Some(OutboxEntry {
                    id: as_string(id)?,
                    body: as_string(body)?,
                }),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| unexpected("the outbox claim", reply))
    }

    pub(crate) async fn alerts_settle(&self, id: &str, settle: Settle) -> Result<(), StoreError> {
        let [outbox, due] = self.outbox_keys();
        let mut g = Group::default();
        match settle {
            Settle::Done => {
                g.cmd("HDEL").arg(outbox).arg(id);
                g.cmd("ZREM").arg(due).arg(id);
            }
            Settle::RetryAt(at) => {
                g.cmd("ZADD").arg(due).arg("XX").arg(at).arg(id);
            }
        }
        self.conn.run(vec![g]).await.map(|_| ())
    }

    pub(crate) async fn alerts_put_silence(
        &self,
        id: &str,
        silence: &str,
        ends_at_ms: u64,
    ) -> Result<(), StoreError> {
        let mut g = Group::default();
        Self::eval(&mut g, PUT_SILENCE, &self.silence_keys())
            .arg(id)
            .arg(silence)
            .arg(ends_at_ms);
        self.conn.run(vec![g]).await.map(|_| ())
    }

    pub(crate) async fn alerts_expire_silence(&self, id: &str) -> Result<bool, StoreError> {
        let mut g = Group::default();
        Self::eval(&mut g, EXPIRE_SILENCE, &self.silence_keys())
            .arg(id)
            .arg(wall_ms());
        let reply = self.conn.run(vec![g]).await?;
        match reply.first().and_then(|r| r.first()) {
            Some(Value::Int(n)) => Ok(*n == 1),
            other => Err(unexpected("expiring a silence", other)),
        }
    }

    pub(crate) async fn alerts_silences(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        let mut g = Group::default();
        Self::eval(&mut g, SILENCES, &self.silence_keys()).arg(now_ms);
        let reply = self.conn.run(vec![g]).await?;
        let reply = reply.first().and_then(|r| r.first());
        Ok(reply
            .map(items)
            .unwrap_or_default()
            .iter()
            .filter_map(as_string)
            .collect())
    }

    /// Each legacy key has its own hash tag: one group per key on a
    /// cluster, `MGET`s on one node.
    fn legacy_groups(&self, keys: &[String], command: &str, cluster: bool) -> Vec<Group> {
        if cluster {
            return keys
                .iter()
                .map(|k| {
                    let mut g = Group::default();
                    g.cmd(command).arg(self.legacy_key(k));
                    g
                })
                .collect();
        }
        keys.chunks(MGET_CHUNK)
            .map(|chunk| {
                let mut g = Group::default();
                let cmd = g.cmd(if command == "GET" { "MGET" } else { command });
                for k in chunk {
                    cmd.arg(self.legacy_key(k));
                }
                g
            })
            .collect()
    }

    pub(crate) async fn alerts_legacy(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let replies = self
            .conn
            .run(self.legacy_groups(keys, "GET", self.conn.is_cluster().await?))
            .await?;
        let mut states = Vec::with_capacity(keys.len());
        for reply in replies.iter().flatten() {
            match reply {
                Value::Array(values) => states.extend(values.iter().map(as_string)),
                other => states.push(as_string(other)),
            }
        }
        if states.len() != keys.len() {
            return Err(StoreError::Protocol(format!(
                "{} legacy states for {} keys",
                states.len(),
                keys.len()
            )));
        }
        Ok(states)
    }

    pub(crate) async fn alerts_delete_legacy(&self, keys: &[String]) -> Result<(), StoreError> {
        self.conn
            .run(self.legacy_groups(keys, "DEL", self.conn.is_cluster().await?))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each key gets its own state, wherever it is, among many without;
    /// a state whose key was not asked for is not returned.
    #[test]
    fn states_go_to_their_keys_among_many_without() {
        let keys: Vec<String> = (0..5_000)
            .map(|i| format!("v2|s|e|m=bench.m{i}|c|sum|||#0"))
            .collect();
        let found = vec![
            (keys[4_999].clone(), "last".to_string()),
            (keys[0].clone(), "first".to_string()),
            (keys[1_234].clone(), "middle".to_string()),
            (
                "v2|s|e|m=gone|c|sum|||#0".to_string(),
                "not asked".to_string(),
            ),
        ];
        let states = states_of(&keys, found);
        assert_eq!(states.len(), keys.len());
        let got: Vec<(usize, &str)> = states
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.as_deref()?)))
            .collect();
        assert_eq!(got, [(0, "first"), (1_234, "middle"), (4_999, "last")]);
        assert!(states_of(&keys, Vec::new()).iter().all(Option::is_none));
    }
}
