//! The Raft log and vote on disk.
//!
//! `<dir>/log` is an append-only file of framed records ([`super::record`]): log entries in
//! index order, and after a purge a leading `Purged` record. Appends are fsynced before openraft
//! is told they are flushed; a truncation cuts the file; a purge rewrites it (header plus the
//! kept tail, then rename), which is cheap because snapshots keep the log short. `<dir>/vote` is
//! replaced atomically (tmp, fsync, rename). `<dir>/committed` is a hint written without fsync.
//!
//! Entries are also held in memory: the log between two snapshots is small, and reads (by the
//! replication tasks) then never touch the disk.

use super::record::{self, Read};
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote};
use crate::error::StoreError;
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogId, RaftLogReader, StorageIOError};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const LOG: &str = "log";
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";

#[derive(Serialize, Deserialize)]
enum LogRecord {
    Entry(Entry),
    /// Everything up to and including this id was purged.
    Purged(LogId),
}

#[derive(Debug, Default)]
struct Mem {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

#[derive(Debug)]
struct FileLog {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    len: u64,
    /// Index → offset of its record, to truncate.
    offsets: BTreeMap<u64, u64>,
}

#[derive(Debug)]
struct Shared {
    mem: RwLock<Mem>,
    /// Held across a blocking write; readers only take `mem`.
    file: Mutex<FileLog>,
}

/// The persistent Raft log (and vote) of one meta node; cloning shares it.
#[derive(Debug, Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
}

fn open_append(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| StoreError::io("opening", path, e))
}

