//! Reading series back.

use crate::QueryError;
use async_trait::async_trait;
use strata_model::{Labels, Matcher, MetricType, Sample, TenantId};

/// A series and its samples in a time range, samples sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// Metadata of one metric family as last received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesMetadata {
    pub family: String,
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

/// Head statistics for `/api/v1/status/tsdb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadStats {
    pub num_series: u64,
    pub chunk_count: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// Storage that answers selections. Time ranges are inclusive milliseconds.
#[async_trait]
pub trait Queryable: Send + Sync {
    /// Series matching every matcher that have a sample in `[start, end]`, with those samples,
    /// sorted by labels.
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError>;

    /// Label sets of the series matching every matcher with a sample in `[start, end]`, sorted.
    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Labels>, QueryError>;

    /// Sorted label names of series matching `matchers` (all series if empty) in `[start, end]`.
    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, QueryError>;

    /// Sorted values of label `name` among series matching `matchers` in `[start, end]`.
    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, QueryError>;

    /// Statistics of the in-memory head, for stores that have one.
    async fn head_stats(&self, _tenant: &TenantId) -> Result<Option<HeadStats>, QueryError> {
        Ok(None)
    }

    /// Metric metadata, optionally for one metric family.
    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError>;
}
