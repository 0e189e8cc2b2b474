//! The per-tenant compactor lock: `<tenant>/compactor.lock`, holding the owner, a token per
//! acquisition and an expiry that a heartbeat pushes forward.
//!
//! It is taken with a conditional create where the backend has one (object_store's
//! `PutMode::Create`: a hard link on the local filesystem, `If-None-Match` on S3, generation
//! match on GCS), so two compactors starting together cannot both get it. An expired lock (its
//! owner died) is taken over with a compare-and-swap where the backend supports it (S3, GCS,
//! Azure) and by read-check-write otherwise (the local filesystem), which two compactors can
//! still both win in a narrow race. That is acceptable because the lock only saves work:
//! correctness never depends on it (two compactors merging the same blocks produce blocks with
//! the same `sources`, and all but one are then marked as duplicates; queries merge duplicate
//! samples away meanwhile).

use crate::error::CompactorError;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata_model::TenantId;
use strata_storage::bucket::{Bucket, BucketError, ConditionalPut, ObjectVersion};
use ulid::Ulid;

/// Object name of the lock inside a tenant's prefix.
pub const LOCK_FILE: &str = "compactor.lock";

/// Contents of the lock object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockFile {
    /// Instance id of the holder (for operators).
    pub owner: String,
    /// Unique per acquisition: a holder recognises its own lock by it, even across restarts
    /// of an instance with the same id.
    pub token: Ulid,
    /// Wall-clock ms at which the lock is free to take unless renewed.
    pub expires_at: i64,
}

/// Wall-clock milliseconds. Lock expiry is about processes being alive, so it uses the real
/// clock even when a cycle runs at a simulated `now`.
pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Path of a tenant's lock object.
pub fn lock_path(tenant: &TenantId) -> String {
    format!("{}/{LOCK_FILE}", tenant.as_str())
}

/// Who holds a lock that could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The holder's instance id.
    pub owner: String,
    /// When its lock expires (wall-clock ms).
    pub expires_at: i64,
}

