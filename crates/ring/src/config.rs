//! The ring section a component embeds (e.g. `ingester.ring:`).

use crate::ring::RingOptions;
use crate::RingError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How an instance joins a ring and how the ring is read. Field names follow Mimir's
/// `-<component>.ring.*` flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RingConfig {
    /// This instance's id in the ring; must stay the same across restarts (StatefulSet pod
    /// name). Defaults to the hostname.
    pub instance_id: String,
    /// Advertised gRPC `host:port`; the binary fills it from the gRPC listen address when unset.
    pub instance_addr: Option<String>,
    /// Advertised HTTP `host:port` for links from the ring pages; the binary fills it from the
    /// HTTP listen address when unset.
    pub instance_http_addr: Option<String>,
    /// Availability zone of this instance.
    pub instance_zone: String,
    /// Replicate to one instance per zone. Enable only once every instance has a zone.
    pub zone_awareness_enabled: bool,
    pub replication_factor: usize,
    /// Tokens this instance takes when it joins.
    pub num_tokens: usize,
    /// How often the instance refreshes its ring entry.
    #[serde(with = "humantime_serde")]
    pub heartbeat_period: Duration,
    /// An entry not refreshed for this long is unhealthy (judged against the KV's freshness).
    #[serde(with = "humantime_serde")]
    pub heartbeat_timeout: Duration,
    /// File keeping this instance's tokens across a lost ring entry; empty: none.
    pub tokens_file: String,
    /// Delete the entry on clean shutdown; otherwise it stays LEAVING with its tokens, so a
    /// restart takes the same ranges back.
    pub unregister_on_shutdown: bool,
    /// Remove entries whose heartbeat is older than this many heartbeat timeouts; 0: never.
    pub auto_forget_unhealthy_periods: u32,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            instance_id: hostname(),
            instance_addr: None,
            instance_http_addr: None,
            instance_zone: String::new(),
            zone_awareness_enabled: false,
            replication_factor: 3,
            num_tokens: 128,
            heartbeat_period: Duration::from_secs(15),
            heartbeat_timeout: Duration::from_secs(60),
            tokens_file: String::new(),
            unregister_on_shutdown: true,
            auto_forget_unhealthy_periods: 10,
        }
    }
}

/// Most tokens an instance may take (Mimir's jsonnet uses 512).
pub const MAX_TOKENS: usize = 512;

impl RingConfig {
    /// Checks values; errors name the field under `prefix` (e.g. `ingester.ring`).
    pub fn validate(&self, prefix: &str) -> Result<(), RingError> {
        let bad = |field: &str, reason: String| RingError::Config {
            field: format!("{prefix}.{field}"),
            reason,
        };
        if self.instance_id.is_empty() {
            return Err(bad("instance_id", "must not be empty".into()));
        }
        if self.instance_id.contains('/') {
            return Err(bad(
                "instance_id",
                format!(
                    "must not contain '/' (it is a KV key segment), got {:?}",
                    self.instance_id
                ),
            ));
        }
        for (field, addr) in [
            ("instance_addr", &self.instance_addr),
            ("instance_http_addr", &self.instance_http_addr),
        ] {
            if let Some(a) = addr {
                if !is_host_port(a) {
                    return Err(bad(field, format!("must be host:port, got {a:?}")));
                }
            }
        }
        if self.replication_factor == 0 {
            return Err(bad("replication_factor", "must be at least 1".into()));
        }
        if !(1..=MAX_TOKENS).contains(&self.num_tokens) {
            return Err(bad(
                "num_tokens",
                format!(
                    "must be between 1 and {MAX_TOKENS}, got {}",
                    self.num_tokens
                ),
            ));
        }
        if self.heartbeat_period < Duration::from_millis(10) {
            return Err(bad(
                "heartbeat_period",
                format!("must be at least 10ms, got {:?}", self.heartbeat_period),
            ));
        }
        if self.heartbeat_timeout <= self.heartbeat_period {
            return Err(bad(
                "heartbeat_timeout",
                format!(
                    "must be longer than heartbeat_period ({:?}), got {:?}",
                    self.heartbeat_period, self.heartbeat_timeout
                ),
            ));
        }
        if self.auto_forget_unhealthy_periods > 1000 {
            return Err(bad(
                "auto_forget_unhealthy_periods",
                format!(
                    "must be at most 1000, got {}",
                    self.auto_forget_unhealthy_periods
                ),
            ));
        }
        Ok(())
    }

    /// How rings read with this configuration interpret their instances.
    pub fn ring_options(&self) -> RingOptions {
        RingOptions {
            replication_factor: self.replication_factor,
            zone_awareness_enabled: self.zone_awareness_enabled,
            heartbeat_timeout: self.heartbeat_timeout,
        }
    }
}

fn is_host_port(a: &str) -> bool {
    match a.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    }
}

/// The machine's hostname, from the environment or the kernel; "localhost" if neither says.
fn hostname() -> String {
    if let Ok(h) = std::env::var("HOSTNAME") {
        if !h.trim().is_empty() {
            return h.trim().to_owned();
        }
    }
    for path in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(h) = std::fs::read_to_string(path) {
            if !h.trim().is_empty() {
                return h.trim().to_owned();
            }
        }
    }
    "localhost".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_follow_mimir() {
        let c = RingConfig::default();
        c.validate("ingester.ring").unwrap();
        assert!(!c.instance_id.is_empty());
        assert_eq!((c.replication_factor, c.num_tokens), (3, 128));
        assert_eq!(c.heartbeat_period, Duration::from_secs(15));
        assert_eq!(c.heartbeat_timeout, Duration::from_secs(60));
        assert_eq!(c.auto_forget_unhealthy_periods, 10);
    }

    #[test]
    fn errors_name_the_field() {
        let check = |c: RingConfig, field: &str| {
            let e = c.validate("ingester.ring").unwrap_err();
            assert!(
                e.to_string().contains(&format!("ingester.ring.{field}:")),
                "{e}"
            );
        };
        check(
            RingConfig {
                replication_factor: 0,
                ..Default::default()
            },
            "replication_factor",
        );
        check(
            RingConfig {
                num_tokens: 513,
                ..Default::default()
            },
            "num_tokens",
        );
        check(
            RingConfig {
                heartbeat_timeout: Duration::from_secs(15),
                ..Default::default()
            },
            "heartbeat_timeout",
        );
        check(
            RingConfig {
                instance_id: "a/b".into(),
                ..Default::default()
            },
            "instance_id",
        );
        check(
            RingConfig {
                instance_addr: Some("nohost".into()),
                ..Default::default()
            },
            "instance_addr",
        );
    }

    #[test]
    fn yaml_with_durations_and_unknown_fields() {
        let c: RingConfig = serde_yaml::from_str(
            "instance_id: ing-1\nheartbeat_period: 5s\nheartbeat_timeout: 30s\nnum_tokens: 512\n",
        )
        .unwrap();
        assert_eq!(c.instance_id, "ing-1");
        assert_eq!(c.heartbeat_period, Duration::from_secs(5));
        assert_eq!(c.num_tokens, 512);
        c.validate("x").unwrap();
        assert!(serde_yaml::from_str::<RingConfig>("num_token: 3\n").is_err());
    }
}
