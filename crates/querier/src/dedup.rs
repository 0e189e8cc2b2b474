//! Query-time deduplication of HA replicas stored separately (Thanos Querier's
//! `--query.replica-label`): series equal but for their replica labels are one series, read
//! from one replica and gaps filled from the others.
//!
//! The rule is Thanos's "penalty" algorithm: of two replicas, the sample with the smaller
//! timestamp is taken; the replica not taken must then jump ahead by twice the last sample
//! interval before it can be taken again (5 s before any interval is known), so switching
//! replicas never raises the sample rate, and a replica's gap is filled from the other at once.
//! More replicas are folded pairwise. For counter functions (`rate`, `increase`, `irate`,
//! `resets`), a switch to a replica whose counter is behind adds the difference to it, so a
//! switch is not a counter reset.

use async_trait::async_trait;
use std::sync::Arc;
use strata_model::{Label, Labels, Matcher, Sample, TenantId};
use strata_storage::limits::check_count;
use strata_storage::{
    ChunkedSeries, QueryError, Queryable, ReadLimit, SelectHints, Series, SeriesMetadata,
};

/// Before any sample interval is known, the replica not taken skips this much (ms).
const INITIAL_PENALTY_MS: i64 = 5_000;

/// Whether a function reads its selection as a counter (Thanos's list).
fn is_counter(func: Option<&str>) -> bool {
    matches!(func, Some("rate" | "increase" | "irate" | "resets"))
}

/// One replica's samples as the merge reads them.
struct Cursor<'a> {
    samples: &'a [Sample],
    at: usize,
    /// Added to every value (counter adjustment).
    adjust: f64,
    /// Skip ahead this far past the last sample taken before this replica may be taken.
    penalty: i64,
}

impl Cursor<'_> {
    fn current(&self) -> Option<Sample> {
        self.samples
            .get(self.at)
            .map(|s| Sample::new(s.t, s.v + self.adjust))
    }

    /// Moves to the first sample at or after `t`.
    fn seek(&mut self, t: i64) {
        while self.at < self.samples.len() && self.samples[self.at].t < t {
            self.at += 1;
        }
    }

    /// A counter behind `last` catches up to it.
    fn adjust_to(&mut self, last: f64) {
        if let Some(s) = self.current() {
            if last > s.v {
                self.adjust += last - s.v;
            }
        }
    }
}

/// Deduplicates two replicas' samples (each sorted by time).
pub fn dedup_pair(a: &[Sample], b: &[Sample], counter: bool) -> Vec<Sample> {
    let mut x = Cursor {
        samples: a,
        at: 0,
        adjust: 0.0,
        penalty: 0,
    };
    let mut y = Cursor {
        samples: b,
        at: 0,
        adjust: 0.0,
        penalty: 0,
    };
    let mut out: Vec<Sample> = Vec::with_capacity(a.len().max(b.len()));
    let mut last_t: Option<i64> = None;
    let mut use_a = true;
    loop {
        let from = last_t.map_or(i64::MIN, |t| t.saturating_add(1));
        x.seek(from.saturating_add(x.penalty));
        y.seek(from.saturating_add(y.penalty));
        let was_a = use_a;
        let (ca, cb) = (x.current(), y.current());
        let t = match (ca, cb) {
            (None, None) => break,
            (Some(sa), None) => {
                use_a = true;
                x.penalty = 0;
                sa.t
            }
            (None, Some(sb)) => {
                use_a = false;
                y.penalty = 0;
                sb.t
            }
            (Some(sa), Some(sb)) => {
                use_a = sa.t <= sb.t;
                let (taken, other) = if use_a {
                    (&mut x, &mut y)
                } else {
                    (&mut y, &mut x)
                };
                let t = if use_a { sa.t } else { sb.t };
                other.penalty = match last_t {
                    Some(last) => 2 * (t - last),
                    None => INITIAL_PENALTY_MS,
                };
                taken.penalty = 0;
                t
            }
        };
        if counter && use_a != was_a {
            if let Some(last) = out.last().map(|s| s.v) {
                x.adjust_to(last);
                y.adjust_to(last);
            }
        }
        let s = if use_a { x.current() } else { y.current() };
        if let Some(s) = s {
            out.push(s);
        }
        last_t = Some(t);
    }
    out
}

/// Deduplicates any number of replicas by folding [`dedup_pair`].
pub fn dedup_replicas(replicas: &[Vec<Sample>], counter: bool) -> Vec<Sample> {
    let mut it = replicas.iter();
    let Some(first) = it.next() else {
        return Vec::new();
    };
    let mut acc = first.clone();
    for r in it {
        acc = dedup_pair(&acc, r, counter);
    }
    acc
}

/// A [`Queryable`] that merges series differing only by `replica_labels`.
pub struct Dedup {
    inner: Arc<dyn Queryable>,
    replica_labels: Vec<String>,
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("replica_labels", &self.replica_labels)
            .finish_non_exhaustive()
    }
}

impl Dedup {
    pub fn new(inner: Arc<dyn Queryable>, replica_labels: Vec<String>) -> Self {
        Self {
            inner,
            replica_labels,
        }
    }

    fn strip(&self, labels: &Labels) -> Labels {
        Labels::from_sorted(
            labels
                .iter()
                .filter(|l| !self.replica_labels.contains(&l.name))
                .cloned()
                .collect::<Vec<Label>>(),
        )
    }