/// A held lock. Renewed in the background until [`TenantLock::release`] or drop; if a renewal
/// finds that another compactor took the lock over, [`TenantLock::lost`] turns true.
#[derive(Debug)]
pub struct TenantLock {
    bucket: Bucket,
    path: String,
    token: Ulid,
    lost: Arc<AtomicBool>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for TenantLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

fn encode(path: &str, f: &LockFile) -> Result<Bytes, CompactorError> {
    serde_json::to_vec(f)
        .map(Bytes::from)
        .map_err(|source| CompactorError::LockEncode {
            path: path.to_owned(),
            source,
        })
}

/// Reads the lock; `None` if there is none. An unreadable lock counts as expired: a lock
/// nobody can interpret must not block the tenant forever.
async fn read(
    bucket: &Bucket,
    path: &str,
) -> Result<Option<(LockFile, ObjectVersion)>, BucketError> {
    match bucket.get_versioned(path).await {
        Ok((raw, v)) => Ok(Some((
            serde_json::from_slice(&raw).unwrap_or(LockFile {
                owner: String::new(),
                token: Ulid::nil(),
                expires_at: 0,
            }),
            v,
        ))),
        Err(BucketError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the lock at `version` with `body`: compare-and-swap where supported, else a plain
/// overwrite followed by a read-back. `true` if `body` is what the bucket now holds.
async fn replace(
    bucket: &Bucket,
    path: &str,
    body: &LockFile,
    version: &ObjectVersion,
) -> Result<bool, CompactorError> {
    let data = encode(path, body)?;
    match bucket.put_if_version(path, data.clone(), version).await? {
        ConditionalPut::Written(_) => Ok(true),
        ConditionalPut::Conflict => Ok(false),
        ConditionalPut::Unsupported => {
            bucket.put(path, data).await?;
            Ok(read(bucket, path)
                .await?
                .is_some_and(|(f, _)| f.token == body.token))
        }
    }
}

impl TenantLock {
    /// Takes the lock of `tenant` for `ttl`, or says who holds it.
    pub async fn acquire(
        bucket: &Bucket,
        tenant: &TenantId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Result<Self, Holder>, CompactorError> {
        let path = lock_path(tenant);
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let body = LockFile {
            owner: owner.to_owned(),
            token: Ulid::generate(),
            expires_at: wall_ms().saturating_add(ttl_ms),
        };
        let won = match bucket.put_if_absent(&path, encode(&path, &body)?).await? {
            // Read back: an S3-compatible server that ignores `If-None-Match` overwrites
            // instead of refusing, and the later of two writers must be the one that wins.
            ConditionalPut::Written(_) => read(bucket, &path)
                .await?
                .is_some_and(|(f, _)| f.token == body.token),
            outcome @ (ConditionalPut::Conflict | ConditionalPut::Unsupported) => {
                match read(bucket, &path).await? {
                    // No conditional create on this backend: read-check-write, then read back.
                    None if outcome == ConditionalPut::Unsupported => {
                        bucket.put(&path, encode(&path, &body)?).await?;
                        read(bucket, &path)
                            .await?
                            .is_some_and(|(f, _)| f.token == body.token)
                    }
                    // Released between our create and our read: try again next cycle rather
                    // than loop here.
                    None => {
                        return Ok(Err(Holder {
                            owner: String::new(),
                            expires_at: 0,
                        }))
                    }
                    Some((cur, _)) if cur.owner != owner && cur.expires_at > wall_ms() => {
                        return Ok(Err(Holder {
                            owner: cur.owner,
                            expires_at: cur.expires_at,
                        }))
                    }
                    // Expired, or ours from a previous life of this instance: take it over.
                    Some((_, version)) => replace(bucket, &path, &body, &version).await?,
                }
            }
        };
        if !won {
            let holder = read(bucket, &path).await?.map(|(f, _)| Holder {
                owner: f.owner,
                expires_at: f.expires_at,
            });
            return Ok(Err(holder.unwrap_or(Holder {
                owner: String::new(),
                expires_at: 0,
            })));
        }
        let lost = Arc::new(AtomicBool::new(false));
        let heartbeat = tokio::spawn(heartbeat(
            bucket.clone(),
            path.clone(),
            body.clone(),
            ttl,
            lost.clone(),
        ));
        Ok(Ok(Self {
            bucket: bucket.clone(),
            path,
            token: body.token,
            lost,
            heartbeat,
        }))
    }

    /// Whether another compactor took the lock over since it was acquired.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Stops the heartbeat and deletes the lock if it is still ours.
    pub async fn release(self) -> Result<(), CompactorError> {
        self.heartbeat.abort();
        if let Some((cur, _)) = read(&self.bucket, &self.path).await? {
            if cur.token == self.token {
                self.bucket.delete(&self.path).await?;
            }
        }
        Ok(())
    }
}

/// Pushes the expiry forward every third of the TTL, so one or two missed beats (a slow
/// bucket) do not lose the lock.
async fn heartbeat(
    bucket: Bucket,
    path: String,
    mut body: LockFile,
    ttl: Duration,
    lost: Arc<AtomicBool>,
) {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::time::sleep(ttl / 3).await;
        let version = match read(&bucket, &path).await {
            Ok(Some((cur, v))) if cur.token == body.token => v,
            Ok(_) => {
                tracing::warn!(lock = %path, "compactor lock taken over by another instance");
                lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tracing::warn!(lock = %path, error = %e, "cannot read compactor lock; retrying");
                continue;
            }
        };
        body.expires_at = wall_ms().saturating_add(ttl_ms);
        match replace(&bucket, &path, &body, &version).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(lock = %path, "compactor lock taken over by another instance");
                lost.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => tracing::warn!(lock = %path, error = %e, "cannot renew compactor lock"),
        }
    }
}
