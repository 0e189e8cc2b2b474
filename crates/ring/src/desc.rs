//! One ring member as stored in the KV: one key per instance, `<prefix>/<instance id>`, so a
//! heartbeat is a compare-and-swap of the instance's own key and never rewrites the ring.

use crate::RingError;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where an instance is in its lifecycle (dskit's states; LEFT only exists for gossip and is not
/// needed with a consistent store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceState {
    /// Registered, no tokens yet (or not ready to take them).
    Pending,
    /// Tokens written, not yet serving writes.
    Joining,
    /// Serving reads and writes for its tokens.
    Active,
    /// Shutting down: still read, no longer written.
    Leaving,
}

impl InstanceState {
    /// Every state, in the order the ring pages and metrics list them.
    pub const ALL: [InstanceState; 4] = [
        InstanceState::Active,
        InstanceState::Leaving,
        InstanceState::Pending,
        InstanceState::Joining,
    ];

    /// The upper-case name used in the KV, on the ring page and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "PENDING",
            InstanceState::Joining => "JOINING",
            InstanceState::Active => "ACTIVE",
            InstanceState::Leaving => "LEAVING",
        }
    }

    /// Whether a running lifecycler may move from `self` to `to` (dskit `changeState`).
    /// LEAVING -> ACTIVE is missing on purpose: it only happens when an instance restarts into
    /// its old LEAVING entry, which [`crate::Lifecycler::start`] handles.
    pub fn can_transition_to(self, to: InstanceState) -> bool {
        use InstanceState::*;
        matches!(
            (self, to),
            (Pending, Joining)
                | (Pending, Active)
                | (Joining, Active)
                | (Joining, Pending)
                | (Active, Leaving)
        ) || self == to
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A ring member's record, stored as JSON under `<prefix>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceDesc {
    pub id: String,
    /// Advertised gRPC address, `host:port`.
    pub addr: String,
    /// Advertised HTTP address, `host:port` (links from the ring pages).
    #[serde(default)]
    pub http_addr: String,
    /// Availability zone; empty when zones are not used.
    #[serde(default)]
    pub zone: String,
    pub state: InstanceState,
    /// Sorted ascending, no duplicates.
    #[serde(default)]
    pub tokens: Vec<u32>,
    /// Unix milliseconds of the last heartbeat.
    pub heartbeat_ms: i64,
    /// Unix milliseconds at which the instance first registered; never moved forward while the
    /// entry exists (shuffle-sharding lookback needs it).
    pub registered_ms: i64,
}

impl InstanceDesc {
    /// Encodes the record for the KV.
    pub fn encode(&self) -> Bytes {
        // A struct of strings, numbers and a plain enum cannot fail to serialize.
        Bytes::from(serde_json::to_vec(self).expect("InstanceDesc serializes"))
    }

    /// Decodes a KV value; `key` only names the entry in the error.
    pub fn decode(key: &str, value: &[u8]) -> Result<Self, RingError> {
        let mut d: InstanceDesc =
            serde_json::from_slice(value).map_err(|source| RingError::Decode {
                key: key.to_owned(),
                source,
            })?;
        // Written by us sorted, but a hand-edited entry must not break the ring's invariants.
        d.tokens.sort_unstable();
        d.tokens.dedup();
        Ok(d)
    }
}

/// The KV key of instance `id` under `prefix` (e.g. `ring/ingester`).
pub fn instance_key(prefix: &str, id: &str) -> String {
    format!("{}/{id}", prefix.trim_end_matches('/'))
}

/// The prefix a ring's watch and list use: `prefix` with one trailing slash, so that
/// `ring/ingester` does not also match `ring/ingester-2/...`.
pub fn ring_prefix(prefix: &str) -> String {
    format!("{}/", prefix.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_uses_upper_case_states() {
        let d = InstanceDesc {
            id: "ing-1".into(),
            addr: "10.0.0.1:9095".into(),
            http_addr: "10.0.0.1:8080".into(),
            zone: "a".into(),
            state: InstanceState::Leaving,
            tokens: vec![1, 5, 9],
            heartbeat_ms: 1_700_000_000_000,
            registered_ms: 1_600_000_000_000,
        };
        let bytes = d.encode();
        assert!(std::str::from_utf8(&bytes)
            .unwrap()
            .contains("\"state\":\"LEAVING\""));
        assert_eq!(InstanceDesc::decode("k", &bytes).unwrap(), d);
        let e = InstanceDesc::decode("ring/x/y", b"{").unwrap_err();
        assert!(e.to_string().contains("ring/x/y"), "{e}");
    }

    #[test]
    fn decode_sorts_and_dedups_tokens() {
        let raw = br#"{"id":"a","addr":"h:1","state":"ACTIVE","tokens":[9,1,9,4],"heartbeat_ms":0,"registered_ms":0}"#;
        assert_eq!(
            InstanceDesc::decode("k", raw).unwrap().tokens,
            vec![1, 4, 9]
        );
    }

    #[test]
    fn transitions_follow_dskit() {
        use InstanceState::*;
        assert!(Pending.can_transition_to(Active));
        assert!(Pending.can_transition_to(Joining));
        assert!(Joining.can_transition_to(Active));
        assert!(Joining.can_transition_to(Pending));
        assert!(Active.can_transition_to(Leaving));
        assert!(!Leaving.can_transition_to(Active));
        assert!(!Active.can_transition_to(Pending));
        assert!(!Leaving.can_transition_to(Joining));
    }

    #[test]
    fn keys() {
        assert_eq!(instance_key("ring/ingester/", "i-1"), "ring/ingester/i-1");
        assert_eq!(ring_prefix("ring/ingester"), "ring/ingester/");
    }
}
