//! Full-state pulls: the one that settles a starting replica, the one every ring change
//! triggers, and the periodic repair; and merging a peer's state.

use super::metrics::PeerLabels;
use super::{ownership_digest, pb, Cluster, Peer};
use crate::error::AlertmanagerError;
use crate::nflog::NflogEntry;
use crate::silence::Silence;
use crate::Alertmanager;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use strata_model::TenantId;
use strata_ring::{InstanceState, Ring};

/// Pause between attempts to reach the peers that have not answered a full sync yet.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

impl Cluster {
    fn full_state_request(&self, ring: &Ring, with_alerts: bool) -> pb::FullStateRequest {
        pb::FullStateRequest {
            from_instance: self.instance_id().to_string(),
            include_alerts: with_alerts,
            ring_digest: ownership_digest(ring),
            ring_revision: ring.revision().unwrap_or(0),
        }
    }

    /// Pulls `peer`'s state of the tenants this replica owns and merges it.
    async fn pull(&self, am: &Alertmanager, peer: &Peer, req: pb::FullStateRequest) -> bool {
        let with_alerts = req.include_alerts;
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

    /// Whether `ring` calls for a full sync: before settling, once this replica is ACTIVE in
    /// it; after, whenever ownership differs from the ring of the last full sync.
    fn needs_full_sync(&self, ring: &Ring) -> bool {
        if self.is_leaving() {
            return false;
        }
        if !self.settled() {
            return ring
                .get(self.instance_id())
                .is_some_and(|d| d.state == InstanceState::Active);
        }
        self.synced
            .read()
            .as_ref()
            .is_none_or(|s| ownership_digest(s) != ownership_digest(ring))
    }

    /// Pulls every reachable peer's state, alerts included, retrying those that fail until
    /// all answered or `settle_timeout` passed. Tenants this replica owns in `ring` but did not
    /// own in the previous synced ring may notify from then on.
    async fn full_sync(self: &Arc<Self>, am: &Arc<Alertmanager>, ring: Arc<Ring>) {
        self.metrics.ring_syncs.inc();
        let deadline = tokio::time::Instant::now() + self.cfg.settle_timeout;
        let req = self.full_state_request(&ring, true);
        let mut missing = self.sync_targets(&ring);
        while !missing.is_empty() {
            let mut set = tokio::task::JoinSet::new();
            for p in missing.drain(..) {
                let (c, am, req) = (self.clone(), am.clone(), req.clone());
                set.spawn(async move {
                    let ok = c.pull(&am, &p, req).await;
                    (p, ok)
                });
            }
            while let Some(r) = set.join_next().await {
                if let Ok((p, false)) = r {
                    missing.push(p);
                }
            }
            // Peers that left the ring or stopped heartbeating meanwhile are not waited for.
            let now_targets: Vec<String> = self
                .sync_targets(&self.ring())
                .into_iter()
                .map(|p| p.id.clone())
                .collect();
            missing.retain(|p| now_targets.contains(&p.id));
            if missing.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        if missing.is_empty() {
            tracing::info!(
                instances = ring.len(),
                "alertmanager ring synced: state merged from every reachable peer"
            );
        } else {
            tracing::warn!(
                unreachable = %missing.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(","),
                "alertmanager ring sync timed out: notifying without the state of unreachable peers"
            );
        }
        *self.synced.write() = Some(ring);
        if !self.settled.swap(true, Ordering::AcqRel) {
            self.metrics.settled.set(1);
            tracing::info!("alertmanager settled: ACTIVE in the ring with its peers' state");
        }
        am.count_owned();
        am.shared.wake.notify_one();
    }

    /// The start-up sync, the ring-change syncs and the periodic one, until aborted.
    pub(super) async fn syncer(self: Arc<Self>, am: Arc<Alertmanager>) {
        let mut tick = tokio::time::interval(self.cfg.sync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let ring = self.ring();
            if self.needs_full_sync(&ring) {
                self.full_sync(&am, ring).await;
                // The ring may have changed again meanwhile.
                continue;
            }
            tokio::select! {
                _ = tick.tick() => {
                    if self.settled() {
                        let ring = self.ring();
                        let req = self.full_state_request(&ring, false);
                        for p in self.sync_targets(&ring) {
                            self.pull(&am, &p, req.clone()).await;
                        }
                    }
                }
                _ = self.sync_wake.notified() => {}
            }
        }
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
/// view of the ring may differ from this one's, or it sent every tenant it holds).
pub(super) fn apply_state(
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
        // Only alerts this replica lacks (missed while it was down, or held by the previous
        // owners): merging known ones would disturb their groups' timers.
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
