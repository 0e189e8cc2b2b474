use crate::config::StoreGatewayConfig;
use crate::error::StoreGatewayError;
use crate::metrics::Metrics;
use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;
use strata_model::{Labels, MatchOp, Matcher, Sample, TenantId};
use strata_storage::block::{BlockReader, RangeCache, RESOLUTION_RAW};
use strata_storage::block_set;
use strata_storage::bucket::Bucket;
use strata_storage::index::{BucketIndex, IndexedBlock};
use strata_storage::merge::merge_series;
use strata_storage::query::{Series, SeriesMetadata};
use strata_storage::{ChunkedSeries, QueryError, Queryable, ReadLimits, SelectHints};
use ulid::Ulid;

#[derive(Debug)]
struct TenantIndex {
    index: Arc<BucketIndex>,
    loaded: Instant,
}

#[derive(Debug)]
struct OpenBlock {
    reader: Arc<BlockReader>,
    bytes: u64,
    last_used: u64,
}

/// Open blocks, least recently used closed first once over the byte budget. A map with a use
/// counter is enough at this size (thousands of blocks); eviction scans it.
#[derive(Debug, Default)]
struct BlockCache {
    blocks: HashMap<(TenantId, Ulid), OpenBlock>,
    bytes: u64,
    clock: u64,
}

/// The store-gateway component. Implements [`Queryable`] over the bucket's blocks.
#[derive(Debug)]
pub struct StoreGateway {
    cfg: StoreGatewayConfig,
    bucket: Bucket,
    indexes: Mutex<HashMap<TenantId, TenantIndex>>,
    /// Serialises index loads per tenant so a burst of queries reads the index once.
    loading: tokio::sync::Mutex<()>,
    cache: Mutex<BlockCache>,
    samples_cache: Option<Arc<RangeCache>>,
    metrics: Metrics,
}

fn now_ms() -> i64 {
    strata_model::time::now_ms()
}

fn query_err(
    tenant: &TenantId,
    op: &'static str,
    e: strata_storage::block::BlockError,
) -> QueryError {
    tracing::error!(tenant = %tenant, op, error = ?e, "store-gateway read failed");
    QueryError::Storage(Box::new(e))
}

