//! The query-frontend: range queries are cut at day boundaries (`split`), each piece read from
//! the cache or asked of the querier (retried on 5xx), and the pieces' answers joined
//! (`merge`). Every other read is passed to the querier unchanged.

use crate::cache::ResultsCache;
use crate::config::{CacheBackend, QueryFrontendConfig};
use crate::downstream::Downstream;
use crate::error::FrontendError;
use crate::memcached::Memcached;
use crate::metrics::Metrics;
use crate::queue::FairQueue;
use crate::shard::Plan;
use crate::split::{align, split, Piece};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use futures::StreamExt;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use strata_model::time::{now_ms, parse_duration_param, parse_time_param};
use strata_model::{QueryShard, TenancyConfig, QUERY_SHARD_PARAM};

/// Largest request body read (form POSTs of queries).
const MAX_BODY_BYTES: usize = 10 << 20;
/// A query with more evaluation steps than this (the querier's default
/// `max_points_per_series`) is passed on whole, for the querier to refuse: cut into days,
/// each piece would pass the querier's check on its own.
const MAX_POINTS: i64 = 11_000;
/// A query spanning more split intervals than this runs unsplit (bounds the calls one query
/// makes).
const MAX_PIECES: i64 = 1_000;

/// The query-frontend component.
pub struct QueryFrontend {
    cfg: QueryFrontendConfig,
    /// Resolves a request's tenant exactly as the querier will (header, basic-auth user or the
    /// single tenant): the cache and the queues are per tenant.
    tenancy: TenancyConfig,
    downstream: Arc<dyn Downstream>,
    cache: Option<PieceCache>,
    queue: Arc<FairQueue>,
    metrics: Metrics,
}

impl std::fmt::Debug for QueryFrontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryFrontend")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Where pieces are cached.
enum PieceCache {
    Memory(ResultsCache),
    Memcached(Memcached),
}

impl PieceCache {
    async fn get(&self, key: &str, metrics: &Metrics) -> Option<Bytes> {
        match self {
            Self::Memory(c) => c.get(key),
            Self::Memcached(m) => match m.get(key).await {
                Ok(v) => v,
                Err(e) => {
                    metrics.cache_errors.inc();
                    tracing::warn!(error = %e, "results cache read failed; asking the querier");
                    None
                }
            },
        }
    }

    async fn put(&self, key: String, value: Bytes, metrics: &Metrics) {
        match self {
            Self::Memory(c) => c.put(key, value),
            Self::Memcached(m) => {
                if let Err(e) = m.set(&key, &value).await {
                    metrics.cache_errors.inc();
                    tracing::warn!(error = %e, "results cache write failed");
                }
            }
        }
    }
}

/// A range query's parameters, when they all parse; otherwise the querier answers it (and
/// words the error) itself.
#[derive(Clone)]
struct RangeQuery {
    query: String,
    start: i64,
    end: i64,
    step: i64,
    /// The other parameters (`timeout`, `max_source_resolution`, …), sorted, passed on.
    rest: Vec<(String, String)>,
}

fn prometheus_error(status: StatusCode, kind: &str, msg: &str) -> Response {
    let body = serde_json::json!({"status": "error", "errorType": kind, "error": msg});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    if abs.is_multiple_of(1000) {
        format!("{sign}{}", abs / 1000)
    } else {
        format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
    }
}

