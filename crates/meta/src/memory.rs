//! A key-value store held in this process: the backend of `--target=all` without Raft, and of
//! tests. Same semantics as the replicated store, minus durability.

use crate::kv::{check_key, check_write, KvEntry, KvStore, WatchStream};
use crate::watch::{self, Change, WatchSource};
use crate::KvError;
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

/// Events a slow watcher may fall behind by before it is sent a fresh snapshot instead.
const WATCH_BUFFER: usize = 1024;

#[derive(Debug)]
struct State {
    revision: u64,
    entries: BTreeMap<String, (Bytes, u64)>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<Change>,
    /// Never changes: watches end when the last handle of the store is dropped.
    closed: tokio::sync::watch::Sender<bool>,
}

/// In-memory [`KvStore`].
#[derive(Debug, Clone)]
pub struct MemoryKv {
    inner: Arc<Inner>,
    progress_interval: Duration,
}

impl Default for MemoryKv {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryKv {
    pub fn new() -> Self {
        Self::with_progress_interval(Duration::from_secs(1))
    }

    /// A store whose watches report progress every `interval`.
    pub fn with_progress_interval(interval: Duration) -> Self {
        let (events, _) = broadcast::channel(WATCH_BUFFER);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    revision: 0,
                    entries: BTreeMap::new(),
                }),
                events,
                closed: tokio::sync::watch::channel(false).0,
            }),
            progress_interval: interval,
        }
    }

    /// The store-wide revision: the number of changes applied so far.
    pub fn revision(&self) -> u64 {
        self.inner.state.lock().revision
    }
}

/// Watches hold only this, so that dropping every [`MemoryKv`] ends them.
struct Source(std::sync::Weak<Inner>);

impl WatchSource for Source {
    fn subscribe(&self, prefix: &str) -> (broadcast::Receiver<Change>, u64, Vec<KvEntry>) {
        let inner = self
            .0
            .upgrade()
            .expect("subscribed while the store is alive");
        let st = inner.state.lock();
        (
            inner.events.subscribe(),
            st.revision,
            range(&st.entries, prefix),
        )
    }

    fn snapshot(&self, prefix: &str) -> (u64, Vec<KvEntry>) {
        match self.0.upgrade() {
            Some(inner) => {
                let st = inner.state.lock();
                (st.revision, range(&st.entries, prefix))
            }
            None => (0, Vec::new()),
        }
    }

    fn in_contact(&self) -> bool {
        true
    }
}

fn range(entries: &BTreeMap<String, (Bytes, u64)>, prefix: &str) -> Vec<KvEntry> {
    entries
        .range(prefix.to_owned()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(k, (v, ver))| KvEntry {
            key: k.clone(),
            value: v.clone(),
            version: *ver,
        })
        .collect()
}

#[async_trait]
impl KvStore for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<KvEntry>, KvError> {
        check_key(key)?;
        Ok(self
            .inner
            .state
            .lock()
            .entries
            .get(key)
            .map(|(v, ver)| KvEntry {
                key: key.to_owned(),
                value: v.clone(),
                version: *ver,
            }))
    }

    async fn cas(&self, key: &str, expected: u64, value: Bytes) -> Result<u64, KvError> {
        check_write(key, &value)?;
        let mut st = self.inner.state.lock();
        let actual = st.entries.get(key).map_or(0, |(_, v)| *v);
        if actual != expected {
            return Err(KvError::Conflict {
                key: key.to_owned(),
                expected,
                actual,
            });
        }
        st.revision += 1;
        let rev = st.revision;
        st.entries.insert(key.to_owned(), (value.clone(), rev));
        // Sent under the lock so that every watcher sees changes in revision order.
        let _ = self.inner.events.send(Change::Put(KvEntry {
            key: key.to_owned(),
            value,
            version: rev,
        }));
        Ok(rev)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, KvError> {
        Ok(range(&self.inner.state.lock().entries, prefix))
    }

    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<bool, KvError> {
        check_key(key)?;
        let mut st = self.inner.state.lock();
        let actual = st.entries.get(key).map_or(0, |(_, v)| *v);
        if let Some(e) = expected {
            if e != actual {
                return Err(KvError::Conflict {
                    key: key.to_owned(),
                    expected: e,
                    actual,
                });
            }
        }
        if actual == 0 {
            return Ok(false);
        }
        st.entries.remove(key);
        st.revision += 1;
        let _ = self.inner.events.send(Change::Delete {
            key: key.to_owned(),
            revision: st.revision,
        });
        Ok(true)
    }

    async fn watch(&self, prefix: &str) -> Result<WatchStream, KvError> {
        Ok(watch::stream(
            Arc::new(Source(Arc::downgrade(&self.inner))),
            prefix,
            self.progress_interval,
            self.inner.closed.subscribe(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::WatchEvent;
    use futures::StreamExt;

    #[tokio::test]
    async fn cas_versions_and_conflicts() {
        let kv = MemoryKv::new();
        assert!(kv.get("a").await.unwrap().is_none());
        let v1 = kv.cas("a", 0, Bytes::from_static(b"1")).await.unwrap();
        assert_eq!(v1, 1);
        let e = kv.cas("a", 0, Bytes::from_static(b"x")).await.unwrap_err();
        assert!(matches!(e, KvError::Conflict { actual: 1, .. }), "{e}");
        let v2 = kv.cas("a", v1, Bytes::from_static(b"2")).await.unwrap();
        assert!(v2 > v1);
        assert_eq!(kv.get("a").await.unwrap().unwrap().value, "2");
        assert!(kv.delete("a", Some(v1)).await.is_err());
        assert!(kv.delete("a", Some(v2)).await.unwrap());
        assert!(!kv.delete("a", None).await.unwrap());
    }

    #[tokio::test]
    async fn watch_starts_with_a_snapshot_then_sees_changes_in_order() {
        let kv = MemoryKv::new();
        kv.cas("ring/a", 0, Bytes::from_static(b"a")).await.unwrap();
        kv.cas("other/x", 0, Bytes::from_static(b"x"))
            .await
            .unwrap();
        let mut w = kv.watch("ring/").await.unwrap();
        match w.next().await.unwrap().unwrap() {
            WatchEvent::Snapshot { entries, revision } => {
                assert_eq!(revision, 2);
                assert_eq!(entries.len(), 1);
                assert_eq!(entries[0].key, "ring/a");
            }
            e => panic!("{e:?}"),
        }
        kv.cas("other/y", 0, Bytes::from_static(b"y"))
            .await
            .unwrap();
        kv.cas("ring/b", 0, Bytes::from_static(b"b")).await.unwrap();
        kv.delete("ring/a", None).await.unwrap();
        match w.next().await.unwrap().unwrap() {
            WatchEvent::Put(e) => assert_eq!((e.key.as_str(), e.version), ("ring/b", 4)),
            e => panic!("{e:?}"),
        }
        match w.next().await.unwrap().unwrap() {
            WatchEvent::Delete { key, revision } => {
                assert_eq!((key.as_str(), revision), ("ring/a", 5))
            }
            e => panic!("{e:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_watch_reports_progress() {
        let kv = MemoryKv::with_progress_interval(Duration::from_millis(100));
        let mut w = kv.watch("p/").await.unwrap();
        assert!(matches!(
            w.next().await,
            Some(Ok(WatchEvent::Snapshot { .. }))
        ));
        assert!(matches!(
            w.next().await,
            Some(Ok(WatchEvent::Progress { revision: 0 }))
        ));
    }
}
