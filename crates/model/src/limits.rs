//! Per-tenant limits, kept apart from static component configuration so that operators can
//! override them per tenant at run time (Mimir's "runtime overrides").

use crate::relabel::{compile_all, RelabelConfig};
use crate::ModelError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Limits that apply to one tenant. Zero means "unlimited" for the count and rate limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Sustained samples per second accepted from this tenant (token bucket rate). 0 = no limit.
    pub ingestion_rate: f64,
    /// Token bucket size in samples: the largest burst accepted at once.
    pub ingestion_burst_size: u64,
    /// Active series the tenant may hold in one ingester's head. 0 = no limit.
    pub max_series_per_tenant: u64,
    /// Most labels one series may carry, `__name__` included.
    pub max_label_names_per_series: usize,
    /// Longest label name, in bytes.
    pub max_label_name_length: usize,
    /// Longest label value, in bytes.
    pub max_label_value_length: usize,
    /// Samples further than this in the future (relative to the receiver's clock) are rejected.
    #[serde(with = "humantime_serde")]
    pub creation_grace_period: Duration,
    /// Samples older than this (relative to now) are rejected; zero disables the check.
    #[serde(with = "humantime_serde")]
    pub past_grace_period: Duration,
    /// The compactor marks this tenant's raw-resolution blocks for deletion once their newest
    /// sample is older than this (Thanos's `retention.resolution-raw`, Mimir's
    /// `compactor_blocks_retention_period`). Zero keeps them forever.
    #[serde(with = "humantime_serde")]
    pub compactor_blocks_retention_period: Duration,
    /// Like `compactor_blocks_retention_period`, for 5-minute downsampled blocks. Zero keeps them
    /// forever. Usually longer than the raw retention: that is what downsampling is for.
    #[serde(with = "humantime_serde")]
    pub compactor_blocks_retention_period_5m: Duration,
    /// Like `compactor_blocks_retention_period`, for 1-hour downsampled blocks. Zero keeps them
    /// forever.
    #[serde(with = "humantime_serde")]
    pub compactor_blocks_retention_period_1h: Duration,
    /// Labels the ruler adds to this tenant's alerts (over `ruler.external_labels`; an alert's
    /// own labels win), also `$externalLabels` in its templates.
    pub ruler_external_labels: BTreeMap<String, String>,
    /// The URL this tenant's alerts link back to (`generatorURL`, `$externalURL`); empty:
    /// `ruler.external_url`.
    pub ruler_external_url: String,
    /// Relabelling applied to this tenant's alerts before they are sent, after
    /// `ruler.alert_relabel_configs` (Prometheus's `alert_relabel_configs`).
    pub ruler_alert_relabel_configs: Vec<RelabelConfig>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ingestion_rate: 0.0,
            ingestion_burst_size: 0,
            max_series_per_tenant: 0,
            max_label_names_per_series: 30,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            creation_grace_period: Duration::from_secs(10 * 60),
            past_grace_period: Duration::ZERO,
            compactor_blocks_retention_period: Duration::ZERO,
            compactor_blocks_retention_period_5m: Duration::ZERO,
            compactor_blocks_retention_period_1h: Duration::ZERO,
            ruler_external_labels: BTreeMap::new(),
            ruler_external_url: String::new(),
            ruler_alert_relabel_configs: Vec::new(),
        }
    }
}

impl Limits {
    /// Checks internal consistency; the error names the field under `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<(), ModelError> {
        let bad = |field: &str, reason: &'static str| ModelError::InvalidLimit {
            field: format!("{prefix}.{field}"),
            reason,
        };
        if !(self.ingestion_rate >= 0.0 && self.ingestion_rate.is_finite()) {
            return Err(bad("ingestion_rate", "must be a finite number >= 0"));
        }
        if self.ingestion_rate > 0.0 && self.ingestion_burst_size == 0 {
            return Err(bad(
                "ingestion_burst_size",
                "must be > 0 when ingestion_rate is set (a burst of 0 would reject every request)",
            ));
        }
        if self.max_label_names_per_series == 0 {
            return Err(bad("max_label_names_per_series", "must be > 0"));
        }
        if self.max_label_name_length == 0 {
            return Err(bad("max_label_name_length", "must be > 0"));
        }
        if self.max_label_value_length == 0 {
            return Err(bad("max_label_value_length", "must be > 0"));
        }
        // Block times are i64 milliseconds: a longer period would overflow `now - retention`.
        const MAX_RETENTION: Duration = Duration::from_secs(1000 * 365 * 86_400);
        for (field, d) in [
            (
                "compactor_blocks_retention_period",
                self.compactor_blocks_retention_period,
            ),
            (
                "compactor_blocks_retention_period_5m",
                self.compactor_blocks_retention_period_5m,
            ),
            (
                "compactor_blocks_retention_period_1h",
                self.compactor_blocks_retention_period_1h,
            ),
        ] {
            if d > MAX_RETENTION {
                return Err(bad(
                    field,
                    "must be at most 1000 years (0 keeps blocks forever)",
                ));
            }
        }
        if self
            .ruler_external_labels
            .keys()
            .any(|k| !crate::relabel::is_label_name(k))
        {
            return Err(bad(
                "ruler_external_labels",
                "every key must be a valid label name",
            ));
        }
        if !(self.ruler_external_url.is_empty()
            || self.ruler_external_url.starts_with("http://")
            || self.ruler_external_url.starts_with("https://"))
        {
            return Err(bad(
                "ruler_external_url",
                "must start with http:// or https://",
            ));
        }
        compile_all(
            &self.ruler_alert_relabel_configs,
            &format!("{prefix}.ruler_alert_relabel_configs"),
        )?;
        Ok(())
    }
}

/// Defaults plus per-tenant overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Overrides {
    /// Limits of tenants that have no entry in `tenants`.
    pub defaults: Limits,
    /// Per-tenant replacements of the whole limits block.
    pub tenants: HashMap<String, Limits>,
}

impl Overrides {
    pub fn for_tenant(&self, tenant: &str) -> &Limits {
        self.tenants.get(tenant).unwrap_or(&self.defaults)
    }

    /// Validates defaults and every tenant's block; the error names the tenant and field.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.defaults.validate("limits.defaults")?;
        for (t, l) in &self.tenants {
            l.validate(&format!("limits.tenants.{t}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_tenant_override_wins() {
        let mut o = Overrides::default();
        let l = Limits {
            max_series_per_tenant: 5,
            ..Limits::default()
        };
        o.tenants.insert("t1".into(), l);
        assert_eq!(o.for_tenant("t1").max_series_per_tenant, 5);
        assert_eq!(o.for_tenant("t2").max_series_per_tenant, 0);
    }

    #[test]
    fn retention_periods_default_to_forever_and_are_bounded() {
        let l = Limits::default();
        assert_eq!(l.compactor_blocks_retention_period, Duration::ZERO);
        assert_eq!(l.compactor_blocks_retention_period_5m, Duration::ZERO);
        assert_eq!(l.compactor_blocks_retention_period_1h, Duration::ZERO);
        let mut o = Overrides::default();
        o.defaults.compactor_blocks_retention_period_1h = Duration::from_secs(2000 * 365 * 86_400);
        let e = o.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("limits.defaults.compactor_blocks_retention_period_1h"),
            "{e}"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let mut o = Overrides::default();
        o.tenants.insert(
            "t".into(),
            Limits {
                ingestion_rate: 10.0,
                ingestion_burst_size: 0,
                ..Limits::default()
            },
        );
        let e = o.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("limits.tenants.t.ingestion_burst_size"),
            "{e}"
        );
    }
}
