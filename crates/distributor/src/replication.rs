//! Writing each series to its replica set on the ingester ring and acknowledging at quorum.
//!
//! Every series is hashed (tenant + labels) onto the ring; its replica set is the next RF
//! healthy ACTIVE ingesters clockwise (dskit's rules, `strata_ring`). Each ingester gets one
//! request with every series routed to it, sent in parallel. A series is stored once
//! `min_success` replicas stored it, refused once that many refused it as bad data or over a
//! limit, and failed once neither can happen any more. The push answers as soon as every series
//! is decided; requests still in flight finish in the background, so a slow third replica does
//! not slow the write, and still gets the data.

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use strata_model::{TenantId, WriteBatch};
use strata_proto::encode::{encode_write_request_v1, encoded_len};
use strata_ring::{InstanceDesc, Operation, ReplicaSet, RingWatcher};
use strata_storage::{EncodedPusher, PushError, PushOutcome, Pusher, Rejection, RejectionKind};

/// Clients of the ingesters by ring entry (a gRPC client per address in production, ingesters
/// in this process in tests).
pub trait IngesterClients: Send + Sync {
    fn client(&self, instance: &InstanceDesc) -> Result<Arc<dyn EncodedPusher>, PushError>;
}

/// A [`Pusher`] that replicates over the ingester ring.
pub struct ReplicatedPusher {
    ring: Arc<RingWatcher>,
    clients: Arc<dyn IngesterClients>,
    metrics: ReplicationMetrics,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IngesterLabels {
    ingester: String,
    result: &'static str,
}

/// Per-ingester request outcomes, so an operator sees which ingester fails or is slow.
#[derive(Debug, Clone)]
struct ReplicationMetrics {
    requests: Family<IngesterLabels, Counter>,
    duration: Family<IngesterLabels, Histogram, fn() -> Histogram>,
}

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl ReplicationMetrics {
    fn new(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
        };
        let r = registry.sub_registry_with_prefix("strata_distributor");
        r.register(
            "ingester_requests",
            "Push requests to ingesters by ingester and result (ok, error)",
            m.requests.clone(),
        );
        r.register(
            "ingester_request_duration_seconds",
            "Time of push requests to ingesters",
            m.duration.clone(),
        );
        m
    }

    fn observe(&self, ingester: &str, ok: bool, secs: f64) {
        let l = IngesterLabels {
            ingester: ingester.to_owned(),
            result: if ok { "ok" } else { "error" },
        };
        self.requests.get_or_create(&l).inc();
        self.duration.get_or_create(&l).observe(secs);
    }
}

fn fmt_series<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = String::new();
    let _ = strata_model::labels::fmt_series(&mut s, pairs);
    s
}

impl std::fmt::Debug for ReplicatedPusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedPusher").finish_non_exhaustive()
    }
}

