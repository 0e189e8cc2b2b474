//! The compactor: per tenant and cycle, it keeps the bucket index up to date, merges blocks into
//! larger ones (aligned level ranges, and overlapping blocks from replicas or re-uploads),
//! downsamples old blocks to 5m and 1h, applies per-tenant retention, deletes blocks marked for
//! deletion after a delay and removes abandoned partial uploads. See `docs/architecture.md`
//! ("Compactor") for the rules and why a crash or a second compactor at any point loses nothing.

mod compact;
mod config;
pub mod downsample;
mod error;
pub mod lock;
mod metrics;
pub mod plan;

pub use config::CompactorConfig;
pub use error::CompactorError;

use crate::lock::{wall_ms, TenantLock};
use crate::metrics::{Metrics, TenantLabels, TenantReasonLabels};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_model::{Overrides, TenantId};
use strata_storage::block::{
    BlockError, BlockFiles, BlockReader, RESOLUTION_1H, RESOLUTION_5M, RESOLUTION_RAW,
};
use strata_storage::bucket::Bucket;
use strata_storage::index::{self, BucketIndex, IndexedBlock};
use tracing::{debug, error, info, warn};
use ulid::Ulid;

/// Why a block was marked for deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkReason {
    /// It was merged into a larger block.
    Compacted,
    /// Another block of the same resolution already holds all its data (the output of a
    /// compaction whose marks a crash prevented, or a copy made by a concurrent compactor).
    Redundant,
    /// Its newest sample is older than the tenant's retention for its resolution.
    Retention,
}

impl MarkReason {
    fn as_str(self) -> &'static str {
        match self {
            MarkReason::Compacted => "compacted",
            MarkReason::Redundant => "redundant",
            MarkReason::Retention => "retention",
        }
    }
}

/// A block produced by merging blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactedBlock {
    /// Tenant.
    pub tenant: TenantId,
    /// The new block.
    pub block: Ulid,
    /// The blocks merged into it.
    pub from: Vec<Ulid>,
}

/// A downsampled block produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownsampledBlock {
    /// Tenant.
    pub tenant: TenantId,
    /// The new block.
    pub block: Ulid,
    /// The block it summarises.
    pub from: Ulid,
    /// Its resolution, ms.
    pub resolution: i64,
}

/// A block marked for deletion in this cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkedBlock {
    /// Tenant.
    pub tenant: TenantId,
    /// The block.
    pub block: Ulid,
    /// Why.
    pub reason: MarkReason,
}

/// A tenant whose cycle failed; the other tenants were still processed.
#[derive(Debug)]
pub struct TenantFailure {
    /// Tenant.
    pub tenant: TenantId,
    /// What failed.
    pub error: CompactorError,
}

/// What one cycle did.
#[derive(Debug, Default)]
pub struct Report {
    /// Tenants processed (lock taken).
    pub tenants: Vec<TenantId>,
    /// Tenants skipped because another compactor held their lock.
    pub skipped_locked: Vec<TenantId>,
    /// Blocks produced by merging.
    pub compacted: Vec<CompactedBlock>,
    /// Downsampled blocks produced.
    pub downsampled: Vec<DownsampledBlock>,
    /// Blocks marked for deletion.
    pub marked: Vec<MarkedBlock>,
    /// Marked blocks deleted.
    pub deleted: Vec<(TenantId, Ulid)>,
    /// Partial blocks deleted.
    pub partial_deleted: Vec<(TenantId, Ulid)>,
    /// Tenants whose cycle failed.
    pub failures: Vec<TenantFailure>,
}

/// A tenant's blocks as the cycle goes: the index's blocks plus those created, and every
/// deletion mark with its time.
struct TenantState {
    blocks: Vec<IndexedBlock>,
    marked: HashMap<Ulid, i64>,
}

impl TenantState {
    fn live(&self, resolution: i64) -> Vec<IndexedBlock> {
        self.blocks
            .iter()
            .filter(|b| b.resolution == resolution && !self.marked.contains_key(&b.ulid))
            .cloned()
            .collect()
    }

