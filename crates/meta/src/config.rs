//! The `meta:` section of the configuration: this node's id, the voters, timings.

use crate::error::MetaError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One voter of the meta cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaPeer {
    /// Raft node id; never reused for a node that lost its disk.
    pub id: u64,
    /// `host:port` of the voter's gRPC server, as the other voters reach it.
    pub address: String,
}

/// The `meta:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaConfig {
    /// This node's Raft id (at least 1).
    pub node_id: u64,
    /// The voters of the initial cluster, this node included. Empty: a single voter in this
    /// process, which is its own cluster (it bootstraps an empty log by itself).
    pub peers: Vec<MetaPeer>,
    /// Initialize the cluster with `peers` if this node's log is empty. Set it on the first start
    /// of the initial voters only: a node that lost its disk and starts again with `bootstrap`
    /// would found a second cluster under the same ids (see docs/meta.md). Nodes joining later
    /// start without it and are added with the admin membership API.
    pub bootstrap: bool,
    /// Directory of the Raft log, vote and snapshot; relative paths are under the data
    /// directory.
    pub dir: PathBuf,
    /// Leader heartbeat period.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// A follower that hears nothing for a random time in [min, max) starts an election.
    #[serde(with = "humantime_serde")]
    pub election_timeout_min: Duration,
    #[serde(with = "humantime_serde")]
    pub election_timeout_max: Duration,
    /// Deadline of every gRPC call (Raft and Kv) and of linearizable reads and writes.
    #[serde(with = "humantime_serde")]
    pub rpc_timeout: Duration,
    /// A snapshot is taken after this many log entries, and the log before it is purged.
    pub snapshot_every: u64,
    /// Period of watch progress events.
    #[serde(with = "humantime_serde")]
    pub progress_interval: Duration,
    /// Local IP for outgoing connections to the other voters (chaos tests give each process
    /// its own 127.0.0.x); unset: the system's choice.
    pub bind_address: Option<IpAddr>,
}

impl Default for MetaConfig {
    fn default() -> Self {
        Self {
            node_id: 1,
            peers: Vec::new(),
            bootstrap: false,
            dir: PathBuf::from("meta"),
            heartbeat_interval: Duration::from_millis(500),
            election_timeout_min: Duration::from_millis(1500),
            election_timeout_max: Duration::from_millis(3000),
            rpc_timeout: Duration::from_secs(5),
            snapshot_every: 1000,
            progress_interval: Duration::from_secs(1),
            bind_address: None,
        }
    }
}

impl MetaConfig {
    /// Checks values; errors name the field.
    pub fn validate(&self) -> Result<(), MetaError> {
        let bad = |field: &'static str, reason: String| Err(MetaError::Config { field, reason });
        if self.node_id == 0 {
            return bad("meta.node_id", "must be at least 1".into());
        }
        let mut ids = BTreeSet::new();
        for p in &self.peers {
            if p.id == 0 {
                return bad("meta.peers", "ids must be at least 1".into());
            }
            if !ids.insert(p.id) {
                return bad("meta.peers", format!("id {} appears twice", p.id));
            }
            if !valid_address(&p.address) {
                return bad(
                    "meta.peers",
                    format!("address {:?} of node {} is not host:port", p.address, p.id),
                );
            }
        }
        if !self.peers.is_empty() && !ids.contains(&self.node_id) {
            return bad(
                "meta.peers",
                format!("must include this node (meta.node_id {})", self.node_id),
            );
        }
        if self.heartbeat_interval.is_zero() {
            return bad("meta.heartbeat_interval", "must be positive".into());
        }
        if self.election_timeout_min <= self.heartbeat_interval {
            return bad(
                "meta.election_timeout_min",
                "must exceed meta.heartbeat_interval".into(),
            );
        }
        if self.election_timeout_max <= self.election_timeout_min {
            return bad(
                "meta.election_timeout_max",
                "must exceed meta.election_timeout_min".into(),
            );
        }
        if self.rpc_timeout < Duration::from_millis(10) {
            return bad("meta.rpc_timeout", "must be at least 10ms".into());
        }
        if self.snapshot_every == 0 {
            return bad("meta.snapshot_every", "must be at least 1".into());
        }
        if self.progress_interval.is_zero() {
            return bad("meta.progress_interval", "must be positive".into());
        }
        Ok(())
    }

    /// How long without news from a quorum before watches stop reporting progress.
    pub(crate) fn contact_window(&self) -> Duration {
        self.election_timeout_max * 2
    }
}

fn valid_address(a: &str) -> bool {
    match a.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_yaml_names_fields() {
        MetaConfig::default().validate().unwrap();
        let c: MetaConfig = serde_json::from_str(
            r#"{"node_id": 2, "peers": [{"id": 1, "address": "10.0.0.1:9095"},
                {"id": 2, "address": "10.0.0.2:9095"}], "heartbeat_interval": "250ms"}"#,
        )
        .unwrap();
        assert_eq!(c.heartbeat_interval, Duration::from_millis(250));
        c.validate().unwrap();

        let mut c2 = c.clone();
        c2.node_id = 3;
        let e = c2.validate().unwrap_err().to_string();
        assert!(e.contains("meta.peers: must include this node"), "{e}");
        let mut c3 = c.clone();
        c3.election_timeout_max = c3.election_timeout_min;
        let e = c3.validate().unwrap_err().to_string();
        assert!(e.contains("meta.election_timeout_max"), "{e}");
        let mut c4 = c;
        c4.peers[0].address = "nohost".into();
        assert!(c4.validate().unwrap_err().to_string().contains("host:port"));
        assert!(serde_json::from_str::<MetaConfig>(r#"{"nodeid": 1}"#).is_err());
    }
}
