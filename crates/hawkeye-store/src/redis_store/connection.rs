//! The connection to Redis: one node or a cluster, and running groups of
//! commands over it.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisError, Value};

use super::config::redact_url;
use crate::StoreError;

/// Commands for one hash tag (so one cluster slot), in order. On a single
/// node, [`Connection::run`] moves all groups into one pipeline.
#[derive(Default)]
pub(crate) struct Group(pub(crate) Vec<Cmd>);

impl Group {
    pub(crate) fn cmd(&mut self, name: &str) -> &mut Cmd {
        self.0.push(redis::cmd(name));
        let last = self.0.len() - 1;
        &mut self.0[last]
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster {
        client: Box<ClusterClient>,
        conn: tokio::sync::Mutex<Option<ClusterConnection>>,
    },
}

pub(crate) fn unavailable(e: RedisError) -> StoreError {
    // Redis errors do not carry the URL, so no secret can leak through them.
    StoreError::Unavailable(e.to_string())
}

impl Connection {
    /// Prepares a connection to the node or nodes `url` names. Nothing is
    /// connected yet: that happens at the first command.
    pub(crate) fn lazy(url: &str) -> Result<Connection, StoreError> {
        let nodes: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let bad_url =
            |e: RedisError| StoreError::Config(format!("REDIS_URL {}: {e}", redact_url(url)));
        Ok(match nodes.as_slice() {
            [] => return Err(StoreError::Config("REDIS_URL is empty".into())),
            [one] => {
                let client = redis::Client::open(*one).map_err(bad_url)?;
                let manager_config = ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(30)));
                Connection::Single(
                    client
                        .get_connection_manager_lazy(manager_config)
                        .map_err(bad_url)?,
                )
            }
            many => Connection::Cluster {
                client: Box::new(ClusterClient::new(many.to_vec()).map_err(bad_url)?),
                conn: tokio::sync::Mutex::new(None),
            },
        })
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Connection::Cluster { .. })
    }

    pub(crate) async fn cluster_conn(&self) -> Result<ClusterConnection, StoreError> {
        let Connection::Cluster { client, conn } = self else {
            return Err(StoreError::Config("not a cluster connection".into()));
        };
        let mut guard = conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = client.get_async_connection().await.map_err(unavailable)?;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Runs pipelines and returns their replies in order, one reply per
    /// command: callers never mark commands ignored, because re-packing
    /// pipelines into one (below) would not carry the marks over.
    /// On one node they go as one pipeline; on a cluster each (all keys of
    /// one hash tag) goes on its own, concurrently, so that no pipeline spans
    /// slots.
    pub(crate) async fn run(&self, groups: Vec<Group>) -> Result<Vec<Vec<Value>>, StoreError> {
        match self {
            Connection::Single(manager) => {
                let mut all = redis::pipe();
                let mut sizes = Vec::with_capacity(groups.len());
                for group in groups {
                    sizes.push(group.0.len());
                    for cmd in group.0 {
                        all.add_command(cmd);
                    }
                }
                if all.is_empty() {
                    return Ok(sizes.iter().map(|_| Vec::new()).collect());
                }
                let mut conn = manager.clone();
                let replies: Vec<Value> = all.query_async(&mut conn).await.map_err(unavailable)?;
                // One pass over the replies: splitting the vector group by
                // group would copy the rest each time (quadratic at 10 000 queries).
                let mut replies = replies.into_iter();
                Ok(sizes
                    .into_iter()
                    .map(|n| replies.by_ref().take(n).collect())
                    .collect())
            }
            Connection::Cluster { .. } => {
                let conn = self.cluster_conn().await?;
                let futures = groups.into_iter().map(|group| {
                    let mut conn = conn.clone();
                    async move {
                        if group.0.is_empty() {
                            return Ok(Vec::new());
                        }
                        let mut pipe = redis::pipe();
                        for cmd in group.0 {
                            pipe.add_command(cmd);
                        }
                        pipe.query_async::<Vec<Value>>(&mut conn).await
                    }
                });
                let results = futures::future::join_all(futures).await;
                results
                    .into_iter()
                    .map(|r| r.map_err(unavailable))
                    .collect()
            }
        }
    }
}
