//! Per-tenant rule groups in the bucket: one object per group at
//! `<prefix>/<tenant>/<namespace>/<group>`, holding the group as YAML. Tenant, namespace and
//! group names are base64url-encoded (no padding) into the path, so no user-chosen name ever
//! forms a path segment (`..`, `/`, empty, or characters a backend rewrites).
//!
//! The default prefix is `@rules`: like the Alertmanager's `@alertmanager`, it is not a valid
//! tenant id, so components that list tenants as the bucket's top-level directories never
//! take it for one.

use crate::error::RulerError;
use crate::rulefmt::RuleGroup;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use strata_model::TenantId;
use strata_storage::bucket::{Bucket, BucketError};

/// A tenant's rule groups by namespace, each namespace's groups sorted by name.
pub type Namespaces = BTreeMap<String, Vec<RuleGroup>>;

/// Rule groups in the bucket.
#[derive(Debug, Clone)]
pub struct RuleStore {
    bucket: Bucket,
    prefix: String,
    /// Groups as last decoded, by object path, with the hash of the bytes they came from: the
    /// ruler reads every group at every poll, and most polls find them unchanged, so decoding
    /// (YAML) is skipped for bytes seen before.
    decoded: Arc<Mutex<HashMap<String, (u64, RuleGroup)>>>,
}

fn enc(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s.as_bytes())
}

