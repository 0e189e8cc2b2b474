//! Static configuration of the alertmanager component (`alertmanager:` in Strata's YAML file).

use crate::error::AlertmanagerError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Alertmanager's own configuration file (`alertmanager.yml` format). Relative paths are
    /// resolved against Strata's `data_dir`. Unset: a built-in configuration with one receiver
    /// (`default`) that has no integrations, so alerts are accepted and shown but not sent.
    pub config_file: Option<PathBuf>,
    /// The URL users reach the alertmanager at (`externalURL` in notifications). Unset: the
    /// default the caller passes (the HTTP listen address).
    pub external_url: Option<String>,
    /// State directory, relative to Strata's `data_dir` unless absolute (for snapshots; the
    /// in-memory state is not persisted yet).
    pub data_dir: PathBuf,
    /// How long expired silences are kept (`--data.retention` upstream).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often empty groups, resolved alerts, expired log entries and old silences are
    /// dropped.
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            config_file: None,
            external_url: None,
            data_dir: PathBuf::from("alertmanager"),
            retention: Duration::from_secs(120 * 3600),
            maintenance_interval: Duration::from_secs(30),
        }
    }
}

/// The built-in configuration used without `config_file`.
pub const BUILTIN_CONFIG: &str = "route:\n  receiver: default\nreceivers:\n  - name: default\n";

impl AlertmanagerConfig {
    pub fn validate(&self) -> Result<(), AlertmanagerError> {
        if let Some(p) = &self.config_file {
            if p.as_os_str().is_empty() {
                return Err(AlertmanagerError::Config {
                    field: "alertmanager.config_file",
                    reason: "must not be empty when set".into(),
                });
            }
        }
        if let Some(u) = &self.external_url {
            let parsed = reqwest::Url::parse(u).map_err(|e| AlertmanagerError::Config {
                field: "alertmanager.external_url",
                reason: format!("{u:?} is not a valid URL: {e}"),
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(AlertmanagerError::Config {
                    field: "alertmanager.external_url",
                    reason: format!("{u:?} must be an http:// or https:// URL"),
                });
            }
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(AlertmanagerError::Config {
                field: "alertmanager.data_dir",
                reason: "must not be empty".into(),
            });
        }
        if self.retention.is_zero() {
            return Err(AlertmanagerError::Config {
                field: "alertmanager.retention",
                reason: "must be greater than zero".into(),
            });
        }
        if self.maintenance_interval < Duration::from_secs(1) {
            return Err(AlertmanagerError::Config {
                field: "alertmanager.maintenance_interval",
                reason: "must be at least 1s".into(),
            });
        }
        Ok(())
    }

    /// `config_file` resolved against Strata's data directory.
    pub fn config_path(&self, strata_data_dir: &Path) -> Option<PathBuf> {
        self.config_file.as_ref().map(|p| strata_data_dir.join(p))
    }

    /// `data_dir` resolved against Strata's data directory.
    pub fn state_dir(&self, strata_data_dir: &Path) -> PathBuf {
        strata_data_dir.join(&self.data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let c: AlertmanagerConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(c, AlertmanagerConfig::default());
        c.validate().unwrap();
        let c: AlertmanagerConfig = serde_yaml::from_str(
            "config_file: am.yml\nexternal_url: http://am:9093/\nretention: 1h",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.config_path(Path::new("/d")),
            Some(PathBuf::from("/d/am.yml"))
        );
        assert_eq!(
            c.state_dir(Path::new("/d")),
            PathBuf::from("/d/alertmanager")
        );
        let abs: AlertmanagerConfig = serde_yaml::from_str("config_file: /etc/am.yml").unwrap();
        assert_eq!(
            abs.config_path(Path::new("/d")),
            Some(PathBuf::from("/etc/am.yml"))
        );
        let e = serde_yaml::from_str::<AlertmanagerConfig>("confg_file: x").unwrap_err();
        assert!(e.to_string().contains("confg_file"), "{e}");
        let bad: AlertmanagerConfig = serde_yaml::from_str("external_url: 'not a url'").unwrap();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("alertmanager.external_url"));
        let bad: AlertmanagerConfig = serde_yaml::from_str("retention: 0s").unwrap();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("alertmanager.retention"));
    }
}
