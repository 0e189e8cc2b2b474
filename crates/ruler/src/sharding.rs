//! Which ruler evaluates which rule group: rulers register in the ruler ring, and a group
//! belongs to the first healthy ACTIVE ruler clockwise from its token. Exactly one ruler owns
//! a group while the ring is steady; when a ruler stops heartbeating, its groups pass to the
//! next rulers once the heartbeat timeout has passed (without waiting for the dead ruler to be
//! forgotten, unlike dskit's replica sets), and each group resumes there from
//! `ALERTS_FOR_STATE` (see [`crate::group::Group::begin_restore`]).

use std::sync::Arc;
use strata_model::TenantId;
use strata_ring::{Operation, RingWatcher};

/// Where rulers register in the cluster KV.
pub const RING_PREFIX: &str = "ring/ruler";

/// How often a sharded ruler checks the ring for rulers that came or went (Mimir checks every
/// 5 s too), so that groups move within about the heartbeat timeout.
pub const RING_CHECK_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// The token of a rule group: the series hash over the tenant and the (namespace, group)
/// pair, every string length-prefixed, so that no two groups share their input bytes.
pub fn group_token(tenant: &TenantId, namespace: &str, group: &str) -> u32 {
    strata_ring::series_token(tenant.as_str(), &[(namespace, group)])
}

/// This ruler's view of the ruler ring.
#[derive(Clone)]
pub struct RingSharding {
    ring: Arc<RingWatcher>,
    instance_id: String,
    list_peers: bool,
}

impl std::fmt::Debug for RingSharding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSharding")
            .field("instance_id", &self.instance_id)
            .finish_non_exhaustive()
    }
}

impl RingSharding {
    /// `instance_id` is this ruler's id in `ring`.
    pub fn new(ring: Arc<RingWatcher>, instance_id: impl Into<String>) -> Self {
        Self {
            ring,
            instance_id: instance_id.into(),
            list_peers: true,
        }
    }

    /// The rules and alerts APIs show this ruler's groups only (the rulers' HTTP is HTTPS,
    /// which the plain-HTTP listing between rulers does not speak).
    pub fn without_peer_listing(mut self) -> Self {
        self.list_peers = false;
        self
    }

    /// Whether the rules and alerts APIs ask the other rulers.
    pub fn lists_peers(&self) -> bool {
        self.list_peers
    }

    /// Whether this ruler evaluates the group now.
    pub fn owns(&self, tenant: &TenantId, namespace: &str, group: &str) -> bool {
        let ring = self.ring.ring();
        ring.first_healthy(
            group_token(tenant, namespace, group),
            Operation::Write,
            self.ring.now_ms(),
        )
        .is_some_and(|d| d.id == self.instance_id)
    }

    /// This ruler's id in the ring.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The other healthy rulers as `(id, HTTP host:port)`: where the rules and alerts APIs
    /// collect the groups this ruler does not run.
    pub fn peers(&self) -> Vec<(String, String)> {
        let ring = self.ring.ring();
        let now = self.ring.now_ms();
        ring.all()
            .iter()
            .filter(|d| d.id != self.instance_id && !d.http_addr.is_empty())
            .filter(|d| ring.is_healthy(d, Operation::Write, now))
            .map(|d| (d.id.clone(), d.http_addr.clone()))
            .collect()
    }

    /// What ownership depends on: each ruler's id and whether it is healthy now. A change
    /// (a ruler joined, left, or stopped heartbeating) means groups may have moved.
    pub fn signature(&self) -> Vec<(String, bool)> {
        let ring = self.ring.ring();
        let now = self.ring.now_ms();
        ring.all()
            .iter()
            .map(|d| (d.id.clone(), ring.is_healthy(d, Operation::Write, now)))
            .collect()
    }
}
