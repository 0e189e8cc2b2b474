//! The HA ring: several replicas share the tenants, each tenant owned by up to
//! `replication_factor` of them, talking gRPC (`proto/strata/alertmanager/v1/peer.proto`).
//!
//! - Membership: each replica registers itself in the cluster KV under
//!   `ring/alertmanager/<instance_id>` with a [`Lifecycler`] (tokens, heartbeats, ACTIVE, then
//!   LEAVING at shutdown) and reads every entry through a [`RingWatcher`]. A tenant's owners are
//!   `Ring::owners(key_token(tenant), rf)`: the ACTIVE replicas among the first
//!   `replication_factor` met clockwise from the tenant's token, in ring order. Heartbeats do
//!   not change ownership (a frozen owner keeps its place until it leaves or is forgotten); they
//!   decide whom requests and pushes go to. The other entries are the peers: a gRPC client per
//!   peer is made when first needed and dropped, with its queue, when the peer leaves the ring.
//! - Requests: any replica takes any request. One for a tenant it does not own is forwarded
//!   (whole, as HTTP over the `Forward` RPC) to the tenant's owners with a fresh heartbeat; an
//!   alert POST (and a configuration upload) goes to every owner and succeeds if one accepted.
//!   Reads of an owned tenant are answered from local state. See `api::cluster_layer`.
//! - Replication: a silence change or a notification-log entry is queued for every other owner
//!   with a fresh heartbeat and pushed by one sender task per peer, retried with backoff until
//!   delivered (the queue keeps only the newest version of each record, so it stays small while
//!   a peer is down). Receivers merge last-writer-wins.
//! - Full syncs (`sync.rs`): a replica pulls every reachable peer's state (alerts included)
//!   once it is ACTIVE in its own view of the ring (it settles: `/-/ready` answers 503 and
//!   nothing is sent before), and again whenever the ring's ownership changes (a replica joined,
//!   left, or changed tokens or state). Every `sync_interval` it also pulls the state of shared
//!   tenants, which repairs anything a lost push missed.
//! - Who notifies: a replica notifies for a tenant only while it owns it, and only if it also
//!   owned it in the ring its last completed full sync started from. A tenant that a ring change
//!   gives it thus waits until a full sync after the change has merged the previous owners'
//!   silences, notification log and alerts (or `settle_timeout` passed); a tenant it kept was
//!   receiving the other owners' pushes all along. A replica that lost a tenant stops notifying
//!   for it at once, and the new owners serve it.
//! - Deduplication, like upstream's HA mode: the owner at position N of a tenant waits
//!   N × `peer_timeout` after a group is due, then sends only what the notification log (with
//!   the entries replicated from earlier owners) says is still unsent. A partition can cause a
//!   duplicate, never a lost notification.
//! - Leaving: at shutdown a replica goes LEAVING (it owns nothing from then on, so the next
//!   replicas take its tenants over), waits up to `settle_timeout` until every other ACTIVE
//!   replica with a fresh heartbeat has pulled its state in a view where it is LEAVING, then
//!   unregisters.

mod metrics;
mod peer;
mod restore;
mod service;
mod sync;

pub use metrics::{ClusterMetrics, PeerLabels, ResultLabels};
pub(crate) use peer::Peer;
pub(crate) use restore::restore_scope;
pub use sync::MergeError;

use crate::config::{RingConfig, RING_PREFIX};
use crate::error::AlertmanagerError;
use crate::Alertmanager;
use parking_lot::{Mutex, RwLock};
use pb::alertmanager_peer_server::AlertmanagerPeerServer;
use prometheus_client::registry::Registry;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata_meta::KvStore;
use strata_ring::{
    key_token, InstanceDesc, InstanceState, Lifecycler, LifecyclerOptions, Operation, Ring,
    RingMetrics, RingWatcher, WatcherOptions,
};
use tokio::sync::Notify;

#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("strata.alertmanager.v1");
}

/// Set on requests a peer forwarded: they are answered locally, never forwarded again.
pub const FORWARDED_HEADER: &str = "x-strata-alertmanager-forwarded";

/// Largest message a peer accepts: a full state of many tenants can be large.
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Where the ring lives: the cluster KV, and the process's ring metrics when it registered
/// them already (`RingMetrics` is registered once per registry).
#[derive(Clone)]
pub struct RingBackend {
    pub kv: Arc<dyn KvStore>,
    pub metrics: Option<RingMetrics>,
    /// Mutual TLS between the replicas; `None`: plain text.
    pub tls: Option<PeerTls>,
}

