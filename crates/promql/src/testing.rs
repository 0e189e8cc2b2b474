//! An in-memory [`Queryable`] for tests and the upstream test-script runner.

use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use strata_model::{Labels, Matcher, Sample, TenantId};
use strata_storage::limits::check_count;
use strata_storage::query::{Series, SeriesMetadata};
use strata_storage::{ChunkedSeries, QueryError, Queryable, ReadLimit, SelectHints};

/// Series kept in memory, sorted by labels; samples sorted by time (later adds of the same
/// timestamp replace earlier ones). Reads stop at their limits like a real store's, and the
/// series they produce are counted ([`MemStore::series_produced`]).
#[derive(Debug, Default)]
pub struct MemStore {
    series: BTreeMap<Labels, BTreeMap<i64, f64>>,
    metadata: Vec<SeriesMetadata>,
    produced: AtomicUsize,
}

impl Clone for MemStore {
    fn clone(&self) -> Self {
        Self {
            series: self.series.clone(),
            metadata: self.metadata.clone(),
            produced: AtomicUsize::new(0),
        }
    }
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, labels: Labels, samples: impl IntoIterator<Item = Sample>) {
        let e = self.series.entry(labels).or_default();
        for s in samples {
            e.insert(s.t, s.v);
        }
    }

    /// Sets what `metadata()` answers.
    pub fn set_metadata(&mut self, metadata: Vec<SeriesMetadata>) {
        self.metadata = metadata;
    }

    /// Every series with all its samples, sorted by labels.
    pub fn all_series(&self) -> Vec<(Labels, Vec<Sample>)> {
        self.series
            .iter()
            .map(|(l, s)| {
                (
                    l.clone(),
                    s.iter().map(|(&t, &v)| Sample::new(t, v)).collect(),
                )
            })
            .collect()
    }

    pub fn clear(&mut self) {
        self.series.clear();
    }

    /// Series handed out by reads so far (a read stopped by a limit hands out fewer).
    pub fn series_produced(&self) -> usize {
        self.produced.load(Ordering::Relaxed)
    }

    /// The matching series with samples in the range, one at a time.
    fn matching_iter<'a>(
        &'a self,
        m: &'a [Matcher],
        start: i64,
        end: i64,
    ) -> impl Iterator<Item = Series> + 'a {
        self.series
            .iter()
            // An inverted range selects nothing, as in the real stores (and `BTreeMap::range`
            // panics on it); remote read passes the client's range through unchecked.
            .filter(move |_| start <= end)
            .filter(move |(l, _)| m.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
            .map(move |(l, s)| Series {
                labels: l.clone(),
                samples: s
                    .range(start..=end)
                    .map(|(&t, &v)| Sample::new(t, v))
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .inspect(|_| {
                self.produced.fetch_add(1, Ordering::Relaxed);
            })
    }

    fn matching(&self, m: &[Matcher], start: i64, end: i64) -> Vec<Series> {
        self.matching_iter(m, start, end).collect()
    }
}

#[async_trait]
impl Queryable for MemStore {
    async fn select(
        &self,
        _: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        Ok(self.matching(m, start, end))
    }

    async fn select_chunks(
        &self,
        t: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        self.select_chunks_hinted(t, m, start, end, &SelectHints::default())
            .await
    }

    async fn select_chunks_hinted(
        &self,
        _: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        let mut tally = hints.limits.tally();
        let mut out = Vec::new();
        for s in self.matching_iter(m, start, end) {
            let s = ChunkedSeries::Samples(s);
            tally.add_series(&s)?;
            out.push(s);
        }
        Ok(out)
    }

    async fn series(
        &self,
        _: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let mut out = Vec::new();
        for s in self.matching_iter(m, start, end) {
            out.push(s.labels);
            check_count(out.len(), limit, ReadLimit::Series)?;
        }
        Ok(out)
    }

    async fn label_names(
        &self,
        _: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let mut v = std::collections::BTreeSet::new();
        for s in self.matching_iter(m, start, end) {
            v.extend(s.labels.iter().map(|l| l.name.clone()));
            check_count(v.len(), limit, ReadLimit::LabelNames)?;
        }
        Ok(v.into_iter().collect())
    }

    async fn label_values(
        &self,
        _: &TenantId,
        n: &str,
        m: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let mut v = std::collections::BTreeSet::new();
        for s in self.matching_iter(m, start, end) {
            if let Some(x) = s.labels.get(n) {
                v.insert(x.to_owned());
                check_count(v.len(), limit, ReadLimit::LabelValues)?;
            }
        }
        Ok(v.into_iter().collect())
    }

    async fn metadata(
        &self,
        _: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        Ok(self
            .metadata
            .iter()
            .filter(|m| metric.is_none_or(|n| m.family == n))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `snappy_body` fuzz target: a remote-read query whose start is after its end
    /// made the store panic.
    #[tokio::test]
    async fn an_inverted_range_selects_nothing() {
        let mut s = MemStore::new();
        s.add(
            Labels::from_pairs([("__name__", "up")]),
            [Sample::new(10, 1.0), Sample::new(20, 1.0)],
        );
        let t = TenantId::new("t").unwrap();
        let m = [Matcher::equal("__name__", "up")];
        assert_eq!(s.select(&t, &m, 0, 30).await.unwrap().len(), 1);
        assert!(s.select(&t, &m, 30, 0).await.unwrap().is_empty());
        assert!(s.series(&t, &m, 20, 10, 0).await.unwrap().is_empty());
    }
}
