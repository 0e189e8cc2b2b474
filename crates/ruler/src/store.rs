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
use std::collections::BTreeMap;
use strata_model::TenantId;
use strata_storage::bucket::{Bucket, BucketError};

/// A tenant's rule groups by namespace, each namespace's groups sorted by name.
pub type Namespaces = BTreeMap<String, Vec<RuleGroup>>;

/// Rule groups in the bucket.
#[derive(Debug, Clone)]
pub struct RuleStore {
    bucket: Bucket,
    prefix: String,
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
        for o in self.bucket.list(&dir).await.map_err(store_err)? {
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
            match serde_yaml::from_slice::<RuleGroup>(&data) {
                Ok(g) => out.entry(ns).or_default().push(g),
                Err(e) => tracing::warn!(
                    tenant = %tenant, object = %o.path, error = %e,
                    "skipping a rule group object that does not decode"
                ),
            }
        }
        for groups in out.values_mut() {
            groups.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(out)
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
}