/// Mutual TLS between the ring's replicas (the process's `server.grpc_tls` and
/// `grpc_client.tls`): the peer listener accepts only clients with a certificate of the
/// cluster's CA, and the peer channels present this process's certificate.
#[derive(Debug, Clone)]
pub struct PeerTls {
    pub server: strata_tls::GrpcServerTls,
    pub client: strata_tls::GrpcClientTls,
}

impl RingBackend {
    /// The ring in `kv`, with ring metrics registered by the alertmanager, in plain text.
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self {
            kv,
            metrics: None,
            tls: None,
        }
    }
}

impl std::fmt::Debug for RingBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingBackend")
            .field("kv", &self.kv)
            .finish_non_exhaustive()
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Plain data always serializes.
    serde_json::to_vec(v).unwrap_or_default()
}

/// A digest of what decides ownership in `ring`: every instance's id, state, zone and tokens
/// (heartbeats left out, so it changes only when a replica joins, leaves or changes tokens).
pub(crate) fn ownership_digest(ring: &Ring) -> u64 {
    let mut all: Vec<&InstanceDesc> = ring.all().iter().collect();
    all.sort_by(|a, b| a.id.cmp(&b.id));
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    for d in all {
        for part in [
            d.id.as_bytes(),
            d.state.as_str().as_bytes(),
            d.zone.as_bytes(),
        ] {
            h.update(&(part.len() as u32).to_le_bytes());
            h.update(part);
        }
        h.update(&(d.tokens.len() as u32).to_le_bytes());
        for t in &d.tokens {
            h.update(&t.to_le_bytes());
        }
    }
    // 0 means "unknown" on the wire.
    h.digest().max(1)
}

/// This replica's membership in the ring and its links to the other replicas.
pub struct Cluster {
    cfg: RingConfig,
    /// The shared ring settings, `instance_addr` resolved.
    lifecycler_cfg: strata_ring::RingConfig,
    kv: Arc<dyn KvStore>,
    watcher: Arc<RingWatcher>,
    ring_metrics: RingMetrics,
    /// Set once registered; taken at stop.
    lifecycler: Mutex<Option<Arc<Lifecycler>>>,
    peers: RwLock<BTreeMap<String, Arc<Peer>>>,
    settled: AtomicBool,
    /// The ring the last completed full sync started from.
    synced: RwLock<Option<Arc<Ring>>>,
    /// Wakes the syncer: the ring's ownership changed, or this replica became ACTIVE.
    sync_wake: Notify,
    leaving: AtomicBool,
    /// Run no more tasks: the alertmanager's loop ended or the replica unregistered.
    stopped: AtomicBool,
    /// Since leaving: the newest ring revision each peer pulled this replica's state at.
    pulled_at: Mutex<HashMap<String, u64>>,
    pulled: Notify,
    pub(crate) metrics: ClusterMetrics,
    /// Bound at construction so a taken port fails the start; served by `start`.
    listener: Mutex<Option<std::net::TcpListener>>,
    tls: Option<PeerTls>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("instance_id", &self.cfg.instance_id)
            .field("settled", &self.settled())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Binds the gRPC address, starts watching the ring and registers the ring's metrics.
    /// Joining happens in [`Cluster::start`].
    pub(crate) fn new(
        cfg: &RingConfig,
        backend: RingBackend,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, AlertmanagerError> {
        let listener = std::net::TcpListener::bind(&cfg.grpc_listen_address)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| AlertmanagerError::GrpcListen {
                address: cfg.grpc_listen_address.clone(),
                source,
            })?;
        let mut lifecycler_cfg = cfg.lifecycler_config();
        if cfg.instance_addr.is_none() {
            // The bound address: port 0 becomes the port the system chose.
            if let Ok(a) = listener.local_addr() {
                lifecycler_cfg.instance_addr = Some(a.to_string());
            }
        }
        let ring_metrics = backend
            .metrics
            .unwrap_or_else(|| RingMetrics::new(registry));
        let mut opts = WatcherOptions::new("alertmanager", lifecycler_cfg.ring_options());
        opts.metrics = Some(ring_metrics.clone());
        let watcher = RingWatcher::start(backend.kv.clone(), RING_PREFIX, opts);
        let metrics = ClusterMetrics::default();
        metrics.register(registry);
        metrics.members.set(1);
        Ok(Arc::new(Self {
            cfg: cfg.clone(),
            lifecycler_cfg,
            kv: backend.kv,
            watcher,
            ring_metrics,
            lifecycler: Mutex::new(None),
            peers: RwLock::new(BTreeMap::new()),
            settled: AtomicBool::new(false),
            synced: RwLock::new(None),
            sync_wake: Notify::new(),
            leaving: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            pulled_at: Mutex::new(HashMap::new()),
            pulled: Notify::new(),
            metrics,
            listener: Mutex::new(Some(listener)),
            tls: backend.tls,
        }))
    }

