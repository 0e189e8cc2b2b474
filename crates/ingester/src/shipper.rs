//! Cutting heads into blocks and shipping them to the bucket.
//!
//! Every `ship_interval`, per tenant:
//! 1. **Cut**: each block range whose end is `grace_period` older than the tenant's newest
//!    sample (or already past, once the tenant was idle for `idle_timeout`) is encoded from the
//!    head into a local block directory (`<blocks dir>/<tenant>/<ulid>/`, written to `<ulid>.tmp`,
//!    fsynced, renamed). From then on the head refuses samples before the range's end.
//! 2. **Upload**: local blocks not yet in the bucket are uploaded (data files, then `meta.json`);
//!    success is recorded by an `uploaded` marker file. Failures back off and retry, across
//!    restarts too: the local block stays until it is uploaded.
//! 3. **Truncate**: the head drops chunks older than the oldest block not yet uploaded; the next
//!    checkpoint then drops them from the WAL. Nothing leaves the head before the bucket has it.
//! 4. **Expire**: uploaded local blocks are deleted `retention_period` after their end; until
//!    then they answer queries alongside the head.
//!
//! The newest cut boundary is persisted per tenant (`shipper.json`) so that a restart neither
//! re-cuts a shipped range nor accepts samples into it.

use crate::config::BlocksConfig;
use crate::error::IngesterError;
use crate::head::TenantHead;
use crate::metrics::Metrics;
use crate::wal::sync_dir;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_model::TenantId;
use strata_storage::block::{
    BlockFiles, BlockMeta, BlockReader, BlockWriter, WriterOptions, META_FILE, SAMPLES_FILE,
    SERIES_FILE,
};
use strata_storage::bucket::{BackendKind, Bucket, BucketConfig, FilesystemConfig};
use ulid::Ulid;

/// Marker file: the block is in the bucket.
const UPLOADED_MARKER: &str = "uploaded";
/// Per-tenant shipper state file.
const STATE_FILE: &str = "shipper.json";

#[derive(Debug, Serialize, Deserialize)]
struct ShipperState {
    /// Exclusive end of the newest cut range, ms.
    cut_until: i64,
}

#[derive(Debug)]
struct LocalBlock {
    reader: Arc<BlockReader>,
    uploaded: bool,
    failures: u32,
    next_attempt: Instant,
}

impl LocalBlock {
    fn meta(&self) -> &BlockMeta {
        self.reader.meta()
    }
}

#[derive(Debug)]
struct TenantBlocks {
    cut_until: i64,
    truncated_before: i64,
    blocks: Vec<LocalBlock>,
}

impl Default for TenantBlocks {
    fn default() -> Self {
        Self {
            cut_until: i64::MIN,
            truncated_before: i64::MIN,
            blocks: Vec::new(),
        }
    }
}

/// What one shipping cycle did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShipReport {
    pub blocks_cut: usize,
    pub blocks_uploaded: usize,
    pub upload_failures: usize,
    pub series_truncated: usize,
    pub chunks_truncated: usize,
    pub blocks_expired: usize,
}

/// The block pipeline of one ingester.
#[derive(Debug)]
pub(crate) struct Shipper {
    cfg: BlocksConfig,
    dir: PathBuf,
    local: Bucket,
    remote: Bucket,
    tenants: Mutex<HashMap<TenantId, TenantBlocks>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> IngesterError + '_ {
    move |e| IngesterError::io(path, e)
}

fn block_err(
    tenant: &TenantId,
    ulid: Ulid,
    op: &'static str,
) -> impl FnOnce(strata_storage::block::BlockError) -> IngesterError {
    let tenant = tenant.to_string();
    move |source| IngesterError::Block {
        tenant,
        ulid,
        op,
        source: Box::new(source),
    }
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), IngesterError> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(data).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

fn align_down(t: i64, range: i64) -> i64 {
    t.div_euclid(range) * range
}