impl QueryFrontend {
    pub fn new(
        cfg: QueryFrontendConfig,
        tenancy: TenancyConfig,
        downstream: Arc<dyn Downstream>,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, FrontendError> {
        cfg.validate()?;
        let cache = match cfg.results_cache_backend {
            CacheBackend::Memory => (cfg.results_cache_max_bytes > 0)
                .then(|| PieceCache::Memory(ResultsCache::new(cfg.results_cache_max_bytes))),
            CacheBackend::Memcached => Some(PieceCache::Memcached(Memcached::new(
                &cfg.memcached.addresses,
                &cfg.memcached.key_prefix,
                cfg.memcached.timeout,
                cfg.memcached.expiration,
                cfg.memcached.max_item_bytes,
            ))),
        };
        Ok(Arc::new(Self {
            queue: FairQueue::new(cfg.max_concurrent_calls),
            tenancy,
            cfg,
            downstream,
            cache,
            metrics: Metrics::new(registry),
        }))
    }

    /// The tenant(s) a request reads, as the querier will resolve them (`a|b` when federated);
    /// `None` when the querier will refuse the request.
    fn tenant_of(&self, req: &axum::http::Request<Bytes>) -> Option<String> {
        let hv = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
        let tenants = self
            .tenancy
            .resolve_all(hv("x-scope-orgid"), hv("authorization"))
            .ok()?;
        Some(
            tenants
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join("|"),
        )
    }

    /// Whether `path` is a range query (the one the frontend splits).
    pub fn is_range_query(path: &str) -> bool {
        path == "/api/v1/query_range" || path == "/prometheus/api/v1/query_range"
    }

    /// Answers a read: range queries split and cached, anything else passed through.
    pub async fn serve(&self, req: Request) -> Response {
        let (parts, body) = req.into_parts();
        let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return prometheus_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "bad_data",
                    &format!("request body is larger than {MAX_BODY_BYTES} bytes"),
                )
            }
        };
        let req = axum::http::Request::from_parts(parts, body);
        if Self::is_range_query(req.uri().path()) {
            if let Some(q) = self.parse(&req) {
                return self.range(&req, q).await;
            }
        }
        self.passthrough(req).await
    }

    fn parse(&self, req: &axum::http::Request<Bytes>) -> Option<RangeQuery> {
        let mut params: Vec<(String, String)> = req
            .uri()
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            params.extend(form_urlencoded::parse(req.body()).into_owned());
        }
        let one = |k: &str| {
            let mut it = params.iter().filter(|(n, _)| n == k);
            let v = it.next().map(|(_, v)| v.clone());
            // A repeated parameter: let the querier decide.
            it.next().is_none().then_some(v).flatten()
        };
        let query = one("query").filter(|q| !q.is_empty())?;
        let start = parse_time_param(&one("start")?)?;
        let end = parse_time_param(&one("end")?)?;
        let step = parse_duration_param(&one("step")?)?;
        if step <= 0 || end < start || (end - start) / step >= MAX_POINTS {
            return None;
        }
        let mut rest: Vec<(String, String)> = params
            .into_iter()
            .filter(|(n, _)| !matches!(n.as_str(), "query" | "start" | "end" | "step"))
            .collect();
        rest.sort();
        Some(RangeQuery {
            query,
            start,
            end,
            step,
            rest,
        })
    }

    /// A request to the querier for `piece` of `q`, with the caller's headers.
    fn piece_request(
        &self,
        orig: &axum::http::Request<Bytes>,
        q: &RangeQuery,
        piece: Piece,
        shard: Option<QueryShard>,
    ) -> axum::http::Request<Bytes> {
        let mut qs = form_urlencoded::Serializer::new(String::new());
        qs.append_pair("query", &q.query);
        qs.append_pair("start", &seconds(piece.start));
        qs.append_pair("end", &seconds(piece.end));
        qs.append_pair("step", &seconds(q.step));
        for (k, v) in &q.rest {
            qs.append_pair(k, v);
        }
        if let Some(shard) = shard {
            qs.append_pair(QUERY_SHARD_PARAM, &shard.to_string());
        }
        // A form POST: a long query does not run into URL length limits on the way.
        let uri: Uri = orig
            .uri()
            .path()
            .parse()
            .unwrap_or_else(|_| orig.uri().clone());
        let mut r = axum::http::Request::new(Bytes::from(qs.finish()));
        *r.method_mut() = Method::POST;
        *r.uri_mut() = uri;
        for (name, value) in orig.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                r.headers_mut().insert(name, value.clone());
            }
        }
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        r
    }

    /// Calls the querier in a slot of the tenant's queue, again on 5xx or no answer, up to
    /// `max_retries` more times.
    async fn call_with_retries(
        &self,
        req: axum::http::Request<Bytes>,
    ) -> Result<axum::http::Response<Bytes>, FrontendError> {
        let tenant = self.tenant_of(&req).unwrap_or_default();
        let mut attempt = 0;
        loop {
            let (parts, body) = (req.clone_parts(), req.body().clone());
            let r = {
                let _slot = self.queue.acquire(&tenant).await;
                self.downstream
                    .call(axum::http::Request::from_parts(parts, body))
                    .await
            };
            let retry = match &r {
                Ok(resp) => resp.status().is_server_error(),
                Err(_) => true,
            };
            if !retry || attempt >= self.cfg.max_retries {
                return r;
            }
            attempt += 1;
            self.metrics.retries.inc();
            match &r {
                Ok(resp) => {
                    tracing::warn!(status = %resp.status(), attempt, "querier answered 5xx; retrying")
                }
                Err(e) => tracing::warn!(error = %e, attempt, "querier did not answer; retrying"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
        }
    }

    async fn passthrough(&self, req: axum::http::Request<Bytes>) -> Response {
        match self.call_with_retries(req).await {
            Ok(resp) => resp.map(Body::from),
            Err(e) => prometheus_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &e.to_string(),
            ),
        }
    }

    fn cache_key(
        &self,
        tenant: &str,
        q: &RangeQuery,
        piece: Piece,
        shard: Option<QueryShard>,
    ) -> String {
        let rest: Vec<String> = q.rest.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let shard = shard.map(|s| s.to_string()).unwrap_or_default();
        format!(
            "{tenant}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{shard}",
            q.query,
            q.step,
            piece.start,
            piece.end,
            rest.join("&")
        )
    }

    /// One piece of `q` (one shard of it, with `shard`): from the cache when `cacheable`, else
    /// from a querier (and then cached).
    async fn fetch_piece(
        &self,
        orig: &axum::http::Request<Bytes>,
        q: &RangeQuery,
        tenant: &str,
        piece: Piece,
        shard: Option<QueryShard>,
        cacheable: bool,
    ) -> Result<Bytes, Response> {
        let key = self.cache_key(tenant, q, piece, shard);
        if cacheable {
            if let Some(c) = &self.cache {
                if let Some(hit) = c.get(&key, &self.metrics).await {
                    self.metrics.cache_hits.inc();
                    return Ok(hit);
                }
            }
            self.metrics.cache_misses.inc();
        }
        match self
            .call_with_retries(self.piece_request(orig, q, piece, shard))
            .await
        {
            Ok(resp) if resp.status() == StatusCode::OK => {
                let body = resp.into_body();
                if cacheable {
                    if let Some(c) = &self.cache {
                        c.put(key, body.clone(), &self.metrics).await;
                    }
                }
                Ok(body)
            }
            // A piece's error is the query's error, as the querier worded it.
            Ok(resp) => Err(resp.map(Body::from)),
            Err(e) => Err(prometheus_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &e.to_string(),
            )),
        }
    }

    /// A piece of a sharded query: every shard of it, combined.
    async fn fetch_sharded_piece(
        &self,
        orig: &axum::http::Request<Bytes>,
        q: &RangeQuery,
        tenant: &str,
        piece: Piece,
        plan: &Plan,
        cacheable: bool,
    ) -> Result<Bytes, Response> {
        let n = self.cfg.query_sharding_total_shards;
        let queries: Vec<RangeQuery> = plan
            .queries
            .iter()
            .map(|query| RangeQuery {
                query: query.clone(),
                ..q.clone()
            })
            .collect();
        let parts = futures::future::join_all(queries.iter().flat_map(|q| {
            (0..n).map(move |i| {
                let shard = QueryShard::new(i, n).ok();
                self.fetch_piece(orig, q, tenant, piece, shard, cacheable)
            })
        }))
        .await;
        let mut bodies: Vec<Vec<serde_json::Value>> = vec![Vec::new(); queries.len()];
        for (i, p) in parts.into_iter().enumerate() {
            let b = p?;
            bodies[i / n as usize].push(serde_json::from_slice(&b).map_err(|e| {
                prometheus_error(
                    StatusCode::BAD_GATEWAY,
                    "internal",
                    &format!("querier answer is not JSON: {e}"),
                )
            })?);
        }
        let combined = crate::shard::combine(&plan.how, &bodies).map_err(|reason| {
            prometheus_error(
                StatusCode::BAD_GATEWAY,
                "internal",
                &format!("cannot combine the query's shards: {reason}"),
            )
        })?;
        Ok(Bytes::from(combined.to_string()))
    }

    async fn range(&self, orig: &axum::http::Request<Bytes>, mut q: RangeQuery) -> Response {
        self.metrics.range_queries.inc();
        if self.cfg.align_queries_with_step {
            (q.start, q.end) = align(q.start, q.end, q.step);
        }
        // `@ start()` / `@ end()` refer to the whole query's range: such queries are not cut.
        // A very long range is not cut either (bounded calls per query).
        let mut interval = if q.query.contains("start()") || q.query.contains("end()") {
            0
        } else {
            self.cfg.split_queries_by_interval.as_millis() as i64
        };
        if interval > 0 && (q.end - q.start) / interval >= MAX_PIECES {
            interval = 0;
        }
        // An `@` time or a negative offset reads data at other times than the piece's: an old
        // piece may depend on fresh data, so such queries are never cached (Mimir's rule).
        let squeezed: String = q.query.chars().filter(|c| !c.is_whitespace()).collect();
        let cache_ok = !squeezed.contains('@') && !squeezed.contains("offset-");
        let pieces = split(q.start, q.end, q.step, interval);
        self.metrics.pieces.inc_by(pieces.len() as u64);
        // A request whose tenant the querier will not accept is its to refuse.
        let Some(tenant) = self.tenant_of(orig) else {
            return self.passthrough(orig.clone()).await;
        };
        let fresh_after = now_ms() - self.cfg.max_cache_freshness.as_millis() as i64;
        let q = &q;
        let tenant = &tenant;
        let plan = if self.cfg.query_sharding_total_shards > 1 {
            crate::shard::plan(&q.query)
        } else {
            None
        };
        let sharding = plan.as_ref();
        if sharding.is_some() {
            self.metrics.sharded_queries.inc();
        }
        let answers: Vec<Result<Bytes, Response>> = futures::stream::iter(pieces)
            .map(|piece| async move {
                let cacheable = cache_ok && self.cache.is_some() && piece.end < fresh_after;
                match sharding {
                    None => {
                        self.fetch_piece(orig, q, tenant, piece, None, cacheable)
                            .await
                    }
                    Some(plan) => {
                        self.fetch_sharded_piece(orig, q, tenant, piece, plan, cacheable)
                            .await
                    }
                }
            })
            .buffered(self.cfg.max_split_parallelism)
            .collect()
            .await;
        // One piece: its answer is the answer, as the querier wrote it (no re-parsing).
        if answers.len() == 1 {
            return match answers.into_iter().next() {
                Some(Ok(body)) => (
                    StatusCode::OK,
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    body,
                )
                    .into_response(),
                Some(Err(resp)) => resp,
                None => prometheus_error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no piece"),
            };
        }
        let mut bodies = Vec::with_capacity(answers.len());
        for a in answers {
            match a {
                Ok(b) => match serde_json::from_slice::<serde_json::Value>(&b) {
                    Ok(v) => bodies.push(v),
                    Err(e) => {
                        return prometheus_error(
                            StatusCode::BAD_GATEWAY,
                            "internal",
                            &format!("querier answer is not JSON: {e}"),
                        )
                    }
                },
                Err(resp) => return resp,
            }
        }
        match crate::merge::merge_matrices(&bodies) {
            Ok(v) => (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                v.to_string(),
            )
                .into_response(),
            Err(reason) => prometheus_error(
                StatusCode::BAD_GATEWAY,
                "internal",
                &format!("querier answer is not a Prometheus matrix: {reason}"),
            ),
        }
    }

    /// Pieces in the in-process results cache (0 with memcached).
    pub fn cached_pieces(&self) -> usize {
        match &self.cache {
            Some(PieceCache::Memory(c)) => c.len(),
            _ => 0,
        }
    }
}

