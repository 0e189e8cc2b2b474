//! A copy of every tenant's state files in the bucket, for when the local state directory is
//! gone (a replica rescheduled without its disk, all replicas replaced at once):
//!
//! - [`BucketState::upload`] copies `snapshot.json` and `config.yaml` of each tenant to
//!   `<prefix>/<tenant>/` when they changed, at most every `bucket.upload_interval` (and at
//!   shutdown); a configuration deleted locally is deleted there too.
//! - [`hydrate`] runs before the tenants are opened: a tenant present in the bucket (and owned
//!   by this replica, with the ring) whose local files are missing gets them from the bucket;
//!   local files are never overwritten. With the ring the settle that follows still pulls the
//!   peers' newer state and merges it.
//!
//! The bucket copy is at most `upload_interval` old: restored from it, a notification sent
//! in that window can repeat; none is lost (the alerts are re-sent by Prometheus anyway).

use crate::config::BucketStateConfig;
use crate::error::AlertmanagerError;
use crate::persist::{self, CONFIG_META_FILE, SNAPSHOT_FILE, USER_CONFIG_FILE};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;
use strata_model::TenantId;
use strata_storage::bucket::{Bucket, BucketError};

/// The files copied, per tenant.
const FILES: [&str; 3] = [SNAPSHOT_FILE, USER_CONFIG_FILE, CONFIG_META_FILE];

/// Uploads tenants' state files to the bucket.
#[derive(Debug)]
pub struct BucketState {
    bucket: Bucket,
    config: BucketStateConfig,
    uploaded: Mutex<HashMap<String, Uploaded>>,
}

/// When a tenant's files were last uploaded, and the digest of each of [`FILES`] then (`None`:
/// the file was absent).
type Uploaded = (Instant, [Option<u128>; 3]);

fn object(prefix: &str, tenant: &str, file: &str) -> String {
    format!("{prefix}/{tenant}/{file}")
}

fn digest(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

impl BucketState {
    pub fn new(bucket: Bucket, config: BucketStateConfig) -> Self {
        Self {
            bucket,
            config,
            uploaded: Mutex::new(HashMap::new()),
        }
    }

    /// Uploads what changed in `<state_dir>/<tenant>/` for every tenant listed, skipping a
    /// tenant uploaded less than `upload_interval` ago unless `force` (shutdown). Returns how
    /// many objects were written or deleted; the first error after trying every tenant.
    pub async fn upload(
        &self,
        state_dir: &Path,
        tenants: &[String],
        force: bool,
    ) -> Result<usize, AlertmanagerError> {
        let mut changed = 0;
        let mut first_err = None;
        for tenant in tenants {
            let due = self
                .uploaded
                .lock()
                .get(tenant)
                .is_none_or(|(at, _)| force || at.elapsed() >= self.config.upload_interval);
            if !due {
                continue;
            }
            match self.upload_tenant(state_dir, tenant).await {
                Ok(n) => changed += n,
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "alertmanager state upload to the bucket failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(changed), Err)
    }

    async fn upload_tenant(
        &self,
        state_dir: &Path,
        tenant: &str,
    ) -> Result<usize, AlertmanagerError> {
        let previous = self.uploaded.lock().get(tenant).map(|(_, d)| *d);
        let mut digests: [Option<u128>; 3] = [None, None, None];
        let mut changed = 0;
        for (i, file) in FILES.iter().enumerate() {
            let path = state_dir.join(tenant).join(file);
            let key = object(&self.config.prefix, tenant, file);
            let bytes = match tokio::fs::read(&path).await {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => return Err(AlertmanagerError::ReadStateFile { path, source }),
            };
            digests[i] = bytes.as_deref().map(digest);
            let before = previous.map(|p| p[i]);
            if before == Some(digests[i]) {
                continue;
            }
            let bucket_err = |source| AlertmanagerError::BucketState {
                tenant: tenant.to_string(),
                object: key.clone(),
                source: Box::new(source),
            };
            match bytes {
                Some(b) => self
                    .bucket
                    .put(&key, bytes::Bytes::from(b))
                    .await
                    .map_err(bucket_err)?,
                // Never uploaded in this process and absent: nothing to delete unless the
                // bucket has one (a configuration deleted while this replica was down).
                None => match self.bucket.delete(&key).await {
                    Ok(()) | Err(BucketError::NotFound { .. }) => {}
                    Err(e) => return Err(bucket_err(e)),
                },
            }
            changed += 1;
        }
        self.uploaded
            .lock()
            .insert(tenant.to_string(), (Instant::now(), digests));
        Ok(changed)
    }
}

/// Copies from the bucket the state files of tenants whose local files are missing; `owns`
/// says which tenants this replica serves. Returns the tenants restored.
pub async fn hydrate(
    bucket: &Bucket,
    config: &BucketStateConfig,
    state_dir: &Path,
    owns: impl Fn(&str) -> bool,
) -> Result<Vec<String>, AlertmanagerError> {
    let list_err = |source| AlertmanagerError::BucketState {
        tenant: String::new(),
        object: format!("{}/", config.prefix),
        source: Box::new(source),
    };
    let mut restored = Vec::new();
    for tenant in bucket.list_dirs(&config.prefix).await.map_err(list_err)? {
        if TenantId::new(&tenant).is_err() || !owns(&tenant) {
            continue;
        }
        let mut any = false;
        for file in FILES {
            let local = state_dir.join(&tenant).join(file);
            if local.exists() {
                continue;
            }
            let key = object(&config.prefix, &tenant, file);
            let bytes = match bucket.get(&key).await {
                Ok(b) => b,
                Err(BucketError::NotFound { .. }) => continue,
                Err(source) => {
                    return Err(AlertmanagerError::BucketState {
                        tenant: tenant.clone(),
                        object: key,
                        source: Box::new(source),
                    })
                }
            };
            persist::write_atomic(&local, &bytes).map_err(|source| {
                AlertmanagerError::WriteState {
                    path: local,
                    source,
                }
            })?;
            any = true;
        }
        if any {
            tracing::info!(tenant = %tenant, "alertmanager state restored from the bucket");
            restored.push(tenant);
        }
    }
    Ok(restored)
}