    pub fn instance_id(&self) -> &str {
        &self.cfg.instance_id
    }

    /// The address the other replicas reach this one at (`instance_addr`).
    pub fn instance_addr(&self) -> &str {
        self.lifecycler_cfg.instance_addr.as_deref().unwrap_or("")
    }

    pub fn peer_timeout(&self) -> Duration {
        self.cfg.peer_timeout
    }

    /// Where the gRPC server listens, until it started serving.
    pub fn grpc_address(&self) -> Option<std::net::SocketAddr> {
        self.listener
            .lock()
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The live view of the ring.
    pub fn watcher(&self) -> &Arc<RingWatcher> {
        &self.watcher
    }

    /// The current snapshot of the ring.
    pub fn ring(&self) -> Arc<Ring> {
        self.watcher.ring()
    }

    /// The KV the ring lives in.
    pub fn kv(&self) -> &Arc<dyn KvStore> {
        &self.kv
    }

    /// Whether this replica is ACTIVE in the ring and has merged its peers' state (or gave up
    /// waiting): `/-/ready`.
    pub fn settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    /// Whether this replica started leaving the ring.
    pub fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Acquire)
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The registered lifecycler, once this replica registered.
    pub fn lifecycler(&self) -> Option<Arc<Lifecycler>> {
        self.lifecycler.lock().clone()
    }

    /// Ids of the tenant's owners in `ring`, in ring order.
    pub(crate) fn owners_in(&self, ring: &Ring, tenant: &str) -> Vec<String> {
        ring.owners(key_token(tenant.as_bytes()), self.cfg.replication_factor)
            .into_iter()
            .map(|d| d.id.clone())
            .collect()
    }

    /// The tenant's owners in ring order: position 0 notifies first.
    pub fn owners(&self, tenant: &str) -> Vec<String> {
        self.owners_in(&self.ring(), tenant)
    }

    pub fn owns(&self, tenant: &str) -> bool {
        self.position(tenant).is_some()
    }

    /// How many owners notify before this replica (it waits that many peer timeouts); `None`
    /// if it does not own the tenant.
    pub fn position(&self, tenant: &str) -> Option<usize> {
        self.owners(tenant)
            .iter()
            .position(|o| o == self.instance_id())
    }

    /// Whether this replica may notify for `tenant` now (see the module docs): settled, not
    /// leaving, an owner now and in the ring its last full sync started from.
    pub fn may_notify(&self, tenant: &str) -> bool {
        if !self.settled() || self.is_leaving() || !self.owns(tenant) {
            return false;
        }
        self.synced.read().as_ref().is_some_and(|s| {
            self.owners_in(s, tenant)
                .iter()
                .any(|o| o == self.instance_id())
        })
    }

    /// Whether this replica's state of `tenant` belongs in the bucket: it owns the tenant or,
    /// leaving (the final upload at shutdown), owned it in the ring of its last full sync.
    pub(crate) fn keeps_bucket_copy(&self, tenant: &str) -> bool {
        if !self.is_leaving() {
            return self.owns(tenant);
        }
        self.synced.read().as_ref().is_some_and(|s| {
            self.owners_in(s, tenant)
                .iter()
                .any(|o| o == self.instance_id())
        })
    }

    /// Whether this replica owns `tenant`, and its other owners with a fresh heartbeat (the
    /// ones requests are forwarded to).
    pub(crate) fn route(&self, tenant: &str) -> (bool, Vec<Arc<Peer>>) {
        let ring = self.ring();
        let now = self.watcher.now_ms();
        let owners = ring.owners(key_token(tenant.as_bytes()), self.cfg.replication_factor);
        let own = owners.iter().any(|d| d.id == self.instance_id());
        let peers = owners
            .into_iter()
            .filter(|d| d.id != self.instance_id() && ring.is_healthy(d, Operation::Write, now))
            .map(|d| self.peer_for(d))
            .collect();
        (own, peers)
    }

    fn healthy_other_owners(&self, tenant: &str) -> Vec<Arc<Peer>> {
        self.route(tenant).1
    }

    /// The instances a full sync pulls from: every other one with a fresh heartbeat, whatever
    /// its state (a LEAVING one still holds its tenants' state).
    fn sync_targets(&self, ring: &Ring) -> Vec<Arc<Peer>> {
        let now = self.watcher.now_ms();
        ring.all()
            .iter()
            .filter(|d| d.id != self.instance_id() && ring.is_healthy(d, Operation::Reporting, now))
            .map(|d| self.peer_for(d))
            .collect()
    }

