//! Tenant federation: one read over several tenants (`X-Scope-OrgID: a|b|c`, Mimir's
//! convention). Each tenant is read on its own, with the request's limits applying to each
//! tenant's part, and every series comes back with a `__tenant_id__` label naming its tenant (a
//! series that already has one keeps it as `original___tenant_id__`). Matchers on
//! `__tenant_id__` choose the tenants read; the other matchers go to every tenant.

use async_trait::async_trait;
use futures::future::try_join_all;
use std::sync::Arc;
use strata_model::{Label, Labels, Matcher, TenantId};
use strata_storage::limits::check_count;
use strata_storage::merge::merge_strings_limited;
use strata_storage::{
    ChunkedSeries, QueryError, Queryable, ReadLimit, SelectHints, Series, SeriesMetadata,
};

/// The label naming a series' tenant in a federated answer.
pub const TENANT_LABEL: &str = "__tenant_id__";
/// Where a series' own `__tenant_id__` label goes in a federated answer.
pub const ORIGINAL_TENANT_LABEL: &str = "original___tenant_id__";

/// A [`Queryable`] over several tenants of `inner`. The `tenant` argument of its methods is
/// ignored: the tenants are those it was built with (the querier builds one per request).
pub struct Federated {
    inner: Arc<dyn Queryable>,
    tenants: Vec<TenantId>,
}

impl std::fmt::Debug for Federated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federated")
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

impl Federated {
    /// `tenants` sorted and without duplicates (as [`strata_model::TenancyConfig`] resolves
    /// them).
    pub fn new(inner: Arc<dyn Queryable>, tenants: Vec<TenantId>) -> Self {
        Self { inner, tenants }
    }

    /// The tenants that `matchers` allow, and the matchers left for each tenant's read.
    fn split(&self, matchers: &[Matcher]) -> (Vec<&TenantId>, Vec<Matcher>) {
        let (on_tenant, rest): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| m.name == TENANT_LABEL);
        let tenants = self
            .tenants
            .iter()
            .filter(|t| on_tenant.iter().all(|m| m.matches(t.as_str())))
            .collect();
        // A series' own tenant label is answered as `original___tenant_id__`: matchers on that
        // name select the stored `__tenant_id__`.
        let rest = rest
            .into_iter()
            .map(|m| {
                let mut m = m.clone();
                if m.name == ORIGINAL_TENANT_LABEL {
                    m.name = TENANT_LABEL.to_owned();
                }
                m
            })
            .collect();
        (tenants, rest)
    }
}

/// `labels` with the tenant label added (an existing one renamed).
fn with_tenant(labels: &Labels, tenant: &TenantId) -> Labels {
    let mut v: Vec<Label> = Vec::with_capacity(labels.len() + 1);
    for l in labels {
        if l.name == TENANT_LABEL {
            v.push(Label::new(ORIGINAL_TENANT_LABEL, l.value.clone()));
        } else {
            v.push(l.clone());
        }
    }
    v.push(Label::new(TENANT_LABEL, tenant.as_str()));
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Labels::from_sorted(v)
}

fn relabel_chunked(mut s: ChunkedSeries, tenant: &TenantId) -> ChunkedSeries {
    let labels = with_tenant(s.labels(), tenant);
    *s.labels_mut() = labels;
    s
}

