//! Deduplication of HA Prometheus pairs (Cortex/Mimir's HA tracker).
//!
//! Two Prometheus replicas scrape the same targets and both write, labelled `cluster=<c>` and
//! `__replica__=<r>`. Per tenant and cluster one replica is *elected* in the cluster KV
//! (`ha-tracker/<tenant>/<cluster>`); its samples are stored without the replica label, the
//! other's are answered 202 and dropped. The election is refreshed at most every
//! `update_timeout` (± jitter, so distributors do not write in lockstep) and moves to another
//! replica only after the elected one sent nothing for `failover_timeout`.

use crate::error::DistributorError;
use bytes::Bytes;
use futures::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;
use strata_meta::{KvStore, WatchEvent};

/// `distributor.ha_tracker:` in the configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HaTrackerConfig {
    /// Deduplicate pairs for every tenant.
    pub enabled: bool,
    /// Label naming the HA cluster (kept on stored series).
    pub cluster_label: String,
    /// Label naming the replica within the cluster (removed from stored series).
    pub replica_label: String,
    /// How often the elected replica's timestamp is refreshed in the KV.
    #[serde(with = "humantime_serde")]
    pub update_timeout: Duration,
    /// Largest random shift of `update_timeout` per distributor.
    #[serde(with = "humantime_serde")]
    pub update_timeout_jitter_max: Duration,
    /// Time without samples from the elected replica after which another may take over.
    #[serde(with = "humantime_serde")]
    pub failover_timeout: Duration,
    /// Clusters tracked per tenant (0 = no limit); a new cluster past it is refused with 400.
    pub max_clusters: usize,
}

impl Default for HaTrackerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            cluster_label: "cluster".into(),
            replica_label: "__replica__".into(),
            update_timeout: Duration::from_secs(15),
            update_timeout_jitter_max: Duration::from_secs(5),
            failover_timeout: Duration::from_secs(30),
            max_clusters: 0,
        }
    }
}

impl HaTrackerConfig {
    pub fn validate(&self) -> Result<(), DistributorError> {
        let bad = |field, reason: String| Err(DistributorError::Config { field, reason });
        if self.cluster_label.is_empty() {
            return bad(
                "distributor.ha_tracker.cluster_label",
                "must not be empty".into(),
            );
        }
        if self.replica_label.is_empty() || self.replica_label == self.cluster_label {
            return bad(
                "distributor.ha_tracker.replica_label",
                "must be non-empty and differ from cluster_label".into(),
            );
        }
        if self.failover_timeout <= self.update_timeout + self.update_timeout_jitter_max {
            return bad(
                "distributor.ha_tracker.failover_timeout",
                format!(
                    "must be greater than update_timeout + update_timeout_jitter_max ({:?})",
                    self.update_timeout + self.update_timeout_jitter_max
                ),
            );
        }
        Ok(())
    }
}

/// The elected replica of one cluster, as stored in the KV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Election {
    pub replica: String,
    /// When the elected replica was last seen by a distributor that refreshed the record, ms.
    pub received_at_ms: i64,
    /// Set when the election went stale; the record is deleted a while later.
    #[serde(default)]
    pub deleted_at_ms: i64,
}

/// What to do with a request from one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept,
    /// Not the elected replica: drop the samples, answer 202.
    Reject {
        elected: String,
    },
}

/// Prefix of election keys in the KV.
pub const KV_PREFIX: &str = "ha-tracker/";

fn key(tenant: &str, cluster: &str) -> String {
    format!("{KV_PREFIX}{tenant}/{cluster}")
}

/// Why the tracker could not decide.
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("HA tracker key-value store")]
    Kv(#[from] strata_meta::KvError),
    #[error("tenant {tenant} has reached the limit of {limit} HA clusters (distributor.ha_tracker.max_clusters); cluster {cluster:?} was refused")]
    TooManyClusters {
        tenant: String,
        cluster: String,
        limit: usize,
    },
}

/// The tracker: a cache of elections kept current by a KV watch, and CAS on expiry.
#[derive(Debug)]
pub struct HaTracker {
    cfg: HaTrackerConfig,
    kv: Arc<dyn KvStore>,
    /// By KV key.
    cache: Mutex<HashMap<String, Election>>,
    jitter_ms: i64,
}

impl HaTracker {
    pub fn new(cfg: HaTrackerConfig, kv: Arc<dyn KvStore>) -> Arc<Self> {
        let max = cfg.update_timeout_jitter_max.as_millis() as i64;
        let jitter_ms = if max == 0 {
            0
        } else {
            let r = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish();
            (r % (2 * max as u64 + 1)) as i64 - max
        };
        Arc::new(Self {
            cfg,
            kv,
            cache: Mutex::default(),
            jitter_ms,
        })
    }

    pub fn config(&self) -> &HaTrackerConfig {
        &self.cfg
    }