    /// The peer for ring entry `d`, made on first use; a new address replaces it.
    fn peer_for(&self, d: &InstanceDesc) -> Arc<Peer> {
        if let Some(p) = self.peers.read().get(&d.id) {
            if p.address == d.addr {
                return p.clone();
            }
        }
        let mut peers = self.peers.write();
        match peers.get(&d.id) {
            Some(p) if p.address == d.addr => p.clone(),
            old => {
                if let Some(old) = old {
                    old.retire();
                }
                let p = Peer::new(&d.id, &d.addr);
                peers.insert(d.id.clone(), p.clone());
                p
            }
        }
    }

    /// Drops the peers that left the ring or registered again at another address.
    fn forget_departed(&self, ring: &Ring) {
        let mut gone = Vec::new();
        self.peers.write().retain(|id, p| {
            let keep = ring.get(id).is_some_and(|d| d.addr == p.address);
            if !keep {
                p.retire();
                gone.push(id.clone());
            }
            keep
        });
        if !gone.is_empty() {
            tracing::info!(peers = %gone.join(","), "alertmanager peers left the ring; their queued changes are dropped");
            self.count_members();
        }
    }

    fn count_members(&self) {
        let n = 1 + self
            .peers
            .read()
            .values()
            .filter(|p| p.healthy.load(Ordering::Relaxed))
            .count();
        self.metrics.members.set(n as i64);
    }

    /// `(id, address, reachable)` of this replica and every peer it has talked to.
    pub fn members(&self) -> Vec<(String, String, bool)> {
        let mut out = vec![(
            self.instance_id().to_string(),
            self.instance_addr().to_string(),
            true,
        )];
        out.extend(self.peers.read().values().map(|p| {
            (
                p.id.clone(),
                p.address.clone(),
                p.healthy.load(Ordering::Relaxed),
            )
        }));
        out
    }

