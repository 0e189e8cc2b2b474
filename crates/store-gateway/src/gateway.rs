use crate::config::StoreGatewayConfig;
use crate::error::StoreGatewayError;
use crate::metrics::Metrics;
use async_trait::async_trait;
use futures::StreamExt;
use parking_lot::Mutex;
use prometheus_client::registry::Registry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use strata_model::{Labels, MatchOp, Matcher, Sample, TenantId};
use strata_ring::RingWatcher;
use strata_storage::block::{BlockReader, RangeCache, RESOLUTION_RAW};
use strata_storage::block_set;
use strata_storage::bucket::Bucket;
use strata_storage::index::{BucketIndex, PlannedBlocks};
use strata_storage::index_cache::{IndexCache, IndexSource};
use strata_storage::merge::merge_chunked;
use strata_storage::query::{Series, SeriesMetadata};
use strata_storage::{
    BlockQueryable, BlockSelection, BlocksAnswer, ChunkedSeries, QueryError, Queryable, ReadLimits,
    SelectHints,
};
use ulid::Ulid;

/// Which blocks a store-gateway holds when store-gateways shard the bucket: those whose owners
/// in the store-gateway ring ([`strata_ring::Ring::block_owners`]) include this instance.
#[derive(Debug, Clone)]
pub struct BlockSharding {
    ring: Arc<RingWatcher>,
    instance_id: String,
}

impl BlockSharding {
    pub fn new(ring: Arc<RingWatcher>, instance_id: impl Into<String>) -> Self {
        Self {
            ring,
            instance_id: instance_id.into(),
        }
    }

