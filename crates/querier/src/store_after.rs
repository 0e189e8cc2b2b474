//! Blocks asked only for data older than a cutoff (`querier.query_store_after`): the ingesters
//! answer the recent range on their own, so its samples reach the engine once, as compressed
//! head chunks, instead of being decoded from both copies and merged.

use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use strata_model::{Labels, Matcher, TenantId};
use strata_storage::{
    ChunkedSeries, HeadStats, QueryError, Queryable, SelectHints, Series, SeriesMetadata,
};

/// `inner` (the blocks) read only up to `now - after`; ranges entirely newer are answered empty
/// without asking it.
pub struct OlderThan {
    inner: Arc<dyn Queryable>,
    after: Duration,
    now: fn() -> i64,
}

impl std::fmt::Debug for OlderThan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OlderThan")
            .field("after", &self.after)
            .finish_non_exhaustive()
    }
}

impl OlderThan {
    /// `inner` for data older than `after` (0: every range).
    pub fn new(inner: Arc<dyn Queryable>, after: Duration) -> Self {
        Self::with_clock(inner, after, strata_model::time::now_ms)
    }

    /// As [`OlderThan::new`] with a given clock (tests).
    pub fn with_clock(inner: Arc<dyn Queryable>, after: Duration, now: fn() -> i64) -> Self {
        Self { inner, after, now }
    }

    /// The end to ask `inner` for, or `None` when the whole range is newer than the cutoff.
    fn end(&self, start: i64, end: i64) -> Option<i64> {
        if self.after.is_zero() {
            return Some(end);
        }
        let cutoff = (self.now)().saturating_sub(self.after.as_millis() as i64);
        let end = end.min(cutoff);
        (start <= end).then_some(end)
    }
}

#[async_trait]
impl Queryable for OlderThan {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        match self.end(start, end) {
            Some(end) => self.inner.select(tenant, matchers, start, end).await,
            None => Ok(Vec::new()),
        }
    }

    async fn select_chunks(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        match self.end(start, end) {
            Some(end) => self.inner.select_chunks(tenant, matchers, start, end).await,
            None => Ok(Vec::new()),
        }
    }

    async fn select_chunks_hinted(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        match self.end(start, end) {
            Some(end) => {
                self.inner
                    .select_chunks_hinted(tenant, matchers, start, end, hints)
                    .await
            }
            None => Ok(Vec::new()),
        }
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        match self.end(start, end) {
            Some(end) => self.inner.series(tenant, matchers, start, end, limit).await,
            None => Ok(Vec::new()),
        }
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        match self.end(start, end) {
            Some(end) => {
                self.inner
                    .label_names(tenant, matchers, start, end, limit)
                    .await
            }
            None => Ok(Vec::new()),
        }
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
        match self.end(start, end) {
            Some(end) => {
                self.inner
                    .label_values(tenant, name, matchers, start, end, limit)
                    .await
            }
            None => Ok(Vec::new()),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::Sample;
    use strata_promql::testing::MemStore;

    const NOW: i64 = 100 * 3_600_000;
    const H: i64 = 3_600_000;

    fn store() -> OlderThan {
        let mut m = MemStore::new();
        m.add(
            Labels::from_pairs([("__name__", "x")]),
            (0..100).map(|h| Sample::new(h * H, h as f64)),
        );
        OlderThan::with_clock(Arc::new(m), Duration::from_secs(12 * 3600), || NOW)
    }

    fn tenant() -> TenantId {
        TenantId::new("t").unwrap()
    }

    #[tokio::test]
    async fn blocks_answer_only_before_the_cutoff() {
        let s = store();
        let m = [Matcher::equal("__name__", "x")];
        // A range across the cutoff (88 h): samples up to it only.
        let got = s.select(&tenant(), &m, 80 * H, 99 * H).await.unwrap();
        let ts: Vec<i64> = got[0].samples.iter().map(|x| x.t / H).collect();
        assert_eq!(ts, (80..=88).collect::<Vec<_>>());
        // A range wholly newer: nothing, and labels too.
        assert!(s
            .select(&tenant(), &m, 89 * H, 99 * H)
            .await
            .unwrap()
            .is_empty());
        assert!(s
            .label_names(&tenant(), &[], 89 * H, 99 * H, usize::MAX)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            s.label_names(&tenant(), &[], 0, 99 * H, usize::MAX)
                .await
                .unwrap(),
            vec!["__name__".to_owned()]
        );
        // Off: every range.
        let off = OlderThan::with_clock(Arc::new(MemStore::new()), Duration::ZERO, || NOW);
        assert_eq!(off.end(95 * H, 99 * H), Some(99 * H));
    }
}
