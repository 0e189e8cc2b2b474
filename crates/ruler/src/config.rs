//! Static configuration of the ruler (`ruler:` in the YAML file).

use crate::error::RulerError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The `ruler:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulerConfig {
    /// Interval of groups that set none (Prometheus's `global.evaluation_interval`).
    #[serde(with = "humantime_serde")]
    pub evaluation_interval: Duration,
    /// Query offset of groups that set none (Prometheus's `global.rule_query_offset`).
    #[serde(with = "humantime_serde")]
    pub query_offset: Duration,
    /// How often the rule groups are re-read from the bucket.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Minimum time between two sends of an unchanged firing alert (Prometheus's
    /// `--rules.alert.resend-delay`).
    #[serde(with = "humantime_serde")]
    pub resend_delay: Duration,
    /// How far back a starting group looks for its alerts' last `ALERTS_FOR_STATE` to restore
    /// their `for` state (Prometheus's `--rules.alert.for-outage-tolerance`).
    #[serde(with = "humantime_serde")]
    pub for_outage_tolerance: Duration,
    /// Least time a restored alert stays pending before it fires again, and the least `for`
    /// of a rule whose state is restored (Prometheus's `--rules.alert.for-grace-period`).
    #[serde(with = "humantime_serde")]
    pub for_grace_period: Duration,
    /// Alertmanager base URLs (alerts go to `<url>/api/v2/alerts`, to every URL). Empty in
    /// `all` means the Alertmanager of this process.
    pub alertmanager_urls: Vec<String>,
    /// Alerts waiting to be sent per tenant; the oldest are dropped beyond this.
    pub notification_queue_capacity: usize,
    /// Timeout of one post to one Alertmanager.
    #[serde(with = "humantime_serde")]
    pub notification_timeout: Duration,
    /// Labels added to every alert sent (a tenant's alert labels win).
    pub external_labels: BTreeMap<String, String>,
    /// The URL alerts link back to (`generatorURL`, `$externalURL`).
    pub external_url: String,
    /// Most rule groups one tenant may have (0 = no limit).
    pub max_rule_groups_per_tenant: usize,
    /// Most rules one group may have (0 = no limit).
    pub max_rules_per_rule_group: usize,
    /// Relabelling applied to every alert before it is sent, after the external labels were
    /// added (Prometheus's `alerting.alert_relabel_configs`); a tenant's
    /// `ruler_alert_relabel_configs` apply after these.
    pub alert_relabel_configs: Vec<strata_model::relabel::RelabelConfig>,
    /// The ruler ring, where rulers running as their own processes register; each rule group
    /// is evaluated by one healthy ruler (see `sharding`). Unused in `all`, where the one ruler
    /// evaluates every group. `replication_factor` is not used: a group has one owner.
    pub ring: strata_ring::RingConfig,
}

impl Default for RulerConfig {
    fn default() -> Self {
        Self {
            evaluation_interval: Duration::from_secs(60),
            query_offset: Duration::ZERO,
            poll_interval: Duration::from_secs(60),
            resend_delay: Duration::from_secs(60),
            for_outage_tolerance: Duration::from_secs(3600),
            for_grace_period: Duration::from_secs(600),
            alertmanager_urls: Vec::new(),
            notification_queue_capacity: 10_000,
            notification_timeout: Duration::from_secs(10),
            external_labels: BTreeMap::new(),
            external_url: String::new(),
            max_rule_groups_per_tenant: 70,
            max_rules_per_rule_group: 20,
            alert_relabel_configs: Vec::new(),
            ring: strata_ring::RingConfig {
                replication_factor: 1,
                ..strata_ring::RingConfig::default()
            },
        }
    }
}

impl RulerConfig {
    /// Checks values; errors name the field.
    pub fn validate(&self) -> Result<(), RulerError> {
        let bad = |field: &'static str, reason: &str| RulerError::Config {
            field,
            reason: reason.to_string(),
        };
        if self.evaluation_interval < Duration::from_millis(100) {
            return Err(bad("ruler.evaluation_interval", "must be at least 100ms"));
        }
        if self.poll_interval < Duration::from_secs(1) {
            return Err(bad("ruler.poll_interval", "must be at least 1s"));
        }
        if self.resend_delay.is_zero() {
            return Err(bad("ruler.resend_delay", "must be positive"));
        }
        self.ring
            .validate("ruler.ring")
            .map_err(|e| RulerError::Config {
                field: "ruler.ring",
                reason: e.to_string(),
            })?;
        strata_model::relabel::compile_all(
            &self.alert_relabel_configs,
            "ruler.alert_relabel_configs",
        )
        .map_err(|e| RulerError::Config {
            field: "ruler.alert_relabel_configs",
            reason: e.to_string(),
        })?;
        if self.for_outage_tolerance.is_zero() {
            return Err(bad("ruler.for_outage_tolerance", "must be positive"));
        }
        if self.notification_queue_capacity == 0 {
            return Err(bad("ruler.notification_queue_capacity", "must be positive"));
        }
        if self.notification_timeout.is_zero() {
            return Err(bad("ruler.notification_timeout", "must be positive"));
        }
        for u in &self.alertmanager_urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(bad(
                    "ruler.alertmanager_urls",
                    "every URL must start with http:// or https://",
                ));
            }
        }
        for k in self.external_labels.keys() {
            if !crate::rulefmt::is_valid_label_name(k) {
                return Err(bad("ruler.external_labels", "invalid label name"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_unknown_fields_refused() {
        RulerConfig::default().validate().unwrap();
        let c: RulerConfig = serde_yaml::from_str("evaluation_interval: 15s").unwrap();
        assert_eq!(c.evaluation_interval, Duration::from_secs(15));
        assert_eq!(c.resend_delay, Duration::from_secs(60));
        assert!(serde_yaml::from_str::<RulerConfig>("evaluation_intervall: 15s").is_err());
        let c: RulerConfig = serde_yaml::from_str("alertmanager_urls: [am:9093]").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("ruler.alertmanager_urls"), "{e}");
    }
}
