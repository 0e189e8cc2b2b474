//! Metrics of the alertmanager ring (the shared ring metrics, `strata_ring_*`, come from
//! `strata_ring::RingMetrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

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
    pub ring_syncs: Counter,
}

impl ClusterMetrics {
    pub(super) fn register(&self, r: &mut Registry) {
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
            "1 once this replica is ACTIVE in the ring and its start-up state sync finished (or timed out): notifications may go out",
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
        r.register(
            "strata_alertmanager_ring_change_syncs",
            "Full-state syncs with every peer run because the ring's ownership changed (the start-up one included)",
            self.ring_syncs.clone(),
        );
    }
}
