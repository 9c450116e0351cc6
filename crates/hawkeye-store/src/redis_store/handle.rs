//! The connection one request runs on: `REDIS_TIMEOUT` on every request,
//! and the connection given up when a request times out or fails at the
//! connection level, so that its owner makes a new one (`connection.rs`).

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

/// A made connection: one node, or a cluster.
#[derive(Clone)]
pub(super) enum Live {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// What owns the connection: the deadline, and where to report that a
/// connection is in doubt.
pub(super) trait Owner: Send + Sync {
    fn timeout(&self) -> Duration;
    /// Connection `generation` failed with `why`; drop it if still current.
    fn give_up(&self, generation: u64, why: &RedisError);
}

/// The connection one request runs on, with the deadline on every request.
#[derive(Clone)]
pub(crate) struct Handle {
    pub(super) live: Live,
    pub(super) generation: u64,
    pub(super) owner: Arc<dyn Owner>,
}

/// Whether an error means the connection itself is in doubt.
fn breaks_connection(e: &RedisError) -> bool {
    e.is_timeout()
        || e.is_connection_dropped()
        || e.is_io_error()
        || e.is_unrecoverable_error()
        || e.kind() == ErrorKind::ClusterConnectionNotFound
}

impl Handle {
    fn settle<T>(
        &self,
        result: Result<Result<T, RedisError>, tokio::time::error::Elapsed>,
    ) -> Result<T, RedisError> {
        let error = match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if !breaks_connection(&e) => return Err(e),
            Ok(Err(e)) => e,
            Err(_) => RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "no answer from Redis within REDIS_TIMEOUT ({:?})",
                    self.owner.timeout()
                ),
            )),
        };
        self.owner.give_up(self.generation, &error);
        Err(error)
    }
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let timeout = self.owner.timeout();
            let result = match &mut self.live {
                Live::Single(c) => tokio::time::timeout(timeout, c.req_packed_command(cmd)).await,
                Live::Cluster(c) => tokio::time::timeout(timeout, c.req_packed_command(cmd)).await,
            };
            self.settle(result)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let timeout = self.owner.timeout();
            let result = match &mut self.live {
                Live::Single(c) => {
                    tokio::time::timeout(timeout, c.req_packed_commands(pipeline, offset, count))
                        .await
                }
                Live::Cluster(c) => {
                    tokio::time::timeout(timeout, c.req_packed_commands(pipeline, offset, count))
                        .await
                }
            };
            self.settle(result)
        })
    }

    fn get_db(&self) -> i64 {
        match &self.live {
            Live::Single(c) => c.get_db(),
            Live::Cluster(c) => c.get_db(),
        }
    }
}
