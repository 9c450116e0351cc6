//! The connection to Redis: one node or a cluster, every request under a
//! deadline, and a connection that timed out or broke made again. How this
//! behaves through failovers and resharding: docs/cluster.md.
//!
//! Every command of the store goes through a [`Handle`], a
//! `redis::aio::ConnectionLike` that puts `REDIS_TIMEOUT` on each request and
//! drops the connection when a request times out or fails at the
//! connection level. Nothing waits longer than the deadline, whatever the
//! client library does inside (a cluster client can hang in a slot refresh
//! while a master is frozen); a late reply on a dropped connection is never
//! read, so a write that a frozen master answers after a failover is not
//! taken for a success.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared as SharedFuture};

use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{AsyncConnectionConfig, Cmd, RedisError, Value};
use tracing::{info, warn};

use super::cluster_nodes::{node_addresses, with_address};
use super::config::redact_url;
use super::handle::{Handle, Live, Owner};
use super::replica_wait::ReplicaWait;
use crate::error::StoreError;

/// Node addresses learnt from a cluster, kept to connect again when the
/// configured seeds are gone; bounded so a huge cluster cannot grow it.
const MAX_DISCOVERED_NODES: usize = 64;
/// How many `REDIS_TIMEOUT`s making a connection may take: a cluster client
/// waits on every node, and a frozen one costs a timeout or two.
const BUILD_TIMEOUTS: u32 = 10;

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
}

pub(crate) fn unavailable(e: RedisError) -> StoreError {
    // Redis errors do not carry the URL, so no secret can leak through them.
    StoreError::Unavailable(e.to_string())
}

/// What a single seed URL turned out to be (a list is always a cluster).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Single,
    Cluster,
}

/// What making connections learnt: what a single seed is, and the nodes of
/// the cluster.
#[derive(Default)]
struct Learnt {
    mode: Option<Mode>,
    discovered: Vec<String>,
}

/// A connection being made; every caller waits on the same one.
type Build = SharedFuture<BoxFuture<'static, Result<(), String>>>;

struct Shared {
    seeds: Vec<String>,
    timeout: Duration,
    /// The connection in use and its generation.
    current: Mutex<(u64, Option<Live>)>,
    building: Mutex<Option<Build>>,
    /// Only the build task locks it.
    learnt: tokio::sync::Mutex<Learnt>,
}

/// The store's connection; cheap to share, connects at the first command.
pub(crate) struct Connection {
    shared: Arc<Shared>,
}

/// A node address as the Go hawkeye wrote it, `host:port` with no scheme,
/// is read as `redis://host:port` (with a notice: the URL form says which
/// scheme, database and credentials are meant).
fn with_scheme(seed: &str) -> String {
    if seed.contains("://") {
        return seed.to_string();
    }
    let url = format!("redis://{seed}");
    // Only the completed URL is shown: redaction needs the scheme to find
    // a password.
    warn!(
        "a REDIS_URL node has no scheme (the Go hawkeye's host:port form): read as {}",
        redact_url(&url)
    );
    url
}

impl Connection {
    /// Prepares a connection to the node or nodes `url` names (a comma list
    /// is a cluster; one URL is asked whether it is one). Nothing is
    /// connected yet; a malformed URL is an error now.
    pub(crate) fn lazy(url: &str, timeout: Duration) -> Result<Connection, StoreError> {
        let seeds: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(with_scheme)
            .collect();
        let bad_url =
            |e: RedisError| StoreError::Config(format!("REDIS_URL {}: {e}", redact_url(url)));
        if seeds.is_empty() {
            return Err(StoreError::Config("REDIS_URL is empty".into()));
        }
        for seed in &seeds {
            redis::Client::open(seed.as_str()).map_err(bad_url)?;
        }
        if seeds.len() > 1 {
            ClusterClientBuilder::new(seeds.clone())
                .build()
                .map_err(bad_url)?;
        }
        Ok(Connection {
            shared: Arc::new(Shared {
                seeds,
                timeout,
                current: Mutex::new((0, None)),
                building: Mutex::new(None),
                learnt: tokio::sync::Mutex::new(Learnt::default()),
            }),
        })
    }

