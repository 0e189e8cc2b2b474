//! HTTP API v2 (Alertmanager 0.25's OpenAPI), the v1 alert POST, health, readiness and reload,
//! served at `/` and under `/alertmanager` (Mimir's prefix) for the request's tenant; and
//! Mimir's per-tenant configuration API at `/api/v1/alerts`.

use crate::alert::{alert_order, label_set_before, Alert};
use crate::error::ApiError;
use crate::labels::{fingerprint_string, is_valid_label_name, label_set_string, LabelSet};
use crate::matcher::{parse_matcher, MatchOp, Matcher};
use crate::metrics::{InvalidLabels, ReceivedLabels};
use crate::silence::{Silence, SilenceMatcher, SilenceState};
use crate::time::{add, format_rfc3339_millis, is_zero, parse_rfc3339, zero_time, Timestamp};
use crate::{Alertmanager, TenantAlertmanager, COMPAT_VERSION};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use strata_model::TenantId;

/// The API router (state included), at `/` and `/alertmanager`. Every request belongs to the
/// tenant Strata's tenancy settings resolve (`X-Scope-OrgID` in multi-tenant modes).
///
/// `/api/v1/alerts` at the root is Mimir's per-tenant configuration API (GET, POST, DELETE);
/// Alertmanager's own v1 alert POST stays under `/alertmanager/api/v1/alerts`, and at the root
/// for a JSON array body (a configuration document is a YAML mapping, so the two cannot be
/// confused).
pub fn router(am: Arc<Alertmanager>) -> Router {
    // Only a ring peer may mark a request as forwarded, and peers forward over gRPC
    // (`PeerService`, which uses `peer_router`): from an HTTP client the marker would skip the
    // routing to the tenant's owners.
    peer_router(am).layer(axum::middleware::from_fn(strip_forwarded_marker))
}

async fn strip_forwarded_marker(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    req.headers_mut().remove(crate::cluster::FORWARDED_HEADER);
    next.run(req).await
}

