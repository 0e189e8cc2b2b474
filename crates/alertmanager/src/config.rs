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
    /// State directory, relative to Strata's `data_dir` unless absolute: one directory per
    /// tenant with its state snapshot and its uploaded configuration.
    pub data_dir: PathBuf,
    /// How often each tenant's state (silences, notification log, alerts) is written to
    /// `data_dir` when it changed; also written at shutdown. A crash loses at most this much:
    /// silences made meanwhile, and notification-log entries (which can repeat a
    /// notification, never lose one).
    #[serde(with = "humantime_serde")]
    pub snapshot_interval: Duration,
    /// How long expired silences are kept (`--data.retention` upstream).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often empty groups, resolved alerts, expired log entries and old silences are
    /// dropped.
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
    /// At most this many notification requests in flight to one host (scheme, host and port
    /// of the receiver's URL), over all tenants; the others wait for a slot. When many groups
    /// fall due at once (a restart, a mass outage) this keeps Strata from opening a connection
    /// per group, with its buffers, and the receiver from being flooded; a hung receiver only
    /// delays notifications to itself. Upstream has no such limit.
    pub max_concurrent_notifications_per_host: usize,
    /// A copy of the state in the bucket (when Strata has one): see [`BucketStateConfig`].
    pub bucket: BucketStateConfig,
    /// Several replicas sharing tenants (see [`RingConfig`]); off: this process alone.
    pub ring: RingConfig,
    /// Where notifications of tenants' own configurations may connect (see
    /// [`crate::firewall`]); off by default. The operator's configuration is not filtered.
    pub receivers_firewall: crate::firewall::FirewallConfig,
    /// Largest request body the HTTP API reads (alert and silence posts, configuration
    /// uploads); larger requests get 413.
    pub max_request_body_bytes: usize,
}

/// The copy of every tenant's state files (snapshot and uploaded configuration) in Strata's
/// bucket (`bucket:`), restored when the local files are missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BucketStateConfig {
    pub enabled: bool,
    /// Objects go to `<prefix>/<tenant>/`. It must not be a valid tenant id, so that the
    /// storage components listing tenants at the top of the bucket never take it for one.
    pub prefix: String,
    /// A tenant's changed files are uploaded at most this often (and at shutdown): the bucket
    /// copy is at most this old, so a restore from it can repeat notifications sent meanwhile.
    #[serde(with = "humantime_serde")]
    pub upload_interval: Duration,
}

impl Default for BucketStateConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prefix: "@alertmanager".into(),
            // Mimir's alertmanager persists its state to the bucket every 15 minutes too.
            upload_interval: Duration::from_secs(15 * 60),
        }
    }
}

impl BucketStateConfig {
    pub fn validate(&self) -> Result<(), AlertmanagerError> {
        let err = |reason: String| AlertmanagerError::Config {
            field: "alertmanager.bucket.prefix",
            reason,
        };
        if self.prefix.is_empty() || self.prefix.contains('/') {
            return Err(err(format!(
                "{:?} must be one non-empty path segment",
                self.prefix
            )));
        }
        if strata_model::TenantId::new(&self.prefix).is_ok() {
            return Err(err(format!(
                "{:?} is a valid tenant id: the storage components would take it for a tenant; use a character tenant ids cannot have, such as '@'",
                self.prefix
            )));
        }
        if self.upload_interval < Duration::from_secs(1) {
            return Err(AlertmanagerError::Config {
                field: "alertmanager.bucket.upload_interval",
                reason: "must be at least 1s".into(),
            });
        }
        Ok(())
    }
}

/// One replica of the ring, as every replica's configuration lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingMember {
    /// Stable name of the replica; tenants are placed by hashing over these ids, so renaming a
    /// replica moves tenants.
    pub id: String,
    /// `host:port` of its gRPC server, as the other replicas reach it.
    pub address: String,
}

