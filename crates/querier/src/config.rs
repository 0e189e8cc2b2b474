//! Static configuration of the querier (`querier:` in the YAML file).

use crate::error::ApiError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuerierConfig {
    /// Most series one `series` or remote-read request may return. Passed down with the read:
    /// every store stops reading once its answer exceeds it.
    pub max_series_per_request: usize,
    /// Most samples one remote-read request may return, counted as chunks arrive.
    pub max_samples_per_read: usize,
    /// Most label names one `labels` request may return (stores stop at it).
    pub max_label_names_per_request: usize,
    /// Most values one `label/<name>/values` request may return (stores stop at it).
    pub max_label_values_per_request: usize,
    /// Most bytes one PromQL query may hold, estimated as it runs (fetched chunks and label
    /// sets, decoded samples, per-step values); 0 = no limit.
    pub max_query_memory_bytes: usize,
    /// Wall-clock budget of one PromQL query (`timeout` may lower it per request).
    #[serde(with = "humantime_serde")]
    pub query_timeout: std::time::Duration,
    /// Most samples one PromQL query may hold in memory.
    pub max_samples: usize,
    /// How far back an instant selector looks for the latest sample.
    #[serde(with = "humantime_serde")]
    pub lookback_delta: std::time::Duration,
    /// Most points per series in a range query result (Prometheus: 11,000).
    pub max_points_per_series: usize,
    /// Reading the ingester ring (a querier in a cluster).
    pub ingesters: crate::ingesters::IngesterReadConfig,
    /// Largest request body (form POSTs, remote read), and largest remote-read request once
    /// decompressed. Larger bodies get 413; a remote read claiming a larger decompressed size
    /// gets 400 before anything is allocated.
    pub max_request_body_bytes: usize,
    /// Longest PromQL expression accepted, in bytes.
    pub max_query_bytes: usize,
    /// Deepest nesting of a PromQL expression (parentheses, function calls, aggregations,
    /// subqueries and chained operators each add a level); checked before evaluation.
    pub max_query_depth: usize,
    /// Reads over several tenants at once (`X-Scope-OrgID: a|b`).
    pub tenant_federation: TenantFederationConfig,
    /// Labels that tell HA replicas apart (Thanos Querier's `--query.replica-label`): series
    /// equal but for these are deduplicated at query time and answered without them. Empty:
    /// no deduplication.
    pub replica_labels: Vec<String>,
    /// Blocks answer only for data older than this (Mimir's `querier.query_store_after`):
    /// newer data is what the ingesters hold, and reading both copies means decoding and
    /// merging every recent sample twice. The process uses the smaller of this and
    /// `ingester.blocks.retention_period` minus 10 minutes (ingesters keep answering from uploaded
    /// blocks that long after their end), so no data is older than the ingesters hold yet newer
    /// than what blocks are asked for. 0: blocks are asked for every range.
    #[serde(with = "humantime_serde")]
    pub query_store_after: std::time::Duration,
}

/// Tenant federation (Mimir's `tenant_federation`): off by default, as in Mimir.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantFederationConfig {
    /// Whether reads may name several tenants separated by `|`. Each tenant named must still
    /// be one the caller may act for (`server.auth`).
    pub enabled: bool,
    /// Most tenants one read may name.
    pub max_tenants: usize,
}

impl Default for TenantFederationConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            max_tenants: 32,
        }
    }
}

/// Highest `max_query_depth` accepted: the parser is known to stay within a request thread's
/// stack up to several times this.
pub const MAX_QUERY_DEPTH_LIMIT: usize = 1000;

impl Default for QuerierConfig {
    fn default() -> Self {
        Self {
            max_series_per_request: 500_000,
            max_samples_per_read: 50_000_000,
            max_label_names_per_request: 100_000,
            max_label_values_per_request: 500_000,
            max_query_memory_bytes: strata_promql::DEFAULT_MAX_QUERY_MEMORY_BYTES,
            query_timeout: std::time::Duration::from_secs(120),
            max_samples: 50_000_000,
            lookback_delta: std::time::Duration::from_secs(300),
            max_points_per_series: 11_000,
            ingesters: crate::ingesters::IngesterReadConfig::default(),
            tenant_federation: TenantFederationConfig::default(),
            replica_labels: Vec::new(),
            query_store_after: std::time::Duration::from_secs(12 * 3600),
            max_request_body_bytes: 10 << 20,
            max_query_bytes: 256 << 10,
            max_query_depth: 128,
        }
    }
}

impl QuerierConfig {
    pub fn validate(&self) -> Result<(), ApiError> {
        for l in &self.replica_labels {
            let valid = !l.is_empty()
                && !l.starts_with(|c: char| c.is_ascii_digit())
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid || l == "__name__" {
                return Err(ApiError::Config {
                    field: "querier.replica_labels",
                    reason: "every entry must be a label name ([a-zA-Z_][a-zA-Z0-9_]*) other than __name__",
                });
            }
        }
        if self.tenant_federation.max_tenants < 1 {
            return Err(ApiError::Config {
                field: "querier.tenant_federation.max_tenants",
                reason: "must be at least 1",
            });
        }
        if self.max_series_per_request == 0 {
            return Err(ApiError::Config {
                field: "querier.max_series_per_request",
                reason: "must be > 0",
            });
        }
        if self.max_label_names_per_request == 0 {
            return Err(ApiError::Config {
                field: "querier.max_label_names_per_request",
                reason: "must be > 0",
            });
        }
        if self.max_label_values_per_request == 0 {
            return Err(ApiError::Config {
                field: "querier.max_label_values_per_request",
                reason: "must be > 0",
            });
        }
        if self.query_timeout.is_zero() {
            return Err(ApiError::Config {
                field: "querier.query_timeout",
                reason: "must be > 0",
            });
        }
        if self.max_samples == 0 {
            return Err(ApiError::Config {
                field: "querier.max_samples",
                reason: "must be > 0",
            });
        }
        if self.lookback_delta < std::time::Duration::from_millis(1) {
            return Err(ApiError::Config {
                field: "querier.lookback_delta",
                reason: "must be at least 1ms",
            });
        }
        if self.max_points_per_series == 0 {
            return Err(ApiError::Config {
                field: "querier.max_points_per_series",
                reason: "must be > 0",
            });
        }
        if self.max_samples_per_read == 0 {
            return Err(ApiError::Config {
                field: "querier.max_samples_per_read",
                reason: "must be > 0",
            });
        }
        if self.max_request_body_bytes < 1024 {
            return Err(ApiError::Config {
                field: "querier.max_request_body_bytes",
                reason: "must be at least 1024",
            });
        }
        if self.max_query_bytes == 0 {
            return Err(ApiError::Config {
                field: "querier.max_query_bytes",
                reason: "must be > 0",
            });
        }
        if self.max_query_depth == 0 || self.max_query_depth > MAX_QUERY_DEPTH_LIMIT {
            return Err(ApiError::Config {
                field: "querier.max_query_depth",
                reason: "must be between 1 and 1000",
            });
        }
        Ok(())
    }
}
