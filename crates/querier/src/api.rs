//! Handlers of the Prometheus HTTP API that read series metadata: `series`, `labels`,
//! `label/<name>/values`, `metadata`, and remote read.

use crate::config::QuerierConfig;
use crate::error::ApiError;
use crate::federation::Federated;
use crate::params::Params;
use crate::remote_read;
use crate::selector::parse_selector;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::BTreeSet;
use std::sync::Arc;
use strata_model::{Labels, Matcher, TenancyConfig, TenantId};
use strata_storage::limits::check_count;
use strata_storage::{QueryError, Queryable, ReadLimit};

/// The querier component.
pub struct Querier {
    pub(crate) cfg: QuerierConfig,
    tenancy: TenancyConfig,
    pub(crate) store: Arc<dyn Queryable>,
}

impl std::fmt::Debug for Querier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Querier")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Querier {
    pub fn new(
        cfg: QuerierConfig,
        tenancy: TenancyConfig,
        store: Arc<dyn Queryable>,
    ) -> Result<Arc<Self>, ApiError> {
        cfg.validate()?;
        let store: Arc<dyn Queryable> = if cfg.replica_labels.is_empty() {
            store
        } else {
            Arc::new(crate::dedup::Dedup::new(store, cfg.replica_labels.clone()))
        };
        Ok(Arc::new(Self {
            cfg,
            tenancy,
            store,
        }))
    }

    pub(crate) fn tenant(&self, headers: &HeaderMap) -> Result<TenantId, ApiError> {
        let hv = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        Ok(self
            .tenancy
            .resolve(hv("x-scope-orgid"), hv("authorization"))?)
    }

    /// The tenant of a read and the store to read it from: with tenant federation on and
    /// several tenants named, a [`Federated`] view over them (whose methods ignore the tenant
    /// argument; the first tenant is passed).
    pub(crate) fn source(
        &self,
        headers: &HeaderMap,
    ) -> Result<(TenantId, Arc<dyn Queryable>), ApiError> {
        let fed = &self.cfg.tenant_federation;
        if !fed.enabled {
            return Ok((self.tenant(headers)?, self.store.clone()));
        }
        let hv = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        let mut tenants = self
            .tenancy
            .resolve_all(hv("x-scope-orgid"), hv("authorization"))?;
        if tenants.len() > fed.max_tenants {
            return Err(ApiError::BadData(format!(
                "X-Scope-OrgID names {} tenants; at most {} may be read at once (querier.tenant_federation.max_tenants)",
                tenants.len(),
                fed.max_tenants
            )));
        }
        if tenants.len() == 1 {
            return Ok((tenants.remove(0), self.store.clone()));
        }
        let first = tenants[0].clone();
        Ok((first, Arc::new(Federated::new(self.store.clone(), tenants))))
    }
}

pub(crate) fn params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Params {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    Params::parse(uri.query(), is_form.then_some(body))
}

/// Parses every `match[]`; `required` mirrors the endpoints where Prometheus demands one.
/// Each set must have a matcher that does not match the empty string (checked by the
/// selector's parsing): an empty one would select the tenant's whole data set.
fn matcher_sets(
    p: &Params,
    required: bool,
    cfg: &QuerierConfig,
) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let raw = p.all("match[]");
    if raw.is_empty() && required {
        return Err(ApiError::BadData("no match[] parameter provided".into()));
    }
    let mut sets = Vec::new();
    for s in raw {
        sets.extend(parse_selector(s, cfg)?);
    }
    Ok(sets)
}

fn json_ok(data: String) -> Response {
    let mut body = String::with_capacity(data.len() + 32);
    body.push_str(r#"{"status":"success","data":"#);
    body.push_str(&data);
    body.push('}');
    json_response(body)
}

/// A complete JSON body with the content type every API answer carries.
pub(crate) fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub(crate) fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly as JSON requires; it cannot fail for a &str.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn json_strings<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("[");
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, s);
    }
    out.push(']');
    out
}

pub(crate) fn json_labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, label) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, &label.name);
        out.push(':');
        push_json_str(out, &label.value);
    }
    out.push('}');
}

