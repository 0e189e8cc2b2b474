//! Tenant federation over the HTTP API: `X-Scope-OrgID: a|b` reads both tenants, each series
//! labelled with its tenant; one tenant named reads only that tenant; federation off refuses
//! the header.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use strata_model::{Labels, Matcher, Sample, TenancyConfig, TenancyMode, TenantId};
use strata_promql::testing::MemStore;
use strata_querier::{router, Querier, QuerierConfig};
use strata_storage::{ChunkedSeries, QueryError, Queryable, SelectHints, Series, SeriesMetadata};
use tower::ServiceExt;

/// A store per tenant; unknown tenants have no data.
struct PerTenant(HashMap<String, MemStore>);

impl PerTenant {
    fn of(&self, t: &TenantId) -> Option<&MemStore> {
        self.0.get(t.as_str())
    }
}

#[async_trait]
impl Queryable for PerTenant {
    async fn select(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
    ) -> Result<Vec<Series>, QueryError> {
        match self.of(t) {
            Some(x) => x.select(t, m, s, e).await,
            None => Ok(Vec::new()),
        }
    }
    async fn select_chunks_hinted(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
        h: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        match self.of(t) {
            Some(x) => x.select_chunks_hinted(t, m, s, e, h).await,
            None => Ok(Vec::new()),
        }
    }
    async fn series(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
        l: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        match self.of(t) {
            Some(x) => x.series(t, m, s, e, l).await,
            None => Ok(Vec::new()),
        }
    }
    async fn label_names(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
        l: usize,
    ) -> Result<Vec<String>, QueryError> {
        match self.of(t) {
            Some(x) => x.label_names(t, m, s, e, l).await,
            None => Ok(Vec::new()),
        }
    }
    async fn label_values(
        &self,
        t: &TenantId,
        n: &str,
        m: &[Matcher],
        s: i64,
        e: i64,
        l: usize,
    ) -> Result<Vec<String>, QueryError> {
        match self.of(t) {
            Some(x) => x.label_values(t, n, m, s, e, l).await,
            None => Ok(Vec::new()),
        }
    }
    async fn metadata(
        &self,
        t: &TenantId,
        m: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        match self.of(t) {
            Some(x) => x.metadata(t, m).await,
            None => Ok(Vec::new()),
        }
    }
}

/// Tenant `a`: `up{job="node"}` = 1 and `up{job="prom"}` = 2; tenant `b`: `up{job="node"}` = 10
/// and a series with its own `__tenant_id__` label; tenant `c`: `up{job="c"}` = 100.
fn stores() -> PerTenant {
    let mut m = HashMap::new();
    let mut one = |tenant: &str, series: &[(&[(&str, &str)], f64)]| {
        let mut s = MemStore::new();
        for (labels, v) in series {
            s.add(
                Labels::from_pairs(labels.iter().copied()),
                [Sample::new(10_000, *v)],
            );
        }
        m.insert(tenant.to_owned(), s);
    };
    one(
        "a",
        &[
            (&[("__name__", "up"), ("job", "node")], 1.0),
            (&[("__name__", "up"), ("job", "prom")], 2.0),
        ],
    );
    one(
        "b",
        &[
            (&[("__name__", "up"), ("job", "node")], 10.0),
            (&[("__name__", "inner"), ("__tenant_id__", "x")], 5.0),
        ],
    );
    one("c", &[(&[("__name__", "up"), ("job", "c")], 100.0)]);
    PerTenant(m)
}

fn app(federation: bool, max_tenants: usize, max_series: usize) -> axum::Router {
    let mut cfg = QuerierConfig::default();
    cfg.tenant_federation.enabled = federation;
    cfg.tenant_federation.max_tenants = max_tenants;
    cfg.max_series_per_request = max_series;
    let tenancy = TenancyConfig {
        mode: TenancyMode::Header,
        ..TenancyConfig::default()
    };
    router(Querier::new(cfg, tenancy, Arc::new(stores())).unwrap())
}

