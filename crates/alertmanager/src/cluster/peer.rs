//! Another replica of the ring as this one talks to it: a lazily connected gRPC channel, the
//! queue of changes waiting to be pushed to it, and the task that pushes them.

use super::metrics::{PeerLabels, ResultLabels};
use super::{encode, pb, Cluster, MAX_MESSAGE_BYTES};
use crate::nflog::{NflogEntry, NflogKey};
use crate::silence::Silence;
use parking_lot::Mutex;
use pb::alertmanager_peer_client::AlertmanagerPeerClient;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tonic::transport::{Channel, Endpoint};

/// Changes waiting to be pushed to one peer, newest version of each record only.
#[derive(Debug, Default)]
pub(super) struct TenantDelta {
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

/// One other instance of the ring, made when first needed and dropped (queue included) when it
/// leaves the ring or registers again at another address.
#[derive(Debug)]
pub(crate) struct Peer {
    pub id: String,
    pub address: String,
    channel: OnceLock<Channel>,
    pending: Mutex<BTreeMap<String, TenantDelta>>,
    wake: Notify,
    /// Reached at the last attempt.
    pub(super) healthy: AtomicBool,
    /// The pushing task, started with the first change queued.
    sender: Mutex<Option<tokio::task::AbortHandle>>,
    /// Left the ring: nothing is queued or pushed any more.
    retired: AtomicBool,
}

impl Peer {
    pub(super) fn new(id: &str, address: &str) -> Arc<Self> {
        Arc::new(Self {
            id: id.to_string(),
            address: address.to_string(),
            channel: OnceLock::new(),
            pending: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            healthy: AtomicBool::new(false),
            sender: Mutex::new(None),
            retired: AtomicBool::new(false),
        })
    }

    /// Stops pushing to this peer and drops what was queued for it.
    pub(super) fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        if let Some(h) = self.sender.lock().take() {
            h.abort();
        }
        self.pending.lock().clear();
    }

    fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }
}

impl Cluster {
    pub(super) fn client(&self, peer: &Peer) -> AlertmanagerPeerClient<Channel> {
        let channel = peer.channel.get_or_init(|| {
            // The lifecycler only registers host:port addresses; were one not to parse as a
            // URI, the unroutable fallback makes every call fail visibly (replication
            // failures) rather than panic. Connecting happens on first use.
            let endpoint = Endpoint::from_shared(format!("http://{}", peer.address))
                .unwrap_or_else(|_| Endpoint::from_static("http://invalid.invalid:1"))
                .connect_timeout(self.cfg.rpc_timeout)
                .timeout(self.cfg.rpc_timeout)
                .tcp_nodelay(true);
            match &self.tls {
                Some(tls) => tls.client.channel(endpoint, None),
                None => endpoint.connect_lazy(),
            }
        });
        AlertmanagerPeerClient::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    pub(super) fn mark(&self, peer: &Peer, ok: bool) {
        let was = peer.healthy.swap(ok, Ordering::Relaxed);
        if was && !ok {
            self.metrics.peers_left.inc();
            tracing::warn!(peer = %peer.id, address = %peer.address, "alertmanager peer unreachable");
        } else if !was && ok {
            tracing::info!(peer = %peer.id, address = %peer.address, "alertmanager peer reachable");
        }
        self.count_members();
    }

    /// Queues changed records of `tenant` for every other owner with a fresh heartbeat.
    pub(crate) fn replicate(
        self: &Arc<Self>,
        tenant: &str,
        silences: Vec<Silence>,
        nflog: Vec<NflogEntry>,
    ) {
        if silences.is_empty() && nflog.is_empty() {
            return;
        }
        for peer in self.healthy_other_owners(tenant) {
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
            self.ensure_sender(&peer);
            peer.wake.notify_one();
        }
    }

    fn ensure_sender(self: &Arc<Self>, peer: &Arc<Peer>) {
        let mut sender = peer.sender.lock();
        if sender.is_some() || peer.is_retired() || self.is_stopped() {
            return;
        }
        let handle = tokio::spawn(self.clone().sender(peer.clone()));
        *sender = Some(handle.abort_handle());
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

    /// Pushes one peer's queue until the peer is retired or the ring stops, retrying failures
    /// with backoff.
    async fn sender(self: Arc<Self>, peer: Arc<Peer>) {
        let mut backoff = Duration::from_millis(100);
        // `replicate` wakes the peer right after starting this task: the permit is stored.
        let mut retrying = false;
        loop {
            if retrying {
                // New changes do not cut a backoff short: the peer is likely still down.
                tokio::time::sleep(backoff).await;
            } else {
                peer.wake.notified().await;
            }
            if peer.is_retired() {
                return;
            }
            let batch = std::mem::take(&mut *peer.pending.lock());
            if batch.is_empty() {
                retrying = false;
                continue;
            }
            let update = pb::StateUpdate {
                from_instance: self.instance_id().to_string(),
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
                    if peer.is_retired() {
                        return;
                    }
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
}
