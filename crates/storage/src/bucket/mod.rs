//! Object storage for blocks: one [`Bucket`] over the `object_store` crate, whose backend
//! (local filesystem, S3 or an S3-compatible server, GCS, Azure) is chosen by [`BucketConfig`].
//!
//! Every request is bounded twice: the HTTP backends get object_store's own per-request timeout
//! and its [`RetryConfig`] (exponential backoff with jitter, retrying 5xx, 429 and connection
//! errors, idempotent requests only), and each [`Bucket`] call is additionally wrapped in a
//! `tokio` timeout covering all its retries, so that even the local filesystem or a stalled
//! stream cannot hang a caller forever.

mod config;

pub use config::{AzureConfig, BackendKind, BucketConfig, FilesystemConfig, GcsConfig, S3Config};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
    WriteMultipart,
};
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// A failed bucket operation.
#[derive(Debug, Error)]
pub enum BucketError {
    /// The configuration is invalid; `field` is its YAML path.
    #[error("invalid bucket configuration: {field}: {reason}")]
    Config {
        /// Path of the offending field, e.g. `bucket.s3.bucket_name`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The object does not exist.
    #[error("object {path} not found")]
    NotFound {
        /// Object path inside the bucket.
        path: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
    /// The backend failed (after its retries).
    #[error("bucket {op} {path} failed")]
    Backend {
        /// Operation that failed.
        op: &'static str,
        /// Object path or prefix.
        path: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
    /// The operation, retries included, did not finish within the configured bound.
    #[error("bucket {op} {path} timed out after {timeout:?}")]
    Timeout {
        /// Operation that timed out.
        op: &'static str,
        /// Object path or prefix.
        path: String,
        /// The bound that was exceeded.
        timeout: Duration,
    },
    /// The local bucket directory could not be created.
    #[error("cannot create bucket directory {path}")]
    CreateDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Metadata of a listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Path inside the bucket, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// The version of an object as the backend reports it (ETag and/or version id), for
/// compare-and-swap writes with [`Bucket::put_if_version`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectVersion {
    /// The object's ETag, if the backend has one.
    pub e_tag: Option<String>,
    /// The object's version id, if the backend versions objects.
    pub version: Option<String>,
}

/// Outcome of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionalPut {
    /// The object was written; this is its new version.
    Written(ObjectVersion),
    /// The condition failed: the object exists (create) or changed (update). Nothing written.
    Conflict,
    /// The backend cannot write conditionally (e.g. updates on the local filesystem, or S3 with
    /// conditional puts disabled); the caller must fall back to read-check-write.
    Unsupported,
}

/// A bucket: object storage addressed by `/`-separated paths. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    /// Bound on one whole operation including object_store's retries.
    op_timeout: Duration,
    /// Part size of multipart uploads.
    part_size: usize,
}

/// Part size for multipart uploads: S3's minimum for all but the last part is 5 MiB; larger parts
/// mean fewer requests for the multi-hundred-MiB files compaction produces.
const DEFAULT_PART_SIZE: usize = 8 << 20;

/// How many parts a multipart upload keeps in flight: bounds memory at ~`2 × part size`.
const MAX_PARTS_IN_FLIGHT: usize = 2;

impl Bucket {
    /// Builds the bucket the configuration describes. Validates it first.
    pub fn from_config(cfg: &BucketConfig) -> Result<Self, BucketError> {
        cfg.validate()?;
        let store = config::build_store(cfg)?;
        Ok(Self {
            store,
            op_timeout: cfg.operation_timeout(),
            part_size: DEFAULT_PART_SIZE,
        })
    }

