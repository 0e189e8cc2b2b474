//! Which tenants a starting replica restores from the bucket, decided before it joins the ring
//! (the state files must be in place before the tenants are opened).

use crate::config::{RingConfig, RING_PREFIX};
use strata_meta::KvStore;
use strata_ring::{key_token, ring_prefix, InstanceDesc, InstanceState, Ring};

/// The tenants to restore.
#[derive(Debug)]
pub(crate) enum RestoreScope {
    /// No other replica is ACTIVE: this one will own every tenant.
    All,
    /// The ring as it will be once this replica (already holding tokens) is ACTIVE again.
    Owned(Box<Ring>),
    /// A new replica joining a running ring (its tokens are not drawn yet), or the ring could
    /// not be read: the peers' state, merged when it settles, is newer than the bucket's.
    Nothing,
}

impl RestoreScope {
    pub(crate) fn includes(&self, cfg: &RingConfig, tenant: &str) -> bool {
        match self {
            RestoreScope::All => true,
            RestoreScope::Nothing => false,
            RestoreScope::Owned(ring) => ring
                .owners(key_token(tenant.as_bytes()), cfg.replication_factor)
                .iter()
                .any(|d| d.id == cfg.instance_id),
        }
    }
}

/// Reads the ring and decides what a replica starting with `cfg` will own.
pub(crate) async fn restore_scope(cfg: &RingConfig, kv: &dyn KvStore) -> RestoreScope {
    let prefix = ring_prefix(RING_PREFIX);
    let entries = match kv.list(&prefix).await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the alertmanager ring: restoring no tenant from the bucket");
            return RestoreScope::Nothing;
        }
    };
    let mut descs: Vec<InstanceDesc> = entries
        .iter()
        .filter_map(|e| InstanceDesc::decode(&e.key, &e.value).ok())
        .collect();
    let has_tokens = descs
        .iter()
        .any(|d| d.id == cfg.instance_id && !d.tokens.is_empty());
    if has_tokens {
        // Registering takes the entry back with its tokens, ACTIVE.
        for d in descs.iter_mut().filter(|d| d.id == cfg.instance_id) {
            d.state = InstanceState::Active;
        }
        let opts = cfg.lifecycler_config().ring_options();
        return RestoreScope::Owned(Box::new(Ring::new(descs, &opts)));
    }
    if descs
        .iter()
        .all(|d| d.id == cfg.instance_id || d.state != InstanceState::Active)
    {
        RestoreScope::All
    } else {
        RestoreScope::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_meta::MemoryKv;
    use strata_ring::instance_key;

    fn cfg(id: &str, rf: usize) -> RingConfig {
        RingConfig {
            enabled: true,
            instance_id: id.into(),
            replication_factor: rf,
            ..RingConfig::default()
        }
    }

    async fn put(kv: &MemoryKv, id: &str, state: InstanceState, tokens: &[u32]) {
        let d = InstanceDesc {
            id: id.into(),
            addr: format!("{id}:9095"),
            http_addr: String::new(),
            zone: String::new(),
            state,
            tokens: tokens.to_vec(),
            heartbeat_ms: 1,
            registered_ms: 1,
        };
        kv.cas(&instance_key(RING_PREFIX, id), 0, d.encode())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_replica_restores_what_it_will_own() {
        let kv = MemoryKv::new();
        let me = cfg("am-1", 1);
        // Alone (or only with replicas that are not ACTIVE): everything is its.
        assert!(matches!(restore_scope(&me, &kv).await, RestoreScope::All));
        put(&kv, "am-9", InstanceState::Leaving, &[7]).await;
        assert!(matches!(restore_scope(&me, &kv).await, RestoreScope::All));
        // A new replica joining a running ring: its peers have newer state than the bucket.
        put(&kv, "am-2", InstanceState::Active, &[u32::MAX / 2]).await;
        let scope = restore_scope(&me, &kv).await;
        assert!(matches!(scope, RestoreScope::Nothing), "{scope:?}");
        assert!(!scope.includes(&me, "anything"));
        // Back with its tokens (here LEAVING from a clean shutdown): the tenants they give it.
        put(&kv, "am-1", InstanceState::Leaving, &[u32::MAX]).await;
        let scope = restore_scope(&me, &kv).await;
        let RestoreScope::Owned(ring) = &scope else {
            panic!("{scope:?}")
        };
        let (mut mine, mut others) = (0, 0);
        for i in 0..200 {
            let t = format!("tenant-{i}");
            let owner = ring.owners(key_token(t.as_bytes()), 1)[0].id.clone();
            assert_eq!(scope.includes(&me, &t), owner == "am-1", "{t}");
            if owner == "am-1" {
                mine += 1;
            } else {
                others += 1;
            }
        }
        assert!(mine > 0 && others > 0, "{mine} / {others}");
    }
}
