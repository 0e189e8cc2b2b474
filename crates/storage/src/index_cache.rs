//! Tenants' bucket indexes as a reader keeps them: re-read once older than a sync interval,
//! one read at a time (a burst of queries reads an index once), and the previous index kept
//! serving when a re-read fails. Store-gateways and queriers both plan blocks from it.

use crate::block::BlockError;
use crate::bucket::Bucket;
use crate::index::BucketIndex;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_model::TenantId;

#[derive(Debug)]
struct Cached {
    index: Arc<BucketIndex>,
    loaded: Instant,
}

/// How [`IndexCache::get`] obtained its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexSource {
    /// Cached and younger than the sync interval.
    Cached,
    /// Read (or built by listing, when the tenant has no index yet) just now.
    Loaded,
    /// The re-read failed; the previous index is served.
    Stale,
}

/// Bucket indexes by tenant.
#[derive(Debug)]
pub struct IndexCache {
    bucket: Bucket,
    sync_interval: Duration,
    indexes: Mutex<HashMap<TenantId, Cached>>,
    loading: tokio::sync::Mutex<()>,
}

impl IndexCache {
    pub fn new(bucket: Bucket, sync_interval: Duration) -> Self {
        Self {
            bucket,
            sync_interval,
            indexes: Mutex::new(HashMap::new()),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// The bucket the indexes are read from.
    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// The tenant's index. Without an index object (no compactor has run yet) the tenant's
    /// prefix is listed instead, and that result is cached the same way.
    pub async fn get(
        &self,
        tenant: &TenantId,
        now_ms: i64,
    ) -> Result<(Arc<BucketIndex>, IndexSource), BlockError> {
        let fresh = |m: &HashMap<TenantId, Cached>| {
            m.get(tenant)
                .filter(|t| t.loaded.elapsed() < self.sync_interval)
                .map(|t| t.index.clone())
        };
        if let Some(i) = fresh(&self.indexes.lock()) {
            return Ok((i, IndexSource::Cached));
        }
        let _g = self.loading.lock().await;
        if let Some(i) = fresh(&self.indexes.lock()) {
            return Ok((i, IndexSource::Cached));
        }
        let loaded = match BucketIndex::read(&self.bucket, tenant).await {
            Ok(Some(i)) => Ok(i),
            Ok(None) => BucketIndex::build(&self.bucket, tenant, None, now_ms)
                .await
                .map(|(i, _)| i),
            Err(e) => Err(e),
        };
        match loaded {
            Ok(i) => {
                let i = Arc::new(i);
                self.indexes.lock().insert(
                    tenant.clone(),
                    Cached {
                        index: i.clone(),
                        loaded: Instant::now(),
                    },
                );
                Ok((i, IndexSource::Loaded))
            }
            Err(e) => match self.indexes.lock().get(tenant) {
                Some(t) => {
                    tracing::warn!(tenant = %tenant, error = %e, "bucket index reload failed; serving the previous index");
                    Ok((t.index.clone(), IndexSource::Stale))
                }
                None => Err(e),
            },
        }
    }

    /// Forgets every index, so the next query re-reads them (tests, admin endpoints).
    pub fn invalidate(&self) {
        self.indexes.lock().clear();
    }
}