/// The HA ring: a static list of replicas, each tenant owned by `replication_factor` of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RingConfig {
    pub enabled: bool,
    /// This replica's id; must be one of `members`.
    pub instance_id: String,
    /// Where this replica's gRPC server listens (peers reach it at its `members` address).
    pub grpc_listen_address: String,
    /// Every replica, this one included: the same list on all of them.
    pub members: Vec<RingMember>,
    /// Owners per tenant; capped at the number of members.
    pub replication_factor: usize,
    /// Owner N of a tenant waits N × this after a group is due before it notifies, so that an
    /// earlier owner's notification (seen in the replicated notification log) suppresses it.
    #[serde(with = "humantime_serde")]
    pub peer_timeout: Duration,
    /// How long a starting replica waits for its peers' state before it notifies anyway.
    #[serde(with = "humantime_serde")]
    pub settle_timeout: Duration,
    /// How often the full state of shared tenants is pulled from each peer (repairs lost
    /// replication messages).
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// Deadline of one call to a peer.
    #[serde(with = "humantime_serde")]
    pub rpc_timeout: Duration,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            instance_id: String::new(),
            grpc_listen_address: "127.0.0.1:9095".into(),
            members: Vec::new(),
            replication_factor: 3,
            // Upstream Alertmanager's --cluster.peer-timeout.
            peer_timeout: Duration::from_secs(15),
            settle_timeout: Duration::from_secs(30),
            sync_interval: Duration::from_secs(30),
            rpc_timeout: Duration::from_secs(5),
        }
    }
}

impl RingConfig {
    /// Owners per tenant after the cap.
    pub fn effective_replication_factor(&self) -> usize {
        self.replication_factor.min(self.members.len()).max(1)
    }