    /// Series grouped by their labels without replica labels, groups sorted by those labels;
    /// within a group, the stores' order.
    fn group<T>(&self, items: Vec<T>, labels: impl Fn(&T) -> &Labels) -> Vec<(Labels, Vec<T>)> {
        let mut keyed: Vec<(Labels, usize, T)> = items
            .into_iter()
            .enumerate()
            .map(|(i, s)| (self.strip(labels(&s)), i, s))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut out: Vec<(Labels, Vec<T>)> = Vec::new();
        for (l, _, s) in keyed {
            match out.last_mut() {
                Some((prev, v)) if *prev == l => v.push(s),
                _ => out.push((l, vec![s])),
            }
        }
        out
    }
}

#[async_trait]
impl Queryable for Dedup {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let v = self.inner.select(tenant, matchers, start, end).await?;
        Ok(self
            .group(v, |s| &s.labels)
            .into_iter()
            .map(|(labels, group)| {
                let replicas: Vec<Vec<Sample>> = group.into_iter().map(|s| s.samples).collect();
                Series {
                    labels,
                    samples: dedup_replicas(&replicas, false),
                }
            })
            .collect())
    }

    async fn select_chunks_hinted(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        let v = self
            .inner
            .select_chunks_hinted(tenant, matchers, start, end, hints)
            .await?;
        let counter = is_counter(hints.func.as_deref());
        Ok(self
            .group(v, |s| s.labels())
            .into_iter()
            .map(|(labels, mut group)| {
                if group.len() == 1 {
                    // One replica: its chunks stay compressed.
                    let mut one = group.remove(0);
                    *one.labels_mut() = labels;
                    return one;
                }
                let replicas: Vec<Vec<Sample>> = group
                    .iter()
                    .map(|s| {
                        let mut v = Vec::new();
                        s.decode_into(start, end, &mut v);
                        v
                    })
                    .collect();
                ChunkedSeries::Samples(Series {
                    labels,
                    samples: dedup_replicas(&replicas, counter),
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

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let v = self
            .inner
            .series(tenant, matchers, start, end, limit)
            .await?;
        let mut out: Vec<Labels> = v.iter().map(|l| self.strip(l)).collect();
        out.sort();
        out.dedup();
        check_count(out.len(), limit, ReadLimit::Series)?;
        Ok(out)
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let mut v = self
            .inner
            .label_names(tenant, matchers, start, end, limit)
            .await?;
        v.retain(|n| !self.replica_labels.contains(n));
        Ok(v)
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
        self.inner
            .label_values(tenant, name, matchers, start, end, limit)
            .await
    }

    async fn head_stats(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<strata_storage::HeadStats>, QueryError> {
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

    fn s(points: &[(i64, f64)]) -> Vec<Sample> {
        points.iter().map(|&(t, v)| Sample::new(t, v)).collect()
    }

    fn ts(v: &[Sample]) -> Vec<i64> {
        v.iter().map(|x| x.t).collect()
    }

    #[test]
    fn one_replica_is_followed_and_its_gap_filled_from_the_other() {
        // Replica a scrapes at 0,15,30,… s and misses 60–105 s; b scrapes 5 s later.
        let a: Vec<(i64, f64)> = [0, 15, 30, 45, 120, 135]
            .iter()
            .map(|&x| (x * 1000, 1.0))
            .collect();
        let b: Vec<(i64, f64)> = [5, 20, 35, 50, 65, 80, 95, 110, 125, 140]
            .iter()
            .map(|&x| (x * 1000, 2.0))
            .collect();
        let got = dedup_pair(&s(&a), &s(&b), false);
        // a until its gap; then b from 80 s: after a's 45 s sample, b had to skip past
        // 45 s + 2×15 s (its 65 s sample is too close); a is behind from then on.
        assert_eq!(
            ts(&got),
            vec![0, 15_000, 30_000, 45_000, 80_000, 95_000, 110_000, 125_000, 140_000]
        );
        // Never two samples closer than the scrape interval's half.
        assert!(got.windows(2).all(|w| w[1].t - w[0].t >= 7_500), "{got:?}");
    }

    #[test]
    fn identical_replicas_give_one_copy() {
        let a = s(&[(0, 1.0), (15_000, 2.0), (30_000, 3.0)]);
        assert_eq!(dedup_pair(&a, &a, false), a);
        assert_eq!(dedup_replicas(&[a.clone(), a.clone(), a.clone()], false), a);
        assert_eq!(dedup_pair(&a, &[], false), a);
        assert_eq!(dedup_pair(&[], &a, false), a);
    }

    #[test]
    fn a_counter_behind_on_the_other_replica_is_not_a_reset() {
        // a stops at 40; b is behind (a restart lost some increments) and continues.
        let a = s(&[(0, 20.0), (10_000, 30.0), (20_000, 40.0)]);
        let b = s(&[(5_000, 15.0), (50_000, 17.0), (60_000, 18.0)]);
        let got = dedup_pair(&a, &b, true);
        let values: Vec<f64> = got.iter().map(|x| x.v).collect();
        assert!(values.windows(2).all(|w| w[1] >= w[0]), "{values:?}");
        // Without the counter rule the switch goes down.
        let plain: Vec<f64> = dedup_pair(&a, &b, false).iter().map(|x| x.v).collect();
        assert!(plain.windows(2).any(|w| w[1] < w[0]), "{plain:?}");
    }

    #[test]
    fn counter_functions_are_thanos_s() {
        assert!(is_counter(Some("rate")) && is_counter(Some("resets")));
        assert!(!is_counter(Some("sum_over_time")) && !is_counter(None));
    }
}