    /// Decides for a request of `replica` in `cluster` arriving at `now_ms`.
    pub async fn check(
        &self,
        tenant: &str,
        cluster: &str,
        replica: &str,
        now_ms: i64,
    ) -> Result<Decision, HaError> {
        let k = key(tenant, cluster);
        let fresh_ms = self.cfg.update_timeout.as_millis() as i64 + self.jitter_ms;
        if let Some(e) = self.cache.lock().get(&k) {
            if e.deleted_at_ms == 0 && now_ms - e.received_at_ms < fresh_ms {
                return Ok(if e.replica == replica {
                    Decision::Accept
                } else {
                    Decision::Reject {
                        elected: e.replica.clone(),
                    }
                });
            }
        }
        if self.cfg.max_clusters > 0 && !self.cache.lock().contains_key(&k) {
            let prefix = format!("{KV_PREFIX}{tenant}/");
            let n = self.kv.list(&prefix).await?.len();
            if n >= self.cfg.max_clusters {
                return Err(HaError::TooManyClusters {
                    tenant: tenant.into(),
                    cluster: cluster.into(),
                    limit: self.cfg.max_clusters,
                });
            }
        }
        let update_ms = self.cfg.update_timeout.as_millis() as i64;
        let failover_ms = self.cfg.failover_timeout.as_millis() as i64;
        let mut decision = Decision::Accept;
        let mut stored: Option<Election> = None;
        strata_meta::cas_update(self.kv.as_ref(), &k, |cur| {
            let cur: Option<Election> = cur.and_then(|b| serde_json::from_slice(b).ok());
            let take = Election {
                replica: replica.to_owned(),
                received_at_ms: now_ms,
                deleted_at_ms: 0,
            };
            match cur {
                Some(e) if e.deleted_at_ms == 0 && e.replica == replica => {
                    decision = Decision::Accept;
                    if now_ms - e.received_at_ms < update_ms {
                        stored = Some(e);
                        return None;
                    }
                }
                Some(e) if e.deleted_at_ms == 0 && now_ms - e.received_at_ms < failover_ms => {
                    decision = Decision::Reject {
                        elected: e.replica.clone(),
                    };
                    stored = Some(e);
                    return None;
                }
                // No election, a deleted one, or the elected replica has been silent for
                // failover_timeout: this replica takes over.
                _ => decision = Decision::Accept,
            }
            let bytes = serde_json::to_vec(&take).ok()?;
            stored = Some(take);
            Some(Bytes::from(bytes))
        })
        .await?;
        if let Some(e) = stored {
            self.cache.lock().insert(k, e);
        }
        Ok(decision)
    }

