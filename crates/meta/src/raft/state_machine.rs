//! The replicated state: keys with values and versions, the store-wide revision, the last
//! applied log id and membership. It lives in memory; `<dir>/snapshot` (written whenever
//! openraft builds or installs a snapshot) plus the log after it is what survives a restart, so
//! openraft's log purge, which only removes entries a snapshot covers, never loses state.

use super::record::{self, Read};
use super::types::{
    Command, CommandResult, Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};
use crate::error::StoreError;
use crate::kv::KvEntry;
use crate::watch::Change;
use bytes::Bytes;
use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::broadcast;

const SNAPSHOT: &str = "snapshot";

/// Events a watcher may fall behind by before it gets a fresh snapshot instead.
const CHANGE_BUFFER: usize = 1024;

/// The key-value data, shared between the state machine and the node's readers.
#[derive(Debug, Default, Clone)]
pub(crate) struct KvData {
    pub revision: u64,
    pub entries: BTreeMap<String, (Bytes, u64)>,
}

impl KvData {
    pub(crate) fn range(&self, prefix: &str) -> Vec<KvEntry> {
        self.entries
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (v, ver))| KvEntry {
                key: k.clone(),
                value: v.clone(),
                version: *ver,
            })
            .collect()
    }

    pub(crate) fn get(&self, key: &str) -> Option<KvEntry> {
        self.entries.get(key).map(|(v, ver)| KvEntry {
            key: key.to_owned(),
            value: v.clone(),
            version: *ver,
        })
    }

    fn version(&self, key: &str) -> u64 {
        self.entries.get(key).map_or(0, |(_, v)| *v)
    }
}

#[derive(Debug, Default, Clone)]
struct Applied {
    data: KvData,
    last_applied: Option<LogId>,
    membership: StoredMembership,
}

/// State readable outside openraft: the data and the change feed.
#[derive(Debug)]
pub(crate) struct SmShared {
    state: RwLock<Applied>,
    changes: broadcast::Sender<Change>,
}

impl SmShared {
    /// Runs `f` on the data under the read lock.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&KvData) -> T) -> T {
        f(&self.state.read().data)
    }

    /// A receiver of changes and the data as of subscribing (no change is missed or doubled
    /// between the two: changes are sent under the write lock).
    pub(crate) fn subscribe<T>(
        &self,
        f: impl FnOnce(&KvData) -> T,
    ) -> (broadcast::Receiver<Change>, T) {
        let st = self.state.read();
        (self.changes.subscribe(), f(&st.data))
    }
}

#[derive(Serialize, Deserialize)]
struct SnapshotEntry {
    key: String,
    #[serde(with = "super::types::b64")]
    value: Bytes,
    version: u64,
}

/// The snapshot payload sent between nodes and stored on disk.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    revision: u64,
    entries: Vec<SnapshotEntry>,
}

#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

/// The state machine handed to openraft.
#[derive(Debug)]
pub struct StateMachine {
    shared: Arc<SmShared>,
    path: PathBuf,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    snapshot_seq: u64,
}

fn encode_body(data: &KvData) -> Result<Vec<u8>, serde_json::Error> {
    let body = SnapshotBody {
        revision: data.revision,
        entries: data
            .entries
            .iter()
            .map(|(k, (v, ver))| SnapshotEntry {
                key: k.clone(),
                value: v.clone(),
                version: *ver,
            })
            .collect(),
    };
    serde_json::to_vec(&body)
}

fn decode_body(bytes: &[u8]) -> Result<KvData, serde_json::Error> {
    let body: SnapshotBody = serde_json::from_slice(bytes)?;
    Ok(KvData {
        revision: body.revision,
        entries: body
            .entries
            .into_iter()
            .map(|e| (e.key, (e.value, e.version)))
            .collect(),
    })
}

/// Writes the snapshot file: a record with the metadata, then one with the body.
fn persist(path: &Path, snap: &StoredSnapshot) -> Result<(), StoreError> {
    let meta = serde_json::to_vec(&snap.meta).map_err(|source| StoreError::Encode {
        path: path.to_owned(),
        source,
    })?;
    let mut buf = Vec::with_capacity(meta.len() + snap.data.len() + 2 * record::HEADER);
    record::encode(&meta, &mut buf);
    record::encode(&snap.data, &mut buf);
    record::write_atomically(path, &buf, true)
}

