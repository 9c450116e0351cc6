//! How to reach Redis, how long to wait for it and how to lay out keys.
//! The settings are described in docs/cluster.md ("Settings").

use std::time::Duration;

use hawkeye_protocol::duration::{parse_duration, PlainUnit};

use crate::error::StoreError;
use crate::tiers::DEFAULT_ROLLUP_RETENTION;

/// An hour is compacted this long after it ends: flushes of its last
/// seconds (and servers a little behind) have landed by then.
pub const COMPACTION_GRACE_SECS: i64 = 120;
/// The default `HAWKEYE_MAX_PENDING_COMPACTIONS`: slot-hours (a metric
/// name's shard, an hour it was written in) a store remembers to compact,
/// at most. Past it, new ones are not remembered (logged, and counted in
/// [`crate::Compaction::not_remembered`]): their hours stay hashes (read exactly,
/// at the cost of their memory) until the slot is written again after
/// they closed, or they expire.
pub const MAX_PENDING_COMPACTIONS: usize = 1_000_000;

/// `REDIS_TIMEOUT` when unset.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest and longest `REDIS_TIMEOUT` accepted.
pub const TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(600));
/// The largest `HAWKEYE_SHARDS_PER_NAME`: a read of a name asks every shard.
pub const MAX_SHARDS_PER_NAME: u32 = 256;
/// The default `HAWKEYE_INDEX_CACHE`: enough for an agent checking a
/// million series, about 100 MB when full.
pub const DEFAULT_INDEX_CACHE: usize = 1_000_000;
/// The largest `HAWKEYE_INDEX_CACHE`.
pub const MAX_INDEX_CACHE: usize = 100_000_000;
/// The largest `HAWKEYE_MAX_PENDING_COMPACTIONS`: about 100 bytes each.
pub const MAX_MAX_PENDING_COMPACTIONS: usize = 100_000_000;
/// The variable that sets [`RedisConfig::max_pending_compactions`].
pub const MAX_PENDING_COMPACTIONS_VAR: &str = "HAWKEYE_MAX_PENDING_COMPACTIONS";
/// The largest `HAWKEYE_REDIS_WAIT_REPLICAS`.
pub const MAX_WAIT_REPLICAS: u32 = 64;
/// The variables of the replica wait (docs/cluster.md, "Waiting for replicas").
pub const WAIT_REPLICAS_VAR: &str = "HAWKEYE_REDIS_WAIT_REPLICAS";
pub const WAIT_TIMEOUT_VAR: &str = "HAWKEYE_REDIS_WAIT_TIMEOUT";

/// How to reach Redis and how to lay out keys.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://`, `rediss://`, `redis+unix://`, or a comma list of cluster
    /// nodes. One node of a cluster is enough: cluster mode is detected.
    pub url: String,
    /// Prefix of every key (`HAWKEYE_KEY_PREFIX`).
    pub key_prefix: String,
    /// How long per-second aggregates are kept (`HAWKEYE_RETENTION`).
    pub retention: Duration,
    /// How long per-minute rollups are kept (`HAWKEYE_ROLLUP_RETENTION`,
    /// default 35 days, at least `retention`): docs/storage.md, "Tiers".
    pub rollup_retention: Duration,
    /// The longest wait for Redis to answer one round trip, or to connect
    /// (`REDIS_TIMEOUT`). A connection that times out is dropped and made
    /// again at the next command.
    pub timeout: Duration,
    /// How many hash tags each metric name's series are spread over
    /// (`HAWKEYE_SHARDS_PER_NAME`); 1 keeps a name in one cluster slot.
    pub shards_per_name: u32,
    /// How many index members (series) the reader keeps between reads
    /// (`HAWKEYE_INDEX_CACHE`, 0: none); about 100 bytes each.
    /// docs/storage.md, "The index cache".
    pub index_cache: usize,
    /// How many replicas must acknowledge a flush's writes before it counts
    /// as done (`HAWKEYE_REDIS_WAIT_REPLICAS`, 0: do not wait).
    /// docs/cluster.md, "Waiting for replicas".
    pub wait_replicas: u32,
    /// How long a flush waits for those acknowledgements
    /// (`HAWKEYE_REDIS_WAIT_TIMEOUT`); unset: half of `timeout`. Shorter
    /// than `timeout`: the writes and the wait share one round trip.
    pub wait_timeout: Option<Duration>,
    /// Slot-hours (a metric name's shard, an hour it was written in) a
    /// store remembers to compact, at most (`HAWKEYE_MAX_PENDING_COMPACTIONS`,
    /// about 100 bytes each; 0: the store compacts nothing).
    /// docs/storage.md, "Compaction".
    pub max_pending_compactions: usize,
}

