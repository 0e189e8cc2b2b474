//! Reading recent data from the ingester ring.
//!
//! A selection goes to every ingester that may hold data for the range (every healthy instance
//! of the ring for reads), in parallel; replicas' answers are merged with exact-timestamp
//! deduplication. The answer is complete only if every token range of the ring got a read
//! quorum of answers (`Ring::read_coverage`): with RF 3, one ingester may be down or slow to
//! fail, two sharing a range may not. Otherwise the query fails rather than answer partially.

use async_trait::async_trait;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use strata_model::{Labels, Matcher, TenantId};
use strata_ring::{InstanceDesc, Operation, RingWatcher};
use strata_storage::merge::{merge_chunked, merge_labels, merge_strings_limited};
use strata_storage::{
    ChunkedSeries, HeadStats, QueryError, Queryable, ReadLimit, SelectHints, Series, SeriesMetadata,
};

/// Clients of the ingesters by ring entry.
pub trait IngesterQueryClients: Send + Sync {
    fn client(&self, instance: &InstanceDesc) -> Result<Arc<dyn Queryable>, QueryError>;
}

/// `querier.ingesters:` settings of a querier in a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngesterReadConfig {
    /// Ingesters are asked only for the part of a query newer than this (Mimir's
    /// `query_ingesters_within`); older data comes from the store-gateway. Must exceed the time
    /// ingesters keep data before it is in the bucket and visible there.
    #[serde(with = "humantime_serde")]
    pub query_ingesters_within: Duration,
    /// Once every token range has a read quorum of answers, how much longer slower ingesters
    /// are waited for before the answer is formed without them.
    #[serde(with = "humantime_serde")]
    pub slow_replica_grace: Duration,
}

impl Default for IngesterReadConfig {
    fn default() -> Self {
        Self {
            query_ingesters_within: Duration::from_secs(13 * 3600),
            slow_replica_grace: Duration::from_secs(1),
        }
    }
}

/// A [`Queryable`] over the ingester ring.
pub struct RingQueryable {
    ring: Arc<RingWatcher>,
    clients: Arc<dyn IngesterQueryClients>,
    cfg: IngesterReadConfig,
}

impl std::fmt::Debug for RingQueryable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingQueryable")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl RingQueryable {
    pub fn new(
        ring: Arc<RingWatcher>,
        clients: Arc<dyn IngesterQueryClients>,
        cfg: IngesterReadConfig,
    ) -> Self {
        Self { ring, clients, cfg }
    }

    /// The part of `[start, end]` ingesters answer for, `None` if none.
    fn window(&self, start: i64, end: i64) -> Option<(i64, i64)> {
        let min = strata_model::time::now_ms() - self.cfg.query_ingesters_within.as_millis() as i64;
        (end >= min).then_some((start.max(min), end))
    }

    /// Runs `call` on every ingester that may hold data and returns the answers, or an error
    /// if some token range lacks a read quorum of answers. Bad requests and limits fail at once
    /// (every replica would say the same). Once every range has its quorum, slower ingesters
    /// get `slow_replica_grace` more: a hung or partitioned ingester then costs a query that
    /// long, not its whole timeout, while normally every replica's answer is merged (which
    /// matters for one that restarted with an empty disk).
    async fn fan_out<T, F, Fut>(&self, call: F) -> Result<Vec<T>, QueryError>
    where
        F: Fn(Arc<dyn Queryable>) -> Fut,
        Fut: Future<Output = Result<T, QueryError>>,
    {
        let ring = self.ring.ring();
        let now = self.ring.now_ms();
        let targets: Vec<&InstanceDesc> = ring.healthy_instances(Operation::Read, now).collect();
        let mut pending: FuturesUnordered<_> = targets
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let client = self.clients.client(d);
                let call = &call;
                async move {
                    let r = match client {
                        Ok(c) => call(c).await,
                        Err(e) => Err(e),
                    };
                    (i, r)
                }
            })
            .collect();
        let mut answered: Vec<&str> = Vec::with_capacity(targets.len());
        let mut out = Vec::with_capacity(targets.len());
        let mut errors: Vec<(String, QueryError)> = Vec::new();
        let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        loop {
            let next = match grace.as_mut() {
                None => pending.next().await,
                Some(g) => tokio::select! {
                    r = pending.next() => r,
                    _ = g => break,
                },
            };
            let Some((i, r)) = next else { break };
            let d = targets[i];
            match r {
                Ok(v) => {
                    answered.push(d.id.as_str());
                    out.push(v);
                    if grace.is_none()
                        && ring
                            .read_coverage(&|id| answered.contains(&id), now)
                            .is_ok()
                    {
                        grace = Some(Box::pin(tokio::time::sleep(self.cfg.slow_replica_grace)));
                    }
                }
                Err(e @ (QueryError::BadData(_) | QueryError::LimitExceeded(_))) => return Err(e),
                Err(e) => errors.push((d.id.clone(), e)),
            }
        }
        if let Err(e) = ring.read_coverage(&|id| answered.contains(&id), now) {
            return Err(QueryError::Incomplete(Box::new(IncompleteRead {
                coverage: e,
                errors,
            })));
        }
        for (id, e) in &errors {
            tracing::debug!(ingester = %id, error = %e, "ingester did not answer; its replicas covered for it");
        }
        if !pending.is_empty() {
            tracing::debug!(
                waiting = pending.len(),
                "answering without slow ingesters: every range had a read quorum"
            );
        }
        Ok(out)
    }
}