#[async_trait]
impl Queryable for Federated {
    async fn select(
        &self,
        _tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let (tenants, rest) = self.split(matchers);
        let rest = &rest;
        let parts = try_join_all(tenants.iter().map(|t| async move {
            let v = self.inner.select(t, rest, start, end).await?;
            Ok::<_, QueryError>(
                v.into_iter()
                    .map(|s| Series {
                        labels: with_tenant(&s.labels, t),
                        samples: s.samples,
                    })
                    .collect::<Vec<_>>(),
            )
        }))
        .await?;
        let mut out: Vec<Series> = parts.into_iter().flatten().collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    async fn select_chunks_hinted(
        &self,
        _tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        let (tenants, rest) = self.split(matchers);
        let rest = &rest;
        let parts = try_join_all(tenants.iter().map(|t| async move {
            let v = self
                .inner
                .select_chunks_hinted(t, rest, start, end, hints)
                .await?;
            Ok::<_, QueryError>(
                v.into_iter()
                    .map(|s| relabel_chunked(s, t))
                    .collect::<Vec<_>>(),
            )
        }))
        .await?;
        // Tenants' series never share labels (their tenant label differs): sorting is enough.
        let mut out: Vec<ChunkedSeries> = parts.into_iter().flatten().collect();
        out.sort_by(|a, b| a.labels().cmp(b.labels()));
        Ok(out)
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
        _tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let (tenants, rest) = self.split(matchers);
        let rest = &rest;
        let parts = try_join_all(tenants.iter().map(|t| async move {
            let v = self.inner.series(t, rest, start, end, limit).await?;
            Ok::<_, QueryError>(v.iter().map(|l| with_tenant(l, t)).collect::<Vec<_>>())
        }))
        .await?;
        let mut out: Vec<Labels> = parts.into_iter().flatten().collect();
        check_count(out.len(), limit, ReadLimit::Series)?;
        out.sort();
        Ok(out)
    }

    async fn label_names(
        &self,
        _tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let (tenants, rest) = self.split(matchers);
        let rest = &rest;
        let mut parts = try_join_all(tenants.iter().map(|t| async move {
            let mut v = self.inner.label_names(t, rest, start, end, limit).await?;
            // A tenant's own `__tenant_id__` label is answered under its new name.
            if let Some(i) = v.iter().position(|n| n == TENANT_LABEL) {
                v[i] = ORIGINAL_TENANT_LABEL.to_owned();
                v.sort();
            }
            Ok::<_, QueryError>(v)
        }))
        .await?;
        if !tenants.is_empty() {
            parts.push(vec![TENANT_LABEL.to_owned()]);
        }
        Ok(merge_strings_limited(parts, limit, ReadLimit::LabelNames)?)
    }

    async fn label_values(
        &self,
        _tenant: &TenantId,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let (tenants, rest) = self.split(matchers);
        if name == TENANT_LABEL {
            let v: Vec<String> = tenants.iter().map(|t| t.as_str().to_owned()).collect();
            check_count(v.len(), limit, ReadLimit::LabelValues)?;
            return Ok(v);
        }
        let inner_name = if name == ORIGINAL_TENANT_LABEL {
            TENANT_LABEL
        } else {
            name
        };
        let rest = &rest;
        let parts = try_join_all(tenants.iter().map(|t| async move {
            self.inner
                .label_values(t, inner_name, rest, start, end, limit)
                .await
        }))
        .await?;
        Ok(merge_strings_limited(parts, limit, ReadLimit::LabelValues)?)
    }

    async fn metadata(
        &self,
        _tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        let parts = try_join_all(
            self.tenants
                .iter()
                .map(|t| async move { self.inner.metadata(t, metric).await }),
        )
        .await?;
        let mut out: Vec<SeriesMetadata> = parts.into_iter().flatten().collect();
        out.sort_by(|a, b| a.family.cmp(&b.family).then(a.help.cmp(&b.help)));
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::MatchOp;

    #[test]
    fn the_tenant_label_is_added_and_an_existing_one_kept_under_another_name() {
        let t = TenantId::new("team-b").unwrap();
        let l = with_tenant(&Labels::from_pairs([("__name__", "up"), ("job", "x")]), &t);
        assert_eq!(l.get(TENANT_LABEL), Some("team-b"));
        assert_eq!(l.len(), 3);
        let l = with_tenant(
            &Labels::from_pairs([("__name__", "up"), (TENANT_LABEL, "inner")]),
            &t,
        );
        assert_eq!(l.get(TENANT_LABEL), Some("team-b"));
        assert_eq!(l.get(ORIGINAL_TENANT_LABEL), Some("inner"));
        let names: Vec<&str> = l.iter().map(|x| x.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn matchers_on_the_tenant_label_choose_the_tenants() {
        let ts: Vec<TenantId> = ["a", "b", "c"]
            .iter()
            .map(|t| TenantId::new(t).unwrap())
            .collect();
        let f = Federated::new(
            Arc::new(strata_storage::MergeQueryable::new(Vec::new())),
            ts,
        );
        let m = [
            Matcher::equal("__name__", "up"),
            Matcher::new(MatchOp::RegexMatch, TENANT_LABEL, "a|c").unwrap(),
        ];
        let (chosen, rest) = f.split(&m);
        let chosen: Vec<&str> = chosen.iter().map(|t| t.as_str()).collect();
        assert_eq!(chosen, vec!["a", "c"]);
        assert_eq!(rest, vec![Matcher::equal("__name__", "up")]);
        let m = [Matcher::new(MatchOp::NotEqual, TENANT_LABEL, "b").unwrap()];
        assert_eq!(f.split(&m).0.len(), 2);
        let m = [Matcher::equal(ORIGINAL_TENANT_LABEL, "x")];
        assert_eq!(f.split(&m).1, vec![Matcher::equal(TENANT_LABEL, "x")]);
    }
}
