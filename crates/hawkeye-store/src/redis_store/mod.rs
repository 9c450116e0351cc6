//! The Redis store: a single node (TCP, TLS or Unix socket) or a cluster.
//!
//! The key schema, the fields of a minute hash, the write script and why a
//! retried flush counts nothing twice are described in docs/storage.md.
//!
//! | file | holds |
//! |---|---|
//! | `config.rs` | [`RedisConfig`] |
//! | `connection.rs` | the connection: made, made again, groups of commands run over it |
//! | `handle.rs` | the deadline on every request |
//! | `cluster_nodes.rs` | the nodes a cluster names, as URLs |
//! | `keys.rs` | key names and index entries |
//! | `field.rs` | the fields of a minute hash, written and read |
//! | `scripts.rs`, `scripts/*.lua` | the Lua scripts |
//! | `writes.rs` | a flush |
//! | `replica_wait.rs` | the optional `WAIT` for replicas after a flush's writes |
//! | `compaction.rs`, `scripts/compact.lua` | closed rollup hours packed into day strings |
//! | `index_read.rs`, `index_cache.rs` | the series of the names read, and the cache of them (with each query's plan) |
//! | `read_plan.rs` | what a query reads: its kind, aggregation and series |
//! | `read_job.rs` | one hash a read asks for: bucket, span, fields |
//! | `reads.rs` | window reads |
//! | `open_hours.rs` | the rollup hour hashes a long read asks for |
//! | `minute_read.rs`, `scripts/read.lua` | the minute hashes of a window read, in one string per call |
//! | `read_decode.rs` | those strings decoded into each series' window |
//! | `grouped.rs` | window reads split by tag values (`group_by`) |
//! | `reply.rs` | decoding replies |
//! | `alerts.rs`, `scripts/alerts/*.lua` | the agent's alert data: states, outbox, silences, data-loss marker |
//! | `watermark.rs`, `scripts/watermark/*.lua` | the servers' watermark |
//! | `alert_history.rs` | listing the states, the history stream |

mod alert_history;
mod alerts;
mod cluster_nodes;
mod compaction;
mod config;
mod connection;
mod field;
mod grouped;
mod handle;
mod index_cache;
mod index_read;
mod key_sieve;
mod keys;
mod minute_read;
mod open_hours;
mod pending_compactions;
mod range;
mod read_decode;
mod read_job;
mod read_plan;
mod reads;
mod replica_wait;
mod reply;
mod scripts;
mod state_index;
mod watermark;
mod writes;

use std::time::Duration;

use async_trait::async_trait;

use crate::alerts::{AlertCommit, AlertRead, AlertSnapshot, OutboxEntry, Settle};
use crate::batch::WriteBatch;
use crate::error::StoreError;
use crate::grouped::{GroupedOutcome, GroupedQuery};
use crate::range::{RangeOutcome, RangeQuery};
use crate::store::{Compaction, Store, Watermark};
use crate::window::QueryOutcome;
use crate::window::WindowQuery;
use connection::Connection;
use keys::Keys;

pub use config::{
    check_rollup_retention, redact_url, rollup_retention_problem, RedisConfig,
    COMPACTION_GRACE_SECS, DEFAULT_TIMEOUT, MAX_MAX_PENDING_COMPACTIONS, MAX_PENDING_COMPACTIONS,
    MAX_PENDING_COMPACTIONS_VAR, MAX_SHARDS_PER_NAME, MAX_WAIT_REPLICAS, ROLLUP_RETENTION_VAR,
    TIMEOUT_RANGE, WAIT_REPLICAS_VAR, WAIT_TIMEOUT_VAR,
};
pub use scripts::WRITE_SCRIPT;

pub struct RedisStore {
    conn: Connection,
    keys: Keys,
    ttl_secs: u64,
    /// `HAWKEYE_ROLLUP_RETENTION`, in seconds.
    rollup_ttl_secs: u64,
    /// `HAWKEYE_SHARDS_PER_NAME`.
    shards: u32,
    write_script: redis::Script,
    index_cache: index_cache::IndexCache,
    read_script: redis::Script,
    /// Rollup hours written and not compacted yet.
    pending: pending_compactions::Pending,
    /// `HAWKEYE_REDIS_WAIT_REPLICAS`: what a flush waits for, if anything.
    replica_wait: Option<replica_wait::ReplicaWait>,
}

