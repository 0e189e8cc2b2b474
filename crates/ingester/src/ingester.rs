use crate::config::IngesterConfig;
use crate::error::IngesterError;
use crate::head::{AppendScratch, TenantHead};
use crate::metrics::{Metrics, ReasonLabels};
use crate::shipper::{ShipReport, Shipper};
use crate::wal::record::{Record, RecordWriter};
use crate::wal::{self, sync_dir, Wal, WalOptions};
use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use strata_model::{Labels, Matcher, Overrides, TenantId, WriteBatch};
use strata_storage::bucket::Bucket;
use strata_storage::query::{Series, SeriesMetadata};
use strata_storage::{
    block_set, merge, PushError, PushOutcome, Pusher, QueryError, Queryable, ReadLimit, SelectHints,
};

/// The ingester component.
#[derive(Debug)]
pub struct Ingester {
    cfg: IngesterConfig,
    wal_dir: PathBuf,
    tenants: RwLock<HashMap<TenantId, Arc<TenantHead>>>,
    wal: Wal,
    overrides: Arc<RwLock<Overrides>>,
    metrics: Metrics,
    scratch: Mutex<Vec<AppendScratch>>,
    stopping: AtomicBool,
    checkpoint_lock: tokio::sync::Mutex<()>,
    last_checkpoint_segment: Mutex<u64>,
    shipper: std::sync::OnceLock<Shipper>,
}

impl Ingester {
    /// Opens the ingester under `data_dir`: replays the newest checkpoint and the WAL segments
    /// after it, then starts a fresh segment.
    pub fn open(
        cfg: IngesterConfig,
        data_dir: &Path,
        overrides: Arc<RwLock<Overrides>>,
        registry: &mut Registry,
    ) -> Result<Arc<Self>, IngesterError> {
        cfg.validate()?;
        let wal_dir = data_dir.join(&cfg.wal.dir);
        std::fs::create_dir_all(&wal_dir).map_err(|e| IngesterError::io(&wal_dir, e))?;
        let metrics = Metrics::new(registry);
        let t0 = Instant::now();
        let files = wal::list(&wal_dir)?;
        let tenants = RwLock::new(HashMap::new());
        let mut replayer = Replayer {
            tenants: &tenants,
            shards: cfg.head_shards,
            ids: HashMap::new(),
            samples: 0,
        };
        if let Some((idx, path)) = &files.checkpoint {
            tracing::info!(checkpoint = %path.display(), "loading head checkpoint");
            wal::read_segment(path, false, |r| replayer.apply(r))?;
            let _ = idx;
        }
        let first = files.checkpoint.as_ref().map_or(0, |(i, _)| *i);
        let replay: Vec<&(u64, PathBuf)> =
            files.segments.iter().filter(|(i, _)| *i >= first).collect();
        for (n, (_, path)) in replay.iter().enumerate() {
            let last = n + 1 == replay.len();
            let dropped = wal::read_segment(path, last, |r| replayer.apply(r))?;
            if dropped > 0 {
                tracing::warn!(segment = %path.display(), dropped, "dropped a torn WAL tail");
            }
        }
        // Segments older than the checkpoint are already in it; a crash may have left them.
        for (i, path) in &files.segments {
            if *i < first {
                let _ = std::fs::remove_file(path);
            }
        }
        for p in &files.stale_checkpoints {
            let _ = std::fs::remove_file(p);
        }
        let next_segment = files
            .segments
            .last()
            .map_or(first, |(i, _)| i + 1)
            .max(first);
        let n_series: usize = tenants
            .read()
            .values()
            .map(|h: &Arc<TenantHead>| h.num_series())
            .sum();
        let took = t0.elapsed();
        metrics.replay_duration_seconds.set(took.as_secs_f64());
        metrics.memory_series.set(n_series as i64);
        tracing::info!(
            series = n_series,
            samples = replayer.samples,
            segments = replay.len(),
            took_ms = took.as_millis() as u64,
            "WAL replay finished"
        );
        let wal = Wal::start(
            WalOptions {
                dir: wal_dir.clone(),
                segment_size: cfg.wal.segment_size_bytes,
                fsync: cfg.wal.fsync,
            },
            next_segment,
            Arc::new(metrics.clone()),
        )?;
        metrics.wal_segment_current.set(next_segment as i64);
        let replayed = !replay.is_empty() || files.checkpoint.is_some();
        let this = Arc::new(Self {
            cfg,
            wal_dir,
            tenants,
            wal,
            overrides,
            metrics,
            scratch: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            checkpoint_lock: tokio::sync::Mutex::new(()),
            last_checkpoint_segment: Mutex::new(next_segment),
            shipper: std::sync::OnceLock::new(),
        });
        if replayed {
            // Replay renumbers series; records written from now on use the new numbers. A
            // checkpoint now retires the old segments, so a later replay never mixes numberings.
            this.write_checkpoint(next_segment)?;
            *this.last_checkpoint_segment.lock() = next_segment;
        }
        Ok(this)
    }

