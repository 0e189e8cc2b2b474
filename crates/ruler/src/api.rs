//! HTTP APIs of the ruler:
//! - the Mimir/Cortex rule configuration API, `/prometheus/config/v1/rules[/{namespace}[/{group}]]`
//!   (GET as YAML, POST a group as YAML, DELETE), per tenant;
//! - Prometheus's `/api/v1/rules` and `/api/v1/alerts` (also under `/prometheus`), with the
//!   `type`, `rule_name[]`, `rule_group[]` and `file[]` filters.

use crate::error::ApiError;
use crate::group::Group;
use crate::notifier::rfc3339;
use crate::rulefmt::{validate_group, RuleGroup};
use crate::ruler::Ruler;
use crate::rules::{Alert, AlertState, Rule};
use crate::store::Namespaces;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::sync::Arc;
use strata_model::TenantId;

/// The APIs' routes, `/api/v1/alerts` included.
pub fn router(ruler: Arc<Ruler>) -> Router {
    router_with(ruler, true)
}

/// The APIs' routes; without `root_alerts`, Prometheus's alerts list is served only under
/// `/prometheus/api/v1/alerts` (as in Mimir), because `/api/v1/alerts` at the root is the
/// Alertmanager's configuration API when one runs in the same process.
pub fn router_with(ruler: Arc<Ruler>, root_alerts: bool) -> Router {
    let mut r = Router::new()
        .route("/prometheus/config/v1/rules", get(list_all))
        .route(
            "/prometheus/config/v1/rules/{namespace}",
            get(list_namespace).post(set_group).delete(delete_namespace),
        )
        .route(
            "/prometheus/config/v1/rules/{namespace}/{group}",
            get(get_group).delete(delete_group),
        );
    for prefix in ["", "/prometheus"] {
        r = r.route(&format!("{prefix}/api/v1/rules"), get(prom_rules));
        if root_alerts || !prefix.is_empty() {
            r = r.route(&format!("{prefix}/api/v1/alerts"), get(prom_alerts));
        }
    }
    r.with_state(ruler)
}

fn api_error(status: StatusCode, kind: &str, msg: impl std::fmt::Display) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": "error", "errorType": kind, "error": msg.to_string()}).to_string(),
    )
        .into_response()
}

fn tenant(ruler: &Ruler, headers: &HeaderMap) -> Result<TenantId, ApiError> {
    Ok(ruler.tenant(headers)?)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            ApiError::Tenant(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::BadData(_) => (StatusCode::BAD_REQUEST, "bad_data"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Ruler(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
            ApiError::Peer { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        api_error(status, kind, self)
    }
}

fn yaml(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/yaml")],
        body,
    )
        .into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"success","data":null,"errorType":"","error":""}"#,
    )
        .into_response()
}

fn to_yaml<T: serde::Serialize>(v: &T) -> Response {
    match serde_yaml::to_string(v) {
        Ok(s) => yaml(s),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e),
    }
}

async fn list_all(State(r): State<Arc<Ruler>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let t = tenant(&r, &headers)?;
    let ns = r.store.groups(&t).await?;
    if ns.is_empty() {
        return Err(ApiError::NotFound("no rule groups found"));
    }
    Ok(to_yaml(&ns))
}

async fn list_namespace(
    State(r): State<Arc<Ruler>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = tenant(&r, &headers)?;
    let mut ns = r.store.groups(&t).await?;
    let groups = ns
        .remove(&namespace)
        .ok_or(ApiError::NotFound("no rule groups found"))?;
    Ok(to_yaml(&Namespaces::from([(namespace, groups)])))
}