/// The API as ring peers reach it: requests carrying the forwarding marker are answered here.
pub(crate) fn peer_router(am: Arc<Alertmanager>) -> Router {
    let api = Router::new()
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts_v2))
        .route("/api/v2/alerts/groups", get(get_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/-/healthy", get(ok))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload).put(reload));
    let layer_state = am.clone();
    let max_body = am.settings.max_request_body_bytes;
    let prefixed = api
        .clone()
        .route("/api/v1/alerts", post(post_alerts_v1))
        .with_state(am.clone());
    let root = api
        .route(
            "/api/v1/alerts",
            get(get_config)
                .post(post_config_or_alerts)
                .delete(delete_config),
        )
        .with_state(am);
    Router::new()
        .merge(root)
        .nest("/alertmanager", prefixed)
        .layer(axum::middleware::from_fn_with_state(
            layer_state,
            cluster_layer,
        ))
        // The extractors' own default (2 MiB) would otherwise cut below the setting.
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        // Outermost: no body larger than the setting is read, not even to forward it.
        .layer(axum::middleware::from_fn_with_state(
            max_body,
            crate::body_limit::limit,
        ))
}

/// Largest request body forwarded to a peer.
const MAX_FORWARD_BODY: usize = 32 << 20;

/// How the ring handles a request.
#[derive(Debug, PartialEq, Eq)]
enum Placement {
    /// Not about one tenant's state (health, readiness, reload, status): answered here.
    Local,
    /// Writes every owner must see (alerts, configuration uploads): sent to all owners.
    AllOwners,
    /// Anything else: answered by an owner (this replica if it owns the tenant).
    AnyOwner,
}

fn placement(method: &axum::http::Method, path: &str) -> Placement {
    use axum::http::Method;
    let path = path.strip_prefix("/alertmanager").unwrap_or(path);
    if path.starts_with("/-/") || path == "/api/v2/status" {
        return Placement::Local;
    }
    match (method, path) {
        (&Method::POST, "/api/v2/alerts" | "/api/v1/alerts") => Placement::AllOwners,
        (&Method::DELETE, "/api/v1/alerts") => Placement::AllOwners,
        _ => Placement::AnyOwner,
    }
}

fn from_peer(r: crate::cluster::pb::HttpResponse) -> Response {
    let mut resp = Response::new(axum::body::Body::from(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status as u16).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for h in r.headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(h.name.as_bytes()),
            header::HeaderValue::from_str(&h.value),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp
}

/// Routes a request over the ring (see `crate::cluster`): requests for tenants this replica
/// does not own go to their owners; alert POSTs go to every owner and succeed when one accepted.
/// Requests a peer forwarded are answered here without further forwarding.
async fn cluster_layer(
    State(am): State<Arc<Alertmanager>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(cluster) = am.cluster().cloned() else {
        return next.run(req).await;
    };
    let place = placement(req.method(), req.uri().path());
    if place == Placement::Local || req.headers().contains_key(crate::cluster::FORWARDED_HEADER) {
        return next.run(req).await;
    }
    // Owned copies: a borrow of the request (its body is not Sync) must not live across awaits.
    let (org, auth) = {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        (header("x-scope-orgid"), header("authorization"))
    };
    let Ok(tenant) = am.tenancy().resolve(org.as_deref(), auth.as_deref()) else {
        // The handler answers the tenancy error.
        return next.run(req).await;
    };
    // The other owners: only those with a fresh heartbeat (a dead one would cost a timeout).
    let (own, peers) = cluster.route(tenant.as_str());
    if place == Placement::AnyOwner && own {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_FORWARD_BODY).await {
        Ok(b) => b,
        Err(e) => {
            return ApiError::BadRequest(format!("cannot read the request body: {e}"))
                .into_response()
        }
    };
    let forwarded = crate::cluster::pb::HttpRequest {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
        headers: parts
            .headers
            .iter()
            .filter(|(n, _)| {
                matches!(
                    n.as_str(),
                    "x-scope-orgid" | "authorization" | "content-type"
                )
            })
            .filter_map(|(n, v)| {
                Some(crate::cluster::pb::Header {
                    name: n.as_str().to_string(),
                    value: v.to_str().ok()?.to_string(),
                })
            })
            .collect(),
        body: body.to_vec(),
        from_instance: cluster.instance_id().to_string(),
    };
    if place == Placement::AnyOwner {
        let mut last = String::from("no owner");
        for p in &peers {
            match cluster.forward(p, forwarded.clone()).await {
                Ok(r) => return from_peer(r),
                Err(e) => last = format!("{}: {}", p.id, e.message()),
            }
        }
        return ApiError::NoOwnerReachable {
            tenant: tenant.as_str().to_string(),
            last,
        }
        .into_response();
    }
    // Every owner gets the write; the tasks finish even after the answer went out.
    let (tx, mut rx) = tokio::sync::mpsc::channel(peers.len().max(1));
    for p in peers.iter().cloned() {
        let (c, tx, f) = (cluster.clone(), tx.clone(), forwarded.clone());
        tokio::spawn(async move {
            let r = c
                .forward(&p, f)
                .await
                .map_err(|e| format!("{}: {}", p.id, e.message()));
            let _ = tx.send(r).await;
        });
    }
    drop(tx);
    let mut fallback: Option<Response> = None;
    if own {
        let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(body));
        let local = next.run(req).await;
        if !local.status().is_server_error() {
            return local;
        }
        fallback = Some(local);
    }
    let mut last = String::from("no owner");
    while let Some(r) = rx.recv().await {
        match r {
            Ok(r) if (200..300).contains(&r.status) => return from_peer(r),
            Ok(r) if (400..500).contains(&r.status) && fallback.is_none() => {
                fallback = Some(from_peer(r))
            }
            Ok(r) => last = format!("answered {}", r.status),
            Err(e) => last = e,
        }
    }
    fallback.unwrap_or_else(|| {
        ApiError::NoOwnerReachable {
            tenant: tenant.as_str().to_string(),
            last,
        }
        .into_response()
    })
}

/// The request's tenant, resolved from its headers.
struct Tenant {
    id: TenantId,
    am: Arc<TenantAlertmanager>,
}

impl FromRequestParts<Arc<Alertmanager>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        am: &Arc<Alertmanager>,
    ) -> Result<Self, ApiError> {
        let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
        let id = am
            .tenancy()
            .resolve(header("x-scope-orgid"), header("authorization"))
            .map_err(ApiError::Tenant)?;
        let t = am.tenant(&id).map_err(ApiError::Internal)?;
        Ok(Tenant { id, am: t })
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

async fn ok() -> &'static str {
    "OK"
}

/// 503 while a ring replica is still merging its peers' state.
async fn ready(State(am): State<Arc<Alertmanager>>) -> Response {
    if am.settled() {
        (StatusCode::OK, "OK").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "settling").into_response()
    }
}

async fn reload(State(am): State<Arc<Alertmanager>>) -> Result<StatusCode, ApiError> {
    am.reload().map_err(ApiError::Reload)?;
    Ok(StatusCode::OK)
}

async fn status(State(top): State<Arc<Alertmanager>>, Tenant { am, .. }: Tenant) -> Response {
    // Upstream's `config.original` is its configuration re-serialized with secrets hidden.
    let original = am.with_core(|c| c.config.shown.clone());
    let host = am
        .with_core(|c| c.external_url().to_string())
        .parse::<reqwest::Url>()
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| format!("{h}:{}", u.port_or_known_default().unwrap_or(80)))
        })
        .unwrap_or_default();
    let cluster = match top.cluster() {
        None => json!({
            "name": top.instance(),
            "peers": [{"address": host, "name": top.instance()}],
            "status": "ready",
        }),
        Some(c) => json!({
            "name": c.instance_id(),
            "peers": c
                .members()
                .into_iter()
                .filter(|(_, _, up)| *up)
                .map(|(id, addr, _)| json!({"address": addr, "name": id}))
                .collect::<Vec<_>>(),
            "status": if c.settled() { "ready" } else { "settling" },
        }),
    };
    json_response(
        StatusCode::OK,
        &json!({
            "cluster": cluster,
            "config": {"original": original},
            "uptime": format_rfc3339_millis(&top.started()),
            "versionInfo": {
                "branch": "strata",
                "buildDate": "",
                "buildUser": "strata",
                "goVersion": "none (Rust)",
                "revision": concat!("strata-", env!("CARGO_PKG_VERSION")),
                "version": COMPAT_VERSION,
            },
        }),
    )
}

