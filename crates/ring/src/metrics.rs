//! Ring metrics (`strata_ring_*`), one set per process registry; every ring reports under its
//! own `name` label (e.g. `ingester`, `store-gateway`).

use crate::desc::InstanceState;
use crate::ring::{Operation, Ring};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    name: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabels {
    name: String,
}

/// Members per state, the oldest heartbeat per state, heartbeat failures and auto-forgotten
/// instances. Cheap to clone; register once per registry and share.
#[derive(Debug, Clone, Default)]
pub struct RingMetrics {
    members: Family<StateLabels, Gauge>,
    oldest: Family<StateLabels, Gauge>,
    heartbeat_failures: Family<NameLabels, Counter>,
    auto_forgotten: Family<NameLabels, Counter>,
}

/// The state label of instances whose heartbeat is stale, whatever their state (dskit).
const UNHEALTHY: &str = "Unhealthy";

impl RingMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("strata_ring");
        r.register(
            "members",
            "Ring members per state; members with a stale heartbeat count as Unhealthy",
            m.members.clone(),
        );
        r.register(
            "oldest_member_timestamp",
            "Unix seconds of the oldest heartbeat per state (0: no member in that state)",
            m.oldest.clone(),
        );
        r.register(
            "heartbeat_failures",
            "Heartbeats of this instance that could not be written to the KV",
            m.heartbeat_failures.clone(),
        );
        r.register(
            "auto_forgotten",
            "Instances removed from the ring because their heartbeat was too old",
            m.auto_forgotten.clone(),
        );
        m
    }

    /// Sets the member gauges of ring `name` from `ring` as of `now_ms`.
    pub fn observe(&self, name: &str, ring: &Ring, now_ms: i64) {
        let labels = InstanceState::ALL
            .iter()
            .map(|s| s.as_str())
            .chain([UNHEALTHY]);
        for label in labels {
            let mut count = 0;
            let mut oldest: Option<i64> = None;
            for d in ring.all() {
                let l = if ring.is_healthy(d, Operation::Reporting, now_ms) {
                    d.state.as_str()
                } else {
                    UNHEALTHY
                };
                if l == label {
                    count += 1;
                    oldest = Some(oldest.map_or(d.heartbeat_ms, |o| o.min(d.heartbeat_ms)));
                }
            }
            let key = StateLabels {
                name: name.to_owned(),
                state: label.to_owned(),
            };
            self.members.get_or_create(&key).set(count);
            self.oldest
                .get_or_create(&key)
                .set(oldest.map_or(0, |ms| ms.div_euclid(1000)));
        }
    }

    pub(crate) fn heartbeat_failed(&self, name: &str) {
        self.heartbeat_failures
            .get_or_create(&NameLabels {
                name: name.to_owned(),
            })
            .inc();
    }

    pub(crate) fn forgot(&self, name: &str) {
        self.auto_forgotten
            .get_or_create(&NameLabels {
                name: name.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desc::InstanceDesc;
    use crate::ring::RingOptions;

    #[test]
    fn members_per_state_with_stale_ones_unhealthy() {
        let d = |id: &str, state, hb| InstanceDesc {
            id: id.into(),
            addr: "h:1".into(),
            http_addr: String::new(),
            zone: String::new(),
            state,
            tokens: vec![],
            heartbeat_ms: hb,
            registered_ms: 0,
        };
        let ring = Ring::new(
            [
                d("a", InstanceState::Active, 100_000),
                d("b", InstanceState::Active, 90_000),
                d("c", InstanceState::Active, 1_000),
                d("e", InstanceState::Leaving, 100_000),
            ],
            &RingOptions::default(),
        );
        let mut reg = Registry::default();
        let m = RingMetrics::new(&mut reg);
        m.observe("ingester", &ring, 100_000);
        m.heartbeat_failed("ingester");
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        for line in [
            r#"strata_ring_members{name="ingester",state="ACTIVE"} 2"#,
            r#"strata_ring_members{name="ingester",state="LEAVING"} 1"#,
            r#"strata_ring_members{name="ingester",state="Unhealthy"} 1"#,
            r#"strata_ring_members{name="ingester",state="PENDING"} 0"#,
            r#"strata_ring_oldest_member_timestamp{name="ingester",state="ACTIVE"} 90"#,
            r#"strata_ring_oldest_member_timestamp{name="ingester",state="Unhealthy"} 1"#,
            r#"strata_ring_heartbeat_failures_total{name="ingester"} 1"#,
        ] {
            assert!(out.contains(line), "missing {line} in\n{out}");
        }
    }
}