    /// Keeps the cache current with elections made by other distributors, and retires
    /// elections of clusters that stopped writing (marked after 30 min, deleted 30 min later,
    /// as in Cortex). Runs until `stop` changes.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut cleanup = tokio::time::interval(Duration::from_secs(30 * 60));
        cleanup.tick().await;
        loop {
            let mut watch = match self.kv.watch(KV_PREFIX).await {
                Ok(w) => w,
                Err(e) => {
                    tracing::warn!(error = %e, "HA tracker cannot watch the KV; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                        _ = stop.changed() => return,
                    }
                }
            };
            loop {
                tokio::select! {
                    ev = watch.next() => match ev {
                        Some(Ok(ev)) => self.apply(ev),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "HA tracker watch broke; re-watching");
                            break;
                        }
                        None => break,
                    },
                    _ = cleanup.tick() => self.cleanup(strata_model::time::now_ms()).await,
                    _ = stop.changed() => return,
                }
            }
        }
    }

    fn apply(&self, ev: WatchEvent) {
        let mut cache = self.cache.lock();
        match ev {
            WatchEvent::Snapshot { entries, .. } => {
                cache.clear();
                for e in entries {
                    if let Ok(el) = serde_json::from_slice(&e.value) {
                        cache.insert(e.key, el);
                    }
                }
            }
            WatchEvent::Put(e) => {
                if let Ok(el) = serde_json::from_slice(&e.value) {
                    cache.insert(e.key, el);
                }
            }
            WatchEvent::Delete { key, .. } => {
                cache.remove(&key);
            }
            WatchEvent::Progress { .. } => {}
        }
    }

    /// Marks elections idle for 30 min as deleted and deletes those marked 30 min ago.
    pub async fn cleanup(&self, now_ms: i64) {
        const IDLE_MS: i64 = 30 * 60 * 1000;
        let entries = match self.kv.list(KV_PREFIX).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "HA tracker cleanup cannot list elections");
                return;
            }
        };
        for e in entries {
            let Ok(mut el) = serde_json::from_slice::<Election>(&e.value) else {
                continue;
            };
            if el.deleted_at_ms > 0 {
                if now_ms - el.deleted_at_ms >= IDLE_MS {
                    let _ = self.kv.delete(&e.key, Some(e.version)).await;
                }
            } else if now_ms - el.received_at_ms >= IDLE_MS {
                el.deleted_at_ms = now_ms;
                if let Ok(b) = serde_json::to_vec(&el) {
                    let _ = self.kv.cas(&e.key, e.version, Bytes::from(b)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_meta::MemoryKv;

    fn tracker(kv: Arc<dyn KvStore>) -> Arc<HaTracker> {
        HaTracker::new(
            HaTrackerConfig {
                enabled: true,
                update_timeout_jitter_max: Duration::ZERO,
                ..Default::default()
            },
            kv,
        )
    }

    const S: i64 = 1000;

    #[tokio::test]
    async fn elects_the_first_replica_and_fails_over_after_30s_without_flapping() {
        let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
        let t = tracker(kv.clone());
        let rej = |e: &str| Decision::Reject { elected: e.into() };
        assert_eq!(t.check("t", "c", "a", 0).await.unwrap(), Decision::Accept);
        assert_eq!(t.check("t", "c", "b", S).await.unwrap(), rej("a"));
        // a keeps writing every 15 s; b never gets in.
        for i in 1..=8 {
            assert_eq!(
                t.check("t", "c", "a", i * 15 * S).await.unwrap(),
                Decision::Accept
            );
            assert_eq!(
                t.check("t", "c", "b", i * 15 * S + S).await.unwrap(),
                rej("a")
            );
        }
        // a stops at 120 s (last refresh). b is refused until 30 s have passed...
        assert_eq!(t.check("t", "c", "b", 149 * S).await.unwrap(), rej("a"));
        // ... then takes over.
        assert_eq!(
            t.check("t", "c", "b", 151 * S).await.unwrap(),
            Decision::Accept
        );
        // a comes back: refused now (no flapping back), while b keeps writing.
        assert_eq!(t.check("t", "c", "a", 152 * S).await.unwrap(), rej("b"));
        assert_eq!(
            t.check("t", "c", "b", 166 * S).await.unwrap(),
            Decision::Accept
        );
        assert_eq!(t.check("t", "c", "a", 170 * S).await.unwrap(), rej("b"));
        // Another distributor with an empty cache reaches the same decision through the KV.
        let other = tracker(kv.clone());
        assert_eq!(other.check("t", "c", "a", 171 * S).await.unwrap(), rej("b"));
        assert_eq!(
            other.check("t", "c", "b", 171 * S).await.unwrap(),
            Decision::Accept
        );
        // Clusters and tenants are independent.
        assert_eq!(
            t.check("t", "d", "a", 171 * S).await.unwrap(),
            Decision::Accept
        );
        assert_eq!(
            t.check("u", "c", "a", 171 * S).await.unwrap(),
            Decision::Accept
        );
    }

    #[tokio::test]
    async fn refreshes_the_kv_at_most_once_per_update_timeout() {
        let kv = Arc::new(MemoryKv::new());
        let t = tracker(kv.clone());
        t.check("t", "c", "a", 0).await.unwrap();
        let v0 = kv.revision();
        for ms in (S..15 * S).step_by(500) {
            t.check("t", "c", "a", ms).await.unwrap();
        }
        assert_eq!(kv.revision(), v0, "no write within update_timeout");
        t.check("t", "c", "a", 15 * S).await.unwrap();
        assert_eq!(kv.revision(), v0 + 1);
    }

    #[tokio::test]
    async fn stale_elections_are_marked_then_deleted() {
        let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
        let t = tracker(kv.clone());
        t.check("t", "c", "a", 0).await.unwrap();
        t.cleanup(29 * 60 * S).await;
        let e: Election =
            serde_json::from_slice(&kv.get("ha-tracker/t/c").await.unwrap().unwrap().value)
                .unwrap();
        assert_eq!(e.deleted_at_ms, 0);
        t.cleanup(31 * 60 * S).await;
        let e: Election =
            serde_json::from_slice(&kv.get("ha-tracker/t/c").await.unwrap().unwrap().value)
                .unwrap();
        assert_eq!(e.deleted_at_ms, 31 * 60 * S);
        // A deleted election is replaced by whoever writes next.
        t.cache.lock().clear();
        assert_eq!(
            t.check("t", "c", "b", 32 * 60 * S).await.unwrap(),
            Decision::Accept
        );
        t.cleanup(63 * 60 * S).await;
        t.cleanup(94 * 60 * S).await;
        assert!(kv.get("ha-tracker/t/c").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn max_clusters_is_enforced() {
        let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
        let t = HaTracker::new(
            HaTrackerConfig {
                max_clusters: 1,
                update_timeout_jitter_max: Duration::ZERO,
                ..Default::default()
            },
            kv,
        );
        t.check("t", "c1", "a", 0).await.unwrap();
        let e = t.check("t", "c2", "a", 0).await.unwrap_err();
        assert!(e.to_string().contains("max_clusters"), "{e}");
    }

    #[test]
    fn failover_must_exceed_update_plus_jitter() {
        let c = HaTrackerConfig {
            failover_timeout: Duration::from_secs(20),
            ..Default::default()
        };
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("distributor.ha_tracker.failover_timeout"), "{e}");
        HaTrackerConfig::default().validate().unwrap();
    }
}
