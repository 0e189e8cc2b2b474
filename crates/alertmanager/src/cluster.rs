//! The HA ring: several replicas share the tenants, each tenant owned by `replication_factor`
//! of them ([`Ring`]), talking gRPC (`proto/strata/alertmanager/v1/peer.proto`).
//!
//! - Requests: any replica takes any request. One for a tenant it does not own is forwarded
//!   (whole, as HTTP over the `Forward` RPC) to the tenant's owners; an alert POST (and a
//!   configuration upload) goes to every owner and succeeds if one accepted. Reads of an owned
//!   tenant are answered from local state. See `api::cluster_layer`.
//! - Replication: a silence change or a notification-log entry is queued for every other owner
//!   and pushed by one sender task per peer, retried with backoff until delivered (the queue
//!   keeps only the newest version of each record, so it stays small while a peer is down).
//!   Receivers merge last-writer-wins. Every `sync_interval` each replica also pulls its peers'
//!   full state of shared tenants, which repairs anything a lost push missed.
//! - Settling: at start a replica pulls the full state (alerts included) from every peer and
//!   sends no notification until all answered or `settle_timeout` passed.
//! - Deduplication, like upstream's HA mode: the owner at position N of a tenant waits
//!   N × `peer_timeout` after a group is due, then sends only what the notification log (with
//!   the entries replicated from earlier owners) says is still unsent. A partition can cause a
//!   duplicate, never a lost notification.

use crate::config::RingConfig;
use crate::error::AlertmanagerError;
use crate::nflog::{NflogEntry, NflogKey};
use crate::ring::Ring;
use crate::silence::Silence;
use crate::Alertmanager;
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use strata_model::TenantId;
use tokio::sync::Notify;
use tonic::transport::{Channel, Endpoint};

#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("strata.alertmanager.v1");
}

use pb::alertmanager_peer_client::AlertmanagerPeerClient;
use pb::alertmanager_peer_server::{AlertmanagerPeer, AlertmanagerPeerServer};

/// Set on requests a peer forwarded: they are answered locally, never forwarded again.
pub const FORWARDED_HEADER: &str = "x-strata-alertmanager-forwarded";

/// Largest message a peer accepts: a full state of many tenants can be large.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub peer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

/// Metrics of the ring.
#[derive(Debug, Clone, Default)]
pub struct ClusterMetrics {
    pub members: Gauge,
    pub peers_left: Counter,
    pub replication_failures: Family<PeerLabels, Counter>,
    pub replicated: Family<PeerLabels, Counter>,
    pub sync_failures: Family<PeerLabels, Counter>,
    pub last_sync: Gauge<f64, AtomicU64>,
    pub settled: Gauge,
    pub owned_tenants: Gauge,
    pub forwarded: Family<ResultLabels, Counter>,
    pub deduplicated: Counter,
}

impl ClusterMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "alertmanager_cluster_members",
            "Replicas of the ring this one currently reaches, itself included",
            self.members.clone(),
        );
        r.register(
            "alertmanager_cluster_peers_left",
            "Times a peer became unreachable",
            self.peers_left.clone(),
        );
        r.register(
            "strata_alertmanager_replication_failures",
            "Pushes of silences and notification-log entries to a peer that failed (they are retried)",
            self.replication_failures.clone(),
        );
        r.register(
            "strata_alertmanager_replication_pushes",
            "Pushes of silences and notification-log entries a peer accepted",
            self.replicated.clone(),
        );
        r.register(
            "strata_alertmanager_sync_failures",
            "Full-state pulls from a peer that failed",
            self.sync_failures.clone(),
        );
        r.register(
            "strata_alertmanager_last_sync_timestamp_seconds",
            "When a full-state pull from a peer last succeeded",
            self.last_sync.clone(),
        );
        r.register(
            "strata_alertmanager_settled",
            "1 once the start-up state sync finished (or timed out) and notifications may go out",
            self.settled.clone(),
        );
        r.register(
            "strata_alertmanager_ring_owned_tenants",
            "Tenants held by this replica that it owns on the ring",
            self.owned_tenants.clone(),
        );
        r.register(
            "strata_alertmanager_forwarded_requests",
            "API requests forwarded to the owners of their tenant, by outcome",
            self.forwarded.clone(),
        );
        r.register(
            "strata_alertmanager_notifications_deduplicated",
            "Notifications not sent because an earlier owner had sent them",
            self.deduplicated.clone(),
        );
    }
}

