//! The Redis store (placeholder being written).

use std::time::Duration;

use async_trait::async_trait;

use crate::window::WindowQuery;
use crate::{QueryOutcome, Store, StoreError, WriteBatch};

/// How to reach Redis and how to lay out keys.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://`, `rediss://`, `redis+unix://`, or a comma list of cluster nodes.
    pub url: String,
    /// Prefix of every key (`HAWKEYE_KEY_PREFIX`).
    pub key_prefix: String,
    /// How long aggregates are kept (`HAWKEYE_RETENTION`).
    pub retention: Duration,
}

pub struct RedisStore {
    _config: RedisConfig,
}

impl RedisStore {
    pub async fn connect(config: RedisConfig) -> Result<RedisStore, StoreError> {
        Ok(RedisStore { _config: config })
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn write(&self, _batch: &WriteBatch) -> Result<(), StoreError> {
        todo!()
    }
    async fn query_many(&self, _queries: &[WindowQuery]) -> Result<Vec<QueryOutcome>, StoreError> {
        todo!()
    }
    async fn alert_states(&self, _keys: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        todo!()
    }
    async fn swap_alert_state(&self, _key: &str, _expected: Option<&str>, _new: &str) -> Result<bool, StoreError> {
        todo!()
    }
    async fn ping(&self) -> Result<(), StoreError> {
        todo!()
    }
}
