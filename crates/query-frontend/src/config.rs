//! Static configuration of the query-frontend (`query_frontend:` in the YAML file).

use crate::error::FrontendError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Query-frontend settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryFrontendConfig {
    /// Range queries are split at multiples of this (UTC-aligned days by default); each piece
    /// runs on its own and is cached on its own. 0: no splitting.
    #[serde(with = "humantime_serde")]
    pub split_queries_by_interval: Duration,
    /// Moves a range query's start and end down to multiples of its step (as Grafana does), so
    /// that pieces repeat across refreshes and hit the cache. Off by default (Mimir's default):
    /// it changes which timestamps are evaluated.
    pub align_queries_with_step: bool,
    /// Pieces of one query run at most this many at once.
    pub max_split_parallelism: usize,
    /// A piece whose end is newer than this is not cached (late samples may still arrive).
    #[serde(with = "humantime_serde")]
    pub max_cache_freshness: Duration,
    /// Memory budget of the in-process results cache, in bytes (0: no cache). Least
    /// recently used pieces leave first.
    pub results_cache_max_bytes: u64,
    /// Where pieces are cached: `memory` (this process) or `memcached` (shared by every
    /// query-frontend; `memcached.addresses`).
    pub results_cache_backend: CacheBackend,
    pub memcached: MemcachedConfig,
    /// A piece answered with 5xx (or not at all) is asked again up to this many times.
    pub max_retries: u32,
    /// Calls in flight to the queriers at once; beyond it, calls wait in per-tenant queues
    /// served round robin, so one tenant's long queries do not starve the others.
    pub max_concurrent_calls: usize,
    /// The querier to send queries to, for a query-frontend in its own process
    /// (`--target=query-frontend`), e.g. `http://querier:8080`. In `all` the frontend sits in
    /// front of the process's own querier and this is not used.
    pub downstream_url: Option<String>,
    /// Shardable aggregations (`sum`, `count`, `min`, `max`, `group` over series kept apart,
    /// see `docs/query-frontend.md`) run as this many queries, each over 1/N of the series, and
    /// their answers are combined. 0 (default, as in Mimir): off. Each shard query still reads
    /// its selectors in full before keeping its shard, so sharding pays off with several
    /// queriers, not in one process.
    pub query_sharding_total_shards: u32,
}

/// Where the results cache lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    Memory,
    Memcached,
}

/// The shared results cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemcachedConfig {
    /// `host:port` of each memcached server; a piece lives on one (by its key's hash).
    pub addresses: Vec<String>,
    /// Prefix of every key: clusters sharing a memcached must use different ones.
    pub key_prefix: String,
    /// Longest wait for one get or set (a slow cache is a miss, not a slow query).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long memcached keeps a piece.
    #[serde(with = "humantime_serde")]
    pub expiration: Duration,
    /// Pieces larger than this are not sent (memcached's default item limit is 1 MiB).
    pub max_item_bytes: usize,
}

impl Default for MemcachedConfig {
    fn default() -> Self {
        Self {
            addresses: Vec::new(),
            key_prefix: "strata-qf".into(),
            timeout: Duration::from_millis(200),
            expiration: Duration::from_secs(7 * 24 * 3600),
            max_item_bytes: 1 << 20,
        }
    }
}

impl Default for QueryFrontendConfig {
    fn default() -> Self {
        Self {
            split_queries_by_interval: Duration::from_secs(24 * 3600),
            align_queries_with_step: false,
            max_split_parallelism: 14,
            max_cache_freshness: Duration::from_secs(600),
            results_cache_max_bytes: 256 << 20,
            results_cache_backend: CacheBackend::Memory,
            memcached: MemcachedConfig::default(),
            max_retries: 5,
            max_concurrent_calls: 16,
            downstream_url: None,
            query_sharding_total_shards: 0,
        }
    }
}

impl QueryFrontendConfig {
    /// Checks values; errors name the field.
    pub fn validate(&self) -> Result<(), FrontendError> {
        let bad = |field: &'static str, reason: String| FrontendError::Config { field, reason };
        let split = self.split_queries_by_interval;
        if !split.is_zero() && split < Duration::from_secs(60) {
            return Err(bad(
                "query_frontend.split_queries_by_interval",
                format!("must be 0 (off) or at least 1m, got {split:?}"),
            ));
        }
        if self.query_sharding_total_shards > strata_model::shard::MAX_QUERY_SHARDS {
            return Err(bad(
                "query_frontend.query_sharding_total_shards",
                format!(
                    "at most {}, got {}",
                    strata_model::shard::MAX_QUERY_SHARDS,
                    self.query_sharding_total_shards
                ),
            ));
        }
        if self.max_concurrent_calls == 0 {
            return Err(bad(
                "query_frontend.max_concurrent_calls",
                "must be > 0".into(),
            ));
        }
        if self.max_split_parallelism == 0 {
            return Err(bad(
                "query_frontend.max_split_parallelism",
                "must be > 0".into(),
            ));
        }
        if self.results_cache_backend == CacheBackend::Memcached {
            if self.memcached.addresses.is_empty() {
                return Err(bad(
                    "query_frontend.memcached.addresses",
                    "results_cache_backend is memcached: name at least one host:port".into(),
                ));
            }
            let p = &self.memcached.key_prefix;
            if p.is_empty() || p.len() > 64 || p.bytes().any(|b| b <= b' ' || b == 0x7f) {
                return Err(bad(
                    "query_frontend.memcached.key_prefix",
                    format!("1 to 64 characters without spaces or control characters, got {p:?}"),
                ));
            }
            if let Some(a) = self.memcached.addresses.iter().find(|a| !a.contains(':')) {
                return Err(bad(
                    "query_frontend.memcached.addresses",
                    format!("{a:?} is not host:port"),
                ));
            }
            if self.memcached.expiration.as_secs() > 30 * 24 * 3600 {
                return Err(bad(
                    "query_frontend.memcached.expiration",
                    "at most 30 days (memcached reads longer values as a unix time)".into(),
                ));
            }
        }
        if let Some(u) = &self.downstream_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(bad(
                    "query_frontend.downstream_url",
                    format!("must be an http:// or https:// URL, got {u:?}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_errors_name_the_field() {
        QueryFrontendConfig::default().validate().unwrap();
        let e = serde_yaml::from_str::<QueryFrontendConfig>("split_queries_by: 1d\n").unwrap_err();
        assert!(e.to_string().contains("split_queries_by"), "{e}");
        let c: QueryFrontendConfig =
            serde_yaml::from_str("split_queries_by_interval: 10s\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(
            e.contains("query_frontend.split_queries_by_interval"),
            "{e}"
        );
        let c: QueryFrontendConfig =
            serde_yaml::from_str("downstream_url: 'querier:8080'\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("query_frontend.downstream_url"), "{e}");
        let c: QueryFrontendConfig =
            serde_yaml::from_str("results_cache_backend: memcached\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("query_frontend.memcached.addresses"), "{e}");
    }
}