impl RedisConfig {
    /// A configuration with the default timeout and one shard per name.
    pub fn new(
        url: impl Into<String>,
        key_prefix: impl Into<String>,
        retention: Duration,
    ) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            key_prefix: key_prefix.into(),
            retention,
            rollup_retention: DEFAULT_ROLLUP_RETENTION.max(retention),
            timeout: DEFAULT_TIMEOUT,
            shards_per_name: 1,
            index_cache: DEFAULT_INDEX_CACHE,
            wait_replicas: 0,
            wait_timeout: None,
            max_pending_compactions: MAX_PENDING_COMPACTIONS,
        }
    }

    /// This configuration with `REDIS_TIMEOUT`, `HAWKEYE_SHARDS_PER_NAME`,
    /// `HAWKEYE_INDEX_CACHE`, `HAWKEYE_ROLLUP_RETENTION`,
    /// `HAWKEYE_REDIS_WAIT_REPLICAS` and `HAWKEYE_REDIS_WAIT_TIMEOUT` read
    /// from the environment where they are set.
    pub fn with_env(self) -> Result<RedisConfig, StoreError> {
        self.with_vars(|name| std::env::var(name).ok())
    }

    /// [`RedisConfig::with_env`] with the variables looked up by `var`.
    pub fn with_vars(
        mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<RedisConfig, StoreError> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        self = self.with_rollup_vars(&var)?;
        if let Some(v) = set("REDIS_TIMEOUT") {
            self.timeout = parse_duration(&v, PlainUnit::Seconds)
                .map_err(|e| StoreError::Config(format!("REDIS_TIMEOUT: {e}")))?;
        }
        if let Some(v) = set("HAWKEYE_SHARDS_PER_NAME") {
            self.shards_per_name = v.trim().parse().map_err(|_| {
                StoreError::Config(format!(
                    "HAWKEYE_SHARDS_PER_NAME: {v:?} is not a whole number"
                ))
            })?;
        }
        if let Some(v) = set("HAWKEYE_INDEX_CACHE") {
            self.index_cache = v.trim().parse().map_err(|_| {
                StoreError::Config(format!("HAWKEYE_INDEX_CACHE: {v:?} is not a whole number"))
            })?;
        }
        if let Some(v) = set(MAX_PENDING_COMPACTIONS_VAR) {
            self.max_pending_compactions = v.trim().parse().map_err(|_| {
                StoreError::Config(format!(
                    "{MAX_PENDING_COMPACTIONS_VAR}: {v:?} is not a whole number"
                ))
            })?;
        }
        if let Some(v) = set(WAIT_REPLICAS_VAR) {
            self.wait_replicas = v.trim().parse().map_err(|_| {
                StoreError::Config(format!("{WAIT_REPLICAS_VAR}: {v:?} is not a whole number"))
            })?;
        }
        if let Some(v) = set(WAIT_TIMEOUT_VAR) {
            let wait = parse_duration(&v, PlainUnit::Seconds)
                .map_err(|e| StoreError::Config(format!("{WAIT_TIMEOUT_VAR}: {e}")))?;
            self.wait_timeout = Some(wait);
        }
        self.validate()?;
        Ok(self)
    }

    /// This configuration with only `HAWKEYE_ROLLUP_RETENTION` read by
    /// `var` (what the in-memory store takes of the environment).
    pub fn with_rollup_vars(
        mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<RedisConfig, StoreError> {
        if let Some(v) = var(ROLLUP_RETENTION_VAR).filter(|v| !v.trim().is_empty()) {
            self.rollup_retention = parse_duration(&v, PlainUnit::Seconds)
                .map_err(|e| StoreError::Config(format!("{ROLLUP_RETENTION_VAR}: {e}")))?;
        }
        check_rollup_retention(self.retention, self.rollup_retention)?;
        Ok(self)
    }

    /// Checks the bounds of every setting.
    pub fn validate(&self) -> Result<(), StoreError> {
        check_rollup_retention(self.retention, self.rollup_retention)?;
        let (shortest, longest) = TIMEOUT_RANGE;
        if self.timeout < shortest || self.timeout > longest {
            return Err(StoreError::Config(format!(
                "REDIS_TIMEOUT: {:?} is outside {shortest:?}..={longest:?}",
                self.timeout
            )));
        }
        if !(1..=MAX_SHARDS_PER_NAME).contains(&self.shards_per_name) {
            return Err(StoreError::Config(format!(
                "HAWKEYE_SHARDS_PER_NAME: {} is outside 1..={MAX_SHARDS_PER_NAME}",
                self.shards_per_name
            )));
        }
        if self.index_cache > MAX_INDEX_CACHE {
            return Err(StoreError::Config(format!(
                "HAWKEYE_INDEX_CACHE: {} is over {MAX_INDEX_CACHE}",
                self.index_cache
            )));
        }
        if self.max_pending_compactions > MAX_MAX_PENDING_COMPACTIONS {
            return Err(StoreError::Config(format!(
                "{MAX_PENDING_COMPACTIONS_VAR}: {} is over {MAX_MAX_PENDING_COMPACTIONS}",
                self.max_pending_compactions
            )));
        }
        self.check_wait()
    }

    /// The replica wait of every flush, if any: how many replicas, how long.
    pub fn replica_wait(&self) -> Option<(u32, Duration)> {
        (self.wait_replicas > 0).then(|| {
            let timeout = self.wait_timeout.unwrap_or(self.timeout / 2);
            (self.wait_replicas, timeout)
        })
    }

    fn check_wait(&self) -> Result<(), StoreError> {
        if self.wait_replicas > MAX_WAIT_REPLICAS {
            return Err(StoreError::Config(format!(
                "{WAIT_REPLICAS_VAR}: {} is over {MAX_WAIT_REPLICAS}",
                self.wait_replicas
            )));
        }
        // Redis reads `WAIT n 0` as "for ever", and a wait as long as
        // REDIS_TIMEOUT would be cut by it and drop the connection.
        match self.wait_timeout {
            Some(wait) if wait < Duration::from_millis(1) || wait >= self.timeout => {
                Err(StoreError::Config(format!(
                    "{WAIT_TIMEOUT_VAR}: {wait:?} must be at least 1ms and shorter than REDIS_TIMEOUT ({:?}): a flush's writes and the wait share one round trip",
                    self.timeout
                )))
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("retention", &self.retention)
            .field("rollup_retention", &self.rollup_retention)
            .field("timeout", &self.timeout)
            .field("shards_per_name", &self.shards_per_name)
            .field("index_cache", &self.index_cache)
            .field("wait_replicas", &self.wait_replicas)
            .field("wait_timeout", &self.wait_timeout)
            .field("max_pending_compactions", &self.max_pending_compactions)
            .finish()
    }
}

pub use crate::redact::redact_url;

/// The variable that sets [`RedisConfig::rollup_retention`].
pub const ROLLUP_RETENTION_VAR: &str = "HAWKEYE_ROLLUP_RETENTION";

/// Rollups must outlive the per-second aggregates: a window the seconds
/// no longer hold is read from them (docs/storage.md, "Tiers").
pub fn check_rollup_retention(retention: Duration, rollup: Duration) -> Result<(), StoreError> {
    match rollup_retention_problem(retention, rollup) {
        Some(reason) => Err(StoreError::Config(format!(
            "{ROLLUP_RETENTION_VAR}: {reason}"
        ))),
        None => Ok(()),
    }
}

/// What is wrong with a rollup retention of `rollup` beside `retention`,
/// if anything (without the variable's name).
pub fn rollup_retention_problem(retention: Duration, rollup: Duration) -> Option<String> {
    (rollup < retention).then(|| {
        format!(
            "{} is shorter than HAWKEYE_RETENTION ({}); per-minute rollups must be kept at least as long as per-second aggregates",
            humanize(rollup),
            humanize(retention)
        )
    })
}

fn humanize(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuned(vars: &[(&str, &str)]) -> Result<RedisConfig, StoreError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RedisConfig::new("redis://x", "p", Duration::from_secs(60))
            .with_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_and_values_from_the_environment() {
        let c = tuned(&[]).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.shards_per_name, 1);
        let c = tuned(&[("REDIS_TIMEOUT", "750ms"), ("HAWKEYE_SHARDS_PER_NAME", "8")]).unwrap();
        assert_eq!(c.timeout, Duration::from_millis(750));
        assert_eq!(c.shards_per_name, 8);
        assert_eq!(c.index_cache, DEFAULT_INDEX_CACHE);
        assert_eq!(c.max_pending_compactions, 1_000_000);
        let c = tuned(&[(MAX_PENDING_COMPACTIONS_VAR, "5000")]).unwrap();
        assert_eq!(c.max_pending_compactions, 5000);
        assert_eq!(
            tuned(&[("HAWKEYE_INDEX_CACHE", "0")]).unwrap().index_cache,
            0
        );
        assert_eq!(
            tuned(&[("REDIS_TIMEOUT", "2")]).unwrap().timeout,
            Duration::from_secs(2)
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("REDIS_TIMEOUT", "soon"),
            ("REDIS_TIMEOUT", "0"),
            ("REDIS_TIMEOUT", "2h"),
            ("HAWKEYE_SHARDS_PER_NAME", "0"),
            ("HAWKEYE_SHARDS_PER_NAME", "1000"),
            ("HAWKEYE_SHARDS_PER_NAME", "-1"),
            ("HAWKEYE_SHARDS_PER_NAME", "two"),
            ("HAWKEYE_INDEX_CACHE", "-1"),
            ("HAWKEYE_INDEX_CACHE", "1000000000"),
            ("HAWKEYE_ROLLUP_RETENTION", "30s"),
            ("HAWKEYE_ROLLUP_RETENTION", "a week"),
            ("HAWKEYE_REDIS_WAIT_REPLICAS", "one"),
            ("HAWKEYE_REDIS_WAIT_REPLICAS", "-1"),
            ("HAWKEYE_REDIS_WAIT_REPLICAS", "65"),
            ("HAWKEYE_REDIS_WAIT_TIMEOUT", "0"),
            ("HAWKEYE_REDIS_WAIT_TIMEOUT", "5s"),
            ("HAWKEYE_REDIS_WAIT_TIMEOUT", "soon"),
            ("HAWKEYE_MAX_PENDING_COMPACTIONS", "lots"),
            ("HAWKEYE_MAX_PENDING_COMPACTIONS", "100000001"),
        ] {
            let err = tuned(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(var), "{var}={value}: {err}");
        }
    }

    #[test]
    fn the_replica_wait_is_off_unless_asked_and_fits_redis_timeout() {
        assert_eq!(tuned(&[]).unwrap().replica_wait(), None);
        let c = tuned(&[(WAIT_REPLICAS_VAR, "1")]).unwrap();
        assert_eq!(c.replica_wait(), Some((1, Duration::from_millis(2500))));
        let c = tuned(&[
            (WAIT_REPLICAS_VAR, "2"),
            (WAIT_TIMEOUT_VAR, "200ms"),
            ("REDIS_TIMEOUT", "1s"),
        ])
        .unwrap();
        assert_eq!(c.replica_wait(), Some((2, Duration::from_millis(200))));
        let err = tuned(&[(WAIT_TIMEOUT_VAR, "1s"), ("REDIS_TIMEOUT", "1s")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("shorter than REDIS_TIMEOUT"), "{err}");
    }

    #[test]
    fn rollups_are_kept_35_days_and_never_less_than_the_seconds() {
        let c = tuned(&[]).unwrap();
        assert_eq!(c.rollup_retention, Duration::from_secs(35 * 86_400));
        let c = tuned(&[("HAWKEYE_ROLLUP_RETENTION", "7d")]).unwrap();
        assert_eq!(c.rollup_retention, Duration::from_secs(7 * 86_400));
        let c = tuned(&[("HAWKEYE_ROLLUP_RETENTION", "60s")]).unwrap();
        assert_eq!(c.rollup_retention, c.retention, "equal is allowed");
        let err = tuned(&[("HAWKEYE_ROLLUP_RETENTION", "59s")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("shorter than HAWKEYE_RETENTION"), "{err}");
        // A retention longer than the default keeps rollups as long.
        let long = RedisConfig::new("redis://x", "p", Duration::from_secs(40 * 86_400));
        assert_eq!(long.rollup_retention, long.retention);
        let mut short = long.clone();
        short.rollup_retention = Duration::from_secs(86_400);
        assert!(short.validate().is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let c = RedisConfig::new("redis://u:secret@h:1", "p", Duration::from_secs(1));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("secret") && shown.contains("u:***@h:1"),
            "{shown}"
        );
    }
}