    /// Whether this instance owns `block` in the ring as it is now.
    pub fn owns(&self, block: &Ulid) -> bool {
        self.ring
            .ring()
            .block_owners(&block.to_string())
            .iter()
            .any(|d| d.id == self.instance_id)
    }
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
    indexes: IndexCache,
    /// `None`: every block (one store-gateway, or a single process).
    sharding: Option<BlockSharding>,
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
    /// A store-gateway over every block of `bucket`.
    pub fn new(
        cfg: StoreGatewayConfig,
        bucket: Bucket,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, StoreGatewayError> {
        Self::with_sharding(cfg, bucket, None, registry)
    }

    /// A store-gateway over the blocks `sharding` gives it (every block with `None`). Blocks
    /// named in a [`BlockQueryable`] read that it does not own are left out of the answer's
    /// `queried` list; whole-tenant reads ([`Queryable`]) still read every block.
    pub fn with_sharding(
        cfg: StoreGatewayConfig,
        bucket: Bucket,
        sharding: Option<BlockSharding>,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, StoreGatewayError> {
        cfg.validate()?;
        let samples_cache = (cfg.samples_cache_bytes > 0)
            .then(|| Arc::new(RangeCache::new(cfg.samples_cache_bytes)));
        Ok(Arc::new(Self {
            indexes: IndexCache::new(bucket.clone(), cfg.sync_interval),
            sharding,
            cfg,
            bucket,
            cache: Mutex::new(BlockCache::default()),
            samples_cache,
            metrics: Metrics::new(registry),
        }))
    }

    /// The tenant's bucket index (see [`IndexCache`]).
    async fn index(&self, tenant: &TenantId) -> Result<Arc<BucketIndex>, QueryError> {
        match self.indexes.get(tenant, now_ms()).await {
            Ok((i, source)) => {
                match source {
                    IndexSource::Cached => {}
                    IndexSource::Loaded => {
                        self.metrics.index_loads.inc();
                    }
                    IndexSource::Stale => {
                        self.metrics.index_loads.inc();
                        self.metrics.index_load_failures.inc();
                    }
                }
                Ok(i)
            }
            Err(e) => {
                self.metrics.index_loads.inc();
                self.metrics.index_load_failures.inc();
                Err(query_err(tenant, "read bucket index", e))
            }
        }
    }

    /// Whether this store-gateway holds `block`.
    pub fn owns(&self, block: &Ulid) -> bool {
        self.sharding.as_ref().is_none_or(|s| s.owns(block))
    }

    /// The raw blocks of the tenant's index that may hold samples in `[start, end]`.
    async fn raw_blocks(
        &self,
        tenant: &TenantId,
        start: i64,
        end: i64,
    ) -> Result<Vec<Ulid>, QueryError> {
        Ok(self
            .plan(tenant, start, end, RESOLUTION_RAW)
            .await?
            .into_iter()
            .flat_map(|p| p.blocks)
            .map(|b| b.ulid)
            .collect())
    }

    /// Opens `blocks` one after the other (up to `block_open_concurrency` ahead) and hands
    /// each to `f`; the first error stops it, and the blocks not reached yet are never opened.
    /// Label queries read this way stop at their limit without opening the rest.
    async fn for_each_block(
        &self,
        tenant: &TenantId,
        blocks: Vec<Ulid>,
        mut f: impl FnMut(&BlockReader) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let mut opened = futures::stream::iter(blocks)
            .map(|b| self.open(tenant, b))
            .buffered(self.cfg.block_open_concurrency);
        while let Some(b) = opened.next().await {
            let b = b?;
            f(&b)?;
        }
        Ok(())
    }

    /// The blocks of the tenant's index answering `[start, end]` ([`BucketIndex::plan`]).
    async fn plan(
        &self,
        tenant: &TenantId,
        start: i64,
        end: i64,
        max_resolution: i64,
    ) -> Result<Vec<PlannedBlocks>, QueryError> {
        let index = self.index(tenant).await?;
        Ok(index.plan(
            now_ms(),
            self.cfg.ignore_deletion_marks_delay.as_millis() as i64,
            start,
            end,
            max_resolution,
        ))
    }

    async fn open_all(
        &self,
        tenant: &TenantId,
        wanted: Vec<Ulid>,
    ) -> Result<Vec<Arc<BlockReader>>, QueryError> {
        let opened: Vec<Result<Arc<BlockReader>, QueryError>> = futures::stream::iter(wanted)
            .map(|b| self.open(tenant, b))
            .buffer_unordered(self.cfg.block_open_concurrency)
            .collect()
            .await;
        opened.into_iter().collect()
    }

    /// Selects from open blocks grouped by resolution, and merges finest first: on equal
    /// timestamps raw samples win over aggregates.
    async fn select_resolutions(
        &self,
        mut by_resolution: Vec<(i64, Vec<Arc<BlockReader>>)>,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        by_resolution.sort_by_key(|(res, _)| *res);
        let limits = &hints.limits;
        let mut lists = Vec::with_capacity(by_resolution.len());
        for (res, blocks) in by_resolution {
            lists.push(if res == RESOLUTION_RAW {
                block_set::select_chunks_limited(&blocks, matchers, start, end, limits).await?
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
                .into_iter()
                .map(ChunkedSeries::Samples)
                .collect()
            });
        }
        let out = merge_chunked(lists, start, end);
        limits.check(&out)?;
        Ok(out)
    }

    /// The blocks of `sel` this store-gateway owns, in the order asked.
    fn owned(&self, sel: &BlockSelection<'_>) -> Vec<Ulid> {
        sel.blocks
            .iter()
            .filter(|b| self.owns(b))
            .copied()
            .collect()
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
        self.indexes.invalidate();
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
        let mut by_resolution = Vec::with_capacity(plan.len());
        for p in plan {
            let ulids = p.blocks.into_iter().map(|b| b.ulid).collect();
            by_resolution.push((p.resolution, self.open_all(tenant, ulids).await?));
        }
        self.select_resolutions(by_resolution, matchers, start, end, hints)
            .await
    }

    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let ulids = self.raw_blocks(tenant, start, end).await?;
        let blocks = self.open_all(tenant, ulids).await?;
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
        let blocks = self.raw_blocks(tenant, start, end).await?;
        self.for_each_block(tenant, blocks, |b| {
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
        let blocks = self.raw_blocks(tenant, start, end).await?;
        self.for_each_block(tenant, blocks, |b| {
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
        let blocks = self.raw_blocks(tenant, start, end).await?;
        self.for_each_block(tenant, blocks, |b| {
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

#[async_trait]
impl BlockQueryable for StoreGateway {
    async fn select_blocks(
        &self,
        sel: BlockSelection<'_>,
        hints: &SelectHints,
    ) -> Result<BlocksAnswer<Vec<ChunkedSeries>>, QueryError> {
        let queried = self.owned(&sel);
        let blocks = self.open_all(sel.tenant, queried.clone()).await?;
        let mut by_resolution: Vec<(i64, Vec<Arc<BlockReader>>)> = Vec::new();
        for b in blocks {
            let res = b.meta().resolution;
            match by_resolution.iter_mut().find(|(r, _)| *r == res) {
                Some((_, v)) => v.push(b),
                None => by_resolution.push((res, vec![b])),
            }
        }
        let value = self
            .select_resolutions(by_resolution, sel.matchers, sel.start, sel.end, hints)
            .await?;
        Ok(BlocksAnswer { value, queried })
    }

    async fn series_blocks(
        &self,
        sel: BlockSelection<'_>,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<Labels>>, QueryError> {
        let queried = self.owned(&sel);
        let mut out = BTreeSet::new();
        self.for_each_block(sel.tenant, queried.clone(), |b| {
            Ok(b.collect_series(sel.matchers, sel.start, sel.end, limit, &mut out)?)
        })
        .await?;
        Ok(BlocksAnswer {
            value: out.into_iter().collect(),
            queried,
        })
    }

    async fn label_names_blocks(
        &self,
        sel: BlockSelection<'_>,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<String>>, QueryError> {
        let queried = self.owned(&sel);
        let mut out = BTreeSet::new();
        self.for_each_block(sel.tenant, queried.clone(), |b| {
            Ok(b.collect_label_names(sel.matchers, sel.start, sel.end, limit, &mut out)?)
        })
        .await?;
        Ok(BlocksAnswer {
            value: out.into_iter().collect(),
            queried,
        })
    }

    async fn label_values_blocks(
        &self,
        sel: BlockSelection<'_>,
        name: &str,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<String>>, QueryError> {
        let queried = self.owned(&sel);
        let mut out = BTreeSet::new();
        self.for_each_block(sel.tenant, queried.clone(), |b| {
            Ok(b.collect_label_values(name, sel.matchers, sel.start, sel.end, limit, &mut out)?)
        })
        .await?;
        Ok(BlocksAnswer {
            value: out.into_iter().collect(),
            queried,
        })
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
}