/// Why a read from the ingesters is incomplete: the uncovered ranges and what the missing
/// ingesters answered.
#[derive(Debug)]
pub struct IncompleteRead {
    pub coverage: strata_ring::RingError,
    pub errors: Vec<(String, QueryError)>,
}

impl std::fmt::Display for IncompleteRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.coverage)?;
        for (id, e) in self.errors.iter().take(3) {
            write!(f, "; {id}: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for IncompleteRead {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.coverage)
    }
}

#[async_trait]
impl Queryable for RingQueryable {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let chunked = self.select_chunks(tenant, matchers, start, end).await?;
        Ok(chunked
            .into_iter()
            .filter_map(|c| {
                let mut samples = Vec::new();
                c.decode_into(start, end, &mut samples);
                (!samples.is_empty()).then(|| Series {
                    labels: c.labels().clone(),
                    samples,
                })
            })
            .collect())
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
        let Some((start, end)) = self.window(start, end) else {
            return Ok(Vec::new());
        };
        let answers = self
            .fan_out(|c| async move {
                c.select_chunks_hinted(tenant, matchers, start, end, hints)
                    .await
            })
            .await?;
        // Every ingester stopped at the limits on its own; replicas' copies merge into one, and
        // the merged answer is what the limits are about.
        let merged = merge_chunked(answers, start, end);
        hints.limits.check(&merged)?;
        Ok(merged)
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let Some((start, end)) = self.window(start, end) else {
            return Ok(Vec::new());
        };
        let answers = self
            .fan_out(|c| async move { c.series(tenant, matchers, start, end, limit).await })
            .await?;
        Ok(merge_labels(answers, limit)?)
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let Some((start, end)) = self.window(start, end) else {
            return Ok(Vec::new());
        };
        let answers = self
            .fan_out(|c| async move { c.label_names(tenant, matchers, start, end, limit).await })
            .await?;
        Ok(merge_strings_limited(
            answers,
            limit,
            ReadLimit::LabelNames,
        )?)
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
        let Some((start, end)) = self.window(start, end) else {
            return Ok(Vec::new());
        };
        let answers = self
            .fan_out(|c| async move {
                c.label_values(tenant, name, matchers, start, end, limit)
                    .await
            })
            .await?;
        Ok(merge_strings_limited(
            answers,
            limit,
            ReadLimit::LabelValues,
        )?)
    }

    /// Summed over ingesters: with replication the series count is RF times the distinct
    /// series (as Mimir's per-ingester statistics are).
    async fn head_stats(&self, tenant: &TenantId) -> Result<Option<HeadStats>, QueryError> {
        let answers = self
            .fan_out(|c| async move { c.head_stats(tenant).await })
            .await?;
        let mut out: Option<HeadStats> = None;
        for s in answers.into_iter().flatten() {
            let o = out.get_or_insert(HeadStats {
                num_series: 0,
                chunk_count: 0,
                min_time: i64::MAX,
                max_time: i64::MIN,
            });
            o.num_series += s.num_series;
            o.chunk_count += s.chunk_count;
            o.min_time = o.min_time.min(s.min_time);
            o.max_time = o.max_time.max(s.max_time);
        }
        Ok(out)
    }

    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        let answers = self
            .fan_out(|c| async move { c.metadata(tenant, metric).await })
            .await?;
        let mut v: Vec<SeriesMetadata> = answers.into_iter().flatten().collect();
        v.sort_by(|a, b| (&a.family, &a.help, &a.unit).cmp(&(&b.family, &b.help, &b.unit)));
        v.dedup();
        Ok(v)
    }
}