    fn all_live(&self) -> Vec<IndexedBlock> {
        self.blocks
            .iter()
            .filter(|b| !self.marked.contains_key(&b.ulid))
            .cloned()
            .collect()
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn resolution_name(r: i64) -> &'static str {
    match r {
        RESOLUTION_RAW => "raw",
        RESOLUTION_5M => "5m",
        RESOLUTION_1H => "1h",
        _ => "other",
    }
}

/// Every cause of an error, for one log line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Upper bound on merges per tenant and resolution in one cycle: the planner converges long
/// before, so reaching it means a planning bug, which must not spin forever.
const MAX_MERGES_PER_CYCLE: usize = 10_000;

/// The compactor component.
#[derive(Debug)]
pub struct Compactor {
    cfg: CompactorConfig,
    bucket: Bucket,
    overrides: Arc<RwLock<Overrides>>,
    metrics: Metrics,
    instance_id: String,
}

impl Compactor {
    /// Validates `cfg` and registers the `strata_compactor_*` metrics.
    pub fn new(
        cfg: CompactorConfig,
        bucket: Bucket,
        overrides: Arc<RwLock<Overrides>>,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<Arc<Self>, CompactorError> {
        cfg.validate()?;
        let instance_id = if cfg.instance_id.is_empty() {
            format!("compactor-{}", Ulid::generate())
        } else {
            cfg.instance_id.clone()
        };
        let largest = cfg.block_ranges.iter().max().copied().unwrap_or_default();
        if cfg.downsampling_enabled && largest < cfg.downsample_5m_after_range {
            warn!(
                largest_block_range = ?largest,
                downsample_5m_after_range = ?cfg.downsample_5m_after_range,
                "no block will ever span compactor.downsample_5m_after_range: downsampling is \
                 in effect off; add a larger range to compactor.block_ranges (Thanos uses 48h \
                 and 14d) to downsample"
            );
        }
        Ok(Arc::new(Self {
            metrics: Metrics::new(registry),
            cfg,
            bucket,
            overrides,
            instance_id,
        }))
    }

    /// The identity this compactor writes into tenant locks.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// Runs a cycle every `compaction_interval` until `shutdown` turns true (or its sender is
    /// dropped). A cycle cut short by shutdown is safe to abandon, as every step is crash-safe
    /// (`docs/architecture.md`); its tenant lock then expires after `lock_ttl`.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        info!(
            instance = %self.instance_id,
            interval = ?self.cfg.compaction_interval,
            "compactor started"
        );
        // A dropped sender counts as shutdown: nobody could stop the loop otherwise.
        loop {
            tokio::select! {
                r = self.run_once(wall_ms()) => {
                    if let Err(e) = r {
                        error!(error = %chain(&e), "compaction cycle failed");
                    }
                }
                _ = shutdown.wait_for(|s| *s) => {
                    info!("compactor stopping in the middle of a cycle; the next start resumes it");
                    break;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.compaction_interval) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        info!("compactor stopped");
    }

    /// One cycle over every tenant in the bucket at time `now_ms` (ms since the epoch; the
    /// clock for marks, retention and delays, so tests can move it). A failing tenant is logged
    /// and reported, and the others still run; only failing to list tenants fails the cycle.
    pub async fn run_once(&self, now_ms: i64) -> Result<Report, CompactorError> {
        let started = Instant::now();
        self.metrics.runs.inc();
        let tenants = match index::list_tenants(&self.bucket).await {
            Ok(t) => t,
            Err(e) => {
                self.metrics.run_failures.inc();
                return Err(e.into());
            }
        };
        info!(tenants = tenants.len(), "compaction cycle started");
        let mut report = Report::default();
        for tenant in tenants {
            let label = TenantLabels {
                tenant: tenant.as_str().to_owned(),
            };
            if let Err(error) = self.tenant_cycle(&tenant, now_ms, &mut report).await {
                error!(tenant = %tenant, error = %chain(&error), "tenant compaction failed");
                self.metrics.tenant_failures.get_or_create(&label).inc();
                report.failures.push(TenantFailure { tenant, error });
            }
        }
        let secs = started.elapsed().as_secs_f64();
        self.metrics.run_duration.set(secs);
        if report.failures.is_empty() {
            self.metrics.last_success.set(wall_ms() as f64 / 1000.0);
        } else {
            self.metrics.run_failures.inc();
        }
        info!(
            tenants = report.tenants.len(),
            skipped_locked = report.skipped_locked.len(),
            compacted = report.compacted.len(),
            downsampled = report.downsampled.len(),
            marked = report.marked.len(),
            deleted = report.deleted.len(),
            partial_deleted = report.partial_deleted.len(),
            failed = report.failures.len(),
            duration_s = secs,
            "compaction cycle finished"
        );
        Ok(report)
    }

    async fn tenant_cycle(
        &self,
        tenant: &TenantId,
        now_ms: i64,
        report: &mut Report,
    ) -> Result<(), CompactorError> {
        let lock =
            match TenantLock::acquire(&self.bucket, tenant, &self.instance_id, self.cfg.lock_ttl)
                .await?
            {
                Ok(l) => l,
                Err(holder) => {
                    info!(
                        tenant = %tenant,
                        holder = %holder.owner,
                        expires_at_ms = holder.expires_at,
                        "tenant locked by another compactor; skipping it this cycle"
                    );
                    self.metrics.tenants_skipped_locked.inc();
                    report.skipped_locked.push(tenant.clone());
                    return Ok(());
                }
            };
        report.tenants.push(tenant.clone());
        let r = self.tenant_work(tenant, now_ms, &lock, report).await;
        if let Err(e) = lock.release().await {
            warn!(
                tenant = %tenant,
                error = %chain(&e),
                "cannot release compactor lock; it expires by itself"
            );
        }
        r
    }

    async fn tenant_work(
        &self,
        tenant: &TenantId,
        now_ms: i64,
        lock: &TenantLock,
        report: &mut Report,
    ) -> Result<(), CompactorError> {
        let previous = match BucketIndex::read(&self.bucket, tenant).await {
            Ok(p) => p,
            // The index is derived data: an unreadable one is rebuilt from the listing.
            Err(e @ (BlockError::Meta { .. } | BlockError::UnsupportedVersion { .. })) => {
                warn!(tenant = %tenant, error = %chain(&e), "ignoring unreadable bucket index");
                None
            }
            Err(e) => return Err(e.into()),
        };
        let (idx, build) =
            BucketIndex::build(&self.bucket, tenant, previous.as_ref(), now_ms).await?;
        idx.write(&self.bucket, tenant).await?;
        debug!(
            tenant = %tenant,
            blocks = idx.blocks.len(),
            marks = idx.deletion_marks.len(),
            partial = build.partial.len(),
            "bucket index updated"
        );
        let mut st = TenantState {
            blocks: idx.blocks.clone(),
            marked: idx
                .deletion_marks
                .iter()
                .map(|m| (m.ulid, m.deletion_time))
                .collect(),
        };
        let before = (
            report.marked.len(),
            report.compacted.len(),
            report.downsampled.len(),
        );
        let mut changed = false;
        let steps = self
            .tenant_steps(
                tenant,
                now_ms,
                lock,
                report,
                &mut st,
                &build.partial,
                &mut changed,
            )
            .await;
        // Also after a failed step: what was done by then must reach the queriers' index.
        let after = (
            report.marked.len(),
            report.compacted.len(),
            report.downsampled.len(),
        );
        if changed || after != before {
            let written = async {
                let (fresh, _) =
                    BucketIndex::build(&self.bucket, tenant, Some(&idx), now_ms).await?;
                fresh.write(&self.bucket, tenant).await?;
                info!(
                    tenant = %tenant,
                    blocks = fresh.blocks.len(),
                    marks = fresh.deletion_marks.len(),
                    "bucket index updated after changes"
                );
                Ok::<_, CompactorError>(())
            }
            .await;
            match (&steps, written) {
                (Ok(()), Err(e)) => return Err(e),
                (Err(_), Err(e)) => {
                    warn!(
                        tenant = %tenant,
                        error = %chain(&e),
                        "cannot update bucket index after a failed step"
                    );
                }
                _ => {}
            }
        }
        steps
    }

    /// Retention, merges, downsampling and deletions of one tenant; `changed` turns true as
    /// soon as the bucket changed.
    #[allow(clippy::too_many_arguments)]
    async fn tenant_steps(
        &self,
        tenant: &TenantId,
        now_ms: i64,
        lock: &TenantLock,
        report: &mut Report,
        st: &mut TenantState,
        partial: &[Ulid],
        changed: &mut bool,
    ) -> Result<(), CompactorError> {
        // Retention first: merging or downsampling blocks about to be deleted is wasted work.
        let limits = self.overrides.read().for_tenant(tenant.as_str()).clone();
        for (res, period) in [
            (RESOLUTION_RAW, limits.compactor_blocks_retention_period),
            (RESOLUTION_5M, limits.compactor_blocks_retention_period_5m),
            (RESOLUTION_1H, limits.compactor_blocks_retention_period_1h),
        ] {
            for ulid in plan::past_retention(&st.live(res), now_ms, ms(period)) {
                let details = format!(
                    "older than the {} retention of {}",
                    resolution_name(res),
                    humantime_serde::re::humantime::format_duration(period)
                );
                self.mark(
                    tenant,
                    st,
                    ulid,
                    now_ms,
                    MarkReason::Retention,
                    &details,
                    lock,
                    report,
                )
                .await?;
            }
        }

        self.mark_redundant(tenant, st, now_ms, lock, report)
            .await?;
        let ranges = self.cfg.ranges_ms();
        for res in [RESOLUTION_RAW, RESOLUTION_5M, RESOLUTION_1H] {
            for _ in 0..MAX_MERGES_PER_CYCLE {
                let Some(group) = plan::next_group(&st.live(res), &ranges) else {
                    break;
                };
                self.merge_group(tenant, st, &group, now_ms, lock, report)
                    .await?;
                *changed = true;
            }
            let Some(target) = downsample::next_resolution(res) else {
                continue;
            };
            if !self.cfg.downsampling_enabled {
                continue;
            }
            let min_span = if res == RESOLUTION_RAW {
                self.cfg.downsample_5m_ms()
            } else {
                self.cfg.downsample_1h_ms()
            };
            let target_retention = ms(match target {
                RESOLUTION_5M => limits.compactor_blocks_retention_period_5m,
                _ => limits.compactor_blocks_retention_period_1h,
            });
            let retained_from = if target_retention > 0 {
                now_ms.saturating_sub(target_retention)
            } else {
                i64::MIN
            };
            let all_target: Vec<IndexedBlock> = st
                .blocks
                .iter()
                .filter(|b| b.resolution == target)
                .cloned()
                .collect();
            for ulid in plan::to_downsample(&st.live(res), &all_target, min_span, retained_from) {
                self.downsample(tenant, st, ulid, target, lock, report)
                    .await?;
                *changed = true;
            }
            // A new downsampled block may hold all of an older one's data (its source block was
            // merged with a late block since).
            self.mark_redundant(tenant, st, now_ms, lock, report)
                .await?;
        }

        let delay = self.cfg.deletion_delay_ms();
        let mut due: Vec<Ulid> = st
            .marked
            .iter()
            .filter(|(_, &t)| now_ms.saturating_sub(t) >= delay)
            .map(|(u, _)| *u)
            .collect();
        due.sort();
        for ulid in due {
            ensure_held(tenant, lock)?;
            index::delete_block(&self.bucket, tenant, &ulid).await?;
            st.blocks.retain(|b| b.ulid != ulid);
            st.marked.remove(&ulid);
            info!(tenant = %tenant, block = %ulid, "deleted block marked for deletion");
            self.metrics
                .blocks_deleted
                .get_or_create(&TenantLabels {
                    tenant: tenant.as_str().to_owned(),
                })
                .inc();
            report.deleted.push((tenant.clone(), ulid));
            *changed = true;
        }

        let partial_delay = self.cfg.partial_block_delay_ms();
        for &ulid in partial {
            let age = now_ms.saturating_sub(i64::try_from(ulid.timestamp_ms()).unwrap_or(i64::MAX));
            if age < partial_delay {
                continue;
            }
            ensure_held(tenant, lock)?;
            index::delete_block(&self.bucket, tenant, &ulid).await?;
            info!(
                tenant = %tenant,
                block = %ulid,
                age_ms = age,
                "deleted partial block (no meta.json)"
            );
            self.metrics
                .partial_blocks_deleted
                .get_or_create(&TenantLabels {
                    tenant: tenant.as_str().to_owned(),
                })
                .inc();
            report.partial_deleted.push((tenant.clone(), ulid));
            *changed = true;
        }

        Ok(())
    }

    async fn mark_redundant(
        &self,
        tenant: &TenantId,
        st: &mut TenantState,
        now_ms: i64,
        lock: &TenantLock,
        report: &mut Report,
    ) -> Result<(), CompactorError> {
        for r in plan::redundant_blocks(&st.all_live()) {
            let details = format!("its data is in block {}", r.covered_by);
            self.mark(
                tenant,
                st,
                r.block,
                now_ms,
                MarkReason::Redundant,
                &details,
                lock,
                report,
            )
            .await?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn mark(
        &self,
        tenant: &TenantId,
        st: &mut TenantState,
        ulid: Ulid,
        now_ms: i64,
        reason: MarkReason,
        details: &str,
        lock: &TenantLock,
        report: &mut Report,
    ) -> Result<(), CompactorError> {
        ensure_held(tenant, lock)?;
        let m = index::mark_for_deletion(&self.bucket, tenant, &ulid, now_ms, details).await?;
        st.marked.insert(ulid, m.deletion_time);
        info!(
            tenant = %tenant,
            block = %ulid,
            reason = reason.as_str(),
            details,
            "marked block for deletion"
        );
        self.metrics
            .blocks_marked
            .get_or_create(&TenantReasonLabels {
                tenant: tenant.as_str().to_owned(),
                reason: reason.as_str().to_owned(),
            })
            .inc();
        report.marked.push(MarkedBlock {
            tenant: tenant.clone(),
            block: ulid,
            reason,
        });
        Ok(())
    }

    async fn open_all(
        &self,
        tenant: &TenantId,
        ulids: &[Ulid],
    ) -> Result<Vec<BlockReader>, CompactorError> {
        let mut v = Vec::with_capacity(ulids.len());
        for u in ulids {
            v.push(BlockReader::open(&self.bucket, tenant, *u).await?);
        }
        Ok(v)
    }

    /// Uploads a new block and records it.
    async fn upload(
        &self,
        tenant: &TenantId,
        st: &mut TenantState,
        files: &BlockFiles,
        lock: &TenantLock,
    ) -> Result<(), CompactorError> {
        ensure_held(tenant, lock)?;
        files.upload(&self.bucket).await?;
        let data_bytes = (files.series.len() + files.samples.len()) as u64;
        let meta_len = files.total_bytes().saturating_sub(data_bytes);
        st.blocks
            .push(IndexedBlock::from_meta(&files.meta, meta_len));
        Ok(())
    }

    async fn merge_group(
        &self,
        tenant: &TenantId,
        st: &mut TenantState,
        group: &plan::Group,
        now_ms: i64,
        lock: &TenantLock,
        report: &mut Report,
    ) -> Result<(), CompactorError> {
        let started = Instant::now();
        let readers = self.open_all(tenant, &group.blocks).await?;
        let refs: Vec<&BlockReader> = readers.iter().collect();
        let files = compact::merge_blocks(tenant, &refs).await?;
        drop(refs);
        drop(readers);
        self.upload(tenant, st, &files, lock).await?;
        let out = files.meta.ulid;
        info!(
            tenant = %tenant,
            block = %out,
            kind = ?group.kind,
            level = files.meta.compaction_level,
            resolution = resolution_name(files.meta.resolution),
            sources = ?group.blocks,
            min_time = files.meta.min_time,
            max_time = files.meta.max_time,
            series = files.meta.stats.num_series,
            samples = files.meta.stats.num_samples,
            bytes = files.total_bytes(),
            duration_s = started.elapsed().as_secs_f64(),
            "compacted blocks"
        );
        let tl = TenantLabels {
            tenant: tenant.as_str().to_owned(),
        };
        self.metrics.compactions.get_or_create(&tl).inc();
        self.metrics
            .blocks_compacted
            .get_or_create(&tl)
            .inc_by(group.blocks.len() as u64);
        report.compacted.push(CompactedBlock {
            tenant: tenant.clone(),
            block: out,
            from: group.blocks.clone(),
        });
        // Marks come only after the output is complete: a crash before this point leaves the
        // sources live, and the next cycle marks them as redundant instead of merging again.
        let details = format!("compacted into block {out}");
        for src in &group.blocks {
            self.mark(
                tenant,
                st,
                *src,
                now_ms,
                MarkReason::Compacted,
                &details,
                lock,
                report,
            )
            .await?;
        }
        Ok(())
    }

    async fn downsample(
        &self,
        tenant: &TenantId,
        st: &mut TenantState,
        src: Ulid,
        resolution: i64,
        lock: &TenantLock,
        report: &mut Report,
    ) -> Result<(), CompactorError> {
        let started = Instant::now();
        let reader = BlockReader::open(&self.bucket, tenant, src).await?;
        let files = compact::downsample_block(tenant, &reader, resolution).await?;
        drop(reader);
        self.upload(tenant, st, &files, lock).await?;
        let out = files.meta.ulid;
        info!(
            tenant = %tenant,
            block = %out,
            from = %src,
            resolution = resolution_name(resolution),
            series = files.meta.stats.num_series,
            samples = files.meta.stats.num_samples,
            bytes = files.total_bytes(),
            duration_s = started.elapsed().as_secs_f64(),
            "downsampled block"
        );
        self.metrics
            .blocks_downsampled
            .get_or_create(&TenantReasonLabels {
                tenant: tenant.as_str().to_owned(),
                reason: resolution_name(resolution).to_owned(),
            })
            .inc();
        report.downsampled.push(DownsampledBlock {
            tenant: tenant.clone(),
            block: out,
            from: src,
            resolution,
        });
        Ok(())
    }
}

fn ensure_held(tenant: &TenantId, lock: &TenantLock) -> Result<(), CompactorError> {
    if lock.lost() {
        return Err(CompactorError::LockLost {
            tenant: tenant.as_str().to_owned(),
        });
    }
    Ok(())
}