    /// Starts cutting blocks from the heads and shipping them to `bucket`: loads the local
    /// blocks of a previous run, drops from the heads what the bucket already has, and resumes
    /// unfinished uploads on the next cycle of [`Ingester::run_background`].
    pub async fn enable_shipping(
        self: &Arc<Self>,
        bucket: Bucket,
        data_dir: &Path,
    ) -> Result<(), IngesterError> {
        let shipper = Shipper::open(self.cfg.blocks.clone(), data_dir, bucket).await?;
        let heads: Vec<Arc<TenantHead>> = self.tenants.read().values().cloned().collect();
        shipper.apply_to_heads(&heads);
        self.metrics
            .blocks_pending_upload
            .set(shipper.pending_uploads() as i64);
        let _ = self.shipper.set(shipper);
        Ok(())
    }

    /// Runs one shipping cycle now (cut, upload, truncate, expire) with `now_ms` as the wall
    /// clock; checkpoints if the heads were truncated. `None` without shipping enabled.
    pub async fn ship(self: &Arc<Self>, now_ms: i64) -> Option<ShipReport> {
        let shipper = self.shipper.get()?;
        let heads: Vec<Arc<TenantHead>> = self.tenants.read().values().cloned().collect();
        let report = shipper.cycle(&heads, now_ms, false, &self.metrics).await;
        self.metrics
            .blocks_pending_upload
            .set(shipper.pending_uploads() as i64);
        if report.chunks_truncated > 0 || report.series_truncated > 0 {
            self.metrics.memory_series.set(self.num_series() as i64);
            // The truncated samples leave the WAL with the next checkpoint.
            let _ = self.checkpoint().await;
        }
        Some(report)
    }