fn dec(s: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

impl RuleStore {
    pub fn new(bucket: Bucket, prefix: &str) -> Self {
        Self {
            bucket,
            prefix: prefix.trim_end_matches('/').to_string(),
            decoded: Arc::default(),
        }
    }

    fn tenant_dir(&self, tenant: &TenantId) -> String {
        format!("{}/{}", self.prefix, enc(tenant.as_str()))
    }

    fn group_path(&self, tenant: &TenantId, namespace: &str, group: &str) -> String {
        format!(
            "{}/{}/{}",
            self.tenant_dir(tenant),
            enc(namespace),
            enc(group)
        )
    }

    /// Tenants that have at least one group.
    pub async fn tenants(&self) -> Result<Vec<TenantId>, RulerError> {
        let dirs = self
            .bucket
            .list_dirs(&self.prefix)
            .await
            .map_err(store_err)?;
        Ok(dirs
            .iter()
            .filter_map(|d| dec(d))
            .filter_map(|t| TenantId::new(&t).ok())
            .collect())
    }

    /// Every group of a tenant. Objects that do not decode are skipped with a warning (one bad
    /// object must not stop the tenant's other rules).
    pub async fn groups(&self, tenant: &TenantId) -> Result<Namespaces, RulerError> {
        let dir = self.tenant_dir(tenant);
        let mut out = Namespaces::new();
        let listed = self.bucket.list(&dir).await.map_err(store_err)?;
        let mut seen = HashMap::with_capacity(listed.len());
        for o in listed {
            let rest = o
                .path
                .strip_prefix(&dir)
                .unwrap_or(&o.path)
                .trim_start_matches('/');
            let Some((ns, _)) = rest.split_once('/') else {
                continue;
            };
            let Some(ns) = dec(ns) else { continue };
            let data = match self.bucket.get(&o.path).await {
                Ok(d) => d,
                // Deleted between listing and reading.
                Err(BucketError::NotFound { .. }) => continue,
                Err(e) => return Err(store_err(e)),
            };
            let hash = xxhash_rust::xxh3::xxh3_64(&data);
            let cached = self
                .decoded
                .lock()
                .get(&o.path)
                .filter(|(h, _)| *h == hash)
                .map(|(_, g)| g.clone());
            let decoded = match cached {
                Some(g) => Ok(g),
                None => serde_yaml::from_slice::<RuleGroup>(&data),
            };
            match decoded {
                Ok(g) => {
                    seen.insert(o.path, (hash, g.clone()));
                    out.entry(ns).or_default().push(g);
                }
                Err(e) => tracing::warn!(
                    tenant = %tenant, object = %o.path, error = %e,
                    "skipping a rule group object that does not decode"
                ),
            }
        }
        // Keep this tenant's current groups only (deleted ones are forgotten).
        let mut decoded = self.decoded.lock();
        decoded.retain(|path, _| !path.starts_with(&format!("{dir}/")));
        decoded.extend(seen);
        drop(decoded);
        for groups in out.values_mut() {
            groups.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(out)
    }

    /// Drops the decoded groups of tenants not in `tenants` (those without groups any more).
    pub fn forget_other_tenants(&self, tenants: &std::collections::HashSet<TenantId>) {
        let dirs: Vec<String> = tenants
            .iter()
            .map(|t| format!("{}/", self.tenant_dir(t)))
            .collect();
        self.decoded
            .lock()
            .retain(|path, _| dirs.iter().any(|d| path.starts_with(d.as_str())));
    }

    /// One group, if it exists.
    pub async fn group(
        &self,
        tenant: &TenantId,
        namespace: &str,
        name: &str,
    ) -> Result<Option<RuleGroup>, RulerError> {
        match self
            .bucket
            .get(&self.group_path(tenant, namespace, name))
            .await
        {
            Ok(d) => serde_yaml::from_slice(&d)
                .map(Some)
                .map_err(|source| RulerError::Decode {
                    what: format!("rule group {namespace}/{name}"),
                    source,
                }),
            Err(BucketError::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }

    /// Creates or replaces a group.
    pub async fn put(
        &self,
        tenant: &TenantId,
        namespace: &str,
        group: &RuleGroup,
    ) -> Result<(), RulerError> {
        let yaml = serde_yaml::to_string(group).map_err(|source| RulerError::Decode {
            what: format!("rule group {namespace}/{}", group.name),
            source,
        })?;
        self.bucket
            .put(
                &self.group_path(tenant, namespace, &group.name),
                Bytes::from(yaml),
            )
            .await
            .map_err(store_err)
    }

    /// Deletes a group (deleting a missing group succeeds).
    pub async fn delete(
        &self,
        tenant: &TenantId,
        namespace: &str,
        name: &str,
    ) -> Result<(), RulerError> {
        self.bucket
            .delete(&self.group_path(tenant, namespace, name))
            .await
            .map_err(store_err)
    }

    /// Deletes every group of a namespace; returns how many there were.
    pub async fn delete_namespace(
        &self,
        tenant: &TenantId,
        namespace: &str,
    ) -> Result<usize, RulerError> {
        let dir = format!("{}/{}", self.tenant_dir(tenant), enc(namespace));
        let objects = self.bucket.list(&dir).await.map_err(store_err)?;
        for o in &objects {
            self.bucket.delete(&o.path).await.map_err(store_err)?;
        }
        Ok(objects.len())
    }
}

fn store_err(source: BucketError) -> RulerError {
    RulerError::Bucket(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_form_paths() {
        for evil in ["../../etc", "a/b", ".", "..", "ns with spaces", "ünïcode"] {
            let e = enc(evil);
            assert!(
                !e.contains('/') && !e.contains('.') && !e.contains(' '),
                "{evil} -> {e}"
            );
            assert_eq!(dec(&e).as_deref(), Some(evil));
        }
    }

    #[tokio::test]
    async fn unchanged_groups_are_not_decoded_again_and_changes_are_seen() {
        let bucket = Bucket::from_store(
            Arc::new(object_store::memory::InMemory::new()),
            std::time::Duration::from_secs(10),
        );
        let store = RuleStore::new(bucket.clone(), "@rules");
        let tenant = TenantId::new("t").unwrap();
        let path = store.group_path(&tenant, "ns", "g");
        let yaml = |for_: &str| {
            format!("name: g\nrules:\n  - alert: A\n    expr: up == 0\n    for: {for_}\n")
        };
        bucket.put(&path, Bytes::from(yaml("1m"))).await.unwrap();
        let first = store.groups(&tenant).await.unwrap();
        let for_ = |n: &Namespaces| n["ns"][0].rules[0].for_.map(|d| d.0.as_secs());
        assert_eq!(for_(&first), Some(60));
        assert_eq!(store.decoded.lock().len(), 1);
        // Same size, other content: decoded again.
        bucket.put(&path, Bytes::from(yaml("2m"))).await.unwrap();
        let second = store.groups(&tenant).await.unwrap();
        assert_eq!(for_(&second), Some(120));
        // Unchanged: the cached group is served (poisoned here to prove it).
        store.decoded.lock().get_mut(&path).unwrap().1.limit = 7;
        let third = store.groups(&tenant).await.unwrap();
        assert_eq!(third["ns"][0].limit, 7);
        // Deleted: forgotten.
        store.delete(&tenant, "ns", "g").await.unwrap();
        assert!(store.groups(&tenant).await.unwrap().is_empty());
        assert!(store.decoded.lock().is_empty());
        // A tenant whose last group went away (no longer listed) is forgotten by the sync.
        bucket.put(&path, Bytes::from(yaml("1m"))).await.unwrap();
        store.groups(&tenant).await.unwrap();
        assert_eq!(store.decoded.lock().len(), 1);
        store.forget_other_tenants(&[tenant.clone()].into_iter().collect());
        assert_eq!(store.decoded.lock().len(), 1);
        store.forget_other_tenants(&std::collections::HashSet::new());
        assert!(store.decoded.lock().is_empty());
    }
}
