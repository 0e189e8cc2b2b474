//! The alertmanager's metrics, under Alertmanager 0.25's names so that its dashboards and alerts
//! work unchanged. Every per-tenant series carries a `tenant` label (Mimir's per-tenant
//! alertmanagers say `user`); sums over it give upstream's series.
//!
//! Counters and histograms are updated as things happen; the state gauges (alerts and silences
//! by state, reload status, tenants) are read from the tenants at scrape time by
//! [`StateCollector`], so they are never stale.

use crate::tenant::TenantAlertmanager;
use crate::time::Clock;
use parking_lot::RwLock;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceivedLabels {
    pub tenant: String,
    pub status: String,
    pub version: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvalidLabels {
    pub tenant: String,
    pub version: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntegrationLabels {
    pub tenant: String,
    pub integration: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // Upstream's buckets: notifications are slow network calls with retries.
    Histogram::new([1.0, 5.0, 10.0, 15.0, 20.0])
}

#[derive(Debug, Clone)]
pub struct Metrics {
    pub alerts_received: Family<ReceivedLabels, Counter>,
    pub alerts_invalid: Family<InvalidLabels, Counter>,
    pub notifications: Family<IntegrationLabels, Counter>,
    pub notifications_failed: Family<IntegrationLabels, Counter>,
    /// Notifications of tenants' configurations the receivers firewall refused (also failed).
    pub notifications_blocked: Family<IntegrationLabels, Counter>,
    pub notification_latency: HistogramFamily<IntegrationLabels>,
    pub snapshot_duration: Histogram,
    pub snapshot_failures: Counter,
}

/// The tenants the collector reads, shared with the [`crate::Alertmanager`].
pub(crate) type TenantMap = Arc<RwLock<BTreeMap<String, Arc<TenantAlertmanager>>>>;

impl Metrics {
    /// Creates the metrics and registers them, with the collector of state gauges over
    /// `tenants`.
    pub(crate) fn new(registry: &mut Registry, tenants: TenantMap, clock: Arc<dyn Clock>) -> Self {
        let m = Self {
            alerts_received: Family::default(),
            alerts_invalid: Family::default(),
            notifications: Family::default(),
            notifications_failed: Family::default(),
            notifications_blocked: Family::default(),
            notification_latency: Family::new_with_constructor(latency_histogram),
            snapshot_duration: Histogram::new(exponential_buckets(0.001, 4.0, 8)),
            snapshot_failures: Counter::default(),
        };
        registry.register(
            "alertmanager_alerts_received",
            "Alerts received through the API, by status (firing or resolved) and API version",
            m.alerts_received.clone(),
        );
        registry.register(
            "alertmanager_alerts_invalid",
            "Received alerts refused by validation, by API version",
            m.alerts_invalid.clone(),
        );
        registry.register(
            "alertmanager_notifications",
            "Notifications attempted (retries of one notification count once), by integration",
            m.notifications.clone(),
        );
        registry.register(
            "alertmanager_notifications_failed",
            "Notifications that failed after their retries, by integration",
            m.notifications_failed.clone(),
        );
        registry.register(
            "strata_alertmanager_notifications_blocked",
            "Notifications of tenants' configurations refused by the receivers firewall, by integration",
            m.notifications_blocked.clone(),
        );
        registry.register(
            "alertmanager_notification_latency_seconds",
            "Time to deliver one notification, retries included, by integration",
            m.notification_latency.clone(),
        );
        registry.register(
            "alertmanager_nflog_snapshot_duration_seconds",
            "Time to write one tenant's state snapshot (notification log, silences and alerts)",
            m.snapshot_duration.clone(),
        );
        registry.register(
            "strata_alertmanager_snapshot_failures",
            "State snapshots that could not be written (the previous snapshot stays)",
            m.snapshot_failures.clone(),
        );
        registry.register_collector(Box::new(StateCollector { tenants, clock }));
        m
    }
}

/// Reads the per-tenant state gauges at scrape time.
#[derive(Debug)]
struct StateCollector {
    tenants: TenantMap,
    clock: Arc<dyn Clock>,
}

/// One gauge family: a descriptor and its (labels, value) series.
fn encode_gauges(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Vec<(&'static str, String)>, f64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(*value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let tenants: Vec<Arc<TenantAlertmanager>> = self.tenants.read().values().cloned().collect();
        let now = self.clock.now();
        let mut alerts = Vec::new();
        let mut silences = Vec::new();
        let mut reload_ok = Vec::new();
        let mut reload_ts = Vec::new();
        for t in &tenants {
            let st = t.state_counts(now);
            let tenant = t.id().to_string();
            let with = |k: &'static str, v: &str| vec![("tenant", tenant.clone()), (k, v.into())];
            alerts.push((with("state", "active"), st.alerts_active as f64));
            alerts.push((with("state", "suppressed"), st.alerts_suppressed as f64));
            silences.push((with("state", "active"), st.silences_active as f64));
            silences.push((with("state", "pending"), st.silences_pending as f64));
            silences.push((with("state", "expired"), st.silences_expired as f64));
            let (ok, at) = t.reload_status();
            let only_tenant = vec![("tenant", tenant.clone())];
            reload_ok.push((only_tenant.clone(), if ok { 1.0 } else { 0.0 }));
            reload_ts.push((
                only_tenant,
                at.map(|t| t.timestamp_millis() as f64 / 1000.0)
                    .unwrap_or(0.0),
            ));
        }
        encode_gauges(
            &mut encoder,
            "alertmanager_alerts",
            "Alerts not yet resolved, by state (suppressed: silenced or inhibited)",
            &alerts,
        )?;
        encode_gauges(
            &mut encoder,
            "alertmanager_silences",
            "Silences by state",
            &silences,
        )?;
        encode_gauges(
            &mut encoder,
            "alertmanager_config_last_reload_successful",
            "1 if the last attempt to apply the tenant's configuration succeeded",
            &reload_ok,
        )?;
        encode_gauges(
            &mut encoder,
            "alertmanager_config_last_reload_success_timestamp_seconds",
            "When the tenant's configuration was last applied successfully",
            &reload_ts,
        )?;
        let family = encoder.encode_descriptor(
            "strata_alertmanager_tenants",
            "Tenants with an alertmanager instance in this process",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(tenants.len() as i64).encode(family)
    }
}