impl StoreGateway {
    /// A store-gateway over `bucket`.
    pub fn new(
        cfg: StoreGatewayConfig,
        bucket: Bucket,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, StoreGatewayError> {
        cfg.validate()?;
        let samples_cache = (cfg.samples_cache_bytes > 0)
            .then(|| Arc::new(RangeCache::new(cfg.samples_cache_bytes)));
        Ok(Arc::new(Self {
            cfg,
            bucket,
            indexes: Mutex::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
            cache: Mutex::new(BlockCache::default()),
            samples_cache,
            metrics: Metrics::new(registry),
        }))
    }

    /// The tenant's bucket index, re-read once older than `sync_interval`. Without an index
    /// (no compactor has run yet) the bucket is listed instead, and that result is cached the
    /// same way. If re-reading fails, the previous index keeps serving.
    async fn index(&self, tenant: &TenantId) -> Result<Arc<BucketIndex>, QueryError> {
        let fresh = |m: &HashMap<TenantId, TenantIndex>| {
            m.get(tenant)
                .filter(|t| t.loaded.elapsed() < self.cfg.sync_interval)
                .map(|t| t.index.clone())
        };
        if let Some(i) = fresh(&self.indexes.lock()) {
            return Ok(i);
        }
        let _g = self.loading.lock().await;
        if let Some(i) = fresh(&self.indexes.lock()) {
            return Ok(i);
        }
        let loaded = match BucketIndex::read(&self.bucket, tenant).await {
            Ok(Some(i)) => Ok(i),
            Ok(None) => BucketIndex::build(&self.bucket, tenant, None, now_ms())
                .await
                .map(|(i, _)| i),
            Err(e) => Err(e),
        };
        self.metrics.index_loads.inc();
        match loaded {
            Ok(i) => {
                let i = Arc::new(i);
                self.indexes.lock().insert(
                    tenant.clone(),
                    TenantIndex {
                        index: i.clone(),
                        loaded: Instant::now(),
                    },
                );
                Ok(i)
            }
            Err(e) => {
                self.metrics.index_load_failures.inc();
                if let Some(t) = self.indexes.lock().get(tenant) {
                    tracing::warn!(tenant = %tenant, error = %e, "bucket index reload failed; serving the previous index");
                    return Ok(t.index.clone());
                }
                Err(query_err(tenant, "read bucket index", e))
            }
        }
    }

    /// Raw blocks that may hold samples in `[start, end]`.
    async fn blocks_for(
        &self,
        tenant: &TenantId,
        start: i64,
        end: i64,
    ) -> Result<Vec<Arc<BlockReader>>, QueryError> {
        let plan = self.plan(tenant, start, end, RESOLUTION_RAW).await?;
        Ok(plan.into_iter().flat_map(|(_, b)| b).collect())
    }

    /// Opens the raw blocks of `[start, end]` one after the other (up to
    /// `block_open_concurrency` ahead) and hands each to `f`; the first error stops it, and the
    /// blocks not reached yet are never opened. Label queries read this way stop at their
    /// limit without opening the rest of the tenant's blocks.
    async fn for_each_block(
        &self,
        tenant: &TenantId,
        start: i64,
        end: i64,
        mut f: impl FnMut(&BlockReader) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let wanted: Vec<IndexedBlock> = self
            .plan_indexed(tenant, start, end, RESOLUTION_RAW)
            .await?
            .into_iter()
            .flat_map(|(_, b)| b)
            .collect();
        let mut opened = futures::stream::iter(wanted)
            .map(|b| self.open(tenant, b.ulid))
            .buffered(self.cfg.block_open_concurrency);
        while let Some(b) = opened.next().await {
            let b = b?;
            f(&b)?;
        }
        Ok(())
    }

    /// The blocks answering `[start, end]` with resolutions up to `max_resolution`, grouped by
    /// resolution: the coarsest allowed blocks first, finer ones only where the coarser leave
    /// a gap (Thanos's choice: downsampled data exists to make long ranges cheap).
    async fn plan(
        &self,
        tenant: &TenantId,
        start: i64,
        end: i64,
        max_resolution: i64,
    ) -> Result<Vec<(i64, Vec<Arc<BlockReader>>)>, QueryError> {
        let plan = self
            .plan_indexed(tenant, start, end, max_resolution)
            .await?;
        let mut out = Vec::with_capacity(plan.len());
        for (res, blocks) in plan {
            out.push((res, self.open_all(tenant, blocks).await?));
        }
        Ok(out)
    }

    /// [`StoreGateway::plan`] without opening the blocks.
    async fn plan_indexed(
        &self,
        tenant: &TenantId,
        start: i64,
        end: i64,
        max_resolution: i64,
    ) -> Result<Vec<(i64, Vec<IndexedBlock>)>, QueryError> {
        let index = self.index(tenant).await?;
        let mut candidates: Vec<&IndexedBlock> = index
            .queryable_blocks(
                now_ms(),
                self.cfg.ignore_deletion_marks_delay.as_millis() as i64,
            )
            .filter(|b| {
                b.resolution <= max_resolution.max(RESOLUTION_RAW)
                    && b.max_time >= start
                    && b.min_time <= end
            })
            .collect();
        candidates.sort_by_key(|b| (std::cmp::Reverse(b.resolution), b.min_time));
        let mut covered: Vec<(i64, i64)> = Vec::new();
        let mut plan: Vec<(i64, Vec<IndexedBlock>)> = Vec::new();
        let mut i = 0;
        while i < candidates.len() {
            let res = candidates[i].resolution;
            let mut chosen = Vec::new();
            while i < candidates.len() && candidates[i].resolution == res {
                let b = candidates[i];
                let (lo, hi) = (b.min_time.max(start), b.max_time.min(end));
                if !is_covered(&covered, lo, hi) {
                    chosen.push(b.clone());
                }
                i += 1;
            }
            covered.extend(chosen.iter().map(|b| (b.min_time, b.max_time)));
            covered = merge_intervals(covered);
            if !chosen.is_empty() {
                plan.push((res, chosen));
            }
        }
        Ok(plan)
    }

    async fn open_all(
        &self,
        tenant: &TenantId,
        wanted: Vec<IndexedBlock>,
    ) -> Result<Vec<Arc<BlockReader>>, QueryError> {
        let opened: Vec<Result<Arc<BlockReader>, QueryError>> = futures::stream::iter(wanted)
            .map(|b| self.open(tenant, b.ulid))
            .buffer_unordered(self.cfg.block_open_concurrency)
            .collect()
            .await;
        opened.into_iter().collect()
    }

    async fn open(&self, tenant: &TenantId, ulid: Ulid) -> Result<Arc<BlockReader>, QueryError> {
        let key = (tenant.clone(), ulid);
        {
            let mut c = self.cache.lock();
            c.clock += 1;
            let clock = c.clock;
            if let Some(b) = c.blocks.get_mut(&key) {
                b.last_used = clock;
                self.metrics.block_cache_hits.inc();
                return Ok(b.reader.clone());
            }
        }
        let reader = match BlockReader::open(&self.bucket, tenant, ulid).await {
            Ok(r) => Arc::new(match &self.samples_cache {
                Some(c) => r.with_cache(c.clone()),
                None => r,
            }),
            Err(e) => {
                self.metrics.block_load_failures.inc();
                return Err(query_err(tenant, "open block", e));
            }
        };
        self.metrics.block_loads.inc();
        let bytes = reader.heap_bytes();
        let mut c = self.cache.lock();
        c.clock += 1;
        let clock = c.clock;
        if c.blocks.contains_key(&key) {
            return Ok(reader);
        }
        c.bytes += bytes;
        c.blocks.insert(
            key,
            OpenBlock {
                reader: reader.clone(),
                bytes,
                last_used: clock,
            },
        );
        while c.bytes > self.cfg.max_open_blocks_bytes && c.blocks.len() > 1 {
            let Some(victim) = c
                .blocks
                .iter()
                .min_by_key(|(_, b)| b.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(b) = c.blocks.remove(&victim) {
                c.bytes -= b.bytes;
                self.metrics.blocks_evicted.inc();
            }
        }
        self.metrics.blocks_open.set(c.blocks.len() as i64);
        self.metrics.blocks_open_bytes.set(c.bytes as i64);
        Ok(reader)
    }

    /// Reads downsampled blocks: each series is stored once per aggregate (label
    /// [`AGGR_LABEL`]); the aggregate that keeps `func` right is returned as a plain series.
    async fn select_downsampled(
        &self,
        blocks: &[Arc<BlockReader>],
        matchers: &[Matcher],
        start: i64,
        end: i64,
        func: Option<&str>,
        limits: &ReadLimits,
    ) -> Result<Vec<Series>, QueryError> {
        let aggr = aggregate_for(func);
        let mut m = matchers.to_vec();
        let wanted = match aggr {
            Aggregate::Avg => "sum|count",
            Aggregate::One(a) => a,
        };
        m.push(
            Matcher::new(MatchOp::RegexMatch, AGGR_LABEL, wanted)
                .map_err(|e| QueryError::BadData(e.to_string()))?,
        );
        // An average reads two stored series (sum and count) per series it answers.
        let per_series = if aggr == Aggregate::Avg { 2 } else { 1 };
        let raw_limits = ReadLimits {
            max_series: limits.max_series.saturating_mul(per_series),
            ..*limits
        };
        let raw = block_set::select_limited(blocks, &m, start, end, &raw_limits).await?;
        let strip = |l: &Labels| {
            Labels::from_sorted(l.iter().filter(|x| x.name != AGGR_LABEL).cloned().collect())
        };
        match aggr {
            Aggregate::One(_) => {
                let mut out: Vec<Series> = raw
                    .into_iter()
                    .map(|s| Series {
                        labels: strip(&s.labels),
                        samples: s.samples,
                    })
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Ok(out)
            }
            Aggregate::Avg => {
                // Pair each series' sum with its count, window by window.
                let mut by_series: HashMap<Labels, (Vec<Sample>, Vec<Sample>)> = HashMap::new();
                for s in raw {
                    let e = by_series.entry(strip(&s.labels)).or_default();
                    if s.labels.get(AGGR_LABEL) == Some("sum") {
                        e.0 = s.samples;
                    } else {
                        e.1 = s.samples;
                    }
                }
                let mut out: Vec<Series> = by_series
                    .into_iter()
                    .map(|(labels, (sum, count))| {
                        let counts: HashMap<i64, f64> =
                            count.into_iter().map(|c| (c.t, c.v)).collect();
                        let samples = sum
                            .into_iter()
                            .filter_map(|s| {
                                let c = *counts.get(&s.t)?;
                                (c > 0.0).then(|| Sample::new(s.t, s.v / c))
                            })
                            .collect();
                        Series { labels, samples }
                    })
                    .filter(|s| !s.samples.is_empty())
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Ok(out)
            }
        }
    }

    /// Forgets cached indexes, so the next query re-reads them (tests, admin endpoints).
    pub fn invalidate_indexes(&self) {
        self.indexes.lock().clear();
    }

    /// Estimated bytes of open blocks.
    pub fn open_blocks_bytes(&self) -> u64 {
        self.cache.lock().bytes
    }

    /// Bytes of samples files fetched by selections from the blocks open now (a cost measure:
    /// a selection stopped by a limit fetches less).
    pub fn samples_bytes_fetched(&self) -> u64 {
        self.cache
            .lock()
            .blocks
            .values()
            .map(|b| b.reader.samples_bytes_fetched())
            .sum()
    }
}

pub use strata_storage::block::AGGR_LABEL;

/// Which stored aggregate answers a function over downsampled data (Thanos's mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    One(&'static str),
    /// sum / count per window.
    Avg,
}

fn aggregate_for(func: Option<&str>) -> Aggregate {
    let f = func.unwrap_or("");
    if f == "min" || f.starts_with("min_") {
        Aggregate::One("min")
    } else if f == "max" || f.starts_with("max_") {
        Aggregate::One("max")
    } else if f == "count" || f.starts_with("count_") {
        Aggregate::One("count")
    } else if f.starts_with("sum_") {
        Aggregate::One("sum")
    } else if matches!(f, "rate" | "increase" | "irate" | "resets") {
        Aggregate::One("counter")
    } else {
        Aggregate::Avg
    }
}

fn is_covered(covered: &[(i64, i64)], lo: i64, hi: i64) -> bool {
    covered.iter().any(|&(a, b)| a <= lo && hi <= b)
}

/// Sorted, merged intervals (adjacent ones joined).
fn merge_intervals(mut v: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

#[async_trait]
impl Queryable for StoreGateway {
    async fn select_chunks_hinted(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        let plan = self
            .plan(tenant, start, end, hints.max_resolution_ms)
            .await?;
        let mut lists = Vec::with_capacity(plan.len());
        let limits = &hints.limits;
        // Finest first: on equal timestamps raw samples win over aggregates.
        for (res, blocks) in plan.into_iter().rev() {
            lists.push(if res == RESOLUTION_RAW {
                block_set::select_limited(&blocks, matchers, start, end, limits).await?
            } else {
                self.select_downsampled(
                    &blocks,
                    matchers,
                    start,
                    end,
                    hints.func.as_deref(),
                    limits,
                )
                .await?
            });
        }
        let out: Vec<ChunkedSeries> = merge_series(lists)
            .into_iter()
            .map(ChunkedSeries::Samples)
            .collect();
        limits.check(&out)?;
        Ok(out)
    }

    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let blocks = self.blocks_for(tenant, start, end).await?;
        block_set::select(&blocks, matchers, start, end).await
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let mut out = BTreeSet::new();
        self.for_each_block(tenant, start, end, |b| {
            Ok(b.collect_series(matchers, start, end, limit, &mut out)?)
        })
        .await?;
        Ok(out.into_iter().collect())
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let mut out = BTreeSet::new();
        self.for_each_block(tenant, start, end, |b| {
            Ok(b.collect_label_names(matchers, start, end, limit, &mut out)?)
        })
        .await?;
        Ok(out.into_iter().collect())
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
        let mut out = BTreeSet::new();
        self.for_each_block(tenant, start, end, |b| {
            Ok(b.collect_label_values(name, matchers, start, end, limit, &mut out)?)
        })
        .await?;
        Ok(out.into_iter().collect())
    }

    async fn metadata(
        &self,
        _tenant: &TenantId,
        _metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        // Blocks do not carry metric metadata (neither do Prometheus's).
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_map_to_the_aggregate_that_keeps_them_right() {
        assert_eq!(aggregate_for(Some("rate")), Aggregate::One("counter"));
        assert_eq!(aggregate_for(Some("increase")), Aggregate::One("counter"));
        assert_eq!(aggregate_for(Some("max_over_time")), Aggregate::One("max"));
        assert_eq!(aggregate_for(Some("min")), Aggregate::One("min"));
        assert_eq!(aggregate_for(Some("sum_over_time")), Aggregate::One("sum"));
        assert_eq!(
            aggregate_for(Some("count_over_time")),
            Aggregate::One("count")
        );
        assert_eq!(aggregate_for(Some("sum")), Aggregate::Avg);
        assert_eq!(aggregate_for(None), Aggregate::Avg);
    }

    #[test]
    fn coverage_joins_adjacent_blocks() {
        let c = merge_intervals(vec![(10, 19), (0, 9), (30, 39)]);
        assert_eq!(c, vec![(0, 19), (30, 39)]);
        assert!(is_covered(&c, 5, 15));
        assert!(!is_covered(&c, 15, 35));
    }
}