fn load(path: &Path) -> Result<Option<(StoredSnapshot, KvData)>, StoreError> {
    let buf = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("reading", path, e)),
    };
    // Written atomically, so any defect is corruption, never a torn write.
    let mut records = Vec::new();
    let mut off = 0;
    while records.len() < 2 {
        match record::read(&buf, off) {
            Read::Record { payload, next } => {
                records.push((off, payload));
                off = next;
            }
            _ => {
                return Err(StoreError::Checksum {
                    path: path.to_owned(),
                    offset: off as u64,
                })
            }
        }
    }
    let decode_err = |offset: usize, source| StoreError::Decode {
        path: path.to_owned(),
        offset: offset as u64,
        source,
    };
    let meta: SnapshotMeta =
        serde_json::from_slice(records[0].1).map_err(|e| decode_err(records[0].0, e))?;
    let data = decode_body(records[1].1).map_err(|e| decode_err(records[1].0, e))?;
    Ok(Some((
        StoredSnapshot {
            meta,
            data: records[1].1.to_vec(),
        },
        data,
    )))
}

impl StateMachine {
    /// Opens the state machine under `dir`: the last snapshot, if any, is the starting state;
    /// openraft re-applies the log after it.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("creating", dir, e))?;
        let path = dir.join(SNAPSHOT);
        let (current, applied) = match load(&path)? {
            Some((snap, data)) => {
                let applied = Applied {
                    data,
                    last_applied: snap.meta.last_log_id,
                    membership: snap.meta.last_membership.clone(),
                };
                (Some(snap), applied)
            }
            None => (None, Applied::default()),
        };
        let (changes, _) = broadcast::channel(CHANGE_BUFFER);
        Ok(Self {
            shared: Arc::new(SmShared {
                state: RwLock::new(applied),
                changes,
            }),
            path,
            current: Arc::new(Mutex::new(current)),
            snapshot_seq: 0,
        })
    }

    pub(crate) fn shared(&self) -> Arc<SmShared> {
        self.shared.clone()
    }

    /// Whether a snapshot was ever taken or installed here.
    pub fn has_snapshot(&self) -> bool {
        self.current.lock().is_some()
    }
}

fn apply_command(
    data: &mut KvData,
    cmd: Command,
    changes: &broadcast::Sender<Change>,
) -> CommandResult {
    match cmd {
        Command::Cas {
            key,
            expected,
            value,
        } => {
            let actual = data.version(&key);
            if actual != expected {
                return CommandResult::Conflict { actual };
            }
            data.revision += 1;
            let version = data.revision;
            data.entries.insert(key.clone(), (value.clone(), version));
            let _ = changes.send(Change::Put(KvEntry {
                key,
                value,
                version,
            }));
            CommandResult::Written { version }
        }
        Command::Delete { key, expected } => {
            let actual = data.version(&key);
            if expected.is_some_and(|e| e != actual) {
                return CommandResult::Conflict { actual };
            }
            if actual == 0 {
                return CommandResult::Deleted {
                    existed: false,
                    revision: data.revision,
                };
            }
            data.entries.remove(&key);
            data.revision += 1;
            let revision = data.revision;
            let _ = changes.send(Change::Delete { key, revision });
            CommandResult::Deleted {
                existed: true,
                revision,
            }
        }
    }
}