    pub fn validate(&self) -> Result<(), AlertmanagerError> {
        if !self.enabled {
            return Ok(());
        }
        let err = |field: &'static str, reason: String| AlertmanagerError::Config { field, reason };
        if self.instance_id.is_empty() {
            return Err(err(
                "alertmanager.ring.instance_id",
                "must be set when the ring is enabled".into(),
            ));
        }
        if self
            .grpc_listen_address
            .parse::<std::net::SocketAddr>()
            .is_err()
        {
            return Err(err(
                "alertmanager.ring.grpc_listen_address",
                format!("{:?} is not an ip:port address", self.grpc_listen_address),
            ));
        }
        if self.members.is_empty() {
            return Err(err(
                "alertmanager.ring.members",
                "must list every replica, this one included".into(),
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for m in &self.members {
            if m.id.is_empty() {
                return Err(err(
                    "alertmanager.ring.members",
                    "a member has an empty id".into(),
                ));
            }
            if !ids.insert(m.id.as_str()) {
                return Err(err(
                    "alertmanager.ring.members",
                    format!("member id {:?} is listed twice", m.id),
                ));
            }
            // The gRPC client dials `http://<address>`: it must parse as such a URI.
            let port_ok = m
                .address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
                && format!("http://{}", m.address)
                    .parse::<axum::http::Uri>()
                    .is_ok_and(|u| u.path() == "/");
            if !port_ok {
                return Err(err(
                    "alertmanager.ring.members",
                    format!(
                        "address {:?} of member {:?} is not host:port",
                        m.address, m.id
                    ),
                ));
            }
        }
        if !ids.contains(self.instance_id.as_str()) {
            return Err(err(
                "alertmanager.ring.instance_id",
                format!(
                    "{:?} is not one of alertmanager.ring.members",
                    self.instance_id
                ),
            ));
        }
        if self.replication_factor == 0 {
            return Err(err(
                "alertmanager.ring.replication_factor",
                "must be at least 1".into(),
            ));
        }
        for (field, d) in [
            ("alertmanager.ring.peer_timeout", self.peer_timeout),
            ("alertmanager.ring.settle_timeout", self.settle_timeout),
            ("alertmanager.ring.sync_interval", self.sync_interval),
            ("alertmanager.ring.rpc_timeout", self.rpc_timeout),
        ] {
            if d.is_zero() {
                return Err(err(field, "must be greater than zero".into()));
            }
        }
        Ok(())
    }
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            config_file: None,
            external_url: None,
            data_dir: PathBuf::from("alertmanager"),
            retention: Duration::from_secs(120 * 3600),
            maintenance_interval: Duration::from_secs(30),
            snapshot_interval: Duration::from_secs(15),
            max_concurrent_notifications_per_host: 32,
            bucket: BucketStateConfig::default(),
            ring: RingConfig::default(),
            receivers_firewall: crate::firewall::FirewallConfig::default(),
            // Prometheus sends alerts in batches of 64 by default; a tenant's configuration
            // with its templates is rarely more than a few hundred KiB.
            max_request_body_bytes: 4 << 20,
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
        if self.snapshot_interval < Duration::from_secs(1) {
            return Err(AlertmanagerError::Config {
                field: "alertmanager.snapshot_interval",
                reason: "must be at least 1s".into(),
            });
        }
        self.bucket.validate()?;
        if self.max_concurrent_notifications_per_host == 0 {
            return Err(AlertmanagerError::Config {
                field: "alertmanager.max_concurrent_notifications_per_host",
                reason: "must be at least 1".into(),
            });
        }
        if self.max_request_body_bytes < 1024 {
            return Err(AlertmanagerError::Config {
                field: "alertmanager.max_request_body_bytes",
                reason: format!(
                    "must be at least 1024 bytes, got {}",
                    self.max_request_body_bytes
                ),
            });
        }
        self.receivers_firewall.validate()?;
        self.ring.validate()
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
        let bad: AlertmanagerConfig = serde_yaml::from_str("snapshot_interval: 100ms").unwrap();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("alertmanager.snapshot_interval"));
    }

    #[test]
    fn ring_defaults_and_validation() {
        let ok = "ring:\n  enabled: true\n  instance_id: a\n  members:\n    - {id: a, address: '127.0.0.1:1'}\n    - {id: b, address: 'am-b:2'}\n";
        let c: AlertmanagerConfig = serde_yaml::from_str(ok).unwrap();
        c.validate().unwrap();
        assert_eq!(c.ring.peer_timeout, Duration::from_secs(15));
        assert_eq!(c.ring.replication_factor, 3);
        assert_eq!(
            c.ring.effective_replication_factor(),
            2,
            "capped at members"
        );
        for (edit, field) in [
            (
                ok.replace("instance_id: a", "instance_id: z"),
                "alertmanager.ring.instance_id",
            ),
            (
                ok.replace("  instance_id: a\n", ""),
                "alertmanager.ring.instance_id",
            ),
            (ok.replace("id: b", "id: a"), "alertmanager.ring.members"),
            (ok.replace("am-b:2", "am-b"), "alertmanager.ring.members"),
            (ok.replace("am-b:2", "am b:2"), "alertmanager.ring.members"),
            (
                ok.replace("am-b:2", "am-b/x:2"),
                "alertmanager.ring.members",
            ),
            (
                format!("{ok}  replication_factor: 0\n"),
                "alertmanager.ring.replication_factor",
            ),
            (
                format!("{ok}  peer_timeout: 0s\n"),
                "alertmanager.ring.peer_timeout",
            ),
            (
                format!("{ok}  grpc_listen_address: nowhere\n"),
                "alertmanager.ring.grpc_listen_address",
            ),
        ] {
            let c: AlertmanagerConfig = serde_yaml::from_str(&edit).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{edit}: {e}");
        }
        let e = serde_yaml::from_str::<AlertmanagerConfig>("ring: {peer_timout: 1s}").unwrap_err();
        assert!(e.to_string().contains("peer_timout"), "{e}");
        // Disabled: nothing else is checked, so the defaults stay valid.
        AlertmanagerConfig::default().validate().unwrap();
    }
}