    /// Wraps an existing store (tests, in-memory stores) with the given operation bound.
    pub fn from_store(store: Arc<dyn ObjectStore>, op_timeout: Duration) -> Self {
        Self {
            store,
            op_timeout,
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// Uses `bytes` as the multipart part size (at least 5 MiB, S3's minimum).
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = bytes.max(5 << 20);
        self
    }

    /// The underlying store, for readers that talk to `object_store` directly.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    async fn bounded<T, F>(&self, op: &'static str, path: &str, f: F) -> Result<T, BucketError>
    where
        F: Future<Output = object_store::Result<T>>,
    {
        match tokio::time::timeout(self.op_timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(map_err(op, path, e)),
            Err(_) => Err(BucketError::Timeout {
                op,
                path: path.to_owned(),
                timeout: self.op_timeout,
            }),
        }
    }

    /// Writes an object in one request (atomic: readers see the old or the new object).
    pub async fn put(&self, path: &str, data: Bytes) -> Result<(), BucketError> {
        let p = Path::from(path);
        self.bounded("put", path, self.store.put(&p, PutPayload::from(data)))
            .await
            .map(|_| ())
    }

    /// Writes an object from chunks through a multipart upload, so that objects larger than one
    /// request (or than memory) can be stored. The upload is aborted on error, leaving no object.
    pub async fn put_multipart<S>(&self, path: &str, mut chunks: S) -> Result<(), BucketError>
    where
        S: futures::Stream<Item = Bytes> + Unpin,
    {
        let p = Path::from(path);
        let upload = self
            .bounded("put_multipart", path, self.store.put_multipart(&p))
            .await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let result: Result<(), BucketError> = async {
            while let Some(chunk) = chunks.next().await {
                self.bounded(
                    "put_multipart",
                    path,
                    w.wait_for_capacity(MAX_PARTS_IN_FLIGHT),
                )
                .await?;
                w.put(chunk);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => self
                .bounded("put_multipart", path, w.finish())
                .await
                .map(|_| ()),
            Err(e) => {
                // Best effort: an abandoned upload would otherwise keep its parts billed until a
                // lifecycle rule removes them.
                let _ = tokio::time::timeout(self.op_timeout, w.abort()).await;
                Err(e)
            }
        }
    }

    /// Reads a whole object.
    pub async fn get(&self, path: &str) -> Result<Bytes, BucketError> {
        let p = Path::from(path);
        self.bounded("get", path, async {
            self.store.get(&p).await?.bytes().await
        })
        .await
    }

    /// Reads bytes `range` of an object.
    pub async fn get_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, BucketError> {
        let p = Path::from(path);
        self.bounded("get_range", path, self.store.get_range(&p, range))
            .await
    }

    /// Reads several ranges of one object; the backend coalesces nearby ranges into one request.
    pub async fn get_ranges(
        &self,
        path: &str,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>, BucketError> {
        let p = Path::from(path);
        self.bounded("get_ranges", path, self.store.get_ranges(&p, ranges))
            .await
    }

    /// Size of an object.
    pub async fn size(&self, path: &str) -> Result<u64, BucketError> {
        let p = Path::from(path);
        self.bounded("head", path, self.store.head(&p))
            .await
            .map(|m| m.size)
    }

    /// Whether an object exists.
    pub async fn exists(&self, path: &str) -> Result<bool, BucketError> {
        match self.size(path).await {
            Ok(_) => Ok(true),
            Err(BucketError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every object under `prefix` (recursively), sorted by path.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, BucketError> {
        let p = (!prefix.is_empty()).then(|| Path::from(prefix));
        let mut out: Vec<ObjectInfo> = self
            .bounded("list", prefix, async {
                self.store
                    .list(p.as_ref())
                    .map_ok(|m| ObjectInfo {
                        path: m.location.to_string(),
                        size: m.size,
                    })
                    .try_collect()
                    .await
            })
            .await?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The immediate "directories" under `prefix` (e.g. block ULIDs under a tenant), sorted.
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, BucketError> {
        let p = (!prefix.is_empty()).then(|| Path::from(prefix));
        let res = self
            .bounded("list", prefix, self.store.list_with_delimiter(p.as_ref()))
            .await?;
        let mut out: Vec<String> = res
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Creates an object only if none exists at `path` (object_store's `PutMode::Create`:
    /// a hard link on the local filesystem, `If-None-Match: *` on S3, generation match on GCS).
    pub async fn put_if_absent(
        &self,
        path: &str,
        data: Bytes,
    ) -> Result<ConditionalPut, BucketError> {
        self.put_mode(path, data, PutMode::Create).await
    }

    /// Replaces an object only if it is still at `version` (`PutMode::Update`: `If-Match` on
    /// S3, GCS and Azure; unsupported on the local filesystem).
    pub async fn put_if_version(
        &self,
        path: &str,
        data: Bytes,
        version: &ObjectVersion,
    ) -> Result<ConditionalPut, BucketError> {
        let mode = PutMode::Update(UpdateVersion {
            e_tag: version.e_tag.clone(),
            version: version.version.clone(),
        });
        self.put_mode(path, data, mode).await
    }

    async fn put_mode(
        &self,
        path: &str,
        data: Bytes,
        mode: PutMode,
    ) -> Result<ConditionalPut, BucketError> {
        let p = Path::from(path);
        let opts = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let r = tokio::time::timeout(
            self.op_timeout,
            self.store.put_opts(&p, PutPayload::from(data), opts),
        )
        .await;
        match r {
            Ok(Ok(res)) => Ok(ConditionalPut::Written(ObjectVersion {
                e_tag: res.e_tag,
                version: res.version,
            })),
            Ok(Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            )) => Ok(ConditionalPut::Conflict),
            Ok(Err(object_store::Error::NotImplemented { .. })) => Ok(ConditionalPut::Unsupported),
            Ok(Err(e)) => Err(map_err("put", path, e)),
            Err(_) => Err(BucketError::Timeout {
                op: "put",
                path: path.to_owned(),
                timeout: self.op_timeout,
            }),
        }
    }

    /// Reads a whole object with its version, for a later [`Bucket::put_if_version`].
    pub async fn get_versioned(&self, path: &str) -> Result<(Bytes, ObjectVersion), BucketError> {
        let p = Path::from(path);
        self.bounded("get", path, async {
            let r = self.store.get_opts(&p, GetOptions::default()).await?;
            let version = ObjectVersion {
                e_tag: r.meta.e_tag.clone(),
                version: r.meta.version.clone(),
            };
            Ok((r.bytes().await?, version))
        })
        .await
    }

    /// Deletes an object; deleting a missing object succeeds, so deletes can be retried.
    pub async fn delete(&self, path: &str) -> Result<(), BucketError> {
        let p = Path::from(path);
        match self.bounded("delete", path, self.store.delete(&p)).await {
            Err(BucketError::NotFound { .. }) => Ok(()),
            r => r,
        }
    }
}

fn map_err(op: &'static str, path: &str, e: object_store::Error) -> BucketError {
    match e {
        object_store::Error::NotFound { .. } => BucketError::NotFound {
            path: path.to_owned(),
            source: e,
        },
        e => BucketError::Backend {
            op,
            path: path.to_owned(),
            source: e,
        },
    }
}