async fn receivers(Tenant { am, .. }: Tenant) -> Response {
    let names: Vec<Value> = am.with_core(|c| {
        c.config
            .config
            .receivers
            .iter()
            .map(|r| json!({"name": r.name}))
            .collect()
    });
    json_response(StatusCode::OK, &Value::Array(names))
}

/// Query parameters of the alert listings.
struct AlertQuery {
    filter: Vec<Matcher>,
    receiver: Option<regex::Regex>,
    active: bool,
    silenced: bool,
    inhibited: bool,
    unprocessed: bool,
}

fn parse_bool(name: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        _ => Err(ApiError::BadRequest(format!(
            "{name} in query must be of type boolean: {v:?}"
        ))),
    }
}

/// Query pairs in order (repeated keys kept).
type QueryPairs = Vec<(String, String)>;

fn parse_filters(q: &Option<String>) -> Result<(Vec<Matcher>, QueryPairs), ApiError> {
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let filter = pairs
        .iter()
        .filter(|(k, _)| k == "filter")
        .map(|(_, v)| parse_matcher(v).map_err(ApiError::BadFilter))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((filter, pairs))
}

impl AlertQuery {
    fn parse(q: &Option<String>) -> Result<Self, ApiError> {
        let (filter, pairs) = parse_filters(q)?;
        let mut out = AlertQuery {
            filter,
            receiver: None,
            active: true,
            silenced: true,
            inhibited: true,
            unprocessed: true,
        };
        for (k, v) in &pairs {
            match k.as_str() {
                "active" => out.active = parse_bool(k, v)?,
                "silenced" => out.silenced = parse_bool(k, v)?,
                "inhibited" => out.inhibited = parse_bool(k, v)?,
                "unprocessed" => out.unprocessed = parse_bool(k, v)?,
                "receiver" => {
                    out.receiver = Some(
                        regex::Regex::new(&format!("^(?:{v})$"))
                            .map_err(|e| ApiError::BadReceiverRegex(v.clone(), e))?,
                    )
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Upstream's filter semantics for `filter=` matchers (note the empty-value special cases).
fn matches_filter(matchers: &[Matcher], labels: &LabelSet) -> bool {
    matchers.iter().all(|m| {
        let v = labels.get(&m.name);
        match m.op {
            MatchOp::NotEqual | MatchOp::NotRegex if m.value.is_empty() && v.is_some() => true,
            MatchOp::Equal | MatchOp::Regex if m.value.is_empty() && v.is_none() => true,
            _ => m.matches(v.map(String::as_str).unwrap_or("")),
        }
    })
}

fn gettable_alert(a: &Alert, st: &crate::dispatch::AlertStatus, receivers: &[String]) -> Value {
    let mut v = json!({
        "annotations": a.annotations,
        "endsAt": format_rfc3339_millis(&a.ends_at),
        "fingerprint": fingerprint_string(a.fingerprint()),
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "startsAt": format_rfc3339_millis(&a.starts_at),
        "status": {
            "inhibitedBy": st.inhibited_by,
            "silencedBy": st.silenced_by,
            "state": st.state(),
        },
        "updatedAt": format_rfc3339_millis(&a.updated_at),
        "labels": a.labels,
    });
    if !a.generator_url.is_empty() {
        v["generatorURL"] = Value::String(a.generator_url.clone());
    }
    v
}

impl AlertQuery {
    fn keep(&self, st: &crate::dispatch::AlertStatus) -> bool {
        let silenced = !st.silenced_by.is_empty();
        let inhibited = !st.inhibited_by.is_empty();
        (self.active || silenced || inhibited)
            && (self.silenced || !silenced)
            && (self.inhibited || !inhibited)
    }
}

async fn get_alerts(
    Tenant { am, .. }: Tenant,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = AlertQuery::parse(&q)?;
    let now = am.now();
    let mut out: Vec<(String, Value)> = am.with_core(|c| {
        c.alerts
            .iter()
            .filter_map(|(_, a)| {
                let receivers = c.receivers_of(&a.labels);
                if let Some(re) = &q.receiver {
                    if !receivers.iter().any(|r| re.is_match(r)) {
                        return None;
                    }
                }
                if !matches_filter(&q.filter, &a.labels) || a.resolved_at(now) {
                    return None;
                }
                let st = c.status(&a.labels, now);
                if !q.keep(&st) {
                    return None;
                }
                Some((
                    fingerprint_string(a.fingerprint()),
                    gettable_alert(a, &st, &receivers),
                ))
            })
            .collect()
    });
    let _ = q.unprocessed; // every alert is processed on arrival
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(json_response(
        StatusCode::OK,
        &Value::Array(out.into_iter().map(|(_, v)| v).collect()),
    ))
}

async fn get_groups(
    Tenant { am, .. }: Tenant,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let q = AlertQuery::parse(&q)?;
    let now = am.now();
    let out = am.with_core(|c| {
        // Receivers per alert over all listed groups.
        let mut receivers: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        let mut groups: Vec<(LabelSet, String, Vec<Arc<Alert>>)> = Vec::new();
        for g in c.groups() {
            if let Some(re) = &q.receiver {
                if !re.is_match(&g.opts.receiver) {
                    continue;
                }
            }
            let mut alerts: Vec<Arc<Alert>> = g
                .alerts
                .values()
                .filter(|a| {
                    !a.resolved_at(now)
                        && matches_filter(&q.filter, &a.labels)
                        && q.keep(&c.status(&a.labels, now))
                })
                .cloned()
                .collect();
            if alerts.is_empty() {
                continue;
            }
            for a in &alerts {
                receivers
                    .entry(a.fingerprint())
                    .or_default()
                    .push(g.opts.receiver.clone());
            }
            alerts.sort_by(|a, b| alert_order(&a.labels, &b.labels));
            groups.push((g.labels.clone(), g.opts.receiver.clone(), alerts));
        }
        groups.sort_by(|a, b| {
            if a.0 == b.0 {
                a.1.cmp(&b.1)
            } else {
                label_set_before(&a.0, &b.0)
            }
        });
        groups
            .into_iter()
            .map(|(labels, receiver, alerts)| {
                let alerts: Vec<Value> = alerts
                    .iter()
                    .map(|a| {
                        let st = c.status(&a.labels, now);
                        gettable_alert(
                            a,
                            &st,
                            receivers
                                .get(&a.fingerprint())
                                .map(Vec::as_slice)
                                .unwrap_or(&[]),
                        )
                    })
                    .collect();
                json!({"alerts": alerts, "labels": labels, "receiver": {"name": receiver}})
            })
            .collect::<Vec<_>>()
    });
    Ok(json_response(StatusCode::OK, &Value::Array(out)))
}

fn str_map(v: Option<&Value>, what: &str, idx: usize) -> Result<LabelSet, String> {
    match v {
        None | Some(Value::Null) => Ok(LabelSet::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(format!(
                    "alerts[{idx}].{what}.{k}: must be a string, got {other}"
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "alerts[{idx}].{what}: must be an object, got {other}"
        )),
    }
}

fn opt_time(v: Option<&Value>, what: &str, idx: usize) -> Result<Timestamp, String> {
    match v {
        None | Some(Value::Null) => Ok(zero_time()),
        Some(Value::String(s)) => parse_rfc3339(s)
            .map_err(|e| format!("alerts[{idx}].{what}: invalid date-time {s:?}: {e}")),
        Some(other) => Err(format!(
            "alerts[{idx}].{what}: must be a date-time string, got {other}"
        )),
    }
}

/// Decodes a postable-alert array. Schema errors reject the whole request (nothing stored).
fn decode_alerts(body: &[u8]) -> Result<Vec<Alert>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))?;
    let Value::Array(items) = v else {
        return Err(ApiError::BadRequest(
            "request body must be a JSON array of alerts".into(),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(ApiError::BadRequest(format!(
                "alerts[{i}]: must be an object"
            )));
        };
        if !obj.contains_key("labels") {
            return Err(ApiError::BadRequest(format!(
                "alerts[{i}].labels in body is required"
            )));
        }
        let generator_url = match obj.get("generatorURL") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "alerts[{i}].generatorURL: must be a string, got {other}"
                )))
            }
        };
        out.push(Alert {
            labels: Arc::new(
                str_map(obj.get("labels"), "labels", i).map_err(ApiError::BadRequest)?,
            ),
            annotations: Arc::new(
                str_map(obj.get("annotations"), "annotations", i).map_err(ApiError::BadRequest)?,
            ),
            starts_at: opt_time(obj.get("startsAt"), "startsAt", i)
                .map_err(ApiError::BadRequest)?,
            ends_at: opt_time(obj.get("endsAt"), "endsAt", i).map_err(ApiError::BadRequest)?,
            generator_url,
            updated_at: zero_time(),
            timeout: false,
        });
    }
    Ok(out)
}

