//! One shard of a query's series (`__query_shard__=3_of_16`, sent by the query-frontend when it
//! shards an aggregation): every selection of the query keeps only the series of that shard,
//! so the shard's partial aggregate covers exactly its series and the frontend's combination
//! of all shards equals the whole query. The shard is computed on the labels as the query sees
//! them (after federation and replica deduplication), so replicas of a series share a shard.
//!
//! The series are filtered after the stores answer: each shard query still reads its
//! selectors' series in full. Filtering inside the stores (ingester head index, block series
//! file) would make shards cheaper; answers do not depend on where the filter runs.

use async_trait::async_trait;
use std::sync::Arc;
use strata_model::{Labels, Matcher, QueryShard, TenantId};
use strata_storage::{
    ChunkedSeries, HeadStats, QueryError, Queryable, SelectHints, Series, SeriesMetadata,
};

/// A [`Queryable`] answering only the series of one query shard of `inner`.
pub struct Sharded {
    inner: Arc<dyn Queryable>,
    shard: QueryShard,
}

impl std::fmt::Debug for Sharded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded")
            .field("shard", &self.shard)
            .finish_non_exhaustive()
    }
}

impl Sharded {
    /// The series of `shard` in `inner`.
    pub fn new(inner: Arc<dyn Queryable>, shard: QueryShard) -> Self {
        Self { inner, shard }
    }
}

#[async_trait]
impl Queryable for Sharded {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let mut v = self.inner.select(tenant, matchers, start, end).await?;
        v.retain(|s| self.shard.contains(&s.labels));
        Ok(v)
    }

    async fn select_chunks(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        let mut v = self
            .inner
            .select_chunks(tenant, matchers, start, end)
            .await?;
        v.retain(|s| self.shard.contains(s.labels()));
        Ok(v)
    }

    async fn select_chunks_hinted(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        let mut v = self
            .inner
            .select_chunks_hinted(tenant, matchers, start, end, hints)
            .await?;
        v.retain(|s| self.shard.contains(s.labels()));
        Ok(v)
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let mut v = self
            .inner
            .series(tenant, matchers, start, end, limit)
            .await?;
        v.retain(|l| self.shard.contains(l));
        Ok(v)
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.inner
            .label_names(tenant, matchers, start, end, limit)
            .await
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.inner
            .label_values(tenant, name, matchers, start, end, limit)
            .await
    }

    async fn head_stats(&self, tenant: &TenantId) -> Result<Option<HeadStats>, QueryError> {
        self.inner.head_stats(tenant).await
    }

    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        self.inner.metadata(tenant, metric).await
    }
}
