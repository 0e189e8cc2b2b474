//! An in-memory [`Queryable`] for tests and the upstream test-script runner.

use async_trait::async_trait;
use std::collections::BTreeMap;
use strata_model::{Labels, Matcher, Sample, TenantId};
use strata_storage::query::{Series, SeriesMetadata};
use strata_storage::{QueryError, Queryable};

/// Series kept in memory, sorted by labels; samples sorted by time (later adds of the same
/// timestamp replace earlier ones).
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    series: BTreeMap<Labels, BTreeMap<i64, f64>>,
    metadata: Vec<SeriesMetadata>,
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

    fn matching(&self, m: &[Matcher], start: i64, end: i64) -> Vec<Series> {
        // An inverted range selects nothing, as in the real stores (and `BTreeMap::range`
        // panics on it); remote read passes the client's range through unchecked.
        if start > end {
            return Vec::new();
        }
        self.series
            .iter()
            .filter(|(l, _)| m.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
            .map(|(l, s)| Series {
                labels: l.clone(),
                samples: s
                    .range(start..=end)
                    .map(|(&t, &v)| Sample::new(t, v))
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect()
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

    async fn series(
        &self,
        _: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        Ok(self
            .matching(m, start, end)
            .into_iter()
            .map(|s| s.labels)
            .collect())
    }

    async fn label_names(
        &self,
        _: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, QueryError> {
        let mut v: Vec<String> = self
            .matching(m, start, end)
            .iter()
            .flat_map(|s| s.labels.iter().map(|l| l.name.clone()))
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    async fn label_values(
        &self,
        _: &TenantId,
        n: &str,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, QueryError> {
        let mut v: Vec<String> = self
            .matching(m, start, end)
            .iter()
            .filter_map(|s| s.labels.get(n).map(str::to_owned))
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
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
        assert!(s.series(&t, &m, 20, 10).await.unwrap().is_empty());
    }
}