    /// A handle on the connection, connecting first if needed. Waits at
    /// most `REDIS_TIMEOUT`; a connection still being made then goes on
    /// being made in the background, for the next caller.
    pub(crate) async fn handle(&self) -> Result<Handle, StoreError> {
        let timeout = self.shared.timeout;
        match tokio::time::timeout(timeout, Arc::clone(&self.shared).acquire()).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no connection to Redis within REDIS_TIMEOUT ({timeout:?})"
            ))),
        }
    }

    /// Whether Redis is a cluster (connecting first if needed).
    pub(crate) async fn is_cluster(&self) -> Result<bool, StoreError> {
        Ok(matches!(self.handle().await?.live, Live::Cluster(_)))
    }

    /// Runs groups of commands and returns their replies in order, one reply
    /// per command; a reply that is an error fails the whole call.
    pub(crate) async fn run(&self, groups: Vec<Group>) -> Result<Vec<Vec<Value>>, StoreError> {
        let replies = self.run_keeping_errors(groups).await?;
        if let Some(Value::ServerError(e)) = replies
            .iter()
            .flatten()
            .find(|v| matches!(v, Value::ServerError(_)))
        {
            return Err(StoreError::Unavailable(format!(
                "Redis refused a command: {}",
                RedisError::from(e.clone())
            )));
        }
        Ok(replies)
    }

    /// [`Connection::run`], with error replies returned as values for the
    /// caller to judge. On one node all groups go as one pipeline; on a
    /// cluster each (all keys of one hash tag) goes on its own, concurrently,
    /// so that no pipeline spans slots. Callers never mark commands ignored:
    /// re-packing groups into one pipeline would not carry the marks over.
    pub(crate) async fn run_keeping_errors(
        &self,
        groups: Vec<Group>,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        self.run_and_wait(groups, None).await
    }

    /// [`Connection::run_keeping_errors`] for writes, followed on every
    /// node written by `wait` (if any): one `WAIT` after the single node's
    /// pipeline, or one after each group on a cluster (on the connection to
    /// the group's master, which is what `WAIT` counts the writes of).
    /// Fewer acknowledgements than asked fail the call; the writes may
    /// have been applied (the caller's retry must be idempotent).
    pub(crate) async fn run_and_wait(
        &self,
        mut groups: Vec<Group>,
        wait: Option<ReplicaWait>,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        if groups.iter().all(|g| g.0.is_empty()) {
            return Ok(groups.iter().map(|_| Vec::new()).collect());
        }
        let handle = self.handle().await?;
        if let Live::Single(_) = handle.live {
            let mut all = redis::pipe();
            all.ignore_errors();
            let mut sizes = Vec::with_capacity(groups.len());
            for group in groups {
                sizes.push(group.0.len());
                for cmd in group.0 {
                    all.add_command(cmd);
                }
            }
            if let Some(wait) = wait {
                all.add_command(wait.cmd());
            }
            let mut conn = handle;
            let mut replies: Vec<Value> = all.query_async(&mut conn).await.map_err(unavailable)?;
            if let Some(wait) = wait {
                wait.check(&replies.pop().unwrap_or(Value::Nil))?;
            }
            // One pass over the replies: splitting the vector group by
            // group would copy the rest each time (quadratic at 10 000 queries).
            let mut replies = replies.into_iter();
            return Ok(sizes
                .into_iter()
                .map(|n| replies.by_ref().take(n).collect())
                .collect());
        }
        if let Some(wait) = wait {
            // WAIT has no key: the group's keys route the pipeline.
            for group in groups.iter_mut().filter(|g| !g.0.is_empty()) {
                group.0.push(wait.cmd());
            }
        }
        let futures = groups.into_iter().map(|group| {
            let mut conn = handle.clone();
            async move {
                if group.0.is_empty() {
                    return Ok(Vec::new());
                }
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for cmd in group.0 {
                    pipe.add_command(cmd);
                }
                pipe.query_async::<Vec<Value>>(&mut conn).await
            }
        });
        let mut replies = futures::future::join_all(futures)
            .await
            .into_iter()
            .map(|r| r.map_err(unavailable))
            .collect::<Result<Vec<Vec<Value>>, StoreError>>()?;
        if let Some(wait) = wait {
            for group in replies.iter_mut().filter(|r| !r.is_empty()) {
                wait.check(&group.pop().unwrap_or(Value::Nil))?;
            }
        }
        Ok(replies)
    }
}

impl Shared {
    async fn acquire(self: Arc<Self>) -> Result<Handle, StoreError> {
        loop {
            if let Some(handle) = self.current_handle() {
                return Ok(handle);
            }
            self.build_in_background()
                .await
                .map_err(StoreError::Unavailable)?;
        }
    }

