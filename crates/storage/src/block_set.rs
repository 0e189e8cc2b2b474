//! Queries over a set of open blocks: each block overlapping the range answers, and the answers
//! are merged like any other sources (a series spans many blocks; overlapping blocks from
//! replicas or from a compaction in progress hold duplicate samples).

use crate::block::{BlockError, BlockReader};
use crate::limits::{ReadLimits, SharedBytes};
use crate::merge::{merge_chunked, merge_series};
use crate::query::{ChunkedSeries, Queryable, SelectHints, Series, SeriesMetadata};
use crate::QueryError;
use async_trait::async_trait;
use std::collections::{BTreeSet, HashMap};
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

/// A block read's error as a query error: limits stay limits, anything else is storage.
pub fn block_query_error(e: BlockError) -> QueryError {
    match e {
        BlockError::LimitExceeded(l) => QueryError::LimitExceeded(l),
        e => QueryError::Storage(Box::new(e)),
    }
}

/// Selects from every overlapping block, in parallel, and merges.
pub async fn select(
    blocks: &[Arc<BlockReader>],
    matchers: &[Matcher],
    start: i64,
    end: i64,
) -> Result<Vec<Series>, QueryError> {
    select_limited(blocks, matchers, start, end, &ReadLimits::default()).await
}

/// Aborts the tasks it holds when dropped: a selection that failed (a limit in one block) or
/// was abandoned stops the other blocks' reads instead of letting them run to the end.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<Result<Vec<Series>, BlockError>>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// [`select`] under `limits`: each block stops at the series and samples limits on its own (a
/// block holds a series once), the blocks' bytes count against one shared budget, and the
/// merged answer is checked again, since blocks that each fit may not together.
pub async fn select_limited(
    blocks: &[Arc<BlockReader>],
    matchers: &[Matcher],
    start: i64,
    end: i64,
    limits: &ReadLimits,
) -> Result<Vec<Series>, QueryError> {
    let merged = merge_series(select_each(blocks, matchers, start, end, limits).await?);
    if !limits.is_unlimited() {
        let mut tally = limits.tally();
        for s in &merged {
            tally.add(
                1,
                s.samples.len(),
                crate::limits::labels_heap_bytes(&s.labels)
                    + crate::limits::samples_heap_bytes(s.samples.len()),
            )?;
        }
    }
    Ok(merged)
}

/// [`select_limited`] for the query engine: a series' samples from each block stay separate
/// pieces ([`ChunkedSeries::Parts`]) instead of being copied into one list, which for a long
/// range over many blocks is most of the cost of merging.
pub async fn select_chunks_limited(
    blocks: &[Arc<BlockReader>],
    matchers: &[Matcher],
    start: i64,
    end: i64,
    limits: &ReadLimits,
) -> Result<Vec<ChunkedSeries>, QueryError> {
    let answers = select_each(blocks, matchers, start, end, limits).await?;
    let lists = answers
        .into_iter()
        .map(|l| l.into_iter().map(ChunkedSeries::Samples).collect())
        .collect();
    let merged = merge_chunked(lists, start, end);
    limits.check(&merged)?;
    Ok(merged)
}

/// Each overlapping block's answer, in the order of `blocks`.
async fn select_each(
    blocks: &[Arc<BlockReader>],
    matchers: &[Matcher],
    start: i64,
    end: i64,
    limits: &ReadLimits,
) -> Result<Vec<Vec<Series>>, QueryError> {
    // One task per block: decoding is CPU work, and blocks decode in parallel across cores.
    let bytes = SharedBytes::default();
    let mut tasks = AbortOnDrop(
        overlapping(blocks, start, end)
            .map(|b| {
                let (b, m, l, bytes) = (b.clone(), matchers.to_vec(), *limits, bytes.clone());
                tokio::spawn(async move { b.select_shared(&m, start, end, &l, &bytes).await })
            })
            .collect(),
    );
    let mut answers = Vec::with_capacity(tasks.0.len());
    for t in &mut tasks.0 {
        let r = t.await.map_err(|e| {
            QueryError::Unavailable(if e.is_panic() {
                "block reader (panicked)"
            } else {
                "block reader (cancelled)"
            })
        })?;
        answers.push(r.map_err(block_query_error)?);
    }
    Ok(answers)
}

/// Label sets of matching series across blocks, sorted; stops at the first block that takes
/// the distinct sets over `limit`.
pub fn series(
    blocks: &[Arc<BlockReader>],
    matchers: &[Matcher],
    start: i64,
    end: i64,
    limit: usize,
) -> Result<Vec<Labels>, QueryError> {
    let mut out = BTreeSet::new();
    for b in overlapping(blocks, start, end) {
        b.collect_series(matchers, start, end, limit, &mut out)?;
    }
    Ok(out.into_iter().collect())
}

/// Label names across blocks, sorted; stops once more than `limit` are found.
pub fn label_names(
    blocks: &[Arc<BlockReader>],
    matchers: &[Matcher],
    start: i64,
    end: i64,
    limit: usize,
) -> Result<Vec<String>, QueryError> {
    let mut out = BTreeSet::new();
    for b in overlapping(blocks, start, end) {
        b.collect_label_names(matchers, start, end, limit, &mut out)?;
    }
    Ok(out.into_iter().collect())
}

/// Values of one label across blocks, sorted; stops once more than `limit` are found.
pub fn label_values(
    blocks: &[Arc<BlockReader>],
    name: &str,
    matchers: &[Matcher],
    start: i64,
    end: i64,
    limit: usize,
) -> Result<Vec<String>, QueryError> {
    let mut out = BTreeSet::new();
    for b in overlapping(blocks, start, end) {
        b.collect_label_values(name, matchers, start, end, limit, &mut out)?;
    }
    Ok(out.into_iter().collect())
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

    /// The open blocks of `tenant`.
    pub fn blocks(&self, tenant: &TenantId) -> &[Arc<BlockReader>] {
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

    async fn select_chunks(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        self.select_chunks_hinted(tenant, matchers, start, end, &SelectHints::default())
            .await
    }

    async fn select_chunks_hinted(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        select_chunks_limited(self.blocks(tenant), matchers, start, end, &hints.limits).await
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        series(self.blocks(tenant), matchers, start, end, limit)
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        label_names(self.blocks(tenant), matchers, start, end, limit)
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
        label_values(self.blocks(tenant), name, matchers, start, end, limit)
    }

    async fn metadata(
        &self,
        _tenant: &TenantId,
        _metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        Ok(Vec::new())
    }
}