/// Upstream's POST handling: defaults for missing times, then per-alert validation; valid
/// alerts are stored even when others in the batch are rejected (as Alertmanager does, so one
/// bad alert from a Prometheus batch does not drop the rest). Returns the validation errors.
fn accept_alerts(am: &TenantAlertmanager, mut alerts: Vec<Alert>, version: &str) -> Vec<String> {
    let now = am.now();
    let resolve_timeout = am.with_core(|c| c.config.resolve_timeout);
    let mut valid = Vec::with_capacity(alerts.len());
    let mut errors = Vec::new();
    for a in alerts.iter_mut() {
        a.updated_at = now;
        if is_zero(&a.starts_at) {
            a.starts_at = if is_zero(&a.ends_at) { now } else { a.ends_at };
        }
        if is_zero(&a.ends_at) {
            a.timeout = true;
            a.ends_at = add(now, resolve_timeout);
        }
        if a.labels.values().any(String::is_empty) {
            Arc::make_mut(&mut a.labels).retain(|_, v| !v.is_empty());
        }
    }
    let metrics = am.metrics();
    for a in &alerts {
        let status = if a.resolved_at(now) {
            "resolved"
        } else {
            "firing"
        };
        metrics
            .alerts_received
            .get_or_create(&ReceivedLabels {
                tenant: am.id().to_string(),
                status: status.into(),
                version: version.into(),
            })
            .inc();
    }
    for a in alerts {
        let err = if a.ends_at < a.starts_at {
            Some("start time must be before end time".to_string())
        } else if let Some(n) = a.labels.keys().find(|n| !is_valid_label_name(n)) {
            Some(format!("invalid label set: invalid name {n:?}"))
        } else if a.labels.is_empty() {
            Some("at least one label pair required".to_string())
        } else {
            a.annotations
                .keys()
                .find(|n| !is_valid_label_name(n))
                .map(|n| format!("invalid annotations: invalid name {n:?}"))
        };
        match err {
            Some(e) => {
                metrics
                    .alerts_invalid
                    .get_or_create(&InvalidLabels {
                        tenant: am.id().to_string(),
                        version: version.into(),
                    })
                    .inc();
                errors.push(format!("{}: {e}", label_set_string(&a.labels)))
            }
            None => valid.push(a),
        }
    }
    if !valid.is_empty() {
        am.put_alerts(valid);
    }
    errors
}

