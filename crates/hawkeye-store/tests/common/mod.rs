//! What the store test files share: stores of every kind, the helpers that
//! write and read them, and `every_store!`, which runs one check on each.

#![allow(dead_code, unused_imports)]

pub use std::collections::{BTreeMap, HashSet};
pub use std::sync::{Arc, OnceLock};
pub use std::time::Duration;

pub use hawkeye_protocol::{MetricKind, SeriesKey, TagFilter};
pub use hawkeye_store::aggregate::{Aggregate, DistributionStats, GaugeStats};
pub use hawkeye_store::window::{Aggregation, QueryError, WindowQuery};
pub use hawkeye_store::{
    AlertCommit, AlertRead, GroupedOutcome, GroupedQuery, MemoryStore, OutboxEntry, RangeQuery,
    RedisConfig, RedisStore, SeriesWrite, Settle, Store, WriteBatch,
};
pub use hawkeye_testkit::{RedisCluster, RedisServer};

/// A fixed "now" well inside the retention, aligned so windows cross a minute.
pub fn now() -> i64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    t - t.rem_euclid(60) + 30
}

pub fn key(kind: MetricKind, name: &str, tags: &[(&str, &str)]) -> Arc<SeriesKey> {
    Arc::new(SeriesKey::new(kind, name, tags))
}

pub async fn redis_store(server: &RedisServer, prefix: &str, retention_secs: u64) -> RedisStore {
    store_at(&server.url(), prefix, retention_secs, 1)
}

pub fn store_at(url: &str, prefix: &str, retention_secs: u64, shards: u32) -> RedisStore {
    let mut config = RedisConfig::new(url, prefix, Duration::from_secs(retention_secs));
    config.shards_per_name = shards;
    RedisStore::new(config).unwrap()
}

/// One cluster for the whole file: the checks use their own key prefixes.
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(RedisCluster::start)
}

pub fn batch(seq: u64, series: Vec<SeriesWrite>) -> WriteBatch {
    WriteBatch {
        server_id: 7,
        seq,
        series,
    }
}

pub fn query(name: &str, agg: Option<&str>, window_secs: u64, end: i64) -> WindowQuery {
    WindowQuery {
        name: name.to_string(),
        kind: None,
        tags: TagFilter::default(),
        aggregation: agg.map(|a| a.parse().unwrap()),
        window_secs,
        end,
        stale_after: None,
    }
}

pub async fn value(store: &dyn Store, q: WindowQuery) -> Option<f64> {
    store
        .query(&q)
        .await
        .expect("store answers")
        .expect("valid query")
}

/// Runs `check` against every store: memory, Redis (one and four shards per
/// name) and a Redis Cluster (one seed, or all nodes and three shards).
macro_rules! every_store {
    ($name:ident, $check:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn memory() {
                let store = MemoryStore::new(Duration::from_secs(3600));
                $check(&store, None).await;
            }
            #[tokio::test]
            async fn redis() {
                let server = RedisServer::start();
                let store = redis_store(&server, "hawkeye", 3600).await;
                $check(&store, Some(&server)).await;
            }
            /// Each name's series spread over 4 hash tags.
            #[tokio::test]
            async fn redis_sharded() {
                let server = RedisServer::start();
                let store = store_at(&server.url(), "hawkeye", 3600, 4);
                $check(&store, Some(&server)).await;
            }
            /// One seed URL, with a trailing comma: cluster mode is detected.
            #[tokio::test]
            async fn cluster() {
                let url = format!("{},", shared_cluster().seed_url());
                let store = store_at(&url, stringify!($name), 3600, 1);
                $check(&store, None).await;
            }
            /// All nodes listed, names spread over 3 hash tags (slots).
            #[tokio::test]
            async fn cluster_sharded() {
                let url = shared_cluster().url_list();
                let prefix = concat!(stringify!($name), "-sharded");
                let store = store_at(&url, prefix, 3600, 3);
                $check(&store, None).await;
            }
        }
    };
}

/// Reads `q` in steps of `step` and checks every step against a window
/// query of the same seconds (a step without a point must have no data).
pub async fn range_checked(store: &dyn Store, q: WindowQuery, step: u64) -> Vec<(i64, f64)> {
    let range = RangeQuery {
        query: q,
        step_secs: step,
    };
    let points = store
        .query_range(&range)
        .await
        .expect("store answers")
        .expect("valid range");
    let steps = range.steps().unwrap();
    let mut at = points.iter().peekable();
    for s in &steps {
        let point = at.next_if(|(second, _)| *second == s.start());
        assert_eq!(
            point.map(|(_, v)| *v),
            value(store, s.clone()).await,
            "step at {}",
            s.start()
        );
    }
    assert!(at.next().is_none(), "points outside the steps: {points:?}");
    points
}
