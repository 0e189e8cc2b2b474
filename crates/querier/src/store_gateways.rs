//! Reading blocks through the store-gateways of the store-gateway ring.
//!
//! Every store-gateway serves every block (sharding by block arrives with the read-path work),
//! so one healthy instance answers a selection; a failing one is retried on the next. With no
//! healthy store-gateway the query fails: answering from the ingesters alone would silently
//! drop everything older than their window.

use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strata_model::{Labels, Matcher, TenantId};
use strata_ring::{InstanceDesc, Operation, RingWatcher};
use strata_storage::{ChunkedSeries, QueryError, Queryable, SelectHints, Series, SeriesMetadata};

/// Clients of the store-gateways by ring entry.
pub trait StoreGatewayClients: Send + Sync {
    fn client(&self, instance: &InstanceDesc) -> Result<Arc<dyn Queryable>, QueryError>;
}

/// A [`Queryable`] over the store-gateway ring.
pub struct StoreGatewaySet {
    ring: Arc<RingWatcher>,
    clients: Arc<dyn StoreGatewayClients>,
    next: AtomicUsize,
}

impl std::fmt::Debug for StoreGatewaySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreGatewaySet").finish_non_exhaustive()
    }
}

impl StoreGatewaySet {
    pub fn new(ring: Arc<RingWatcher>, clients: Arc<dyn StoreGatewayClients>) -> Self {
        Self {
            ring,
            clients,
            next: AtomicUsize::new(0),
        }
    }

    /// Runs `call` on one healthy store-gateway, the next ones on failure (round robin start,
    /// so load spreads).
    async fn one<T, F, Fut>(&self, call: F) -> Result<T, QueryError>
    where
        F: Fn(Arc<dyn Queryable>) -> Fut,
        Fut: std::future::Future<Output = Result<T, QueryError>>,
    {
        let ring = self.ring.ring();
        let healthy: Vec<&InstanceDesc> = ring
            .healthy_instances(Operation::Read, self.ring.now_ms())
            .collect();
        if healthy.is_empty() {
            return Err(QueryError::Incomplete(
                "no healthy store-gateway in the store-gateway ring: blocks in the bucket cannot be read".into(),
            ));
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut errors = Vec::new();
        for k in 0..healthy.len() {
            let d = healthy[(start + k) % healthy.len()];
            let r = match self.clients.client(d) {
                Ok(c) => call(c).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(v) => return Ok(v),
                Err(e @ (QueryError::BadData(_) | QueryError::LimitExceeded(_))) => return Err(e),
                Err(e) => {
                    tracing::warn!(store_gateway = %d.id, error = %e, "store-gateway failed; trying another");
                    errors.push(format!("{}: {e}", d.id));
                }
            }
        }
        Err(QueryError::Incomplete(
            format!("every store-gateway failed: {}", errors.join("; ")).into(),
        ))
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
        self.one(|c| async move { c.select(tenant, matchers, start, end).await })
            .await
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
        self.one(|c| async move {
            c.select_chunks_hinted(tenant, matchers, start, end, hints)
                .await
        })
        .await
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        self.one(|c| async move { c.series(tenant, matchers, start, end, limit).await })
            .await
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.one(|c| async move { c.label_names(tenant, matchers, start, end, limit).await })
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
        self.one(|c| async move {
            c.label_values(tenant, name, matchers, start, end, limit)
                .await
        })
        .await
    }

    async fn metadata(
        &self,
        _tenant: &TenantId,
        _metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        Ok(Vec::new())
    }
}