    /// Cuts everything in the heads into blocks now (the current range too) and uploads them,
    /// retrying failed uploads until `deadline`: what an ingester does before it leaves the
    /// ring for good (`POST /ingester/shutdown`), so the bucket holds all it had. Returns the
    /// blocks cut and uploaded; an error if uploads were still pending at the deadline.
    pub async fn flush(self: &Arc<Self>, deadline: Duration) -> Result<ShipReport, IngesterError> {
        let Some(shipper) = self.shipper.get() else {
            return Err(IngesterError::NoShipping);
        };
        let until = Instant::now() + deadline;
        let mut total = ShipReport::default();
        loop {
            let heads: Vec<Arc<TenantHead>> = self.tenants.read().values().cloned().collect();
            let r = shipper
                .cycle(&heads, strata_model::time::now_ms(), true, &self.metrics)
                .await;
            total.blocks_cut += r.blocks_cut;
            total.blocks_uploaded += r.blocks_uploaded;
            total.upload_failures += r.upload_failures;
            total.series_truncated += r.series_truncated;
            total.chunks_truncated += r.chunks_truncated;
            let pending = shipper.pending_uploads();
            self.metrics.blocks_pending_upload.set(pending as i64);
            if pending == 0 {
                break;
            }
            if Instant::now() >= until {
                return Err(IngesterError::FlushIncomplete { pending });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if total.chunks_truncated > 0 || total.series_truncated > 0 {
            let _ = self.checkpoint().await;
        }
        Ok(total)
    }

    fn head(&self, tenant: &TenantId) -> Arc<TenantHead> {
        if let Some(h) = self.tenants.read().get(tenant) {
            return h.clone();
        }
        let mut w = self.tenants.write();
        let h = w
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(TenantHead::new(tenant.clone(), self.cfg.head_shards)))
            .clone();
        self.metrics.tenants.set(w.len() as i64);
        h
    }

    fn existing_head(&self, tenant: &TenantId) -> Option<Arc<TenantHead>> {
        self.tenants.read().get(tenant).cloned()
    }

    /// Series across tenants.
    pub fn num_series(&self) -> usize {
        self.tenants.read().values().map(|h| h.num_series()).sum()
    }

    /// Snapshots every head into `checkpoint.N` and deletes the WAL segments below N.
    pub async fn checkpoint(self: &Arc<Self>) -> Result<(), IngesterError> {
        let _guard = self.checkpoint_lock.lock().await;
        let t0 = Instant::now();
        let idx = self.wal.rotate().await.map_err(IngesterError::Wal)?;
        let this = self.clone();
        let res = tokio::task::spawn_blocking(move || this.write_checkpoint(idx))
            .await
            .unwrap_or_else(|e| {
                Err(IngesterError::io(
                    Path::new("checkpoint task"),
                    std::io::Error::other(e.to_string()),
                ))
            });
        match &res {
            Ok(()) => {
                *self.last_checkpoint_segment.lock() = idx;
                self.metrics.checkpoints.inc();
                self.metrics
                    .checkpoint_duration_seconds
                    .set(t0.elapsed().as_secs_f64());
                tracing::info!(
                    segment = idx,
                    took_ms = t0.elapsed().as_millis() as u64,
                    "head checkpoint written"
                );
            }
            Err(e) => {
                self.metrics.checkpoint_failures.inc();
                tracing::error!(error = %e, "head checkpoint failed; WAL segments are kept");
            }
        }
        res
    }

    fn write_checkpoint(&self, idx: u64) -> Result<(), IngesterError> {
        let tmp = self.wal_dir.join(format!("checkpoint.{idx:08}.tmp"));
        let dst = self.wal_dir.join(format!("checkpoint.{idx:08}"));
        let io = |e| IngesterError::io(&tmp, e);
        let file = std::fs::File::create(&tmp).map_err(io)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut rec = RecordWriter::default();
        let heads: Vec<Arc<TenantHead>> = self.tenants.read().values().cloned().collect();
        for h in heads {
            h.snapshot(&mut rec, |r| {
                w.write_all(&r.buf)?;
                r.clear();
                Ok(())
            })
            .map_err(io)?;
        }
        let file = w.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&tmp, &dst).map_err(io)?;
        sync_dir(&self.wal_dir).map_err(|e| IngesterError::io(&self.wal_dir, e))?;
        let files = wal::list(&self.wal_dir)?;
        for (i, p) in files.segments {
            if i < idx {
                std::fs::remove_file(&p).map_err(|e| IngesterError::io(&p, e))?;
            }
        }
        for p in files.stale_checkpoints {
            std::fs::remove_file(&p).map_err(|e| IngesterError::io(&p, e))?;
        }
        Ok(())
    }

    /// Periodic work: checkpoints and gauges. Returns when `shutdown` resolves.
    pub async fn run_background(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let ship_every = crate::shipper::interval(&self.cfg.blocks);
        let mut tick = tokio::time::interval(ship_every.min(Duration::from_secs(5)));
        let mut last_checkpoint = Instant::now();
        let mut last_ship = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            self.metrics.memory_series.set(self.num_series() as i64);
            if last_ship.elapsed() >= ship_every {
                last_ship = Instant::now();
                if self
                    .ship(strata_model::time::now_ms())
                    .await
                    .is_some_and(|r| r.chunks_truncated > 0 || r.series_truncated > 0)
                {
                    last_checkpoint = Instant::now();
                }
            }
            let current = self.metrics.wal_segment_current.get() as u64;
            let since = current.saturating_sub(*self.last_checkpoint_segment.lock());
            if last_checkpoint.elapsed() >= self.cfg.wal.checkpoint_interval
                || since >= self.cfg.wal.checkpoint_after_segments
            {
                last_checkpoint = Instant::now();
                let _ = self.checkpoint().await;
            }
        }
    }

    /// Refuses every later push (the ingester left the ring for good); reads still work.
    pub fn stop_accepting(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Stops accepting pushes, writes a final checkpoint (fast restart) and closes the WAL.
    pub async fn shutdown(self: &Arc<Self>) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Err(e) = self.checkpoint().await {
            tracing::error!(error = %e, "final checkpoint failed; the WAL will be replayed at start");
        }
        self.wal.close();
    }
}