async fn get_group(
    State(r): State<Arc<Ruler>>,
    Path((namespace, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = tenant(&r, &headers)?;
    let g = r
        .store
        .group(&t, &namespace, &group)
        .await?
        .ok_or(ApiError::NotFound("group does not exist"))?;
    Ok(to_yaml(&g))
}

async fn set_group(
    State(r): State<Arc<Ruler>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let t = tenant(&r, &headers)?;
    let g: RuleGroup = serde_yaml::from_slice(&body)
        .map_err(|e| ApiError::BadData(format!("invalid rule group: {e}")))?;
    let errors = validate_group(&g);
    if !errors.is_empty() {
        let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        return Err(ApiError::BadData(msgs.join("; ")));
    }
    let max_rules = r.cfg.max_rules_per_rule_group;
    if max_rules > 0 && g.rules.len() > max_rules {
        return Err(ApiError::BadData(format!(
            "per-tenant rules per rule group limit (limit: {max_rules} actual: {}) exceeded",
            g.rules.len()
        )));
    }
    let max_groups = r.cfg.max_rule_groups_per_tenant;
    if max_groups > 0 {
        let existing = r.store.groups(&t).await?;
        let replaces = existing
            .get(&namespace)
            .is_some_and(|gs| gs.iter().any(|x| x.name == g.name));
        let count: usize = existing.values().map(Vec::len).sum();
        if !replaces && count + 1 > max_groups {
            return Err(ApiError::BadData(format!(
                "per-tenant rule groups limit (limit: {max_groups} actual: {}) exceeded",
                count + 1
            )));
        }
    }
    r.store.put(&t, &namespace, &g).await?;
    reload(&r, &t).await;
    Ok(accepted())
}

/// Applies a change at once in this process; other rulers see it at their next poll.
async fn reload(r: &Arc<Ruler>, t: &TenantId) {
    if let Err(e) = r.sync_one(t).await {
        tracing::warn!(tenant = %t, error = %e, "reloading rules after a change failed");
    }
}

async fn delete_group(
    State(r): State<Arc<Ruler>>,
    Path((namespace, group)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = tenant(&r, &headers)?;
    r.store.delete(&t, &namespace, &group).await?;
    reload(&r, &t).await;
    Ok(accepted())
}

async fn delete_namespace(
    State(r): State<Arc<Ruler>>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let t = tenant(&r, &headers)?;
    if r.store.delete_namespace(&t, &namespace).await? == 0 {
        return Err(ApiError::NotFound("no rule groups found"));
    }
    reload(&r, &t).await;
    Ok(accepted())
}

/// Query parameters, repeated keys kept.
fn params(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, the API's alert `value`.
fn go_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(0);
    format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
}

fn map_json<'a>(it: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Object(
        it.map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect::<Map<_, _>>(),
    )
}

fn alert_json(a: &Alert) -> Value {
    let mut o = Map::new();
    o.insert(
        "labels".into(),
        map_json(a.labels.iter().map(|l| (l.name.as_str(), l.value.as_str()))),
    );
    o.insert(
        "annotations".into(),
        map_json(a.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    o.insert("state".into(), json!(a.state.as_str()));
    o.insert("activeAt".into(), json!(rfc3339(a.active_at)));
    if let Some(k) = a.keep_firing_since {
        o.insert("keepFiringSince".into(), json!(rfc3339(k)));
    }
    o.insert("value".into(), json!(go_e(a.value)));
    Value::Object(o)
}

/// Go's zero `time.Time` in JSON, for rules never evaluated.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn last_eval(ms: Option<i64>) -> Value {
    json!(ms.map_or_else(|| ZERO_TIME.to_string(), rfc3339))
}

/// Alerts the APIs list: pending and firing (resolved ones are kept only for re-sending).
fn active(alerts: Vec<&Alert>) -> Vec<&Alert> {
    alerts
        .into_iter()
        .filter(|a| a.state != AlertState::Inactive)
        .collect()
}

fn rule_json(rule: &Rule) -> Value {
    let st = rule.status();
    let mut o = Map::new();
    match rule {
        Rule::Alerting(a) => {
            o.insert("state".into(), json!(a.state().as_str()));
            o.insert("name".into(), json!(a.name));
            o.insert("query".into(), json!(a.expr));
            o.insert("duration".into(), json!(a.for_ms as f64 / 1000.0));
            o.insert(
                "keepFiringFor".into(),
                json!(a.keep_firing_for_ms as f64 / 1000.0),
            );
            o.insert(
                "labels".into(),
                map_json(a.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            );
            o.insert(
                "annotations".into(),
                map_json(a.annotations.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
            );
            o.insert(
                "alerts".into(),
                Value::Array(active(a.alerts()).into_iter().map(alert_json).collect()),
            );
        }
        Rule::Recording(r) => {
            o.insert("name".into(), json!(r.name));
            o.insert("query".into(), json!(r.expr));
            if !r.labels.is_empty() {
                o.insert(
                    "labels".into(),
                    map_json(r.labels.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                );
            }
        }
    }
    o.insert("health".into(), json!(st.health.as_str()));
    if let Some(e) = &st.last_error {
        o.insert("lastError".into(), json!(e));
    }
    o.insert("evaluationTime".into(), json!(st.evaluation_seconds));
    o.insert("lastEvaluation".into(), last_eval(st.last_evaluation));
    o.insert(
        "type".into(),
        json!(if matches!(rule, Rule::Alerting(_)) {
            "alerting"
        } else {
            "recording"
        }),
    );
    Value::Object(o)
}

fn success(data: Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": "success", "data": data}).to_string(),
    )
        .into_response()
}

async fn snapshot(r: &Ruler, t: &TenantId) -> Vec<Group> {
    let mut out = Vec::new();
    for g in r.groups(t) {
        out.push(g.lock().await.clone());
    }
    out.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    out
}

async fn prom_rules(
    State(r): State<Arc<Ruler>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let t = tenant(&r, &headers)?;
    let p = params(&uri);
    let all = |k: &str| -> HashSet<String> {
        p.iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let (want_alerts, want_records) =
        match p.iter().find(|(k, _)| k == "type").map(|(_, v)| v.as_str()) {
            None | Some("") => (true, true),
            Some(v) if v.eq_ignore_ascii_case("alert") => (true, false),
            Some(v) if v.eq_ignore_ascii_case("record") => (false, true),
            Some(v) => return Err(ApiError::BadData(format!("not supported value {v:?}"))),
        };
    let (names, groups, files) = (all("rule_name[]"), all("rule_group[]"), all("file[]"));
    let filtered = !names.is_empty() || !want_alerts || !want_records;
    let mut out = Vec::new();
    for g in snapshot(&r, &t).await {
        if (!groups.is_empty() && !groups.contains(&g.name))
            || (!files.is_empty() && !files.contains(&g.namespace))
        {
            continue;
        }
        let rules: Vec<Value> = g
            .rules
            .iter()
            .filter(|rule| names.is_empty() || names.contains(rule.name()))
            .filter(|rule| match rule {
                Rule::Alerting(_) => want_alerts,
                Rule::Recording(_) => want_records,
            })
            .map(rule_json)
            .collect();
        // A group whose rules were all filtered out is left out.
        if filtered && rules.is_empty() {
            continue;
        }
        out.push(json!({
            "name": g.name,
            "file": g.namespace,
            "rules": rules,
            "interval": g.interval_ms as f64 / 1000.0,
            "limit": g.limit,
            "evaluationTime": g.evaluation_seconds,
            "lastEvaluation": last_eval(g.last_evaluation),
        }));
    }
    // Groups run by the other rulers, filtered by them with the same parameters.
    out.extend(from_peers(&r, &headers, &uri, "groups").await?);
    out.sort_by(|a, b| {
        (a["file"].as_str(), a["name"].as_str()).cmp(&(b["file"].as_str(), b["name"].as_str()))
    });
    Ok(success(json!({ "groups": out })))
}

/// Marks a request one ruler makes to another for its own groups only.
const LOCAL_ONLY: &str = "x-strata-ruler-local";

/// With rulers sharing the groups, `data.<key>` of every other healthy ruler's answer to the
/// same request (path and parameters, the caller's tenant header and credentials), so that any
/// ruler lists the tenant's rules and alerts of the whole ring. A ruler that does not answer
/// fails the listing (503 naming it) rather than leaving its groups out silently.
async fn from_peers(
    r: &Ruler,
    headers: &HeaderMap,
    uri: &Uri,
    key: &str,
) -> Result<Vec<Value>, ApiError> {
    let (Some(sharding), Some(client)) = (r.sharding(), r.peer_client.as_ref()) else {
        return Ok(Vec::new());
    };
    if headers.contains_key(LOCAL_ONLY) || !sharding.lists_peers() {
        return Ok(Vec::new());
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let asks = sharding.peers().into_iter().map(|(id, addr)| {
        let mut req = client
            .get(format!("http://{addr}{path}"))
            .header(LOCAL_ONLY, "1");
        for h in ["x-scope-orgid", "authorization"] {
            if let Some(v) = headers.get(h) {
                req = req.header(h, v.clone());
            }
        }
        async move {
            let fail = |reason: String| ApiError::Peer {
                id: id.clone(),
                addr: addr.clone(),
                reason,
            };
            let resp = req.send().await.map_err(|e| fail(e.to_string()))?;
            if !resp.status().is_success() {
                return Err(fail(format!("status {}", resp.status())));
            }
            let v: Value = resp.json().await.map_err(|e| fail(e.to_string()))?;
            Ok::<_, ApiError>(v["data"][key].as_array().cloned().unwrap_or_default())
        }
    });
    let mut out = Vec::new();
    for part in futures::future::join_all(asks).await {
        out.extend(part?);
    }
    Ok(out)
}

async fn prom_alerts(
    State(r): State<Arc<Ruler>>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ApiError> {
    let t = tenant(&r, &headers)?;
    let mut alerts = Vec::new();
    for g in snapshot(&r, &t).await {
        for rule in g.alerting_rules() {
            alerts.extend(active(rule.alerts()).into_iter().map(alert_json));
        }
    }
    alerts.extend(from_peers(&r, &headers, &uri, "alerts").await?);
    Ok(success(json!({ "alerts": alerts })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_e_format() {
        assert_eq!(go_e(1.0), "1e+00");
        assert_eq!(go_e(1.5), "1.5e+00");
        assert_eq!(go_e(1234.0), "1.234e+03");
        assert_eq!(go_e(0.001), "1e-03");
    }
}
