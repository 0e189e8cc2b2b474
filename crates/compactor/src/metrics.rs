//! The compactor's own metrics (`strata_compactor_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of per-tenant counters.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TenantLabels {
    pub tenant: String,
}

/// Labels of per-tenant counters with a reason or kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TenantReasonLabels {
    pub tenant: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub runs: Counter,
    pub run_failures: Counter,
    pub last_success: Gauge<f64, AtomicU64>,
    pub run_duration: Gauge<f64, AtomicU64>,
    pub tenant_failures: Family<TenantLabels, Counter>,
    pub tenants_skipped_locked: Counter,
    pub compactions: Family<TenantLabels, Counter>,
    pub blocks_compacted: Family<TenantLabels, Counter>,
    pub blocks_downsampled: Family<TenantReasonLabels, Counter>,
    pub blocks_marked: Family<TenantReasonLabels, Counter>,
    pub blocks_deleted: Family<TenantLabels, Counter>,
    pub partial_blocks_deleted: Family<TenantLabels, Counter>,
}

impl Metrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self {
            runs: Counter::default(),
            run_failures: Counter::default(),
            last_success: Gauge::default(),
            run_duration: Gauge::default(),
            tenant_failures: Family::default(),
            tenants_skipped_locked: Counter::default(),
            compactions: Family::default(),
            blocks_compacted: Family::default(),
            blocks_downsampled: Family::default(),
            blocks_marked: Family::default(),
            blocks_deleted: Family::default(),
            partial_blocks_deleted: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("strata_compactor");
        r.register("runs", "Compaction cycles started", m.runs.clone());
        r.register(
            "run_failures",
            "Compaction cycles in which at least one tenant failed",
            m.run_failures.clone(),
        );
        r.register(
            "last_successful_run_timestamp_seconds",
            "Unix time at which the last cycle without failures finished",
            m.last_success.clone(),
        );
        r.register(
            "last_run_duration_seconds",
            "Duration of the last cycle",
            m.run_duration.clone(),
        );
        r.register(
            "tenant_failures",
            "Tenant cycles that failed",
            m.tenant_failures.clone(),
        );
        r.register(
            "tenants_skipped_locked",
            "Tenant cycles skipped because another compactor held the tenant's lock",
            m.tenants_skipped_locked.clone(),
        );
        r.register(
            "compactions",
            "Blocks produced by merging blocks",
            m.compactions.clone(),
        );
        r.register(
            "blocks_compacted",
            "Source blocks merged into larger blocks",
            m.blocks_compacted.clone(),
        );
        r.register(
            "blocks_downsampled",
            "Downsampled blocks produced, by resolution (reason = 5m|1h)",
            m.blocks_downsampled.clone(),
        );
        r.register(
            "blocks_marked_for_deletion",
            "Blocks marked for deletion, by reason (compacted|duplicate|retention)",
            m.blocks_marked.clone(),
        );
        r.register(
            "blocks_deleted",
            "Marked blocks deleted after the deletion delay",
            m.blocks_deleted.clone(),
        );
        r.register(
            "partial_blocks_deleted",
            "Abandoned partial uploads deleted",
            m.partial_blocks_deleted.clone(),
        );
        m
    }
}