/// Where one series stands.
#[derive(Debug, Clone, Copy, Default)]
struct Tracker {
    min_success: u8,
    ok: u8,
    refused: u8,
    failed: u8,
    pending: u8,
    limit: bool,
    state: State,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum State {
    /// Nothing to send (no samples after validation).
    #[default]
    Skip,
    Pending,
    Stored,
    Refused,
    Failed,
}

impl Tracker {
    /// Re-decides after an answer; returns whether the series left `Pending`.
    fn decide(&mut self) -> bool {
        if self.state != State::Pending {
            return false;
        }
        let min = self.min_success;
        self.state = if self.ok >= min {
            State::Stored
        } else if self.refused >= min {
            State::Refused
        } else if self.ok + self.pending < min && self.refused + self.pending < min {
            // Neither a store nor a refusal quorum is reachable any more.
            State::Failed
        } else if self.pending == 0 {
            // Answers split between stored and refused with none left: e.g. RF 3 with one
            // stored, one refused, one failed. The sender must retry (duplicates are harmless).
            State::Failed
        } else {
            return false;
        };
        true
    }
}

impl ReplicatedPusher {
    pub fn new(
        ring: Arc<RingWatcher>,
        clients: Arc<dyn IngesterClients>,
        registry: &mut Registry,
    ) -> Self {
        Self {
            ring,
            clients,
            metrics: ReplicationMetrics::new(registry),
        }
    }
}

impl ReplicatedPusher {
    /// Metadata without samples (Prometheus sends it in separate requests) goes to the replicas
    /// of the tenant's key. Metadata is best effort, as in Mimir: one replica storing it is
    /// enough.
    async fn push_metadata_only(
        &self,
        tenant: &TenantId,
        batch: &WriteBatch<'_>,
    ) -> Result<PushOutcome, PushError> {
        let ring = self.ring.ring();
        let token = strata_ring::key_token(tenant.as_str().as_bytes());
        let set = ring
            .replication_set(token, Operation::Write, self.ring.now_ms())
            .map_err(|e| PushError::Quorum {
                series: "(metric metadata)".into(),
                succeeded: 0,
                required: 1,
                cause: Box::new(e),
            })?;
        let mut buf = Vec::new();
        encode_write_request_v1(batch, std::iter::empty(), true, &mut buf);
        let body = Bytes::from(buf);
        let mut tasks = FuturesUnordered::new();
        for desc in set.instances(&ring) {
            let client = self.clients.client(desc)?;
            let (t, body) = (tenant.clone(), body.clone());
            tasks.push(tokio::spawn(
                async move { client.push_encoded(&t, body).await },
            ));
        }
        let mut last = None;
        while let Some(r) = tasks.next().await {
            match r {
                Ok(Ok(_)) => return Ok(PushOutcome::default()),
                Ok(Err(e)) => last = Some(e),
                Err(e) => {
                    last = Some(PushError::Remote {
                        target: "ingester".into(),
                        source: Box::new(e),
                    })
                }
            }
        }
        Err(last.unwrap_or(PushError::Unavailable("ingesters", "no replica answered")))
    }
}

#[async_trait::async_trait]
impl Pusher for ReplicatedPusher {
    async fn push(
        &self,
        tenant: &TenantId,
        batch: &WriteBatch<'_>,
    ) -> Result<PushOutcome, PushError> {
        let ring = self.ring.ring();
        let now = self.ring.now_ms();
        let n = batch.series.len();
        let mut items = vec![Tracker::default(); n];
        // Series indices routed to each instance (by index into `ring.all()`).
        let mut routes: Vec<Vec<u32>> = vec![Vec::new(); ring.len()];
        let mut set = ReplicaSet::new();
        let mut with_samples = 0;
        for (i, item) in items.iter_mut().enumerate() {
            if batch.series_samples(i).is_empty() {
                continue;
            }
            with_samples += 1;
            let labels = batch.series_labels(i);
            let token = strata_ring::series_token(tenant.as_str(), labels);
            if let Err(e) = ring.replication_set_into(token, Operation::Write, now, &mut set) {
                // Nothing was sent yet: the sender retries the whole request.
                return Err(PushError::Quorum {
                    series: fmt_series(labels.iter().copied()),
                    succeeded: 0,
                    required: set.min_success.max(1),
                    cause: Box::new(e),
                });
            }
            *item = Tracker {
                min_success: set.min_success as u8,
                pending: set.len() as u8,
                state: State::Pending,
                ..Tracker::default()
            };
            for &inst in set.indices() {
                routes[inst as usize].push(i as u32);
            }
        }
        if with_samples == 0 && batch.metadata.is_empty() {
            return Ok(PushOutcome::default());
        }
        if with_samples == 0 {
            return self.push_metadata_only(tenant, batch).await;
        }

        let mut tasks = FuturesUnordered::new();
        let mut last_error: Option<PushError> = None;
        // Instances routed the same series get the same bytes, encoded once: with as many
        // ingesters as replicas (or a request whose series share replica sets) every replica
        // would otherwise re-encode the whole request.
        let mut encoded: Vec<(usize, Bytes)> = Vec::new();
        for (inst, series) in routes.iter().enumerate() {
            if series.is_empty() {
                continue;
            }
            let desc = ring.instance(inst as u32);
            let client = match self.clients.client(desc) {
                Ok(c) => c,
                Err(e) => {
                    tasks.push(tokio::spawn(std::future::ready((inst, Err(e)))));
                    continue;
                }
            };
            let body = match encoded.iter().find(|(other, _)| routes[*other] == *series) {
                Some((_, body)) => body.clone(),
                None => {
                    let idx = series.iter().map(|&i| i as usize);
                    let mut buf = Vec::with_capacity(encoded_len(batch, idx.clone()) + 64);
                    encode_write_request_v1(batch, idx, true, &mut buf);
                    let body = Bytes::from(buf);
                    encoded.push((inst, body.clone()));
                    body
                }
            };
            let t = tenant.clone();
            let metrics = self.metrics.clone();
            let id = desc.id.clone();
            tasks.push(tokio::spawn(async move {
                let t0 = std::time::Instant::now();
                let r = client.push_encoded(&t, body).await;
                metrics.observe(&id, r.is_ok(), t0.elapsed().as_secs_f64());
                (inst, r)
            }));
        }
        let mut undecided = items.iter().filter(|t| t.state == State::Pending).count();
        let mut rejection: Option<Rejection> = None;
        let mut rejection_is_limit = false;
        while undecided > 0 {
            let Some(joined) = tasks.next().await else {
                break;
            };
            let (inst, result) = match joined {
                Ok(r) => r,
                Err(e) => {
                    // A panicked send task: count it as a failure of... nobody knows which
                    // instance; the series stay pending and fail when the others answered.
                    tracing::error!(error = %e, "ingester push task failed");
                    continue;
                }
            };
            let series = &routes[inst];
            match result {
                Ok(outcome) => {
                    let mut refused = outcome.rejected_series;
                    refused.sort_unstable_by_key(|r| r.0);
                    let mut next = refused.iter().peekable();
                    for (pos, &i) in series.iter().enumerate() {
                        let t = &mut items[i as usize];
                        t.pending -= 1;
                        match next.peek() {
                            Some(&&(p, kind)) if p as usize == pos => {
                                next.next();
                                t.refused += 1;
                                t.limit |= kind == RejectionKind::Limit;
                            }
                            _ => t.ok += 1,
                        }
                        if t.decide() {
                            undecided -= 1;
                        }
                    }
                    if let Some(r) = outcome.first_rejection {
                        let limit = r.kind == RejectionKind::Limit;
                        if rejection.is_none() || (limit && !rejection_is_limit) {
                            rejection_is_limit = limit;
                            rejection = Some(r);
                        }
                    }
                }
                Err(e) => {
                    for &i in series {
                        let t = &mut items[i as usize];
                        t.pending -= 1;
                        t.failed += 1;
                        if t.decide() {
                            undecided -= 1;
                        }
                    }
                    tracing::debug!(ingester = %ring.instance(inst as u32).id, error = %e, "push to ingester failed");
                    last_error = Some(e);
                }
            }
        }
        // Requests still running finish in the background (their tasks are detached).
        drop(tasks);

        let mut out = PushOutcome::default();
        for (i, t) in items.iter().enumerate() {
            let samples = batch.series_samples(i).len() as u64;
            match t.state {
                State::Skip => {}
                State::Stored => out.samples_written += samples,
                State::Refused => {
                    let kind = if t.limit {
                        RejectionKind::Limit
                    } else {
                        RejectionKind::BadData
                    };
                    out.samples_rejected += samples;
                    out.rejected_series.push((i as u32, kind));
                }
                State::Pending | State::Failed => {
                    return Err(PushError::Quorum {
                        series: fmt_series(batch.series_labels(i).iter().copied()),
                        succeeded: t.ok as usize,
                        required: t.min_success as usize,
                        cause: match last_error.take() {
                            Some(e) => Box::new(e),
                            None => Box::new(PushError::Unavailable(
                                "ingesters",
                                "replicas disagreed: some stored the series, some refused it",
                            )),
                        },
                    });
                }
            }
        }
        if out.samples_rejected > 0 {
            out.first_rejection = rejection.or(Some(Rejection {
                kind: RejectionKind::BadData,
                reason: "rejected-by-ingester",
                message: "refused by a quorum of ingesters".into(),
            }));
        }
        Ok(out)
    }
}
