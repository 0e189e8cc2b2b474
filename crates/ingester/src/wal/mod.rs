//! Write-ahead log with group commit.
//!
//! Appenders copy framed records into one pending buffer under a short lock and get a sequence
//! number; a dedicated writer thread repeatedly takes the whole buffer, writes it to the current
//! segment and `fdatasync`s it, then publishes the durable sequence. A push is acknowledged only
//! after its sequence is durable, so one fsync covers every request that arrived meanwhile
//! (PERFORMANCE.md §1: the only way to "no acknowledged sample lost" without an fsync per request).
//!
//! Files: `NNNNNNNN` segments (never appended to after a restart) and `checkpoint.NNNNNNNN`, a
//! snapshot of the head that replaces every segment numbered below it.

pub mod record;
mod segment;

pub use segment::{list, read_segment, SegmentFiles};

use crate::error::IngesterError;
use parking_lot::{Condvar, Mutex};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::{oneshot, watch};

/// Options of the WAL writer.
#[derive(Debug, Clone)]
pub struct WalOptions {
    pub dir: PathBuf,
    pub segment_size: u64,
    /// fsync every group commit. Off only for benchmarks of the rest of the path.
    pub fsync: bool,
}

/// Durability published by the writer thread.
#[derive(Debug, Clone, Default)]
struct Durable {
    seq: u64,
    /// Set once a write or fsync failed: the WAL refuses everything after that, since what the
    /// kernel did with the failed pages is unknown.
    failed: Option<Arc<std::io::Error>>,
}

#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    /// Bytes ever appended; a record's sequence is the value after its append.
    seq: u64,
    rotate: Vec<oneshot::Sender<Result<u64, Arc<std::io::Error>>>>,
    closing: bool,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    durable: watch::Sender<Durable>,
}

/// Observer of WAL internals for metrics.
pub trait WalObserver: Send + Sync + 'static {
    fn fsync_done(&self, seconds: f64, bytes: usize);
    fn segment_cut(&self, index: u64);
}

/// The WAL writer handle.
#[derive(Debug)]
pub struct Wal {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Wal {
    /// Starts writing at a fresh segment numbered `first_segment` in `opts.dir`.
    pub fn start(
        opts: WalOptions,
        first_segment: u64,
        observer: Arc<dyn WalObserver>,
    ) -> Result<Self, IngesterError> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| IngesterError::io(&opts.dir, e))?;
        let file = create_segment(&opts.dir, first_segment)?;
        let (durable, _) = watch::channel(Durable::default());
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            durable,
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || writer_loop(s, opts, first_segment, file, observer))
            .map_err(|e| IngesterError::io(Path::new("wal-writer thread"), e))?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues framed records; returns the sequence to wait for.
    pub fn append(&self, records: &[u8]) -> u64 {
        let mut p = self.shared.pending.lock();
        p.buf.extend_from_slice(records);
        p.seq += records.len() as u64;
        let seq = p.seq;
        drop(p);
        self.shared.wake.notify_one();
        seq
    }

    /// Queues several buffers contiguously (one lock, so nothing interleaves them).
    pub fn append_parts(&self, parts: &[&[u8]]) -> u64 {
        let mut p = self.shared.pending.lock();
        for part in parts {
            p.buf.extend_from_slice(part);
            p.seq += part.len() as u64;
        }
        let seq = p.seq;
        drop(p);
        self.shared.wake.notify_one();
        seq
    }

    /// The sequence of everything queued so far.
    pub fn current_seq(&self) -> u64 {
        self.shared.pending.lock().seq
    }

    /// Waits until everything up to `seq` is on disk.
    pub async fn wait_durable(&self, seq: u64) -> Result<(), Arc<std::io::Error>> {
        let mut rx = self.shared.durable.subscribe();
        let d = rx
            .wait_for(|d| d.seq >= seq || d.failed.is_some())
            .await
            .map_err(|_| Arc::new(std::io::Error::other("WAL writer stopped")))?;
        match &d.failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Makes everything appended so far durable, then starts a new segment; returns its number.
    /// Every record appended before this call is in a segment numbered below the result.
    pub async fn rotate(&self) -> Result<u64, Arc<std::io::Error>> {
        let (tx, rx) = oneshot::channel();
        self.shared.pending.lock().rotate.push(tx);
        self.shared.wake.notify_one();
        rx.await
            .map_err(|_| Arc::new(std::io::Error::other("WAL writer stopped")))?
    }

    /// Flushes what is pending and stops the writer thread.
    pub fn close(&self) {
        self.shared.pending.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:08}"))
}

fn create_segment(dir: &Path, index: u64) -> Result<File, IngesterError> {
    let path = segment_path(dir, index);
    let f = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .map_err(|e| IngesterError::io(&path, e))?;
    sync_dir(dir).map_err(|e| IngesterError::io(dir, e))?;
    Ok(f)
}

/// fsyncs a directory so that a created or renamed entry survives power loss.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn writer_loop(
    shared: Arc<Shared>,
    opts: WalOptions,
    mut index: u64,
    mut file: File,
    observer: Arc<dyn WalObserver>,
) {
    let mut spare: Vec<u8> = Vec::new();
    let mut written: u64 = 0;
    let mut failed: Option<Arc<std::io::Error>> = None;
    loop {
        let (end_seq, rotate, closing) = {
            let mut p = shared.pending.lock();
            while p.buf.is_empty() && p.rotate.is_empty() && !p.closing {
                shared.wake.wait(&mut p);
            }
            std::mem::swap(&mut p.buf, &mut spare);
            (p.seq, std::mem::take(&mut p.rotate), p.closing)
        };
        if failed.is_none() && !spare.is_empty() {
            let t0 = Instant::now();
            let res =
                file.write_all(&spare)
                    .and_then(|()| if opts.fsync { file.sync_data() } else { Ok(()) });
            match res {
                Ok(()) => {
                    written += spare.len() as u64;
                    observer.fsync_done(t0.elapsed().as_secs_f64(), spare.len());
                }
                Err(e) => {
                    tracing::error!(error = %e, segment = index, "WAL write failed; refusing further writes");
                    failed = Some(Arc::new(e));
                }
            }
        }
        spare.clear();
        shared.durable.send_modify(|d| {
            d.seq = end_seq;
            d.failed.clone_from(&failed);
        });
        let cut = !rotate.is_empty() || written >= opts.segment_size;
        if cut && failed.is_none() && !closing {
            match create_segment(&opts.dir, index + 1) {
                Ok(f) => {
                    index += 1;
                    file = f;
                    written = 0;
                    observer.segment_cut(index);
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot create WAL segment; refusing further writes");
                    failed = Some(Arc::new(std::io::Error::other(e.to_string())));
                    shared.durable.send_modify(|d| d.failed.clone_from(&failed));
                }
            }
        }
        for tx in rotate {
            let _ = tx.send(match &failed {
                Some(e) => Err(e.clone()),
                None => Ok(index),
            });
        }
        if closing {
            let p = shared.pending.lock();
            if p.buf.is_empty() {
                return;
            }
        }
    }
}