async fn series(
    State(q): State<Arc<Querier>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(&uri, &headers, &body);
    let (tenant, store) = q.source(&headers)?;
    let sets = matcher_sets(&p, true, &q.cfg)?;
    let (start, end) = p.range()?;
    let limit = q.cfg.max_series_per_request;
    let mut all: BTreeSet<Labels> = BTreeSet::new();
    // Each store stops at the limit; the union of several `match[]` may still exceed it.
    for set in &sets {
        for l in store.series(&tenant, set, start, end, limit).await? {
            all.insert(l);
            check_count(all.len(), limit, ReadLimit::Series).map_err(QueryError::from)?;
        }
    }
    let mut out = String::from("[");
    for (i, l) in all.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_labels(&mut out, l);
    }
    out.push(']');
    Ok(json_ok(out))
}

async fn labels(
    State(q): State<Arc<Querier>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(&uri, &headers, &body);
    let (tenant, store) = q.source(&headers)?;
    let sets = matcher_sets(&p, false, &q.cfg)?;
    let (start, end) = p.range()?;
    let limit = q.cfg.max_label_names_per_request;
    let mut names = BTreeSet::new();
    if sets.is_empty() {
        names.extend(store.label_names(&tenant, &[], start, end, limit).await?);
    }
    for set in &sets {
        names.extend(store.label_names(&tenant, set, start, end, limit).await?);
        check_count(names.len(), limit, ReadLimit::LabelNames).map_err(QueryError::from)?;
    }
    Ok(json_ok(json_strings(names.iter().map(String::as_str))))
}

async fn label_values(
    State(q): State<Arc<Querier>>,
    Path(name): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(&uri, &headers, &body);
    let (tenant, store) = q.source(&headers)?;
    if !is_label_name(&name) {
        return Err(ApiError::BadData(format!("invalid label name: {name:?}")));
    }
    let sets = matcher_sets(&p, false, &q.cfg)?;
    let (start, end) = p.range()?;
    let limit = q.cfg.max_label_values_per_request;
    let mut values = BTreeSet::new();
    if sets.is_empty() {
        values.extend(
            store
                .label_values(&tenant, &name, &[], start, end, limit)
                .await?,
        );
    }
    for set in &sets {
        values.extend(
            store
                .label_values(&tenant, &name, set, start, end, limit)
                .await?,
        );
        check_count(values.len(), limit, ReadLimit::LabelValues).map_err(QueryError::from)?;
    }
    Ok(json_ok(json_strings(values.iter().map(String::as_str))))
}

fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

async fn metadata(
    State(q): State<Arc<Querier>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(&uri, &headers, &body);
    let (tenant, store) = q.source(&headers)?;
    let limit = match p.get("limit") {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| ApiError::BadData("limit must be a number".into()))?,
        ),
    };
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let md = store.metadata(&tenant, metric).await?;
    let mut map = serde_json::Map::new();
    for m in md {
        if limit.is_some_and(|l| l >= 0 && map.len() as i64 >= l) {
            break;
        }
        map.insert(
            m.family,
            serde_json::json!([{ "type": m.metric_type.as_str(), "help": m.help, "unit": m.unit }]),
        );
    }
    Ok(json_ok(serde_json::Value::Object(map).to_string()))
}

