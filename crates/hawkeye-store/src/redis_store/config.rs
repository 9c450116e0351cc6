//! How to reach Redis and how to lay out keys.

use std::time::Duration;

/// How to reach Redis and how to lay out keys.
#[derive(Clone)]
pub struct RedisConfig {
    /// `redis://`, `rediss://`, `redis+unix://`, or a comma list of cluster nodes.
    pub url: String,
    /// Prefix of every key (`HAWKEYE_KEY_PREFIX`).
    pub key_prefix: String,
    /// How long aggregates are kept (`HAWKEYE_RETENTION`).
    pub retention: Duration,
}

impl RedisConfig {
    pub fn new(
        url: impl Into<String>,
        key_prefix: impl Into<String>,
        retention: Duration,
    ) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            key_prefix: key_prefix.into(),
            retention,
        }
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("retention", &self.retention)
            .finish()
    }
}

/// The URL with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let Some((scheme, rest)) = one.split_once("://") else {
                return one.to_string();
            };
            match rest.split_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                    format!("{scheme}://{user}:***@{host}")
                }
                None => one.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}
