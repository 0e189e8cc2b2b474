//! The ingester's own metrics (`strata_ingester_*`).

use crate::wal::WalObserver;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples_appended: Counter,
    pub samples_rejected: Family<ReasonLabels, Counter>,
    pub memory_series: Gauge,
    pub tenants: Gauge,
    pub wal_fsync_duration: Histogram,
    pub wal_bytes_written: Counter,
    pub wal_segment_current: Gauge,
    pub checkpoints: Counter,
    pub checkpoint_failures: Counter,
    pub checkpoint_duration_seconds: Gauge<f64, AtomicU64>,
    pub replay_duration_seconds: Gauge<f64, AtomicU64>,
    pub blocks_cut: Counter,
    pub block_cut_failures: Counter,
    pub blocks_uploaded: Counter,
    pub block_upload_failures: Counter,
    pub blocks_pending_upload: Gauge,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            samples_appended: Counter::default(),
            samples_rejected: Family::default(),
            memory_series: Gauge::default(),
            tenants: Gauge::default(),
            wal_fsync_duration: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            wal_bytes_written: Counter::default(),
            wal_segment_current: Gauge::default(),
            checkpoints: Counter::default(),
            checkpoint_failures: Counter::default(),
            checkpoint_duration_seconds: Gauge::default(),
            replay_duration_seconds: Gauge::default(),
            blocks_cut: Counter::default(),
            block_cut_failures: Counter::default(),
            blocks_uploaded: Counter::default(),
            block_upload_failures: Counter::default(),
            blocks_pending_upload: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("strata_ingester");
        r.register("blocks_cut", "Blocks cut from heads", m.blocks_cut.clone());
        r.register(
            "block_cut_failures",
            "Failed attempts to cut a block (retried next cycle)",
            m.block_cut_failures.clone(),
        );
        r.register(
            "blocks_uploaded",
            "Blocks uploaded to the bucket",
            m.blocks_uploaded.clone(),
        );
        r.register(
            "block_upload_failures",
            "Failed block uploads (retried with backoff)",
            m.block_upload_failures.clone(),
        );
        r.register(
            "blocks_pending_upload",
            "Blocks cut but not yet in the bucket; the head keeps their samples",
            m.blocks_pending_upload.clone(),
        );
        let r = registry.sub_registry_with_prefix("strata_ingester");
        r.register(
            "samples_appended",
            "Samples stored in the head",
            m.samples_appended.clone(),
        );
        r.register(
            "samples_rejected",
            "Samples refused by the head, by reason",
            m.samples_rejected.clone(),
        );
        r.register(
            "memory_series",
            "Series in the head across tenants",
            m.memory_series.clone(),
        );
        r.register("tenants", "Tenants with a head", m.tenants.clone());
        r.register(
            "wal_fsync_duration_seconds",
            "Duration of one WAL group commit (write + fdatasync)",
            m.wal_fsync_duration.clone(),
        );
        r.register(
            "wal_written_bytes",
            "Bytes written to WAL segments",
            m.wal_bytes_written.clone(),
        );
        r.register(
            "wal_segment_current",
            "Number of the WAL segment being written",
            m.wal_segment_current.clone(),
        );
        r.register(
            "checkpoints",
            "Completed head checkpoints",
            m.checkpoints.clone(),
        );
        r.register(
            "checkpoint_failures",
            "Failed head checkpoints",
            m.checkpoint_failures.clone(),
        );
        r.register(
            "checkpoint_duration_seconds",
            "Duration of the last head checkpoint",
            m.checkpoint_duration_seconds.clone(),
        );
        r.register(
            "wal_replay_duration_seconds",
            "Duration of the WAL replay at start",
            m.replay_duration_seconds.clone(),
        );
        m
    }
}

impl WalObserver for Metrics {
    fn fsync_done(&self, seconds: f64, bytes: usize) {
        self.wal_fsync_duration.observe(seconds);
        self.wal_bytes_written.inc_by(bytes as u64);
    }

    fn segment_cut(&self, index: u64) {
        self.wal_segment_current.set(index as i64);
    }
}