async fn post_alerts_v2(
    Tenant { am, .. }: Tenant,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let alerts = decode_alerts(&body)?;
    let errors = accept_alerts(&am, alerts, "v2");
    if !errors.is_empty() {
        return Err(ApiError::BadRequest(errors.join("; ")));
    }
    Ok(StatusCode::OK.into_response())
}

async fn post_alerts_v1(Tenant { am, .. }: Tenant, body: axum::body::Bytes) -> Response {
    let err = |msg: String| {
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({"status": "error", "errorType": "bad_data", "error": msg}),
        )
    };
    let alerts = match decode_alerts(&body) {
        Ok(a) => a,
        Err(e) => return err(e.to_string()),
    };
    let errors = accept_alerts(&am, alerts, "v1");
    if !errors.is_empty() {
        return err(errors.join("; "));
    }
    json_response(StatusCode::OK, &json!({"status": "success"}))
}

/// Errors of the configuration API, answered in plain text as Mimir does (the v2 API answers
/// JSON strings).
struct PlainError(ApiError);

impl From<ApiError> for PlainError {
    fn from(e: ApiError) -> Self {
        PlainError(e)
    }
}

impl IntoResponse for PlainError {
    fn into_response(self) -> Response {
        (
            self.0.status(),
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.0),
        )
            .into_response()
    }
}

/// Mimir's `GET /api/v1/alerts`: the tenant's own configuration document, its secrets shown as
/// `<secret>`.
async fn get_config(Tenant { am, .. }: Tenant) -> Result<Response, PlainError> {
    let mut cfg = am.user_config().ok_or(ApiError::ConfigNotFound)?;
    // It loaded when it was stored; a failure here would be a bug, and must not show the text.
    cfg.alertmanager_config = crate::shown::shown_of(&cfg.alertmanager_config).map_err(|e| {
        ApiError::Internal(crate::AlertmanagerError::ShowConfig {
            tenant: am.id().to_string(),
            source: e,
        })
    })?;
    let text = cfg.to_yaml().map_err(|source| {
        ApiError::Internal(crate::AlertmanagerError::EncodeConfig {
            tenant: am.id().to_string(),
            source,
        })
    })?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/yaml")],
        text,
    )
        .into_response())
}

/// Mimir's `POST /api/v1/alerts` (store the tenant's configuration: 201), or, for a JSON array
/// body, Alertmanager's v1 alert POST that used to live at this path.
async fn post_config_or_alerts(
    State(top): State<Arc<Alertmanager>>,
    tenant: Tenant,
    body: axum::body::Bytes,
) -> Result<Response, PlainError> {
    if body.trim_ascii_start().first() == Some(&b'[') {
        return Ok(post_alerts_v1(tenant, body).await);
    }
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::BadRequest(format!("request body is not UTF-8: {e}")))?;
    let id = tenant.id.clone();
    // Writing the file fsyncs: off the async threads.
    tokio::task::spawn_blocking({
        let text = text.to_string();
        move || top.set_tenant_config(&id, &text)
    })
    .await
    .map_err(ApiError::Aborted)?
    .map_err(PlainError)?;
    Ok(StatusCode::CREATED.into_response())
}

/// Mimir's `DELETE /api/v1/alerts`: the tenant falls back to the shared configuration.
async fn delete_config(
    State(top): State<Arc<Alertmanager>>,
    Tenant { id, .. }: Tenant,
) -> Result<StatusCode, PlainError> {
    tokio::task::spawn_blocking(move || top.delete_tenant_config(&id))
        .await
        .map_err(ApiError::Aborted)?
        .map_err(PlainError)?;
    Ok(StatusCode::OK)
}

fn gettable_silence(s: &Silence, now: Timestamp) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": format_rfc3339_millis(&s.updated_at),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": format_rfc3339_millis(&s.ends_at),
        "matchers": s.matchers.iter().map(|m| json!({
            "isEqual": m.is_equal, "isRegex": m.is_regex, "name": m.name, "value": m.value,
        })).collect::<Vec<_>>(),
        "startsAt": format_rfc3339_millis(&s.starts_at),
    })
}

