//! Reading blocks through store-gateways that shard the bucket.
//!
//! Each block belongs to the store-gateways its id hashes to in the store-gateway ring
//! ([`strata_ring::Ring::block_owners`], replication factor 3 by default). The querier plans the
//! blocks a query needs from the tenant's bucket index, asks each block's first healthy owner
//! for it by name, and checks the answers: every answer names the blocks it read, and a block
//! that no answer named is asked of its next owner. A block that no owner read fails the query
//! with an error naming it (Mimir's consistency check): a query never silently misses a block.

use async_trait::async_trait;
use futures::future::join_all;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use strata_model::{Labels, Matcher, TenantId};
use strata_ring::{InstanceDesc, Operation, RingWatcher};
use strata_storage::block::RESOLUTION_RAW;
use strata_storage::bucket::Bucket;
use strata_storage::index::PlannedBlocks;
use strata_storage::index_cache::IndexCache;
use strata_storage::merge::{merge_chunked, merge_labels, merge_strings_limited};
use strata_storage::{
    BlockQueryable, BlockSelection, BlocksAnswer, ChunkedSeries, QueryError, Queryable, ReadLimit,
    SelectHints, Series, SeriesMetadata,
};
use ulid::Ulid;

/// Clients of the store-gateways by ring entry.
pub trait StoreGatewayClients: Send + Sync {
    fn client(&self, instance: &InstanceDesc) -> Result<Arc<dyn BlockQueryable>, QueryError>;
}

/// How the querier reads the bucket index: the store-gateways' own settings, so that both
/// plan the same blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPlanning {
    /// A tenant's index is re-read once older than this.
    pub sync_interval: Duration,
    /// Blocks marked for deletion longer ago than this are no longer read.
    pub ignore_deletion_marks_delay: Duration,
}

/// Blocks that no store-gateway read: the query fails rather than answer without them.
#[derive(Debug)]
pub struct UnreadBlocks {
    pub tenant: TenantId,
    pub blocks: Vec<Ulid>,
    /// What each store-gateway asked said (`id: error`), and owners skipped as unhealthy.
    pub attempts: Vec<String>,
}

/// Blocks named in an error, at most.
const NAMED_BLOCKS: usize = 10;

impl std::fmt::Display for UnreadBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let named: Vec<String> = self
            .blocks
            .iter()
            .take(NAMED_BLOCKS)
            .map(Ulid::to_string)
            .collect();
        write!(
            f,
            "{} block(s) of tenant {} were read by no store-gateway: {}",
            self.blocks.len(),
            self.tenant,
            named.join(", ")
        )?;
        if self.blocks.len() > NAMED_BLOCKS {
            write!(f, " and {} more", self.blocks.len() - NAMED_BLOCKS)?;
        }
        if !self.attempts.is_empty() {
            write!(f, " ({})", self.attempts.join("; "))?;
        }
        Ok(())
    }
}

impl std::error::Error for UnreadBlocks {}

/// A [`Queryable`] over the store-gateway ring.
pub struct StoreGatewaySet {
    ring: Arc<RingWatcher>,
    clients: Arc<dyn StoreGatewayClients>,
    indexes: IndexCache,
    planning: BlockPlanning,
}

impl std::fmt::Debug for StoreGatewaySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreGatewaySet").finish_non_exhaustive()
    }
}

/// One request of a round: the blocks asked of one store-gateway.
struct Ask {
    instance: InstanceDesc,
    blocks: Vec<Ulid>,
}

impl StoreGatewaySet {
    pub fn new(
        ring: Arc<RingWatcher>,
        clients: Arc<dyn StoreGatewayClients>,
        bucket: Bucket,
        planning: BlockPlanning,
    ) -> Self {
        Self {
            ring,
            clients,
            indexes: IndexCache::new(bucket, planning.sync_interval),
            planning,
        }
    }

    /// The blocks of the tenant's index that answer `[start, end]`, coarsest resolution first.
    async fn plan(
        &self,
        tenant: &TenantId,
        start: i64,
        end: i64,
        max_resolution: i64,
    ) -> Result<Vec<PlannedBlocks>, QueryError> {
        let now = strata_model::time::now_ms();
        let (index, _) = self.indexes.get(tenant, now).await.map_err(|e| {
            tracing::error!(tenant = %tenant, error = ?e, "querier could not read the bucket index");
            QueryError::Storage(Box::new(e))
        })?;
        Ok(index.plan(
            now,
            self.planning.ignore_deletion_marks_delay.as_millis() as i64,
            start,
            end,
            max_resolution,
        ))
    }

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

