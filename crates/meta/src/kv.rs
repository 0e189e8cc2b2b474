//! The key-value interface every backend implements.

use crate::KvError;
use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;

/// Longest key any backend accepts.
pub const MAX_KEY_BYTES: usize = 4096;

/// Largest value any backend accepts (a whole ring of 100 instances with 512 tokens each is
/// well under 1 MiB of JSON).
pub const MAX_VALUE_BYTES: usize = 4 * 1024 * 1024;

pub(crate) fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::Invalid("empty key"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::Invalid("key too large"));
    }
    Ok(())
}

pub(crate) fn check_write(key: &str, value: &[u8]) -> Result<(), KvError> {
    check_key(key)?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvError::Invalid("value too large"));
    }
    Ok(())
}

/// A key with its value and version.
///
/// Versions are store-wide revisions: every change increments the store's revision, and a key's
/// version is the revision of its last change (etcd's `mod_revision`). Version 0 means "absent".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub key: String,
    pub value: Bytes,
    pub version: u64,
}

/// What a watch reports, in the order the store applied the changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Every key under the prefix as of `revision`. Always the first event of a watch, and sent
    /// again when the watcher fell behind and events were dropped: the receiver replaces what it
    /// knew.
    Snapshot {
        revision: u64,
        entries: Vec<KvEntry>,
    },
    /// A key was created or changed; `entry.version` is the change's revision.
    Put(KvEntry),
    /// A key was deleted at `revision`.
    Delete { key: String, revision: u64 },
    /// Nothing under the prefix changed up to `revision`, and the store is reachable and has a
    /// quorum. Sent periodically (about every second): a watcher that stops receiving events
    /// knows its view is stale (rings judge heartbeat freshness by it, not by the wall clock).
    Progress { revision: u64 },
}

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, KvError>> + Send>>;

/// A strongly consistent key-value store with versions and prefix watches.
///
/// Keys are UTF-8 paths such as `ring/ingester/ingester-1`; values are opaque bytes (JSON for
/// Strata's records). Every write is linearizable; reads see at least every write that completed
/// before they started.
#[async_trait]
pub trait KvStore: Send + Sync + std::fmt::Debug {
    /// The key's value and version, `None` if absent.
    async fn get(&self, key: &str) -> Result<Option<KvEntry>, KvError>;

    /// Writes `value` if the key's version is `expected` (0: the key must not exist) and returns
    /// the new version; [`KvError::Conflict`] otherwise.
    async fn cas(&self, key: &str, expected: u64, value: Bytes) -> Result<u64, KvError>;

    /// Every key starting with `prefix`, sorted by key.
    async fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, KvError>;

    /// Deletes the key if its version is `expected` (`None`: whatever its version). `Ok(false)`
    /// if it did not exist; [`KvError::Conflict`] if it had another version.
    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<bool, KvError>;

    /// Changes under `prefix`: a [`WatchEvent::Snapshot`] first, then every change in order, and
    /// [`WatchEvent::Progress`] while nothing changes. The stream ends only when the store is
    /// closed; an error item means the watch broke and the caller should watch again.
    async fn watch(&self, prefix: &str) -> Result<WatchStream, KvError>;
}

/// Read-modify-write with retries on conflict (dskit's `CAS(key, f)`): `f` gets the current
/// value (`None` if absent) and returns the new one, or `None` to leave the key as it is.
/// Returns the version written, or the current version when `f` made no change (0 if absent).
pub async fn cas_update<F>(kv: &dyn KvStore, key: &str, mut f: F) -> Result<u64, KvError>
where
    F: FnMut(Option<&[u8]>) -> Option<Bytes> + Send,
{
    const ATTEMPTS: u32 = 16;
    for _ in 0..ATTEMPTS {
        let cur = kv.get(key).await?;
        let (bytes, version) = match &cur {
            Some(e) => (Some(e.value.as_ref()), e.version),
            None => (None, 0),
        };
        let Some(new) = f(bytes) else {
            return Ok(version);
        };
        match kv.cas(key, version, new).await {
            Ok(v) => return Ok(v),
            Err(KvError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(KvError::TooManyConflicts {
        key: key.to_owned(),
        attempts: ATTEMPTS,
    })
}
