//! The ruler's metrics, under Prometheus's names (`rules/manager.go`, `notifier/notifier.go`)
//! with the tenant as `user` and the group as `rule_group` = `<namespace>;<group>`, as the
//! Mimir ruler labels them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of per-group series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GroupLabels {
    pub user: String,
    pub rule_group: String,
}

/// Labels of per-Alertmanager notification series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertmanagerLabels {
    pub alertmanager: String,
}

type FGauge = Gauge<f64, AtomicU64>;

/// Every metric of the ruler. Cheap to clone (shared handles).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub evaluations: Family<GroupLabels, Counter>,
    pub evaluation_failures: Family<GroupLabels, Counter>,
    pub iterations: Family<GroupLabels, Counter>,
    pub iterations_missed: Family<GroupLabels, Counter>,
    pub group_interval: Family<GroupLabels, FGauge>,
    pub last_evaluation: Family<GroupLabels, FGauge>,
    pub last_duration: Family<GroupLabels, FGauge>,
    pub group_rules: Family<GroupLabels, Gauge>,
    pub last_samples: Family<GroupLabels, Gauge>,
    pub notifications_sent: Family<AlertmanagerLabels, Counter>,
    pub notifications_errors: Family<AlertmanagerLabels, Counter>,
    pub notifications_dropped: Counter,
    pub notifications_queue_length: Gauge,
    pub notifications_queue_capacity: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them (names as in Prometheus; counters get
    /// `_total`).
    pub fn new(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("prometheus");
        r.register(
            "rule_evaluations",
            "Rules evaluated.",
            m.evaluations.clone(),
        );
        r.register(
            "rule_evaluation_failures",
            "Rule evaluations that failed (query, limit or write errors).",
            m.evaluation_failures.clone(),
        );
        r.register(
            "rule_group_iterations",
            "Group evaluations due, run or skipped.",
            m.iterations.clone(),
        );
        r.register(
            "rule_group_iterations_missed",
            "Group evaluations skipped because the previous one overran its interval.",
            m.iterations_missed.clone(),
        );
        r.register(
            "rule_group_interval_seconds",
            "Evaluation interval of the group.",
            m.group_interval.clone(),
        );
        r.register(
            "rule_group_last_evaluation_timestamp_seconds",
            "Unix time of the group's last evaluation.",
            m.last_evaluation.clone(),
        );
        r.register(
            "rule_group_last_duration_seconds",
            "How long the group's last evaluation took.",
            m.last_duration.clone(),
        );
        r.register(
            "rule_group_rules",
            "Rules in the group.",
            m.group_rules.clone(),
        );
        r.register(
            "rule_group_last_evaluation_samples",
            "Samples the group's last evaluation produced.",
            m.last_samples.clone(),
        );
        r.register(
            "notifications_sent",
            "Alerts posted to this Alertmanager.",
            m.notifications_sent.clone(),
        );
        r.register(
            "notifications_errors",
            "Posts to this Alertmanager that failed.",
            m.notifications_errors.clone(),
        );
        r.register(
            "notifications_dropped",
            "Alerts dropped: queue full, or every Alertmanager failed.",
            m.notifications_dropped.clone(),
        );
        r.register(
            "notifications_queue_length",
            "Alerts waiting in the notification queues.",
            m.notifications_queue_length.clone(),
        );
        r.register(
            "notifications_queue_capacity",
            "Capacity of each tenant's notification queue.",
            m.notifications_queue_capacity.clone(),
        );
        m
    }
}