impl LogStore {
    /// Opens (or creates) the log under `dir`. A torn record at the end of the file (a crash
    /// during an append) is cut off; a bad record anywhere else is an error naming the file and
    /// the offset.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io("creating", dir, e))?;
        let path = dir.join(LOG);
        let file = open_append(&path)?;
        let buf = std::fs::read(&path).map_err(|e| StoreError::io("reading", &path, e))?;
        let mut mem = Mem::default();
        let mut offsets = BTreeMap::new();
        let mut off = 0usize;
        let good_len = loop {
            match record::read(&buf, off) {
                Read::End => break off,
                Read::Torn | Read::BadChecksum { at_end: true } => {
                    tracing::warn!(
                        path = %path.display(),
                        offset = off,
                        dropped_bytes = buf.len() - off,
                        "meta log: cutting a torn record at the end (crash during an append)"
                    );
                    break off;
                }
                Read::BadChecksum { at_end: false } => {
                    return Err(StoreError::Checksum {
                        path,
                        offset: off as u64,
                    })
                }
                Read::Record { payload, next } => {
                    let rec: LogRecord =
                        serde_json::from_slice(payload).map_err(|source| StoreError::Decode {
                            path: path.clone(),
                            offset: off as u64,
                            source,
                        })?;
                    match rec {
                        LogRecord::Entry(e) => {
                            let index = e.log_id.index;
                            let previous = mem
                                .entries
                                .last_key_value()
                                .map(|(i, _)| *i)
                                .or(mem.last_purged.map(|p| p.index));
                            if let Some(previous) = previous.filter(|p| *p >= index) {
                                return Err(StoreError::OutOfOrder {
                                    path,
                                    offset: off as u64,
                                    index,
                                    previous,
                                });
                            }
                            offsets.insert(index, off as u64);
                            mem.entries.insert(index, e);
                        }
                        LogRecord::Purged(id) => {
                            mem.entries.retain(|i, _| *i > id.index);
                            offsets.retain(|i, _| *i > id.index);
                            mem.last_purged = Some(id);
                        }
                    }
                    off = next;
                }
            }
        };
        if good_len < buf.len() {
            file.set_len(good_len as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| StoreError::io("cutting the torn tail of", &path, e))?;
        }
        mem.vote = read_json(&dir.join(VOTE))?;
        // A hint: an unreadable file (a crash between write and rename) is as good as none.
        mem.committed = read_json(&dir.join(COMMITTED)).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "meta log: ignoring the committed-index hint");
            None
        });
        Ok(Self {
            shared: Arc::new(Shared {
                mem: RwLock::new(mem),
                file: Mutex::new(FileLog {
                    dir: dir.to_owned(),
                    path,
                    file,
                    len: good_len as u64,
                    offsets,
                }),
            }),
        })
    }

    /// Whether nothing was ever written: no entry, no purge, no vote.
    pub fn is_pristine(&self) -> bool {
        let m = self.shared.mem.read();
        m.entries.is_empty() && m.last_purged.is_none() && m.vote.is_none()
    }

    fn last_log_id(m: &Mem) -> Option<LogId> {
        m.entries
            .last_key_value()
            .map(|(_, e)| e.log_id)
            .or(m.last_purged)
    }

    /// Appends and fsyncs (blocking).
    fn append_blocking(&self, entries: Vec<Entry>) -> Result<(), StoreError> {
        let mut f = self.shared.file.lock();
        let mut buf = Vec::new();
        let mut offsets = Vec::with_capacity(entries.len());
        for e in &entries {
            offsets.push((e.log_id.index, f.len + buf.len() as u64));
            let payload = serde_json::to_vec(&LogRecord::Entry(e.clone())).map_err(|source| {
                StoreError::Encode {
                    path: f.path.clone(),
                    source,
                }
            })?;
            record::encode(&payload, &mut buf);
        }
        let path = f.path.clone();
        f.file
            .write_all(&buf)
            .map_err(|e| StoreError::io("appending to", &path, e))?;
        f.file
            .sync_data()
            .map_err(|e| StoreError::io("fsync of", &path, e))?;
        f.len += buf.len() as u64;
        f.offsets.extend(offsets);
        let mut m = self.shared.mem.write();
        for e in entries {
            m.entries.insert(e.log_id.index, e);
        }
        Ok(())
    }

    /// Deletes entries from `index` on (blocking).
    fn truncate_blocking(&self, index: u64) -> Result<(), StoreError> {
        let mut f = self.shared.file.lock();
        let Some((_, &cut)) = f.offsets.range(index..).next() else {
            return Ok(());
        };
        let path = f.path.clone();
        f.file
            .set_len(cut)
            .and_then(|()| f.file.sync_all())
            .map_err(|e| StoreError::io("truncating", &path, e))?;
        f.len = cut;
        f.offsets.retain(|i, _| *i < index);
        self.shared.mem.write().entries.retain(|i, _| *i < index);
        Ok(())
    }

    /// Deletes entries up to and including `id` (blocking): rewrites the file as a `Purged`
    /// record followed by the kept records, byte for byte.
    fn purge_blocking(&self, id: LogId) -> Result<(), StoreError> {
        let mut f = self.shared.file.lock();
        let keep_from = f
            .offsets
            .range(id.index + 1..)
            .next()
            .map_or(f.len, |(_, o)| *o);
        let tail = if keep_from < f.len {
            let all = std::fs::read(&f.path).map_err(|e| StoreError::io("reading", &f.path, e))?;
            all[keep_from as usize..f.len as usize].to_vec()
        } else {
            Vec::new()
        };
        let mut buf = Vec::with_capacity(tail.len() + 128);
        let header =
            serde_json::to_vec(&LogRecord::Purged(id)).map_err(|source| StoreError::Encode {
                path: f.path.clone(),
                source,
            })?;
        record::encode(&header, &mut buf);
        let shift = buf.len() as u64;
        buf.extend_from_slice(&tail);
        record::write_atomically(&f.path, &buf, true)?;
        let path = f.path.clone();
        f.file = open_append(&path)?;
        f.len = buf.len() as u64;
        let kept: BTreeMap<u64, u64> = f
            .offsets
            .range(id.index + 1..)
            .map(|(i, o)| (*i, o - keep_from + shift))
            .collect();
        f.offsets = kept;
        let mut m = self.shared.mem.write();
        m.entries.retain(|i, _| *i > id.index);
        m.last_purged = Some(id);
        Ok(())
    }

    fn save_vote_blocking(&self, vote: &Vote) -> Result<(), StoreError> {
        let f = self.shared.file.lock();
        let path = f.dir.join(VOTE);
        let bytes = serde_json::to_vec(vote).map_err(|source| StoreError::Encode {
            path: path.clone(),
            source,
        })?;
        record::write_atomically(&path, &bytes, true)?;
        self.shared.mem.write().vote = Some(*vote);
        Ok(())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LogStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        let path = this.shared.file.lock().path.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|source| StoreError::Task { path, source })?
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| StoreError::Decode {
                path: path.to_owned(),
                offset: 0,
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io("reading", path, e)),
    }
}