async fn get_silences(
    Tenant { am, .. }: Tenant,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (filter, _) = parse_filters(&q)?;
    let now = am.now();
    let mut sils: Vec<Silence> = am.with_core(|c| {
        c.silences
            .iter()
            .filter(|s| {
                let as_labels: LabelSet = s
                    .matchers
                    .iter()
                    .map(|m| (m.name.clone(), m.value.clone()))
                    .collect();
                matches_filter(&filter, &as_labels)
            })
            .cloned()
            .collect()
    });
    // Upstream order: active by end, then pending by start, then expired by end descending.
    let rank = |s: &Silence| match s.state(now) {
        SilenceState::Active => 0,
        SilenceState::Pending => 1,
        SilenceState::Expired => 2,
    };
    sils.sort_by(|a, b| {
        rank(a).cmp(&rank(b)).then_with(|| match a.state(now) {
            SilenceState::Active => a.ends_at.cmp(&b.ends_at),
            SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
            SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
        })
    });
    Ok(json_response(
        StatusCode::OK,
        &Value::Array(sils.iter().map(|s| gettable_silence(s, now)).collect()),
    ))
}

fn decode_silence(body: &[u8]) -> Result<Silence, ApiError> {
    let bad = |m: String| ApiError::BadRequest(m);
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("request body is not valid JSON: {e}")))?;
    let Value::Object(o) = v else {
        return Err(bad("request body must be a JSON object (a silence)".into()));
    };
    let string = |k: &str, required: bool| -> Result<String, ApiError> {
        match o.get(k) {
            None | Some(Value::Null) if required => Err(bad(format!("{k} in body is required"))),
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(bad(format!("{k} in body must be of type string: {other}"))),
        }
    };
    let time = |k: &str| -> Result<Timestamp, ApiError> {
        let s = string(k, true)?;
        parse_rfc3339(&s)
            .map_err(|e| bad(format!("{k} in body must be of type date-time: {s:?}: {e}")))
    };
    let matchers = match o.get("matchers") {
        None | Some(Value::Null) => return Err(bad("matchers in body is required".into())),
        Some(Value::Array(ms)) => ms,
        Some(other) => {
            return Err(bad(format!(
                "matchers in body must be of type array: {other}"
            )))
        }
    };
    if matchers.is_empty() {
        return Err(bad("matchers in body should have at least 1 items".into()));
    }
    let mut out = Vec::with_capacity(matchers.len());
    for (i, m) in matchers.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(bad(format!("matchers[{i}] must be an object")));
        };
        let s = |k: &str| match m.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(bad(format!(
                "matchers[{i}].{k} in body is required and must be a string"
            ))),
        };
        let b = |k: &str, default: Option<bool>| match (m.get(k), default) {
            (Some(Value::Bool(b)), _) => Ok(*b),
            (None | Some(Value::Null), Some(d)) => Ok(d),
            _ => Err(bad(format!(
                "matchers[{i}].{k} in body is required and must be a boolean"
            ))),
        };
        out.push(SilenceMatcher {
            name: s("name")?,
            value: s("value")?,
            is_regex: b("isRegex", None)?,
            is_equal: b("isEqual", Some(true))?,
        });
    }
    Ok(Silence {
        id: string("id", false)?,
        matchers: out,
        starts_at: time("startsAt")?,
        ends_at: time("endsAt")?,
        updated_at: zero_time(),
        created_by: string("createdBy", true)?,
        comment: string("comment", true)?,
    })
}

async fn post_silence(
    Tenant { am, .. }: Tenant,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let s = decode_silence(&body)?;
    let now = am.now();
    if s.starts_at >= s.ends_at {
        return Err(ApiError::BadRequest(
            "Failed to create silence: start time must be before end time".into(),
        ));
    }
    if s.ends_at < now {
        return Err(ApiError::BadRequest(
            "Failed to create silence: end time can't be in the past".into(),
        ));
    }
    let id = am.set_silence(s)?;
    Ok(json_response(StatusCode::OK, &json!({"silenceID": id})))
}

async fn get_silence(
    Tenant { am, .. }: Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = am.now();
    am.with_core(|c| c.silences.get(&id).map(|s| gettable_silence(s, now)))
        .map(|v| json_response(StatusCode::OK, &v))
        .ok_or(ApiError::SilenceNotFound)
}