/// Clones a request's head (the body is cloned separately): retries resend it.
trait CloneParts {
    fn clone_parts(&self) -> axum::http::request::Parts;
}

impl CloneParts for axum::http::Request<Bytes> {
    fn clone_parts(&self) -> axum::http::request::Parts {
        let mut r = axum::http::Request::new(());
        *r.method_mut() = self.method().clone();
        *r.uri_mut() = self.uri().clone();
        *r.version_mut() = self.version();
        *r.headers_mut() = self.headers().clone();
        r.into_parts().0
    }
}

async fn intercept(State(f): State<Arc<QueryFrontend>>, req: Request, next: Next) -> Response {
    if QueryFrontend::is_range_query(req.uri().path()) {
        f.serve(req).await
    } else {
        next.run(req).await
    }
}

/// The querier's router with the frontend in front of its range queries (`all`). The frontend
/// must have been built over `querier` itself (a [`crate::RouterDownstream`] of it).
pub fn in_front_of(f: Arc<QueryFrontend>, querier: Router) -> Router {
    querier.layer(axum::middleware::from_fn_with_state(f, intercept))
}

async fn proxy(State(f): State<Arc<QueryFrontend>>, req: Request) -> Response {
    f.serve(req).await
}

/// The routes of a query-frontend in its own process: the Prometheus read API, sent to
/// `query_frontend.downstream_url`.
pub fn router(f: Arc<QueryFrontend>) -> Router {
    Router::new()
        .route("/api/v1/{*rest}", axum::routing::any(proxy))
        .route("/prometheus/api/v1/{*rest}", axum::routing::any(proxy))
        .with_state(f)
}
