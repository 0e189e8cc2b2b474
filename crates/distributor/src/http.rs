//! `POST /api/v1/push`: content negotiation, decoding, validation, limits, forwarding.

use crate::config::DistributorConfig;
use crate::error::DistributorError;
use crate::ha_tracker::{Decision, HaTracker};
use crate::metrics::{CodeLabels, Metrics, ReasonLabels};
use crate::rate_limit::RateLimiter;
use crate::validation::validate_batch;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use parking_lot::{Mutex, RwLock};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;
use strata_model::time::now_ms;
use strata_model::{Overrides, TenancyConfig, WriteBatch};
use strata_proto::decode::{decode_write_request_v1, decode_write_request_v2};
use strata_storage::{PushOutcome, Pusher, RejectionKind};

/// Which remote-write message a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoVersion {
    V1,
    V2,
}

/// Content negotiation per the remote write 2.0 spec. A missing Content-Type is taken as 1.0,
/// which is what senders older than the spec do.
pub fn negotiate(headers: &HeaderMap) -> Result<ProtoVersion, DistributorError> {
    if let Some(enc) = headers.get(header::CONTENT_ENCODING) {
        let e = enc.to_str().unwrap_or("");
        if !e.trim().eq_ignore_ascii_case("snappy") {
            return Err(DistributorError::UnsupportedEncoding(e.to_owned()));
        }
    }
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(ProtoVersion::V1);
    };
    let raw = ct.to_str().unwrap_or("");
    let mut parts = raw.split(';').map(str::trim);
    let media = parts.next().unwrap_or("");
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(DistributorError::UnsupportedContentType(raw.to_owned()));
    }
    let mut version = ProtoVersion::V1;
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("proto") {
                version = match v.trim().trim_matches('"') {
                    "prometheus.WriteRequest" => ProtoVersion::V1,
                    "io.prometheus.write.v2.Request" => ProtoVersion::V2,
                    _ => return Err(DistributorError::UnsupportedContentType(raw.to_owned())),
                };
            }
        }
    }
    Ok(version)
}

/// What a distributor needs beyond one process: the HA tracker, and the number of healthy
/// distributors (per-tenant rate limits are split between them, Mimir's "global" strategy).
#[derive(Default)]
pub struct ClusterHooks {
    pub ha_tracker: Option<Arc<HaTracker>>,
    pub healthy_distributors: Option<Arc<dyn Fn() -> usize + Send + Sync>>,
}

impl std::fmt::Debug for ClusterHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHooks")
            .field("ha_tracker", &self.ha_tracker.is_some())
            .finish_non_exhaustive()
    }
}

/// The distributor component.
pub struct Distributor {
    cfg: DistributorConfig,
    tenancy: TenancyConfig,
    overrides: Arc<RwLock<Overrides>>,
    ingesters: Arc<dyn Pusher>,
    rate: RateLimiter,
    metrics: Metrics,
    buffers: Mutex<Vec<Vec<u8>>>,
    hooks: ClusterHooks,
}

impl std::fmt::Debug for Distributor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distributor")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The result of a push, before it becomes an HTTP response.
#[derive(Debug)]
pub struct PushResult {
    pub version: ProtoVersion,
    pub outcome: PushOutcome,
    pub exemplars: u64,
    /// Set when the HA tracker dropped the request (not the elected replica): answered 202.
    pub deduplicated: Option<String>,
}