    /// Follows the ring: drops departed peers and, when ownership changed, wakes the syncer and
    /// the notification loop.
    async fn follow(self: Arc<Self>, am: Arc<Alertmanager>) {
        let mut rx = self.watcher.subscribe();
        let mut last = None;
        loop {
            let ring = rx.borrow_and_update().clone();
            self.forget_departed(&ring);
            let digest = ownership_digest(&ring);
            if last != Some(digest) {
                last = Some(digest);
                self.sync_wake.notify_one();
                am.count_owned();
                am.shared.wake.notify_one();
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Registers this replica and makes it ACTIVE, retrying while the KV is unreachable.
    async fn join(self: Arc<Self>) {
        let opts = LifecyclerOptions {
            name: Some("alertmanager".into()),
            metrics: Some(self.ring_metrics.clone()),
            ..LifecyclerOptions::default()
        };
        let mut backoff = Duration::from_millis(100);
        let lifecycler = loop {
            if self.is_stopped() {
                return;
            }
            match Lifecycler::start_with(
                self.lifecycler_cfg.clone(),
                self.kv.clone(),
                RING_PREFIX,
                opts.clone(),
            )
            .await
            {
                Ok(l) => break l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot register in the alertmanager ring; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        };
        *self.lifecycler.lock() = Some(lifecycler.clone());
        while !lifecycler.is_active() && !self.is_stopped() {
            match lifecycler.join().await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot join the alertmanager ring; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        tracing::info!(
            instance = %self.instance_id(),
            address = %self.instance_addr(),
            tokens = lifecycler.tokens().len(),
            "joined the alertmanager ring"
        );
        self.sync_wake.notify_one();
    }

    /// Goes LEAVING, so that the next replicas take this one's tenants over, and waits up to
    /// `settle_timeout` until every other ACTIVE replica with a fresh heartbeat has pulled this
    /// one's state in a view where it is LEAVING. Nothing is notified from here on.
    pub(crate) async fn leave(&self) {
        if self.leaving.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(l) = self.lifecycler() else {
            return;
        };
        if l.state() != InstanceState::Active {
            // Never joined: it owns nothing to hand over.
            return;
        }
        if let Err(e) = l.leave().await {
            tracing::warn!(error = %e, "could not mark this alertmanager LEAVING in the ring");
            return;
        }
        let deadline = tokio::time::Instant::now() + self.cfg.settle_timeout;
        // The revision at which this replica's view first shows it LEAVING (the LEAVING write's
        // own revision, short of a reconnect): a peer that pulled from a view at least this
        // recent took the tenants over.
        let me = self.instance_id().to_string();
        let seen = tokio::time::timeout_at(
            deadline,
            self.watcher.wait_for(|r| {
                r.get(&me)
                    .is_some_and(|d| d.state == InstanceState::Leaving)
            }),
        )
        .await;
        let since = match seen {
            Ok(ring) => ring.revision().unwrap_or(0),
            Err(_) => {
                tracing::warn!("this alertmanager's LEAVING state did not come back from the ring; not waiting for the peers");
                return;
            }
        };
        loop {
            let ring = self.ring();
            let now = self.watcher.now_ms();
            let waiting: Vec<String> = {
                let pulled = self.pulled_at.lock();
                ring.healthy_instances(Operation::Write, now)
                    .filter(|d| d.id != self.instance_id())
                    .filter(|d| pulled.get(&d.id).is_none_or(|r| *r < since))
                    .map(|d| d.id.clone())
                    .collect()
            };
            if waiting.is_empty() {
                tracing::info!("alertmanager left the ring: its peers took its state over");
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(waiting = %waiting.join(","), "alertmanager leaving without every peer having taken its state (settle_timeout)");
                return;
            }
            tokio::select! {
                _ = self.pulled.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// A peer pulled this replica's state, alerts included, from its ring view at `revision`.
    fn note_full_pull(&self, from: &str, revision: u64) {
        if !self.is_leaving() {
            return;
        }
        let mut pulled = self.pulled_at.lock();
        let r = pulled.entry(from.to_string()).or_default();
        *r = (*r).max(revision);
        drop(pulled);
        self.pulled.notify_waiters();
    }

    /// Stops heartbeating and unregisters (or stays LEAVING, `unregister_on_shutdown: false`).
    pub(crate) async fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        let l = self.lifecycler.lock().take();
        if let Some(l) = l {
            if let Err(e) = l.stop().await {
                tracing::warn!(error = %e, "could not leave the alertmanager ring cleanly");
            }
        }
    }

    /// Stops every sender task; the ones `start` returned are aborted by the caller.
    pub(crate) fn abort_senders(&self) {
        self.stopped.store(true, Ordering::Release);
        for p in self.peers.read().values() {
            p.retire();
        }
    }

    /// Serves the gRPC API, joins the ring and runs the ring-following and sync tasks; returns
    /// their handles (the caller aborts them at shutdown).
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
                strata_tls::grpc::incoming(listener, self.tls.as_ref().map(|t| t.server.clone()));
            let svc = AlertmanagerPeerServer::new(service::PeerService {
                am: am.clone(),
                api: crate::api::peer_router(am.clone()),
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
        tasks.push(tokio::spawn(self.clone().follow(am.clone())));
        tasks.push(tokio::spawn(self.clone().syncer(am)));
        tasks.push(tokio::spawn(self.clone().join()));
        Ok(tasks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_ring::RingOptions;

    fn inst(id: &str, state: InstanceState, tokens: &[u32], heartbeat_ms: i64) -> InstanceDesc {
        InstanceDesc {
            id: id.into(),
            addr: format!("{id}:9095"),
            http_addr: String::new(),
            zone: String::new(),
            state,
            tokens: tokens.to_vec(),
            heartbeat_ms,
            registered_ms: 1,
        }
    }

    fn ring(instances: Vec<InstanceDesc>) -> Ring {
        Ring::new(instances, &RingOptions::default())
    }

    #[test]
    fn the_ownership_digest_ignores_heartbeats_and_order_but_not_membership() {
        use InstanceState::*;
        let base = ownership_digest(&ring(vec![
            inst("a", Active, &[1, 5], 10),
            inst("b", Active, &[3], 10),
        ]));
        let later = ownership_digest(&ring(vec![
            inst("b", Active, &[3], 99),
            inst("a", Active, &[1, 5], 77),
        ]));
        assert_eq!(base, later, "heartbeats and listing order do not matter");
        for changed in [
            vec![inst("a", Active, &[1, 5], 10), inst("b", Leaving, &[3], 10)],
            vec![inst("a", Active, &[1, 6], 10), inst("b", Active, &[3], 10)],
            vec![inst("a", Active, &[1, 5], 10)],
            vec![
                inst("a", Active, &[1, 5], 10),
                inst("b", Active, &[3], 10),
                inst("c", Pending, &[], 10),
            ],
        ] {
            assert_ne!(
                ownership_digest(&ring(changed.clone())),
                base,
                "{changed:?}"
            );
        }
        assert_ne!(ownership_digest(&Ring::empty(&RingOptions::default())), 0);
    }
}
