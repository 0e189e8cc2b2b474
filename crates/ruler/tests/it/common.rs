//! Shared test helpers: an in-memory store that is both the queryable and the pusher, so that
//! what rules write is visible to later queries, and a record of every write.

use async_trait::async_trait;
use parking_lot::Mutex;
use std::sync::Arc;
use strata_model::{Labels, Matcher, Sample, TenantId, WriteBatch};
use strata_promql::testing::MemStore;
use strata_storage::query::{Series, SeriesMetadata};
use strata_storage::{PushError, PushOutcome, Pusher, QueryError, Queryable};

/// One pushed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Store {
    pub data: Arc<Mutex<MemStore>>,
    pub written: Arc<Mutex<Vec<Written>>>,
}

impl Store {
    pub fn take_written(&self) -> Vec<Written> {
        std::mem::take(&mut *self.written.lock())
    }
    fn snapshot(&self) -> MemStore {
        self.data.lock().clone()
    }
}

#[async_trait]
impl Pusher for Store {
    async fn push(&self, _: &TenantId, batch: &WriteBatch<'_>) -> Result<PushOutcome, PushError> {
        let mut data = self.data.lock();
        let mut written = self.written.lock();
        for i in 0..batch.series.len() {
            let labels = Labels::from_pairs(batch.series_labels(i).iter().copied());
            let samples = batch.series_samples(i);
            for s in samples {
                written.push(Written {
                    labels: labels.clone(),
                    t: s.t,
                    v: s.v,
                });
            }
            data.add(labels, samples.iter().copied());
        }
        Ok(PushOutcome {
            samples_written: batch.samples.len() as u64,
            ..Default::default()
        })
    }
}

#[async_trait]
impl Queryable for Store {
    async fn select(
        &self,
        t: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        self.snapshot().select(t, m, start, end).await
    }
    async fn series(
        &self,
        t: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        self.snapshot().series(t, m, start, end, limit).await
    }
    async fn label_names(
        &self,
        t: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.snapshot().label_names(t, m, start, end, limit).await
    }
    async fn label_values(
        &self,
        t: &TenantId,
        name: &str,
        m: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.snapshot()
            .label_values(t, name, m, start, end, limit)
            .await
    }
    async fn metadata(
        &self,
        t: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        self.snapshot().metadata(t, metric).await
    }
}

/// Parses `name{a="b", c="d"}` (name optional) into sorted labels.
pub fn parse_series(s: &str) -> Labels {
    let s = s.trim();
    let (name, rest) = match s.find('{') {
        Some(i) => (&s[..i], &s[i + 1..s.rfind('}').expect("closing brace")]),
        None => (s, ""),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push(("__name__".into(), name.into()));
    }
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').expect("=");
        let k = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        assert!(after.starts_with('"'), "value must be quoted: {s}");
        let end = after[1..].find('"').expect("closing quote") + 1;
        pairs.push((k, after[1..end].to_string()));
        rest = after[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    Labels::from_pairs(pairs)
}

/// Expands promqltest's value notation: `1 2 _ stale 1+2x3 5-1x2` (`a+bxn` = a, a+b, ...,
/// n+1 values). Returns one optional value per step.
pub fn parse_values(s: &str) -> Vec<Option<f64>> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        match tok {
            "_" => out.push(None),
            "stale" => out.push(Some(strata_model::STALE_NAN)),
            t => {
                if let Some((head, n)) = t.split_once('x') {
                    let n: usize = n.parse().expect("repeat count");
                    let (a, b) = match head[1..].find(['+', '-']) {
                        Some(i) => {
                            let (a, b) = head.split_at(i + 1);
                            (
                                a.parse::<f64>().expect("start"),
                                b.parse::<f64>().expect("step"),
                            )
                        }
                        None => (head.parse::<f64>().expect("value"), 0.0),
                    };
                    for k in 0..=n {
                        out.push(Some(a + b * k as f64));
                    }
                } else {
                    out.push(Some(t.parse().expect("value")));
                }
            }
        }
    }
    out
}

/// Loads `series values` lines at `step_ms` from time 0.
pub fn load(store: &Store, step_ms: i64, lines: &str) {
    let mut data = store.data.lock();
    for line in lines.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let split = line
            .rfind('}')
            .map_or_else(|| line.find(' ').expect("values"), |i| i + 1);
        let labels = parse_series(&line[..split]);
        let samples: Vec<Sample> = parse_values(&line[split..])
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| Sample::new(i as i64 * step_ms, v)))
            .collect();
        data.add(labels, samples);
    }
}