    /// Starts making a connection, or joins the one being made. The work
    /// runs in its own task so that a caller giving up at its deadline does
    /// not throw it away: with a frozen node, making a cluster connection
    /// takes longer than one timeout, and would otherwise never finish.
    fn build_in_background(self: &Arc<Self>) -> Build {
        let mut building = lock(&self.building);
        if let Some(build) = building.as_ref() {
            return build.clone();
        }
        let me = Arc::clone(self);
        let task = tokio::spawn(async move {
            let limit = me.timeout * BUILD_TIMEOUTS;
            let result = match tokio::time::timeout(limit, me.build()).await {
                Ok(Ok(live)) => {
                    let mut current = lock(&me.current);
                    current.0 += 1;
                    current.1 = Some(live);
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no connection to Redis within {limit:?}")),
            };
            *lock(&me.building) = None;
            result
        });
        let build: Build = async move {
            task.await
                .unwrap_or_else(|e| Err(format!("connecting to Redis failed: {e}")))
        }
        .boxed()
        .shared();
        *building = Some(build.clone());
        build
    }

    fn current_handle(self: &Arc<Self>) -> Option<Handle> {
        let current = lock(&self.current);
        let live = current.1.clone()?;
        Some(Handle {
            live,
            generation: current.0,
            owner: Arc::clone(self) as Arc<dyn Owner>,
        })
    }

    async fn build(&self) -> Result<Live, RedisError> {
        let mut learnt = self.learnt.lock().await;
        let mode = match learnt.mode {
            Some(mode) => mode,
            None if self.seeds.len() > 1 => Mode::Cluster,
            None => {
                let mut conn = self.connect_single(&self.seeds[0]).await?;
                if !is_cluster_node(&mut conn).await {
                    learnt.mode = Some(Mode::Single);
                    return Ok(Live::Single(conn));
                }
                info!("REDIS_URL names a cluster node: cluster mode");
                Mode::Cluster
            }
        };
        learnt.mode = Some(mode);
        if mode == Mode::Single {
            return Ok(Live::Single(self.connect_single(&self.seeds[0]).await?));
        }
        let mut nodes = self.seeds.clone();
        nodes.extend(learnt.discovered.iter().cloned());
        let client = ClusterClientBuilder::new(nodes)
            .connection_timeout(self.timeout)
            .response_timeout(self.timeout)
            .build()?;
        let mut conn = client.get_async_connection().await?;
        let mut nodes_cmd = redis::cmd("CLUSTER");
        nodes_cmd.arg("NODES");
        let random = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
        if let Ok(Value::BulkString(text)) = conn.route_command(nodes_cmd, random).await {
            // Remember every node, so a new connection can be made when the
            // seeds are down.
            let text = String::from_utf8_lossy(&text);
            learnt.discovered = node_addresses(&text)
                .filter_map(|(host, port)| with_address(&self.seeds[0], host, port))
                .filter(|url| !self.seeds.contains(url))
                .take(MAX_DISCOVERED_NODES)
                .collect();
        }
        Ok(Live::Cluster(conn))
    }

    async fn connect_single(&self, url: &str) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        redis::Client::open(url)?
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

impl Owner for Shared {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Drops connection `generation` (if still current) so the next command
    /// makes a new one: on a cluster, a new connection also learns the
    /// current slot map, which sends retries to a promoted replica.
    fn give_up(&self, generation: u64, why: &RedisError) {
        let mut current = lock(&self.current);
        if current.0 == generation && current.1.is_some() {
            current.1 = None;
            warn!(error = %why, "Redis connection dropped; the next command connects again");
        }
    }
}

/// Locks a mutex that only ever sees plain assignments (a panic cannot leave
/// it half-changed).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Asks a node whether it runs in cluster mode; a node that refuses `INFO`
/// is taken for a single one.
async fn is_cluster_node(conn: &mut MultiplexedConnection) -> bool {
    let info: Result<String, RedisError> =
        redis::cmd("INFO").arg("cluster").query_async(conn).await;
    info.is_ok_and(|text| text.contains("cluster_enabled:1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_urls_are_config_errors() {
        let t = Duration::from_secs(1);
        assert!(matches!(
            Connection::lazy(" , ", t),
            Err(StoreError::Config(_))
        ));
        assert!(matches!(
            Connection::lazy("nonsense://x", t),
            Err(StoreError::Config(_))
        ));
        assert!(Connection::lazy("redis://127.0.0.1:1,", t).is_ok());
    }

    #[test]
    fn a_host_and_port_without_scheme_is_a_redis_url() {
        let t = Duration::from_secs(1);
        let c = Connection::lazy("127.0.0.1:6379, db:6380", t).unwrap();
        assert_eq!(
            c.shared.seeds,
            ["redis://127.0.0.1:6379", "redis://db:6380"]
        );
        assert_eq!(with_scheme("rediss://db:6380"), "rediss://db:6380");
        assert_eq!(
            with_scheme("redis+unix:///run/redis.sock"),
            "redis+unix:///run/redis.sock"
        );
    }
}