impl RedisStore {
    /// A store over the Redis `config` names. Nothing is connected here: the
    /// connection is made at the first command, so a Redis that is down now
    /// is not an error; writes fail (and are retried by the caller) until it
    /// is up. Errors only for a malformed configuration.
    pub fn new(config: RedisConfig) -> Result<RedisStore, StoreError> {
        config.validate()?;
        Ok(RedisStore {
            conn: Connection::lazy(&config.url, config.timeout)?,
            keys: Keys::new(&config.key_prefix),
            ttl_secs: config.retention.as_secs().max(1),
            rollup_ttl_secs: config.rollup_retention.as_secs().max(1),
            shards: config.shards_per_name,
            write_script: redis::Script::new(WRITE_SCRIPT),
            index_cache: index_cache::IndexCache::new(config.index_cache),
            read_script: redis::Script::new(scripts::READ_SCRIPT),
            pending: pending_compactions::Pending::new(config.max_pending_compactions),
            replica_wait: config
                .replica_wait()
                .map(|(replicas, timeout)| replica_wait::ReplicaWait { replicas, timeout }),
        })
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn write(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.write_batch(batch).await
    }

    async fn query_many(&self, queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError> {
        self.read_windows(queries).await
    }

    async fn read_alerts(&self, read: &AlertRead) -> Result<AlertSnapshot, StoreError> {
        self.alerts_read(read).await
    }

    async fn commit_alert(&self, commit: &AlertCommit) -> Result<bool, StoreError> {
        self.alerts_commit(commit).await
    }

    async fn claim_outbox(
        &self,
        now_ms: u64,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.alerts_claim(now_ms, lease, max).await
    }

    async fn settle_outbox(&self, id: &str, settle: Settle) -> Result<(), StoreError> {
        self.alerts_settle(id, settle).await
    }

    async fn put_silence(
        &self,
        id: &str,
        silence: &str,
        ends_at_ms: u64,
    ) -> Result<(), StoreError> {
        self.alerts_put_silence(id, silence, ends_at_ms).await
    }

    async fn expire_silence(&self, id: &str) -> Result<bool, StoreError> {
        self.alerts_expire_silence(id).await
    }

    async fn silences(&self, now_ms: u64) -> Result<Vec<String>, StoreError> {
        self.alerts_silences(now_ms).await
    }

    async fn legacy_alert_states(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        self.alerts_legacy(keys).await
    }

    async fn delete_legacy_alert_states(&self, keys: &[String]) -> Result<(), StoreError> {
        self.alerts_delete_legacy(keys).await
    }

    async fn put_watermark(
        &self,
        server_id: u64,
        second: i64,
        live_for: Duration,
    ) -> Result<(), StoreError> {
        self.watermark_put(server_id, second, live_for).await
    }

    async fn remove_watermark(&self, server_id: u64) -> Result<(), StoreError> {
        self.watermark_remove(server_id).await
    }

    async fn watermark(&self) -> Result<Option<Watermark>, StoreError> {
        self.watermark_read().await
    }

    async fn query_grouped(
        &self,
        queries: &[GroupedQuery],
    ) -> Result<Vec<GroupedOutcome>, StoreError> {
        self.read_grouped(queries).await
    }

    async fn alert_states(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.alerts_list(prefix).await
    }

    async fn append_history(
        &self,
        stream: &str,
        entries: &[String],
        max_len: usize,
    ) -> Result<(), StoreError> {
        self.alerts_append_history(stream, entries, max_len).await
    }

    async fn history(&self, stream: &str, since_ms: u64) -> Result<Vec<(u64, String)>, StoreError> {
        self.alerts_history(stream, since_ms).await
    }

    async fn query_range(&self, range: &RangeQuery) -> Result<RangeOutcome, StoreError> {
        self.read_range(range).await
    }

    async fn compact(&self, now: i64) -> Result<Compaction, StoreError> {
        self.compact_closed(now).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut p = connection::Group::default();
        p.cmd("PING");
        self.conn.run(vec![p]).await.map(|_| ())
    }
}