async fn buildinfo() -> Response {
    // Grafana reads `version` to pick features; Strata evaluates with Prometheus 3 semantics.
    let body = format!(
        r#"{{"status":"success","data":{{"version":"3.0.0","revision":"strata-{v}","branch":"main","buildUser":"strata","buildDate":"","goVersion":"none","application":"strata","strataVersion":"{v}"}}}}"#,
        v = env!("CARGO_PKG_VERSION")
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn format_query(
    State(querier): State<Arc<Querier>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(&uri, &headers, &body);
    let q = p.get("query").unwrap_or("");
    let cfg = &querier.cfg;
    let expr = strata_promql::parse_checked(q, cfg.max_query_bytes, cfg.max_query_depth)?;
    let mut out = String::new();
    push_json_str(&mut out, &expr.prettify());
    Ok(json_ok(out))
}

async fn query_exemplars(
    State(q): State<Arc<Querier>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let p = params(&uri, &headers, &body);
    q.tenant(&headers)?;
    let query = p.get("query").unwrap_or("");
    strata_promql::parse_checked(query, q.cfg.max_query_bytes, q.cfg.max_query_depth)?;
    p.range()?;
    // Exemplars are not stored yet: the answer is honestly empty.
    Ok(json_ok("[]".into()))
}

/// `/api/v1/status/tsdb`: head cardinality, computed from the head's series.
async fn tsdb_status(
    State(q): State<Arc<Querier>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    use std::collections::HashMap;
    let p = params(&uri, &headers, &body);
    let tenant = q.tenant(&headers)?;
    let limit: usize = match p.get("limit") {
        None | Some("") => 10,
        Some(s) => s
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| ApiError::BadData("limit must be a positive number".into()))?,
    };
    let all = [
        Matcher::new(strata_model::MatchOp::RegexMatch, "__name__", ".+")
            .map_err(|e| ApiError::Execution(e.to_string()))?,
    ];
    // The status page counts every series of the head, bounded like a series request: the
    // stores stop reading past `querier.max_series_per_request` (422 naming it) instead of
    // materialising a tenant of any size.
    let series = q
        .store
        .series(
            &tenant,
            &all,
            crate::params::MIN_TIME,
            crate::params::MAX_TIME,
            q.cfg.max_series_per_request,
        )
        .await?;
    let stats = q.store.head_stats(&tenant).await?.unwrap_or_default();
    let mut by_metric: HashMap<&str, u64> = HashMap::new();
    let mut values_by_name: HashMap<&str, std::collections::HashSet<&str>> = HashMap::new();
    let mut bytes_by_name: HashMap<&str, u64> = HashMap::new();
    let mut by_pair: HashMap<(&str, &str), u64> = HashMap::new();
    for l in &series {
        if let Some(n) = l.metric_name() {
            *by_metric.entry(n).or_default() += 1;
        }
        for label in l {
            if values_by_name
                .entry(&label.name)
                .or_default()
                .insert(&label.value)
            {
                *bytes_by_name.entry(&label.name).or_default() += label.value.len() as u64;
            }
            *by_pair.entry((&label.name, &label.value)).or_default() += 1;
        }
    }
    fn top(mut v: Vec<(String, u64)>, limit: usize) -> serde_json::Value {
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(limit);
        serde_json::Value::Array(
            v.into_iter()
                .map(|(n, c)| serde_json::json!({"name": n, "value": c}))
                .collect(),
        )
    }
    let data = serde_json::json!({
        "headStats": {
            "numSeries": stats.num_series,
            "numLabelPairs": by_pair.len(),
            "chunkCount": stats.chunk_count,
            "minTime": if stats.num_series == 0 { 0 } else { stats.min_time },
            "maxTime": if stats.num_series == 0 { 0 } else { stats.max_time },
        },
        "seriesCountByMetricName": top(by_metric.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(), limit),
        "labelValueCountByLabelName": top(values_by_name.into_iter().map(|(k, v)| (k.to_owned(), v.len() as u64)).collect(), limit),
        "memoryInBytesByLabelName": top(bytes_by_name.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(), limit),
        "seriesCountByLabelValuePair": top(by_pair.into_iter().map(|((n, v), c)| (format!("{n}={v}"), c)).collect(), limit),
    });
    Ok(json_ok(data.to_string()))
}

/// Routes, each under `/api/v1` and `/prometheus/api/v1`.
pub fn router(q: Arc<Querier>) -> Router {
    let max_body = q.cfg.max_request_body_bytes;
    let api = Router::new()
        .route("/series", get(series).post(series))
        .route("/labels", get(labels).post(labels))
        .route("/label/{name}/values", get(label_values))
        .route("/metadata", get(metadata))
        .route("/status/buildinfo", get(buildinfo))
        .route("/status/tsdb", get(tsdb_status))
        .route("/format_query", get(format_query).post(format_query))
        .route(
            "/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        .route("/read", post(remote_read::handler))
        .route(
            "/query",
            get(crate::query::instant).post(crate::query::instant),
        )
        .route(
            "/query_range",
            get(crate::query::range).post(crate::query::range),
        )
        .with_state(q);
    Router::new()
        .nest("/api/v1", api.clone())
        .nest("/prometheus/api/v1", api)
        // The extractors' own default (2 MiB) would otherwise cut below the setting.
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            max_body,
            crate::body_limit::limit,
        ))
}
