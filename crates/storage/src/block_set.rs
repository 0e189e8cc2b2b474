//! Queries over a set of open blocks: each block overlapping the range answers, and the answers
//! are merged like any other sources (a series spans many blocks; overlapping blocks from
//! replicas or from a compaction in progress hold duplicate samples).

use crate::block::BlockReader;
use crate::merge::{merge_series, merge_sorted_strings};
use crate::query::{Queryable, Series, SeriesMetadata};
use crate::QueryError;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;
use strata_model::{Labels, Matcher, TenantId};

/// Blocks that may hold samples in `[start, end]`.
fn overlapping(
    blocks: &[Arc<BlockReader>],
    start: i64,
    end: i64,
) -> impl Iterator<Item = &Arc<BlockReader>> {
    blocks
        .iter()
        .filter(move |b| b.meta().max_time >= start && b.meta().min_time <= end)
}

/// Selects from every overlapping block, in parallel, and merges.
pub async fn select(
    blocks: &[Arc<BlockReader>],
    matchers: &[Matcher],
    start: i64,
    end: i64,
) -> Result<Vec<Series>, QueryError> {
    // One task per block: decoding is CPU work, and blocks decode in parallel across cores.
    let tasks: Vec<_> = overlapping(blocks, start, end)
        .map(|b| {
            let (b, m) = (b.clone(), matchers.to_vec());
            tokio::spawn(async move { b.select(&m, start, end).await })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for t in tasks {
        let r = t.await.map_err(|e| {
            QueryError::Unavailable(if e.is_panic() {
                "block reader (panicked)"
            } else {
                "block reader (cancelled)"
            })
        })?;
        answers.push(r.map_err(|e| QueryError::Storage(Box::new(e)))?);
    }
    Ok(merge_series(answers))
}

/// Label sets of matching series across blocks.
pub fn series(
    blocks: &[Arc<BlockReader>],
    matchers: &[Matcher],
    start: i64,
    end: i64,
) -> Vec<Labels> {
    let mut v: Vec<Labels> = overlapping(blocks, start, end)
        .flat_map(|b| b.series_labels(matchers, start, end))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Label names across blocks.
pub fn label_names(
    blocks: &[Arc<BlockReader>],
    matchers: &[Matcher],
    start: i64,
    end: i64,
) -> Vec<String> {
    merge_sorted_strings(
        overlapping(blocks, start, end)
            .map(|b| b.label_names(matchers, start, end))
            .collect(),
    )
}

/// Values of one label across blocks.
pub fn label_values(
    blocks: &[Arc<BlockReader>],
    name: &str,
    matchers: &[Matcher],
    start: i64,
    end: i64,
) -> Vec<String> {
    merge_sorted_strings(
        overlapping(blocks, start, end)
            .map(|b| b.label_values(name, matchers, start, end))
            .collect(),
    )
}

/// A fixed set of open blocks per tenant: for tests and tools that query blocks without a
/// store-gateway's index syncing and caching.
#[derive(Debug, Default)]
pub struct StaticBlocks {
    tenants: HashMap<TenantId, Vec<Arc<BlockReader>>>,
}

impl StaticBlocks {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an open block of `tenant`.
    pub fn add(&mut self, tenant: TenantId, block: BlockReader) {
        self.tenants
            .entry(tenant)
            .or_default()
            .push(Arc::new(block));
    }

    fn blocks(&self, tenant: &TenantId) -> &[Arc<BlockReader>] {
        self.tenants.get(tenant).map_or(&[], Vec::as_slice)
    }
}

#[async_trait]
impl Queryable for StaticBlocks {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        select(self.blocks(tenant), matchers, start, end).await
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        Ok(series(self.blocks(tenant), matchers, start, end))
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, QueryError> {
        Ok(label_names(self.blocks(tenant), matchers, start, end))
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, QueryError> {
        Ok(label_values(
            self.blocks(tenant),
            name,
            matchers,
            start,
            end,
        ))
    }

    async fn metadata(
        &self,
        _tenant: &TenantId,
        _metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        Ok(Vec::new())
    }
}