async fn delete_silence(
    Tenant { am, .. }: Tenant,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match am.expire_silence(&id) {
        Ok(()) | Err(crate::silence::SilenceError::AlreadyExpired(_)) => Ok(StatusCode::OK),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::FakeClock;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn setup(config: &str) -> (Arc<Alertmanager>, FakeClock, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("am.yml"), config).unwrap();
        let clock = FakeClock::new(parse_rfc3339("2026-01-01T00:00:00Z").unwrap());
        let settings: crate::AlertmanagerConfig =
            serde_yaml::from_str("config_file: am.yml").unwrap();
        let am = Alertmanager::new(
            settings,
            dir.path(),
            "http://am:9093",
            Arc::new(clock.clone()),
            strata_model::TenancyConfig::default(),
            &mut prometheus_client::registry::Registry::default(),
            None,
        )
        .unwrap();
        (am, clock, dir)
    }

    /// The core of the single tenant.
    fn core<R>(am: &Alertmanager, f: impl FnOnce(&mut crate::dispatch::Core) -> R) -> R {
        am.default_tenant().unwrap().with_core(f)
    }

    const CFG: &str = "route:\n  receiver: a\n  routes: [{matchers: ['team=\"db\"'], receiver: db}]\nreceivers: [{name: a}, {name: db}]\ninhibit_rules:\n- source_matchers: ['severity=\"critical\"']\n  target_matchers: ['severity=\"warning\"']\n";

    async fn call(
        am: &Arc<Alertmanager>,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, String) {
        let resp = router(am.clone())
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::from(body.to_string()))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn alerts_roundtrip_with_filters_and_status() {
        let (am, _clock, _d) = setup(CFG);
        let (st, _) = call(&am, "POST", "/api/v2/alerts", r#"[{"labels":{"alertname":"A","team":"db","severity":"warning","empty":""},"annotations":{"s":"x"},"startsAt":"2026-01-01T00:00:00Z"},{"labels":{"alertname":"B","severity":"critical"}}]"#).await;
        assert_eq!(st, StatusCode::OK);
        let (st, body) = call(&am, "GET", "/api/v2/alerts", "").await;
        assert_eq!(st, StatusCode::OK);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        let a = v
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == "A")
            .unwrap();
        assert_eq!(a["status"]["state"], "suppressed");
        assert_eq!(a["receivers"], json!([{"name": "db"}]));
        assert_eq!(
            a["endsAt"], "2026-01-01T00:05:00.000Z",
            "resolve_timeout applied"
        );
        assert!(a["labels"].get("empty").is_none());
        let (_, body) = call(
            &am,
            "GET",
            "/alertmanager/api/v2/alerts?inhibited=false&filter=severity%3D~%22.%2B%22",
            "",
        )
        .await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 1);
        assert_eq!(v[0]["labels"]["alertname"], "B");
        let (_, body) = call(&am, "GET", "/api/v2/alerts?receiver=d.", "").await;
        assert_eq!(
            serde_json::from_str::<Value>(&body)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let (st, body) = call(&am, "GET", "/api/v2/alerts?filter=%7Bfoo", "").await;
        assert_eq!(
            (st, body.as_str()),
            (StatusCode::BAD_REQUEST, "\"bad matcher format: {foo\"")
        );
        let (_, body) = call(&am, "GET", "/api/v2/alerts/groups", "").await;
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[0]["receiver"]["name"], "a");
    }

    #[test]
    fn ring_placement_of_requests() {
        use axum::http::Method;
        for (m, path, want) in [
            (Method::GET, "/-/ready", Placement::Local),
            (Method::POST, "/alertmanager/-/reload", Placement::Local),
            (Method::GET, "/api/v2/status", Placement::Local),
            (Method::POST, "/api/v2/alerts", Placement::AllOwners),
            (
                Method::POST,
                "/alertmanager/api/v1/alerts",
                Placement::AllOwners,
            ),
            (Method::DELETE, "/api/v1/alerts", Placement::AllOwners),
            (Method::GET, "/api/v2/alerts", Placement::AnyOwner),
            (Method::GET, "/api/v1/alerts", Placement::AnyOwner),
            (Method::POST, "/api/v2/silences", Placement::AnyOwner),
            (
                Method::DELETE,
                "/alertmanager/api/v2/silence/x",
                Placement::AnyOwner,
            ),
        ] {
            assert_eq!(placement(&m, path), want, "{m} {path}");
        }
    }

    #[tokio::test]
    async fn bad_alert_posts() {
        let (am, _clock, _d) = setup(CFG);
        for (body, want) in [
            ("[{", "not valid JSON"),
            ("{}", "JSON array"),
            (r#"[{"annotations":{}}]"#, "labels in body is required"),
            (r#"[{"labels":{"a":1}}]"#, "must be a string"),
            (
                r#"[{"labels":{"a":"b"},"startsAt":"yesterday"}]"#,
                "invalid date-time",
            ),
        ] {
            let (st, msg) = call(&am, "POST", "/api/v2/alerts", body).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
            assert!(msg.contains(want), "{body}: {msg}");
        }
        assert!(core(&am, |c| c.alerts.is_empty()));
        let (st, msg) = call(&am, "POST", "/api/v2/alerts", r#"[{"labels":{"a":"b"},"startsAt":"2026-01-01T01:00:00Z","endsAt":"2026-01-01T00:00:00Z"},{"labels":{"ok":"1"}}]"#).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(msg.contains("start time must be before end time"), "{msg}");
        assert_eq!(
            core(&am, |c| c.alerts.len()),
            1,
            "the valid alert is kept, like upstream"
        );
        let (st, msg) = call(&am, "POST", "/api/v1/alerts", r#"[{"labels":{"x":"1"}}]"#).await;
        assert_eq!(
            (st, msg.as_str()),
            (StatusCode::OK, r#"{"status":"success"}"#)
        );
        let (st, msg) = call(&am, "POST", "/alertmanager/api/v1/alerts", "nope").await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(msg.contains("bad_data"));
        // At the root, a body that is not a JSON array is a configuration document.
        let (st, msg) = call(&am, "POST", "/api/v1/alerts", "nope").await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(msg.contains("not a valid configuration document"), "{msg}");
    }

    #[tokio::test]
    async fn silences_api() {
        let (am, clock, _d) = setup(CFG);
        let post = |body: &str| {
            let am = am.clone();
            let body = body.to_string();
            async move { call(&am, "POST", "/api/v2/silences", &body).await }
        };
        let good = r#"{"matchers":[{"name":"alertname","value":"A","isRegex":false}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T01:00:00Z","createdBy":"me","comment":"c"}"#;
        for (body, want) in [
            (
                r#"{"matchers":[],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T01:00:00Z","createdBy":"me","comment":"c"}"#,
                "at least 1",
            ),
            (
                r#"{"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T01:00:00Z","createdBy":"me","comment":"c"}"#,
                "matchers in body is required",
            ),
            (
                r#"{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2026-01-01T02:00:00Z","endsAt":"2026-01-01T01:00:00Z","createdBy":"me","comment":"c"}"#,
                "start time must be before end time",
            ),
            (
                r#"{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2025-01-01T00:00:00Z","endsAt":"2025-01-01T01:00:00Z","createdBy":"me","comment":"c"}"#,
                "end time can't be in the past",
            ),
            (
                r#"{"matchers":[{"name":"a","value":"","isRegex":false}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T01:00:00Z","createdBy":"me","comment":"c"}"#,
                "must not match the empty string",
            ),
            ("{", "not valid JSON"),
        ] {
            let (st, msg) = post(body).await;
            assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
            assert!(msg.contains(want), "{body}: {msg}");
        }
        let (st, msg) = post(&good.replace("{\"matchers\"", "{\"id\":\"nope\",\"matchers\"")).await;
        assert_eq!(
            (st, msg.as_str()),
            (StatusCode::NOT_FOUND, "\"silence not found\"")
        );
        assert_eq!(core(&am, |c| c.silences.iter().count()), 0);
        let (st, msg) = post(good).await;
        assert_eq!(st, StatusCode::OK);
        let id = serde_json::from_str::<Value>(&msg).unwrap()["silenceID"]
            .as_str()
            .unwrap()
            .to_string();
        let (st, body) = call(&am, "GET", &format!("/api/v2/silence/{id}"), "").await;
        assert_eq!(st, StatusCode::OK);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"]["state"], "active");
        assert_eq!(v["matchers"][0]["isEqual"], true);
        let (_, body) = call(
            &am,
            "GET",
            "/api/v2/silences?filter=alertname%3D%22A%22",
            "",
        )
        .await;
        assert_eq!(
            serde_json::from_str::<Value>(&body)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let (_, body) = call(
            &am,
            "GET",
            "/api/v2/silences?filter=alertname%3D%22B%22",
            "",
        )
        .await;
        assert_eq!(body, "[]");
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(
            call(&am, "DELETE", &format!("/api/v2/silence/{id}"), "")
                .await
                .0,
            StatusCode::OK
        );
        clock.advance(std::time::Duration::from_secs(1));
        assert_eq!(
            call(&am, "DELETE", &format!("/api/v2/silence/{id}"), "")
                .await
                .0,
            StatusCode::OK
        );
        let (_, body) = call(&am, "GET", &format!("/api/v2/silence/{id}"), "").await;
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["status"]["state"],
            "expired"
        );
        assert_eq!(
            call(&am, "DELETE", "/api/v2/silence/unknown", "").await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&am, "GET", "/api/v2/silence/unknown", "").await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn status_receivers_health_reload() {
        let (am, _clock, dir) = setup(CFG);
        let (st, body) = call(&am, "GET", "/api/v2/status", "").await;
        assert_eq!(st, StatusCode::OK);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["config"]["original"], CFG);
        assert_eq!(v["cluster"]["status"], "ready");
        assert_eq!(v["versionInfo"]["version"], "0.25.0");
        let (_, body) = call(&am, "GET", "/alertmanager/api/v2/receivers", "").await;
        assert_eq!(body, r#"[{"name":"a"},{"name":"db"}]"#);
        assert_eq!(
            call(&am, "GET", "/-/healthy", "").await,
            (StatusCode::OK, "OK".to_string())
        );
        assert_eq!(
            call(&am, "GET", "/alertmanager/-/ready", "").await,
            (StatusCode::OK, "OK".to_string())
        );
        // A bad file keeps the old configuration.
        std::fs::write(
            dir.path().join("am.yml"),
            "route: {receiver: nope}\nreceivers: [{name: a}]\n",
        )
        .unwrap();
        let (st, msg) = call(&am, "POST", "/-/reload", "").await;
        assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(msg.contains("undefined receiver"), "{msg}");
        assert_eq!(core(&am, |c| c.config.shown.clone()), CFG);
        std::fs::write(
            dir.path().join("am.yml"),
            "route: {receiver: z}\nreceivers: [{name: z}]\n",
        )
        .unwrap();
        assert_eq!(call(&am, "POST", "/-/reload", "").await.0, StatusCode::OK);
        let (_, body) = call(&am, "GET", "/api/v2/receivers", "").await;
        assert_eq!(body, r#"[{"name":"z"}]"#);
    }
}