impl Shipper {
    /// Opens the local blocks directory: loads the blocks cut earlier (dropping unfinished
    /// cuts, whose samples are still in the WAL) and the per-tenant state.
    pub async fn open(
        cfg: BlocksConfig,
        data_dir: &Path,
        remote: Bucket,
    ) -> Result<Self, IngesterError> {
        let dir = data_dir.join(&cfg.dir);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let local = Bucket::from_config(&BucketConfig {
            backend: BackendKind::Filesystem,
            filesystem: FilesystemConfig {
                directory: dir.clone(),
            },
            ..BucketConfig::default()
        })
        .map_err(|e| IngesterError::LocalBucket(Box::new(e)))?;
        let mut tenants: HashMap<TenantId, TenantBlocks> = HashMap::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_dir() {
                continue;
            }
            let Ok(tenant) = TenantId::new(&name) else {
                continue;
            };
            let tdir = entry.path();
            let mut tb = TenantBlocks::default();
            let state_path = tdir.join(STATE_FILE);
            if let Ok(raw) = std::fs::read(&state_path) {
                let st: ShipperState =
                    serde_json::from_slice(&raw).map_err(|e| IngesterError::ShipperState {
                        path: state_path.clone(),
                        source: e,
                    })?;
                tb.cut_until = st.cut_until;
            }
            for b in std::fs::read_dir(&tdir).map_err(io(&tdir))? {
                let b = b.map_err(io(&tdir))?;
                let bname = b.file_name().to_string_lossy().into_owned();
                if !b.path().is_dir() {
                    continue;
                }
                let ulid = match bname.parse::<Ulid>() {
                    Ok(u) if b.path().join(META_FILE).exists() => u,
                    _ => {
                        // An unfinished cut: its samples are still in the head and the WAL,
                        // and the range is cut again.
                        tracing::warn!(dir = %b.path().display(), "removing unfinished local block");
                        std::fs::remove_dir_all(b.path()).map_err(io(&b.path()))?;
                        continue;
                    }
                };
                let reader = BlockReader::open(&local, &tenant, ulid)
                    .await
                    .map_err(block_err(&tenant, ulid, "open local block"))?;
                tb.cut_until = tb.cut_until.max(reader.meta().max_time + 1);
                tb.blocks.push(LocalBlock {
                    uploaded: b.path().join(UPLOADED_MARKER).exists(),
                    reader: Arc::new(reader),
                    failures: 0,
                    next_attempt: Instant::now(),
                });
            }
            tb.blocks.sort_by_key(|b| b.meta().min_time);
            tracing::info!(
                tenant = %tenant,
                blocks = tb.blocks.len(),
                pending_upload = tb.blocks.iter().filter(|b| !b.uploaded).count(),
                "loaded local blocks"
            );
            tenants.insert(tenant, tb);
        }
        Ok(Self {
            cfg,
            dir,
            local,
            remote,
            tenants: Mutex::new(tenants),
        })
    }

    /// Applies the loaded state to heads replayed from the WAL: refuse samples in shipped
    /// ranges and drop what the bucket already has.
    pub fn apply_to_heads(&self, heads: &[Arc<TenantHead>]) {
        let mut tenants = self.tenants.lock();
        for h in heads {
            if let Some(tb) = tenants.get_mut(&h.tenant) {
                h.set_min_valid_t(tb.cut_until);
                let t = truncation_point(tb);
                if t > tb.truncated_before {
                    h.truncate_before(t);
                    tb.truncated_before = t;
                }
            }
        }
    }

    /// Local blocks of a tenant overlapping `[start, end]`.
    pub fn readers(&self, tenant: &TenantId, start: i64, end: i64) -> Vec<Arc<BlockReader>> {
        self.tenants
            .lock()
            .get(tenant)
            .map(|tb| {
                tb.blocks
                    .iter()
                    .filter(|b| b.meta().max_time >= start && b.meta().min_time <= end)
                    .map(|b| b.reader.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One cycle over every head. `now_ms` is the wall clock.
    /// With `force`, everything in the heads is cut now, the current incomplete range too
    /// (a flush before the ingester leaves the ring).
    pub async fn cycle(
        &self,
        heads: &[Arc<TenantHead>],
        now_ms: i64,
        force: bool,
        metrics: &Metrics,
    ) -> ShipReport {
        let mut report = ShipReport::default();
        for h in heads {
            if let Err(e) = self.cut_ready(h, now_ms, force, metrics, &mut report).await {
                metrics.block_cut_failures.inc();
                tracing::error!(tenant = %h.tenant, error = %e, "cutting a block failed; will retry");
            }
        }
        self.upload_pending(metrics, &mut report).await;
        let mut tenants = self.tenants.lock();
        for h in heads {
            let Some(tb) = tenants.get_mut(&h.tenant) else {
                continue;
            };
            let t = truncation_point(tb);
            if t > tb.truncated_before {
                let st = h.truncate_before(t);
                tb.truncated_before = t;
                report.series_truncated += st.series_removed;
                report.chunks_truncated += st.chunks_removed;
                tracing::info!(
                    tenant = %h.tenant,
                    before = t,
                    series_removed = st.series_removed,
                    chunks_removed = st.chunks_removed,
                    "truncated head after upload"
                );
            }
        }
        let retention = self.cfg.retention_period.as_millis() as i64;
        for (tenant, tb) in tenants.iter_mut() {
            let before = tb.blocks.len();
            let mut expired = Vec::new();
            tb.blocks.retain(|b| {
                let keep = !b.uploaded || b.meta().max_time >= now_ms - retention;
                if !keep {
                    expired.push(b.meta().ulid);
                }
                keep
            });
            report.blocks_expired += before - tb.blocks.len();
            for u in expired {
                let p = self.dir.join(tenant.as_str()).join(u.to_string());
                if let Err(e) = std::fs::remove_dir_all(&p) {
                    tracing::warn!(dir = %p.display(), error = %e, "could not remove expired local block");
                }
            }
        }
        report
    }

    async fn cut_ready(
        &self,
        head: &Arc<TenantHead>,
        now_ms: i64,
        force: bool,
        metrics: &Metrics,
        report: &mut ShipReport,
    ) -> Result<(), IngesterError> {
        let range = self.cfg.block_range.as_millis() as i64;
        let grace = self.cfg.grace_period.as_millis() as i64;
        let idle = now_ms - head.last_append_ms() >= self.cfg.idle_timeout.as_millis() as i64;
        loop {
            let (Some(head_min), Some(head_max)) = (head.min_time(), head.max_time()) else {
                return Ok(());
            };
            let cut_until = self
                .tenants
                .lock()
                .get(&head.tenant)
                .map_or(i64::MIN, |t| t.cut_until);
            let start = cut_until.max(align_down(head_min, range));
            if head_max < start {
                return Ok(());
            }
            let full_end = start + range;
            let end = if force {
                // A partial block for the current range: the next cut starts where it ends.
                full_end.min(head_max + 1)
            } else if head_max >= full_end + grace || (idle && full_end <= now_ms) {
                full_end
            } else {
                return Ok(());
            };
            // Refuse samples for the range first, then read it: see `TenantHead::append`.
            head.set_min_valid_t(end);
            let t0 = Instant::now();
            // Without limits the walk cannot stop early: a cut takes every series.
            let series = head
                .select_chunks(&[], start, end - 1, &Default::default())
                .unwrap_or_default();
            let tenant = head.tenant.clone();
            let block = if series.is_empty() {
                None
            } else {
                let files = tokio::task::spawn_blocking({
                    let tenant = tenant.clone();
                    move || {
                        let mut w =
                            BlockWriter::new(tenant, start, end - 1, WriterOptions::default())?;
                        for s in &series {
                            w.add_chunked(s)?;
                        }
                        w.finish()
                    }
                })
                .await
                .map_err(|e| IngesterError::Task(e.to_string()))?
                .map_err(block_err(&tenant, Ulid::nil(), "encode block"))?;
                let ulid = files.meta.ulid;
                self.write_local(&files)?;
                let reader = BlockReader::open(&self.local, &tenant, ulid)
                    .await
                    .map_err(block_err(&tenant, ulid, "open local block"))?;
                tracing::info!(
                    tenant = %tenant,
                    block = %ulid,
                    min_time = start,
                    max_time = end - 1,
                    series = files.meta.stats.num_series,
                    samples = files.meta.stats.num_samples,
                    bytes = files.total_bytes(),
                    took_ms = t0.elapsed().as_millis() as u64,
                    "cut block from head"
                );
                metrics.blocks_cut.inc();
                report.blocks_cut += 1;
                Some(LocalBlock {
                    reader: Arc::new(reader),
                    uploaded: false,
                    failures: 0,
                    next_attempt: Instant::now(),
                })
            };
            self.write_state(&tenant, end)?;
            let mut tenants = self.tenants.lock();
            let tb = tenants.entry(tenant).or_default();
            tb.cut_until = end;
            if let Some(b) = block {
                tb.blocks.push(b);
            }
        }
    }

    fn write_local(&self, files: &BlockFiles) -> Result<(), IngesterError> {
        let tdir = self.dir.join(files.tenant.as_str());
        std::fs::create_dir_all(&tdir).map_err(io(&tdir))?;
        let ulid = files.meta.ulid.to_string();
        let tmp = tdir.join(format!("{ulid}.tmp"));
        let dst = tdir.join(&ulid);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        write_synced(&tmp.join(SERIES_FILE), &files.series)?;
        write_synced(&tmp.join(SAMPLES_FILE), &files.samples)?;
        let meta =
            serde_json::to_vec_pretty(&files.meta).map_err(|e| IngesterError::ShipperState {
                path: tmp.join(META_FILE),
                source: e,
            })?;
        write_synced(&tmp.join(META_FILE), &meta)?;
        sync_dir(&tmp).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &dst).map_err(io(&dst))?;
        sync_dir(&tdir).map_err(io(&tdir))
    }

    fn write_state(&self, tenant: &TenantId, cut_until: i64) -> Result<(), IngesterError> {
        let tdir = self.dir.join(tenant.as_str());
        std::fs::create_dir_all(&tdir).map_err(io(&tdir))?;
        let tmp = tdir.join(format!("{STATE_FILE}.tmp"));
        let dst = tdir.join(STATE_FILE);
        let json = serde_json::to_vec(&ShipperState { cut_until }).map_err(|e| {
            IngesterError::ShipperState {
                path: dst.clone(),
                source: e,
            }
        })?;
        write_synced(&tmp, &json)?;
        std::fs::rename(&tmp, &dst).map_err(io(&dst))?;
        sync_dir(&tdir).map_err(io(&tdir))
    }

    async fn upload_pending(&self, metrics: &Metrics, report: &mut ShipReport) {
        let pending: Vec<(TenantId, Arc<BlockReader>)> = {
            let tenants = self.tenants.lock();
            let now = Instant::now();
            tenants
                .iter()
                .flat_map(|(t, tb)| {
                    tb.blocks
                        .iter()
                        .filter(|b| !b.uploaded && b.next_attempt <= now)
                        .map(|b| (t.clone(), b.reader.clone()))
                })
                .collect()
        };
        for (tenant, reader) in pending {
            let ulid = reader.meta().ulid;
            let t0 = Instant::now();
            let res = self.upload(&tenant, reader.meta()).await;
            let mut tenants = self.tenants.lock();
            let Some(b) = tenants
                .get_mut(&tenant)
                .and_then(|tb| tb.blocks.iter_mut().find(|b| b.meta().ulid == ulid))
            else {
                continue;
            };
            match res {
                Ok(()) => {
                    b.uploaded = true;
                    report.blocks_uploaded += 1;
                    metrics.blocks_uploaded.inc();
                    tracing::info!(
                        tenant = %tenant,
                        block = %ulid,
                        took_ms = t0.elapsed().as_millis() as u64,
                        "uploaded block"
                    );
                }
                Err(e) => {
                    b.failures += 1;
                    let backoff = self
                        .cfg
                        .upload_min_backoff
                        .saturating_mul(1 << b.failures.min(16))
                        .min(self.cfg.upload_max_backoff);
                    b.next_attempt = Instant::now() + backoff;
                    report.upload_failures += 1;
                    metrics.block_upload_failures.inc();
                    tracing::warn!(
                        tenant = %tenant,
                        block = %ulid,
                        attempt = b.failures,
                        retry_in = ?backoff,
                        error = %e,
                        "block upload failed; the block stays local and in the head until it succeeds"
                    );
                }
            }
        }
    }

    async fn upload(&self, tenant: &TenantId, meta: &BlockMeta) -> Result<(), IngesterError> {
        let bdir = self.dir.join(tenant.as_str()).join(meta.ulid.to_string());
        let read = |name: &str| -> Result<Bytes, IngesterError> {
            let p = bdir.join(name);
            std::fs::read(&p).map(Bytes::from).map_err(io(&p))
        };
        let files = BlockFiles {
            tenant: tenant.clone(),
            meta: meta.clone(),
            series: read(SERIES_FILE)?,
            samples: read(SAMPLES_FILE)?,
        };
        files
            .upload(&self.remote)
            .await
            .map_err(block_err(tenant, meta.ulid, "upload block"))?;
        write_synced(&bdir.join(UPLOADED_MARKER), b"")?;
        sync_dir(&bdir).map_err(io(&bdir))
    }

    /// Blocks cut but not uploaded yet, per tenant (for tests and status pages).
    pub fn pending_uploads(&self) -> usize {
        self.tenants
            .lock()
            .values()
            .map(|tb| tb.blocks.iter().filter(|b| !b.uploaded).count())
            .sum()
    }
}

/// The head may drop everything before this: the start of the oldest block not yet uploaded,
/// or the end of the newest cut range if all are uploaded.
fn truncation_point(tb: &TenantBlocks) -> i64 {
    tb.blocks
        .iter()
        .filter(|b| !b.uploaded)
        .map(|b| b.meta().min_time)
        .min()
        .unwrap_or(tb.cut_until)
}

/// How long the shipper waits between cycles.
pub(crate) fn interval(cfg: &BlocksConfig) -> Duration {
    cfg.ship_interval
}