/// Applies replayed records to the heads, mapping WAL series ids to head locations.
struct Replayer<'a> {
    tenants: &'a RwLock<HashMap<TenantId, Arc<TenantHead>>>,
    shards: usize,
    ids: HashMap<String, (Arc<TenantHead>, HashMap<u32, u32>)>,
    samples: u64,
}

impl Replayer<'_> {
    fn tenant(
        &mut self,
        tenant: &str,
    ) -> Result<&mut (Arc<TenantHead>, HashMap<u32, u32>), IngesterError> {
        if !self.ids.contains_key(tenant) {
            let id =
                TenantId::new(tenant).map_err(|_| IngesterError::BadTenant(tenant.to_owned()))?;
            let head = self
                .tenants
                .write()
                .entry(id.clone())
                .or_insert_with(|| Arc::new(TenantHead::new(id, self.shards)))
                .clone();
            self.ids.insert(tenant.to_owned(), (head, HashMap::new()));
        }
        Ok(self.ids.get_mut(tenant).expect("inserted above"))
    }

    fn apply(&mut self, rec: Record<'_>) -> Result<(), IngesterError> {
        match rec {
            Record::Series { tenant, id, key } => {
                let (head, ids) = self.tenant(tenant)?;
                let loc =
                    head.replay_series(key)
                        .map_err(|reason| IngesterError::CorruptSeries {
                            tenant: tenant.to_owned(),
                            id,
                            reason,
                        })?;
                ids.insert(id, loc);
            }
            Record::Samples { tenant, samples } => {
                let n = samples.len() as u64;
                let (head, ids) = self.tenant(tenant)?;
                for (id, t, v) in samples {
                    let loc = *ids.get(&id).ok_or_else(|| IngesterError::UnknownSeries {
                        tenant: tenant.to_owned(),
                        id,
                    })?;
                    head.replay_sample(loc, t, v);
                }
                self.samples += n;
            }
            Record::Metadata { tenant, metadata } => {
                let (head, _) = self.tenant(tenant)?;
                head.update_metadata(&[metadata]);
            }
            Record::SeriesSnapshot {
                tenant,
                id,
                key,
                chunks,
            } => {
                let (head, ids) = self.tenant(tenant)?;
                let chunks = chunks.into_iter().map(Box::from).collect();
                let loc = head.restore_series(key, chunks).map_err(|reason| {
                    IngesterError::CorruptSeries {
                        tenant: tenant.to_owned(),
                        id,
                        reason,
                    }
                })?;
                ids.insert(id, loc);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Pusher for Ingester {
    async fn push(
        &self,
        tenant: &TenantId,
        batch: &WriteBatch<'_>,
    ) -> Result<PushOutcome, PushError> {
        if self.stopping.load(Ordering::Relaxed) {
            return Err(PushError::Unavailable("ingester", "shutting down"));
        }
        let head = self.head(tenant);
        let limits = self.overrides.read().for_tenant(tenant.as_str()).clone();
        let mut scratch = self.scratch.lock().pop().unwrap_or_default();
        let mut outcome = PushOutcome::default();
        let mut seq = head.append(batch, &limits, &self.wal, &mut scratch, &mut outcome);
        let changed = head.update_metadata(&batch.metadata);
        if !changed.is_empty() {
            let mut rec = RecordWriter::default();
            for m in &changed {
                rec.metadata(tenant.as_str(), m);
            }
            seq = self.wal.append(&rec.buf);
        }
        self.scratch.lock().push(scratch);
        self.metrics
            .samples_appended
            .inc_by(outcome.samples_written);
        if let Some(r) = &outcome.first_rejection {
            self.metrics
                .samples_rejected
                .get_or_create(&ReasonLabels {
                    reason: r.reason.to_owned(),
                })
                .inc_by(outcome.samples_rejected);
        }
        if seq == 0 && outcome.samples_written > 0 {
            // Only duplicates: the identical samples may come from a concurrent request whose
            // records are still waiting for their fsync; acknowledge after them, not before.
            seq = self.wal.current_seq();
        }
        if seq > 0 {
            self.wal
                .wait_durable(seq)
                .await
                .map_err(|e| PushError::Wal(std::io::Error::new(e.kind(), e.to_string())))?;
        }
        Ok(outcome)
    }
}

impl Ingester {
    /// Series the head of `tenant` examined for queries (see
    /// [`TenantHead::series_visited`]); 0 without a head.
    pub fn query_series_visited(&self, tenant: &TenantId) -> u64 {
        self.existing_head(tenant).map_or(0, |h| h.series_visited())
    }

    fn local_blocks(
        &self,
        tenant: &TenantId,
        start: i64,
        end: i64,
    ) -> Vec<Arc<strata_storage::block::BlockReader>> {
        self.shipper
            .get()
            .map(|s| s.readers(tenant, start, end))
            .unwrap_or_default()
    }
}

/// The head answers for recent data, the local blocks (cut but maybe not yet visible through
/// the bucket) for older data; overlaps are merged away.
#[async_trait]
impl Queryable for Ingester {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let head = self
            .existing_head(tenant)
            .map(|h| h.select(matchers, start, end))
            .unwrap_or_default();
        let blocks = self.local_blocks(tenant, start, end);
        if blocks.is_empty() {
            return Ok(head);
        }
        let from_blocks = block_set::select(&blocks, matchers, start, end).await?;
        Ok(merge::merge_series(vec![head, from_blocks]))
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let head = match self.existing_head(tenant) {
            Some(h) => h.series(matchers, start, end, limit)?,
            None => Vec::new(),
        };
        let blocks = self.local_blocks(tenant, start, end);
        if blocks.is_empty() {
            return Ok(head);
        }
        let from_blocks = block_set::series(&blocks, matchers, start, end, limit)?;
        Ok(merge::merge_labels(vec![head, from_blocks], limit)?)
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let head = match self.existing_head(tenant) {
            Some(h) => h.label_names(matchers, start, end, limit)?,
            None => Vec::new(),
        };
        let blocks = self.local_blocks(tenant, start, end);
        let from_blocks = block_set::label_names(&blocks, matchers, start, end, limit)?;
        Ok(merge::merge_strings_limited(
            vec![head, from_blocks],
            limit,
            ReadLimit::LabelNames,
        )?)
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let head = match self.existing_head(tenant) {
            Some(h) => h.label_values(name, matchers, start, end, limit)?,
            None => Vec::new(),
        };
        let blocks = self.local_blocks(tenant, start, end);
        let from_blocks = block_set::label_values(&blocks, name, matchers, start, end, limit)?;
        Ok(merge::merge_strings_limited(
            vec![head, from_blocks],
            limit,
            ReadLimit::LabelValues,
        )?)
    }

    async fn select_chunks(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<strata_storage::ChunkedSeries>, QueryError> {
        self.select_chunks_hinted(tenant, matchers, start, end, &SelectHints::default())
            .await
    }

    async fn select_chunks_hinted(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<strata_storage::ChunkedSeries>, QueryError> {
        let limits = &hints.limits;
        let head = match self.existing_head(tenant) {
            Some(h) => h.select_chunks(matchers, start, end, limits)?,
            None => Vec::new(),
        };
        let blocks = self.local_blocks(tenant, start, end);
        if blocks.is_empty() {
            return Ok(head);
        }
        let from_blocks =
            block_set::select_chunks_limited(&blocks, matchers, start, end, limits).await?;
        let merged = merge::merge_chunked(vec![head, from_blocks], start, end);
        limits.check(&merged)?;
        Ok(merged)
    }

    async fn head_stats(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<strata_storage::HeadStats>, QueryError> {
        Ok(self.existing_head(tenant).map(|h| h.stats()))
    }

    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        Ok(self
            .existing_head(tenant)
            .map(|h| h.metadata(metric))
            .unwrap_or_default())
    }
}