/// Changes waiting to be pushed to one peer, newest version of each record only.
#[derive(Debug, Default)]
struct TenantDelta {
    silences: BTreeMap<String, Silence>,
    nflog: HashMap<NflogKey, NflogEntry>,
}

impl TenantDelta {
    fn add_silence(&mut self, s: Silence) {
        match self.silences.get(&s.id) {
            Some(old) if old.updated_at > s.updated_at => {}
            _ => {
                self.silences.insert(s.id.clone(), s);
            }
        }
    }

    fn add_nflog(&mut self, e: NflogEntry) {
        match self.nflog.get(&e.key) {
            Some(old) if old.timestamp > e.timestamp => {}
            _ => {
                self.nflog.insert(e.key.clone(), e);
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Peer {
    pub id: String,
    pub address: String,
    channel: OnceLock<Channel>,
    pending: Mutex<BTreeMap<String, TenantDelta>>,
    wake: Notify,
    /// Reached at the last attempt.
    healthy: AtomicBool,
}

#[derive(Debug)]
pub struct Cluster {
    cfg: RingConfig,
    ring: Ring,
    peers: Vec<Arc<Peer>>,
    settled: AtomicBool,
    pub(crate) metrics: ClusterMetrics,
    /// Bound at construction so a taken port fails the start; served by `run`.
    listener: Mutex<Option<std::net::TcpListener>>,
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Plain data always serializes.
    serde_json::to_vec(v).unwrap_or_default()
}

impl Cluster {
    /// Binds the gRPC address and registers the ring's metrics.
    pub(crate) fn new(
        cfg: &RingConfig,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, AlertmanagerError> {
        let listener = std::net::TcpListener::bind(&cfg.grpc_listen_address)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| AlertmanagerError::GrpcListen {
                address: cfg.grpc_listen_address.clone(),
                source,
            })?;
        let ring = Ring::new(
            cfg.members.iter().map(|m| m.id.clone()),
            cfg.replication_factor,
        );
        let peers = cfg
            .members
            .iter()
            .filter(|m| m.id != cfg.instance_id)
            .map(|m| {
                Arc::new(Peer {
                    id: m.id.clone(),
                    address: m.address.clone(),
                    channel: OnceLock::new(),
                    pending: Mutex::new(BTreeMap::new()),
                    wake: Notify::new(),
                    healthy: AtomicBool::new(false),
                })
            })
            .collect();
        let metrics = ClusterMetrics::default();
        metrics.register(registry);
        metrics.members.set(1);
        Ok(Arc::new(Self {
            cfg: cfg.clone(),
            ring,
            peers,
            settled: AtomicBool::new(false),
            metrics,
            listener: Mutex::new(Some(listener)),
        }))
    }

    pub fn instance_id(&self) -> &str {
        &self.cfg.instance_id
    }

    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    pub fn peer_timeout(&self) -> Duration {
        self.cfg.peer_timeout
    }

    pub fn grpc_address(&self) -> Option<std::net::SocketAddr> {
        self.listener
            .lock()
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The tenant's owners in ring order.
    pub fn owners(&self, tenant: &str) -> Vec<String> {
        self.ring
            .owners(tenant)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    pub fn owns(&self, tenant: &str) -> bool {
        self.ring.position(tenant, &self.cfg.instance_id).is_some()
    }

    /// How many owners notify before this replica: it waits that many peer timeouts. A replica
    /// that does not own the tenant (state left from an earlier ring) goes after all owners.
    pub fn position(&self, tenant: &str) -> usize {
        self.ring
            .position(tenant, &self.cfg.instance_id)
            .unwrap_or(self.ring.replication_factor())
    }

    pub fn settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    /// `(id, address, reachable)` of every member, this one first.
    pub fn members(&self) -> Vec<(String, String, bool)> {
        let own = self
            .cfg
            .members
            .iter()
            .find(|m| m.id == self.cfg.instance_id)
            .map(|m| m.address.clone())
            .unwrap_or_default();
        let mut out = vec![(self.cfg.instance_id.clone(), own, true)];
        out.extend(self.peers.iter().map(|p| {
            (
                p.id.clone(),
                p.address.clone(),
                p.healthy.load(Ordering::Relaxed),
            )
        }));
        out
    }

    pub(crate) fn peer(&self, id: &str) -> Option<&Arc<Peer>> {
        self.peers.iter().find(|p| p.id == id)
    }

    fn client(&self, peer: &Peer) -> AlertmanagerPeerClient<Channel> {
        let channel = peer.channel.get_or_init(|| {
            // `RingConfig::validate` checked that this URI parses; were it not so, the
            // unroutable fallback makes every call fail visibly (replication failures) rather
            // than panic. Connecting happens on first use.
            Endpoint::from_shared(format!("http://{}", peer.address))
                .unwrap_or_else(|_| Endpoint::from_static("http://invalid.invalid:1"))
                .connect_timeout(self.cfg.rpc_timeout)
                .timeout(self.cfg.rpc_timeout)
                .tcp_nodelay(true)
                .connect_lazy()
        });
        AlertmanagerPeerClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    fn mark(&self, peer: &Peer, ok: bool) {
        let was = peer.healthy.swap(ok, Ordering::Relaxed);
        if was && !ok {
            self.metrics.peers_left.inc();
            tracing::warn!(peer = %peer.id, address = %peer.address, "alertmanager peer unreachable");
        } else if !was && ok {
            tracing::info!(peer = %peer.id, address = %peer.address, "alertmanager peer reachable");
        }
        let n = 1 + self
            .peers
            .iter()
            .filter(|p| p.healthy.load(Ordering::Relaxed))
            .count();
        self.metrics.members.set(n as i64);
    }

    /// Queues changed records of `tenant` for every other owner.
    pub(crate) fn replicate(&self, tenant: &str, silences: Vec<Silence>, nflog: Vec<NflogEntry>) {
        if silences.is_empty() && nflog.is_empty() {
            return;
        }
        for owner in self.ring.owners(tenant) {
            let Some(peer) = self.peer(owner) else {
                continue;
            };
            {
                let mut pending = peer.pending.lock();
                let d = pending.entry(tenant.to_string()).or_default();
                for s in &silences {
                    d.add_silence(s.clone());
                }
                for e in &nflog {
                    d.add_nflog(e.clone());
                }
            }
            peer.wake.notify_one();
        }
    }

    /// Runs an API request on `peer`.
    pub(crate) async fn forward(
        &self,
        peer: &Peer,
        req: pb::HttpRequest,
    ) -> Result<pb::HttpResponse, tonic::Status> {
        let res = self.client(peer).forward(req).await;
        self.mark(peer, res.is_ok());
        self.metrics
            .forwarded
            .get_or_create(&ResultLabels {
                result: if res.is_ok() { "ok" } else { "error" }.into(),
            })
            .inc();
        res.map(tonic::Response::into_inner)
    }

    /// Pushes one peer's queue until the task is aborted, retrying failures with backoff.
    async fn sender(self: Arc<Self>, peer: Arc<Peer>) {
        let mut backoff = Duration::from_millis(100);
        let mut retrying = false;
        loop {
            if retrying {
                // New changes do not cut a backoff short: the peer is likely still down.
                tokio::time::sleep(backoff).await;
            } else {
                peer.wake.notified().await;
            }
            let batch = std::mem::take(&mut *peer.pending.lock());
            if batch.is_empty() {
                retrying = false;
                continue;
            }
            let update = pb::StateUpdate {
                from_instance: self.cfg.instance_id.clone(),
                tenants: batch
                    .iter()
                    .map(|(t, d)| pb::TenantState {
                        tenant: t.clone(),
                        silences: encode(&d.silences.values().collect::<Vec<_>>()),
                        nflog: encode(&d.nflog.values().collect::<Vec<_>>()),
                        alerts: Vec::new(),
                        config: Vec::new(),
                    })
                    .collect(),
            };
            let labels = PeerLabels {
                peer: peer.id.clone(),
            };
            match self.client(&peer).replicate(update).await {
                Ok(_) => {
                    self.mark(&peer, true);
                    self.metrics.replicated.get_or_create(&labels).inc();
                    backoff = Duration::from_millis(100);
                    // More may have queued meanwhile.
                    retrying = !peer.pending.lock().is_empty();
                    if retrying {
                        backoff = Duration::ZERO;
                    }
                }
                Err(e) => {
                    self.mark(&peer, false);
                    self.metrics
                        .replication_failures
                        .get_or_create(&labels)
                        .inc();
                    tracing::debug!(peer = %peer.id, error = %e, "replication push failed; retrying");
                    // Put the batch back under anything newer queued meanwhile.
                    let mut pending = peer.pending.lock();
                    for (t, d) in batch {
                        let cur = pending.entry(t).or_default();
                        for s in d.silences.into_values() {
                            cur.add_silence(s);
                        }
                        for e in d.nflog.into_values() {
                            cur.add_nflog(e);
                        }
                    }
                    retrying = true;
                    backoff =
                        (backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                }
            }
        }
    }

    /// Pulls `peer`'s state of the tenants this replica owns and merges it.
    async fn pull(&self, am: &Alertmanager, peer: &Peer, with_alerts: bool) -> bool {
        let req = pb::FullStateRequest {
            from_instance: self.cfg.instance_id.clone(),
            include_alerts: with_alerts,
        };
        let labels = PeerLabels {
            peer: peer.id.clone(),
        };
        match self.client(peer).full_state(req).await {
            Ok(resp) => {
                self.mark(peer, true);
                for ts in resp.into_inner().tenants {
                    if let Err(e) = apply_state(am, ts, with_alerts) {
                        tracing::warn!(peer = %peer.id, error = %e, "peer state not merged");
                    }
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                self.metrics.last_sync.set(now.as_secs_f64());
                true
            }
            Err(e) => {
                self.mark(peer, false);
                self.metrics.sync_failures.get_or_create(&labels).inc();
                tracing::debug!(peer = %peer.id, error = %e, "full-state pull failed");
                false
            }
        }
    }

    /// Start-up sync, then the periodic one, until aborted.
    async fn syncer(self: Arc<Self>, am: Arc<Alertmanager>) {
        let deadline = tokio::time::Instant::now() + self.cfg.settle_timeout;
        let mut missing: Vec<Arc<Peer>> = self.peers.clone();
        while !missing.is_empty() && tokio::time::Instant::now() < deadline {
            let mut set = tokio::task::JoinSet::new();
            for p in missing.drain(..) {
                let (c, am) = (self.clone(), am.clone());
                set.spawn(async move {
                    let ok = c.pull(&am, &p, true).await;
                    (p, ok)
                });
            }
            while let Some(r) = set.join_next().await {
                if let Ok((p, false)) = r {
                    missing.push(p);
                }
            }
            if !missing.is_empty() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        if missing.is_empty() {
            tracing::info!("alertmanager settled: state merged from every peer");
        } else {
            tracing::warn!(
                unreachable = %missing.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(","),
                "alertmanager settle timeout: notifying without the state of unreachable peers"
            );
        }
        self.settled.store(true, Ordering::Release);
        self.metrics.settled.set(1);
        am.shared.wake.notify_one();
        let mut tick = tokio::time::interval(self.cfg.sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            for p in &self.peers {
                self.pull(&am, p, false).await;
            }
        }
    }

    /// Serves the gRPC API and runs the replication and sync tasks; returns their handles (the
    /// caller aborts them at shutdown).
    pub(crate) fn start(
        self: &Arc<Self>,
        am: Arc<Alertmanager>,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, AlertmanagerError> {
        let mut tasks = Vec::new();
        if let Some(std_listener) = self.listener.lock().take() {
            let address = self.cfg.grpc_listen_address.clone();
            let listener = tokio::net::TcpListener::from_std(std_listener)
                .map_err(|source| AlertmanagerError::GrpcListen { address, source })?;
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let svc = AlertmanagerPeerServer::new(PeerService {
                am: am.clone(),
                api: crate::api::router(am.clone()),
            })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
            tasks.push(tokio::spawn(async move {
                if let Err(e) = tonic::transport::Server::builder()
                    .add_service(svc)
                    .serve_with_incoming(incoming)
                    .await
                {
                    tracing::error!(error = %e, "alertmanager gRPC server failed");
                }
            }));
        }
        for p in &self.peers {
            tasks.push(tokio::spawn(self.clone().sender(p.clone())));
        }
        tasks.push(tokio::spawn(self.clone().syncer(am)));
        Ok(tasks)
    }
}

/// Why a peer's state was not merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("invalid tenant id {0:?}: {1}")]
    Tenant(String, #[source] strata_model::ModelError),
    #[error("tenant {0:?}: {1}")]
    Open(String, #[source] AlertmanagerError),
    #[error("tenant {tenant:?}: undecodable {what}: {source}")]
    Decode {
        tenant: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

fn decode_list<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    tenant: &str,
    what: &'static str,
) -> Result<Vec<T>, MergeError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(bytes).map_err(|source| MergeError::Decode {
        tenant: tenant.to_string(),
        what,
        source,
    })
}

/// Merges a peer's records of one tenant this replica owns (others are ignored: the peer's
/// view of the ring may differ while a configuration change rolls out).
fn apply_state(
    am: &Alertmanager,
    ts: pb::TenantState,
    with_alerts: bool,
) -> Result<(), MergeError> {
    let Some(cluster) = am.cluster() else {
        return Ok(());
    };
    if !cluster.owns(&ts.tenant) {
        return Ok(());
    }
    let silences: Vec<Silence> = decode_list(&ts.silences, &ts.tenant, "silences")?;
    let nflog: Vec<NflogEntry> = decode_list(&ts.nflog, &ts.tenant, "notification log")?;
    let alerts: Vec<crate::alert::Alert> = if with_alerts {
        decode_list(&ts.alerts, &ts.tenant, "alerts")?
    } else {
        Vec::new()
    };
    let config: Option<crate::persist::ConfigRecord> = if ts.config.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&ts.config).map_err(|source| MergeError::Decode {
                tenant: ts.tenant.clone(),
                what: "configuration",
                source,
            })?,
        )
    };
    if silences.is_empty() && nflog.is_empty() && alerts.is_empty() && config.is_none() {
        return Ok(());
    }
    let id = TenantId::new(&ts.tenant).map_err(|e| MergeError::Tenant(ts.tenant.clone(), e))?;
    let t = am
        .tenant(&id)
        .map_err(|e| MergeError::Open(ts.tenant.clone(), e))?;
    if let Some(record) = config {
        let fallback = am.fallback.read().clone();
        match t.merge_config_record(record, fallback) {
            Ok(true) => {
                tracing::info!(tenant = %ts.tenant, "alertmanager configuration of tenant taken from a peer")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(tenant = %ts.tenant, error = %e, "configuration from a peer refused")
            }
        }
    }
    let now = t.now();
    t.with_core(|c| {
        for s in silences {
            let sid = s.id.clone();
            if let Err(e) = c.silences.merge(s) {
                tracing::warn!(tenant = %ts.tenant, id = %sid, error = %e, "replicated silence refused");
            }
        }
        for e in nflog {
            c.nflog.merge(e);
        }
        // Only alerts this replica lacks (missed while it was down): merging known ones would
        // disturb their groups' timers.
        let missing: Vec<crate::alert::Alert> = alerts
            .into_iter()
            .filter(|a| c.alerts.get(a.fingerprint()).is_none())
            .collect();
        if !missing.is_empty() {
            c.put_alerts(missing, now);
        }
    });
    am.shared.wake.notify_one();
    Ok(())
}

/// The gRPC service peers call.
struct PeerService {
    am: Arc<Alertmanager>,
    /// The HTTP API, to answer forwarded requests exactly as a direct one.
    api: axum::Router,
}

#[tonic::async_trait]
impl AlertmanagerPeer for PeerService {
    async fn forward(
        &self,
        request: tonic::Request<pb::HttpRequest>,
    ) -> Result<tonic::Response<pb::HttpResponse>, tonic::Status> {
        use tower::ServiceExt;
        let r = request.into_inner();
        let mut b = axum::http::Request::builder()
            .method(r.method.as_str())
            .uri(r.path_and_query.as_str());
        for h in &r.headers {
            b = b.header(h.name.as_str(), h.value.as_str());
        }
        let from = if r.from_instance.is_empty() {
            "peer"
        } else {
            r.from_instance.as_str()
        };
        let req = b
            .header(FORWARDED_HEADER, from)
            .body(axum::body::Body::from(r.body))
            .map_err(|e| tonic::Status::invalid_argument(format!("bad forwarded request: {e}")))?;
        let resp = self
            .api
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| tonic::Status::internal(format!("{e}")))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter(|(n, _)| *n == axum::http::header::CONTENT_TYPE)
            .filter_map(|(n, v)| {
                Some(pb::Header {
                    name: n.as_str().to_string(),
                    value: v.to_str().ok()?.to_string(),
                })
            })
            .collect();
        let body = axum::body::to_bytes(resp.into_body(), MAX_MESSAGE_BYTES)
            .await
            .map_err(|e| tonic::Status::internal(format!("reading the response: {e}")))?;
        Ok(tonic::Response::new(pb::HttpResponse {
            status: u32::from(status),
            headers,
            body: body.to_vec(),
        }))
    }

    async fn replicate(
        &self,
        request: tonic::Request<pb::StateUpdate>,
    ) -> Result<tonic::Response<pb::ReplicateResponse>, tonic::Status> {
        let update = request.into_inner();
        let am = self.am.clone();
        // Merging validates silences (regex compilation): off the async threads.
        tokio::task::spawn_blocking(move || {
            for ts in update.tenants {
                if let Err(e) = apply_state(&am, ts, false) {
                    tracing::warn!(peer = %update.from_instance, error = %e, "replicated state not merged");
                }
            }
        })
        .await
        .map_err(|e| tonic::Status::internal(format!("merge aborted: {e}")))?;
        Ok(tonic::Response::new(pb::ReplicateResponse {}))
    }

    async fn full_state(
        &self,
        request: tonic::Request<pb::FullStateRequest>,
    ) -> Result<tonic::Response<pb::FullStateResponse>, tonic::Status> {
        let req = request.into_inner();
        let (from, with_alerts) = (req.from_instance, req.include_alerts);
        let Some(cluster) = self.am.cluster() else {
            return Err(tonic::Status::failed_precondition("ring disabled"));
        };
        // A requester missing from this replica's member list (one joining while this replica
        // still runs with the old list, e.g. scaling up from one replica) gets every tenant: it
        // keeps those it owns in its own view of the ring (`apply_state`).
        let known = cluster.ring().members().contains(&from);
        let tenants = self
            .am
            .tenants()
            .into_iter()
            .filter(|t| !known || cluster.ring().position(t.id(), &from).is_some())
            .map(|t| {
                let snap = t.snapshot();
                pb::TenantState {
                    tenant: t.id().to_string(),
                    silences: encode(&snap.silences),
                    nflog: encode(&snap.nflog),
                    alerts: if with_alerts {
                        encode(&snap.alerts)
                    } else {
                        Vec::new()
                    },
                    config: t.config_record().map(|r| encode(&r)).unwrap_or_default(),
                }
            })
            .collect();
        Ok(tonic::Response::new(pb::FullStateResponse { tenants }))
    }
}