    /// Reads `blocks` with `call` from their owners: each block from its first healthy owner
    /// in ring order, then, for blocks that an answer did not name (the instance failed or
    /// does not hold them), from the next owner, until every block was read or has no owner
    /// left to ask. Returns every answer's value.
    async fn read_blocks<T, F, Fut>(
        &self,
        tenant: &TenantId,
        blocks: Vec<Ulid>,
        call: F,
    ) -> Result<Vec<T>, QueryError>
    where
        F: Fn(Arc<dyn BlockQueryable>, Vec<Ulid>) -> Fut,
        Fut: std::future::Future<Output = Result<BlocksAnswer<T>, QueryError>>,
    {
        let mut pending = blocks;
        let mut asked: HashMap<Ulid, HashSet<String>> = HashMap::new();
        let mut attempts: Vec<String> = Vec::new();
        let mut out = Vec::new();
        while !pending.is_empty() {
            let ring = self.ring.ring();
            let now = self.ring.now_ms();
            let mut round: Vec<Ask> = Vec::new();
            let mut unread = Vec::new();
            for b in &pending {
                let tried = asked.entry(*b).or_default();
                let owners = ring.block_owners(&b.to_string());
                let next = owners
                    .iter()
                    .find(|d| !tried.contains(&d.id) && ring.is_healthy(d, Operation::Read, now));
                let Some(d) = next else {
                    for d in owners.iter().filter(|d| !tried.contains(&d.id)) {
                        let note = format!("{}: unhealthy", d.id);
                        if !attempts.contains(&note) {
                            attempts.push(note);
                        }
                    }
                    if owners.is_empty() {
                        let note = "no ACTIVE store-gateway in the ring".to_owned();
                        if !attempts.contains(&note) {
                            attempts.push(note);
                        }
                    }
                    unread.push(*b);
                    continue;
                };
                tried.insert(d.id.clone());
                match round.iter_mut().find(|a| a.instance.id == d.id) {
                    Some(a) => a.blocks.push(*b),
                    None => round.push(Ask {
                        instance: (*d).clone(),
                        blocks: vec![*b],
                    }),
                }
            }
            if !unread.is_empty() {
                unread.sort();
                return Err(QueryError::Incomplete(Box::new(UnreadBlocks {
                    tenant: tenant.clone(),
                    blocks: unread,
                    attempts,
                })));
            }
            let answers = join_all(round.iter().map(|a| {
                let client = self.clients.client(&a.instance);
                let blocks = a.blocks.clone();
                let call = &call;
                async move { call(client?, blocks).await }
            }))
            .await;
            let mut read: HashSet<Ulid> = HashSet::new();
            for (a, answer) in round.iter().zip(answers) {
                match answer {
                    Ok(answer) => {
                        let asked_here: HashSet<&Ulid> = a.blocks.iter().collect();
                        // A set: an answer naming a block twice counts it once.
                        let named: HashSet<&Ulid> = answer
                            .queried
                            .iter()
                            .filter(|b| asked_here.contains(b))
                            .collect();
                        read.extend(named.iter().copied());
                        let missing = a.blocks.len() - named.len();
                        if missing > 0 {
                            tracing::debug!(store_gateway = %a.instance.id, missing, "store-gateway does not hold some blocks it was asked for; asking their other owners");
                            attempts.push(format!(
                                "{}: does not hold {missing} of the blocks asked",
                                a.instance.id
                            ));
                        }
                        out.push(answer.value);
                    }
                    Err(e @ (QueryError::BadData(_) | QueryError::LimitExceeded(_))) => {
                        return Err(e)
                    }
                    Err(e) => {
                        tracing::warn!(store_gateway = %a.instance.id, blocks = a.blocks.len(), error = %e, "store-gateway failed; asking the blocks' other owners");
                        attempts.push(format!("{}: {e}", a.instance.id));
                    }
                }
            }
            pending.retain(|b| !read.contains(b));
        }
        Ok(out)
    }
}

#[async_trait]
impl Queryable for StoreGatewaySet {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let chunked = self.select_chunks(tenant, matchers, start, end).await?;
        Ok(strata_storage::query::decode_all(chunked, start, end))
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
        let plan = self
            .plan(tenant, start, end, hints.max_resolution_ms)
            .await?;
        // Finest resolution first: on equal timestamps raw samples win over aggregates.
        let mut lists = Vec::with_capacity(plan.len());
        for p in plan.into_iter().rev() {
            let blocks = p.blocks.iter().map(|b| b.ulid).collect();
            let parts = self
                .read_blocks(tenant, blocks, |c, blocks| async move {
                    c.select_blocks(
                        BlockSelection::new(tenant, &blocks, matchers, start, end),
                        hints,
                    )
                    .await
                })
                .await?;
            lists.push(merge_chunked(parts, start, end));
        }
        let out = merge_chunked(lists, start, end);
        hints.limits.check(&out)?;
        Ok(out)
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let blocks = self.raw_blocks(tenant, start, end).await?;
        let parts = self
            .read_blocks(tenant, blocks, |c, blocks| async move {
                c.series_blocks(
                    BlockSelection::new(tenant, &blocks, matchers, start, end),
                    limit,
                )
                .await
            })
            .await?;
        Ok(merge_labels(parts, limit)?)
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let blocks = self.raw_blocks(tenant, start, end).await?;
        let parts = self
            .read_blocks(tenant, blocks, |c, blocks| async move {
                c.label_names_blocks(
                    BlockSelection::new(tenant, &blocks, matchers, start, end),
                    limit,
                )
                .await
            })
            .await?;
        Ok(merge_strings_limited(parts, limit, ReadLimit::LabelNames)?)
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
        let blocks = self.raw_blocks(tenant, start, end).await?;
        let parts = self
            .read_blocks(tenant, blocks, |c, blocks| async move {
                c.label_values_blocks(
                    BlockSelection::new(tenant, &blocks, matchers, start, end),
                    name,
                    limit,
                )
                .await
            })
            .await?;
        Ok(merge_strings_limited(parts, limit, ReadLimit::LabelValues)?)
    }

    /// Blocks carry no metric metadata (ingesters answer it).
    async fn metadata(
        &self,
        _tenant: &TenantId,
        _metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        Ok(Vec::new())
    }
}