fn snapshot_err(e: StoreError) -> StorageError {
    StorageIOError::write_snapshot(None, &std::io::Error::other(e)).into()
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let st = self.shared.state.read();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut st = self.shared.state.write();
        let mut out = Vec::new();
        for e in entries {
            st.last_applied = Some(e.log_id);
            out.push(match e.payload {
                EntryPayload::Blank => CommandResult::Noop,
                EntryPayload::Normal(cmd) => apply_command(&mut st.data, cmd, &self.shared.changes),
                EntryPayload::Membership(m) => {
                    st.membership = StoredMembership::new(Some(e.log_id), m);
                    CommandResult::Noop
                }
            });
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.snapshot_seq += 1;
        SnapshotBuilder {
            state: self.shared.state.read().clone(),
            path: self.path.clone(),
            current: self.current.clone(),
            seq: self.snapshot_seq,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let bytes = snapshot.into_inner();
        let data = decode_body(&bytes).map_err(|e| {
            StorageError::from(StorageIOError::read_snapshot(Some(meta.signature()), &e))
        })?;
        let snap = StoredSnapshot {
            meta: meta.clone(),
            data: bytes,
        };
        let path = self.path.clone();
        let to_write = snap.clone();
        tokio::task::spawn_blocking(move || persist(&path, &to_write))
            .await
            .map_err(|source| StoreError::Task {
                path: self.path.clone(),
                source,
            })
            .and_then(|r| r)
            .map_err(snapshot_err)?;
        {
            let mut st = self.shared.state.write();
            st.data = data;
            st.last_applied = meta.last_log_id;
            st.membership = meta.last_membership.clone();
            let _ = self.shared.changes.send(Change::Reset);
        }
        *self.current.lock() = Some(snap);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.current.lock().as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.data.clone())),
        }))
    }
}

/// Serializes a copy of the state taken when openraft asked for the builder, and persists it.
#[derive(Debug)]
pub struct SnapshotBuilder {
    state: Applied,
    path: PathBuf,
    current: Arc<Mutex<Option<StoredSnapshot>>>,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let data = encode_body(&self.state.data)
            .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, &e)))?;
        let snapshot_id = match self.state.last_applied {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, self.seq),
            None => format!("0-0-{}", self.seq),
        };
        let snap = StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: self.state.last_applied,
                last_membership: self.state.membership.clone(),
                snapshot_id,
            },
            data,
        };
        let path = self.path.clone();
        let to_write = snap.clone();
        tokio::task::spawn_blocking(move || persist(&path, &to_write))
            .await
            .map_err(|source| StoreError::Task {
                path: self.path.clone(),
                source,
            })
            .and_then(|r| r)
            .map_err(snapshot_err)?;
        let out = Snapshot {
            meta: snap.meta.clone(),
            snapshot: Box::new(Cursor::new(snap.data.clone())),
        };
        *self.current.lock() = Some(snap);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn normal(index: u64, cmd: Command) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(cmd),
        }
    }

    fn cas(key: &str, expected: u64, v: &'static str) -> Command {
        Command::Cas {
            key: key.into(),
            expected,
            value: Bytes::from_static(v.as_bytes()),
        }
    }

    #[tokio::test]
    async fn apply_checks_versions_and_snapshots_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachine::open(dir.path()).unwrap();
        let out = sm
            .apply(vec![
                normal(1, cas("a", 0, "1")),
                normal(2, cas("a", 0, "x")),
                normal(3, cas("b", 0, "2")),
                normal(4, cas("a", 1, "3")),
                normal(
                    5,
                    Command::Delete {
                        key: "b".into(),
                        expected: Some(1),
                    },
                ),
                normal(
                    6,
                    Command::Delete {
                        key: "b".into(),
                        expected: None,
                    },
                ),
                normal(
                    7,
                    Command::Delete {
                        key: "zz".into(),
                        expected: None,
                    },
                ),
            ])
            .await
            .unwrap();
        assert_eq!(
            out,
            vec![
                CommandResult::Written { version: 1 },
                CommandResult::Conflict { actual: 1 },
                CommandResult::Written { version: 2 },
                CommandResult::Written { version: 3 },
                CommandResult::Conflict { actual: 2 },
                CommandResult::Deleted {
                    existed: true,
                    revision: 4
                },
                CommandResult::Deleted {
                    existed: false,
                    revision: 4
                },
            ]
        );
        let snap = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(snap.meta.last_log_id.unwrap().index, 7);
        drop(sm);

        let mut sm = StateMachine::open(dir.path()).unwrap();
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied.unwrap().index, 7);
        let a = sm.shared().read(|d| d.get("a")).unwrap();
        assert_eq!((a.value.as_ref(), a.version), (&b"3"[..], 3));
        assert_eq!(sm.shared().read(|d| d.revision), 4);
        assert!(sm.get_current_snapshot().await.unwrap().is_some());
    }
}