fn io_err(e: StoreError) -> std::io::Error {
    std::io::Error::other(e)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let m = self.shared.mem.read();
        Ok(m.entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let m = self.shared.mem.read();
        Ok(LogState {
            last_purged_log_id: m.last_purged,
            last_log_id: Self::last_log_id(&m),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let v = *vote;
        self.blocking(move |s| s.save_vote_blocking(&v))
            .await
            .map_err(|e| StorageIOError::write_vote(&io_err(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.shared.mem.read().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Written without fsync on openraft's path: losing it only means re-learning the
        // committed index from the leader after a restart.
        let path = self.shared.file.lock().dir.join(COMMITTED);
        match serde_json::to_vec(&committed) {
            Ok(b) => {
                if let Err(e) = record::write_atomically(&path, &b, false) {
                    tracing::debug!(error = %e, "meta log: committed-index hint not written");
                }
            }
            Err(e) => tracing::debug!(error = %e, "meta log: committed-index hint not encoded"),
        }
        self.shared.mem.write().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.shared.mem.read().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let last = entries.last().map(|e| *e.get_log_id());
        match self.blocking(move |s| s.append_blocking(entries)).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = io_err(e);
                let se = match last {
                    Some(id) => StorageIOError::write_log_entry(id, &err),
                    None => StorageIOError::write_logs(&err),
                };
                callback.log_io_completed(Err(err));
                Err(se.into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.blocking(move |s| s.truncate_blocking(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(&io_err(e)).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.blocking(move |s| s.purge_blocking(log_id))
            .await
            .map_err(|e| StorageIOError::write_logs(&io_err(e)).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn blank(term: u64, index: u64) -> Entry {
        Entry {
            log_id: id(term, index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(s: &LogStore) -> Vec<u64> {
        s.shared.mem.read().entries.keys().copied().collect()
    }

    #[test]
    fn append_truncate_purge_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        assert!(s.is_pristine());
        s.append_blocking((0..10).map(|i| blank(1, i)).collect())
            .unwrap();
        s.truncate_blocking(7).unwrap();
        assert_eq!(indexes(&s), (0..7).collect::<Vec<_>>());
        s.append_blocking(vec![blank(2, 7), blank(2, 8)]).unwrap();
        s.purge_blocking(id(1, 3)).unwrap();
        s.append_blocking(vec![blank(2, 9)]).unwrap();
        assert_eq!(indexes(&s), vec![4, 5, 6, 7, 8, 9]);
        drop(s);

        let s = LogStore::open(dir.path()).unwrap();
        assert!(!s.is_pristine());
        assert_eq!(indexes(&s), vec![4, 5, 6, 7, 8, 9]);
        let m = s.shared.mem.read();
        assert_eq!(m.last_purged, Some(id(1, 3)));
        assert_eq!(m.entries[&8].log_id, id(2, 8));
        drop(m);
        // Offsets are right after a reopen: truncating in the middle keeps the head.
        s.truncate_blocking(6).unwrap();
        drop(s);
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&s), vec![4, 5]);

        // A purge past the end keeps the purged id as the last log id.
        s.purge_blocking(id(3, 20)).unwrap();
        drop(s);
        let s = LogStore::open(dir.path()).unwrap();
        assert!(indexes(&s).is_empty());
        assert_eq!(LogStore::last_log_id(&s.shared.mem.read()), Some(id(3, 20)));
    }

    #[test]
    fn a_torn_tail_is_cut_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        s.append_blocking((0..3).map(|i| blank(1, i)).collect())
            .unwrap();
        drop(s);
        let path = dir.path().join(LOG);
        let full = std::fs::read(&path).unwrap();
        // Half of the last record is gone.
        std::fs::write(&path, &full[..full.len() - 5]).unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&s), vec![0, 1]);
        // The file was cut, so a new append lands after entry 1 and survives a reopen.
        s.append_blocking(vec![blank(1, 2)]).unwrap();
        drop(s);
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&s), vec![0, 1, 2]);
        drop(s);

        // A last record whose checksum fails is a torn write too.
        let full = std::fs::read(&path).unwrap();
        let mut bad = full.clone();
        let n = bad.len();
        bad[n - 2] ^= 0xff;
        std::fs::write(&path, &bad).unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&s), vec![0, 1]);
    }

    #[test]
    fn corruption_before_the_end_is_an_error_naming_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        s.append_blocking((0..3).map(|i| blank(1, i)).collect())
            .unwrap();
        let second = s.shared.file.lock().offsets[&1];
        drop(s);
        let path = dir.path().join(LOG);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[second as usize + record::HEADER + 2] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let e = LogStore::open(dir.path()).unwrap_err();
        assert!(
            matches!(e, StoreError::Checksum { offset, .. } if offset == second),
            "{e}"
        );
        let msg = e.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("offset {second}")), "{msg}");
    }

    #[tokio::test]
    async fn vote_and_committed_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.read_vote().await.unwrap(), None);
        let v = Vote::new(7, 2);
        s.save_vote(&v).await.unwrap();
        s.save_committed(Some(id(7, 12))).await.unwrap();
        assert!(!s.is_pristine());
        drop(s);
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.read_vote().await.unwrap(), Some(v));
        assert_eq!(s.read_committed().await.unwrap(), Some(id(7, 12)));
        // A garbled committed hint is ignored; a garbled vote is an error.
        std::fs::write(dir.path().join(COMMITTED), b"{").unwrap();
        drop(s);
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.read_committed().await.unwrap(), None);
        drop(s);
        std::fs::write(dir.path().join(VOTE), b"{").unwrap();
        let e = LogStore::open(dir.path()).unwrap_err();
        assert!(e.to_string().contains("vote"), "{e}");
    }
}