impl Distributor {
    pub fn new(
        cfg: DistributorConfig,
        tenancy: TenancyConfig,
        overrides: Arc<RwLock<Overrides>>,
        ingesters: Arc<dyn Pusher>,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, DistributorError> {
        Self::with_cluster(
            cfg,
            tenancy,
            overrides,
            ingesters,
            ClusterHooks::default(),
            registry,
        )
    }

    /// A distributor in a cluster: `hooks` add HA deduplication and split rate limits.
    pub fn with_cluster(
        cfg: DistributorConfig,
        tenancy: TenancyConfig,
        overrides: Arc<RwLock<Overrides>>,
        ingesters: Arc<dyn Pusher>,
        hooks: ClusterHooks,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, DistributorError> {
        cfg.validate()?;
        Ok(Arc::new(Self {
            cfg,
            tenancy,
            overrides,
            ingesters,
            rate: RateLimiter::default(),
            metrics: Metrics::new(registry),
            buffers: Mutex::new(Vec::new()),
            hooks,
        }))
    }

    /// Handles one remote-write body.
    pub async fn push(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PushResult, DistributorError> {
        let version = negotiate(headers)?;
        let hv = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let tenant = self
            .tenancy
            .resolve(hv("x-scope-orgid"), hv("authorization"))?;
        let limit = self.cfg.max_recv_msg_size;
        if body.len() > limit {
            return Err(DistributorError::TooLarge {
                size: body.len(),
                limit,
            });
        }
        let raw_len = snap::raw::decompress_len(body).map_err(DistributorError::Snappy)?;
        if raw_len > limit {
            return Err(DistributorError::TooLarge {
                size: raw_len,
                limit,
            });
        }
        let mut buf = self.buffers.lock().pop().unwrap_or_default();
        buf.resize(raw_len, 0);
        let res = self
            .push_decompressed(version, &tenant, body, &mut buf)
            .await;
        if buf.capacity() <= 16 << 20 {
            self.buffers.lock().push(buf);
        }
        res
    }

    async fn push_decompressed(
        &self,
        version: ProtoVersion,
        tenant: &strata_model::TenantId,
        body: &[u8],
        buf: &mut [u8],
    ) -> Result<PushResult, DistributorError> {
        let n = snap::raw::Decoder::new()
            .decompress(body, buf)
            .map_err(DistributorError::Snappy)?;
        let raw = &buf[..n];
        let mut batch = WriteBatch::default();
        match version {
            ProtoVersion::V1 => decode_write_request_v1(raw, &mut batch).map_err(|source| {
                DistributorError::Decode {
                    message: "prometheus.WriteRequest",
                    source,
                }
            })?,
            ProtoVersion::V2 => decode_write_request_v2(raw, &mut batch).map_err(|source| {
                DistributorError::Decode {
                    message: "io.prometheus.write.v2.Request",
                    source,
                }
            })?,
        }
        let received = batch.sample_count() as u64;
        self.metrics.received_samples.inc_by(received);
        let exemplars: u64 = batch.series.iter().map(|s| u64::from(s.exemplars)).sum();
        if let Some(msg) = self.deduplicate(tenant, &mut batch).await? {
            self.metrics
                .discarded_samples
                .get_or_create(&ReasonLabels {
                    reason: "ha-replica-deduplicated".into(),
                })
                .inc_by(received);
            return Ok(PushResult {
                version,
                outcome: PushOutcome::default(),
                exemplars,
                deduplicated: Some(msg),
            });
        }
        let outcome = self.store_batch(tenant, &mut batch, received).await?;
        Ok(PushResult {
            version,
            outcome,
            exemplars,
            deduplicated: None,
        })
    }

    /// Validates a decoded batch, applies the tenant's rate limit and stores it: what every
    /// write goes through after decoding, remote write or another component's (see the
    /// [`Pusher`] implementation).
    async fn store_batch(
        &self,
        tenant: &strata_model::TenantId,
        batch: &mut WriteBatch<'_>,
        received: u64,
    ) -> Result<PushOutcome, DistributorError> {
        let limits = self.overrides.read().for_tenant(tenant.as_str()).clone();
        let mut outcome = PushOutcome::default();
        validate_batch(batch, &limits, now_ms(), &mut outcome, |reason, n| {
            self.metrics
                .discarded_samples
                .get_or_create(&ReasonLabels {
                    reason: reason.to_owned(),
                })
                .inc_by(n);
        });
        let valid: usize = batch
            .series
            .iter()
            .map(|s| (s.samples.end - s.samples.start) as usize)
            .sum();
        // Each of N distributors admits 1/N of the tenant's rate (Mimir's global strategy; load
        // balancers spread writes evenly).
        let distributors = self
            .hooks
            .healthy_distributors
            .as_ref()
            .map_or(1, |f| f().max(1));
        if !self.rate.allow(
            tenant.as_str(),
            limits.ingestion_rate / distributors as f64,
            limits.ingestion_burst_size,
            valid,
            Instant::now(),
        ) {
            self.metrics
                .discarded_samples
                .get_or_create(&ReasonLabels {
                    reason: "rate-limited".into(),
                })
                .inc_by(received);
            return Err(DistributorError::RateLimited {
                tenant: tenant.to_string(),
                rate: limits.ingestion_rate,
                distributors,
                burst: limits.ingestion_burst_size,
                samples: valid,
            });
        }
        if valid > 0 || !batch.metadata.is_empty() {
            let stored = self.ingesters.push(tenant, batch).await?;
            if let Some(r) = &stored.first_rejection {
                self.metrics
                    .discarded_samples
                    .get_or_create(&ReasonLabels {
                        reason: r.reason.to_owned(),
                    })
                    .inc_by(stored.samples_rejected);
            }
            outcome.merge(stored);
        }
        Ok(outcome)
    }

    /// The HA tracker's decision for the request, judged by its first series as in Mimir
    /// (all series of a request come from one Prometheus). `Some(message)`: drop it. Accepted
    /// requests lose the replica label.
    async fn deduplicate(
        &self,
        tenant: &strata_model::TenantId,
        batch: &mut WriteBatch<'_>,
    ) -> Result<Option<String>, DistributorError> {
        let Some(ha) = &self.hooks.ha_tracker else {
            return Ok(None);
        };
        if batch.series.is_empty() {
            return Ok(None);
        }
        let cfg = ha.config();
        let first = batch.series_labels(0);
        let find = |name: &str| first.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        let (Some(cluster), Some(replica)) = (find(&cfg.cluster_label), find(&cfg.replica_label))
        else {
            return Ok(None);
        };
        match ha
            .check(tenant.as_str(), cluster, replica, now_ms())
            .await?
        {
            Decision::Accept => {
                let replica_label = cfg.replica_label.clone();
                batch.remove_label(&replica_label);
                Ok(None)
            }
            Decision::Reject { elected } => Ok(Some(format!(
                "replicas did not match, rejecting sample: replica={replica}, elected={elected}"
            ))),
        }
    }
}

/// Writes of other components (the ruler's recorded series and alert series) get the same
/// validation and per-tenant limits as remote write. A rate-limited batch is reported as
/// refused samples (retryable), not as a failure of the store.
#[async_trait::async_trait]
impl Pusher for Distributor {
    async fn push(
        &self,
        tenant: &strata_model::TenantId,
        batch: &WriteBatch<'_>,
    ) -> Result<PushOutcome, strata_storage::PushError> {
        let mut own = WriteBatch {
            labels: batch.labels.clone(),
            samples: batch.samples.clone(),
            series: batch.series.clone(),
            metadata: batch.metadata.clone(),
        };
        let received = own.sample_count() as u64;
        self.metrics.received_samples.inc_by(received);
        match self.store_batch(tenant, &mut own, received).await {
            Ok(o) => Ok(o),
            Err(DistributorError::Push(e)) => Err(e),
            Err(e) => {
                let (kind, reason) = match e {
                    DistributorError::RateLimited { .. } => (RejectionKind::Limit, "rate-limited"),
                    _ => (RejectionKind::BadData, "invalid"),
                };
                let mut o = PushOutcome::default();
                o.reject(received, || strata_storage::Rejection {
                    kind,
                    reason,
                    message: e.to_string(),
                });
                Ok(o)
            }
        }
    }
}

fn written_headers(resp: &mut Response, r: &PushResult) {
    if r.version != ProtoVersion::V2 {
        return;
    }
    let h = resp.headers_mut();
    let num =
        |n: u64| HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"));
    h.insert(
        "x-prometheus-remote-write-samples-written",
        num(r.outcome.samples_written),
    );
    // Histograms and exemplars are not stored yet: report honestly that none were written.
    h.insert("x-prometheus-remote-write-histograms-written", num(0));
    h.insert("x-prometheus-remote-write-exemplars-written", num(0));
}

async fn push_handler(
    State(d): State<Arc<Distributor>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let t0 = Instant::now();
    let resp = match d.push(&headers, &body).await {
        Ok(PushResult {
            deduplicated: Some(msg),
            ..
        }) => (StatusCode::ACCEPTED, format!("{msg}\n")).into_response(),
        Ok(r) => {
            let mut resp = match &r.outcome.first_rejection {
                None => StatusCode::NO_CONTENT.into_response(),
                Some(rej) => {
                    let status = match rej.kind {
                        RejectionKind::BadData => StatusCode::BAD_REQUEST,
                        RejectionKind::Limit => StatusCode::TOO_MANY_REQUESTS,
                    };
                    let msg = format!(
                        "{} of {} samples rejected; first: {} ({})\n",
                        r.outcome.samples_rejected,
                        r.outcome.samples_rejected + r.outcome.samples_written,
                        rej.message,
                        rej.reason
                    );
                    tracing::debug!(
                        status = status.as_u16(),
                        reason = rej.reason,
                        "push partially rejected"
                    );
                    (status, msg).into_response()
                }
            };
            written_headers(&mut resp, &r);
            resp
        }
        Err(e) => {
            let status = e.status();
            if status.is_server_error() {
                tracing::error!(error = %e, "push failed");
            } else {
                tracing::debug!(error = %e, "push refused");
            }
            d.metrics
                .discarded_samples
                .get_or_create(&ReasonLabels {
                    reason: e.reason().to_owned(),
                })
                .inc_by(0);
            (status, format!("{e}\n")).into_response()
        }
    };
    d.metrics
        .requests
        .get_or_create(&CodeLabels {
            code: resp.status().as_u16(),
        })
        .inc();
    d.metrics
        .request_duration
        .observe(t0.elapsed().as_secs_f64());
    resp
}

/// Routes of the distributor: `/api/v1/push` (Mimir's path) and `/api/v1/write` (Prometheus's
/// receiver path), each also under `/prometheus`.
pub fn router(d: Arc<Distributor>) -> Router {
    let limit = d.cfg.max_recv_msg_size;
    Router::new()
        .route("/api/v1/push", post(push_handler))
        .route("/api/v1/write", post(push_handler))
        .route("/prometheus/api/v1/push", post(push_handler))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(d)
}