async fn get_with(app: axum::Router, uri: &str, org: &str) -> (u16, Value) {
    let req = Request::get(uri)
        .header("X-Scope-OrgID", org)
        .body(Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn get(uri: &str, org: &str) -> (u16, Value) {
    get_with(app(true, 32, 500_000), uri, org).await
}

/// `(tenant label, job, value)` of an instant vector answer, sorted.
fn vector(body: &Value) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = body["data"]["result"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|s| {
            let l = |n: &str| s["metric"][n].as_str().unwrap_or("").to_owned();
            (
                l("__tenant_id__"),
                l("job"),
                s["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn row(t: &str, job: &str, v: &str) -> (String, String, String) {
    (t.into(), job.into(), v.into())
}

#[tokio::test]
async fn a_federated_query_reads_every_tenant_named_and_labels_each_series() {
    let (status, body) = get("/api/v1/query?query=up&time=20", "b|a").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        vector(&body),
        vec![
            row("a", "node", "1"),
            row("a", "prom", "2"),
            row("b", "node", "10")
        ]
    );
    // Aggregation by tenant, and a matcher on the tenant label choosing one.
    let (_, body) = get(
        "/api/v1/query?query=sum%20by%20(__tenant_id__)%20(up)&time=20",
        "a|b|c",
    )
    .await;
    assert_eq!(
        vector(&body),
        vec![row("a", "", "3"), row("b", "", "10"), row("c", "", "100")]
    );
    let (_, body) = get(
        "/api/v1/query?query=up%7B__tenant_id__%3D%22b%22%7D&time=20",
        "a|b",
    )
    .await;
    assert_eq!(vector(&body), vec![row("b", "node", "10")]);
    // A series' own tenant label is kept under another name.
    let (_, body) = get("/api/v1/query?query=inner&time=20", "a|b").await;
    let m = &body["data"]["result"][0]["metric"];
    assert_eq!(
        (
            m["__tenant_id__"].as_str(),
            m["original___tenant_id__"].as_str()
        ),
        (Some("b"), Some("x")),
        "{body}"
    );
    // Range queries too.
    let (status, body) = get(
        "/api/v1/query_range?query=up&start=10&end=20&step=10",
        "a|c",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn federated_label_and_series_endpoints_name_the_tenants() {
    let (_, body) = get("/api/v1/label/__tenant_id__/values", "a|c").await;
    assert_eq!(body["data"], serde_json::json!(["a", "c"]));
    let (_, body) = get("/api/v1/labels", "a|b").await;
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(names.contains(&"__tenant_id__"), "{names:?}");
    assert!(names.contains(&"original___tenant_id__"), "{names:?}");
    let (_, body) = get("/api/v1/label/job/values", "a|b").await;
    assert_eq!(body["data"], serde_json::json!(["node", "prom"]));
    let (_, body) = get("/api/v1/series?match[]=up&start=0&end=20", "a|b").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 3, "{body}");
}

#[tokio::test]
async fn one_tenant_named_reads_only_that_tenant() {
    let (status, body) = get("/api/v1/query?query=up&time=20", "a").await;
    assert_eq!(status, 200);
    // No tenant label, and nothing of b.
    assert_eq!(
        vector(&body),
        vec![row("", "node", "1"), row("", "prom", "2")]
    );
    // Naming b in a matcher does not reach b's data without naming b in the header.
    let (_, body) = get(
        "/api/v1/query?query=up%7B__tenant_id__%3D%22b%22%7D&time=20",
        "a",
    )
    .await;
    assert_eq!(vector(&body), Vec::<(String, String, String)>::new());
    let (_, body) = get("/api/v1/label/__tenant_id__/values", "a").await;
    assert_eq!(body["data"], serde_json::json!([]));
}

#[tokio::test]
async fn federation_off_too_many_tenants_and_limits_are_refused() {
    // Off (the default): `a|b` is not a tenant id.
    let (status, body) = get_with(app(false, 32, 500_000), "/api/v1/query?query=up", "a|b").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("tenant id"),
        "{body}"
    );
    let (status, body) = get_with(app(true, 2, 500_000), "/api/v1/query?query=up", "a|b|c").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("querier.tenant_federation.max_tenants"),
        "{body}"
    );
    // Each tenant fits in 2 series, the federated answer (3) does not.
    let (status, body) = get_with(
        app(true, 32, 2),
        "/api/v1/series?match[]=up&start=0&end=20",
        "a|b",
    )
    .await;
    assert_eq!(status, 422, "{body}");
}
