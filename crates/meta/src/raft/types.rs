//! The Raft type configuration and the commands the state machine applies.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Cursor;

openraft::declare_raft_types!(
    /// Strata's meta Raft: u64 node ids, gRPC addresses as nodes, snapshots as bytes.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
);

pub type NodeId = u64;
pub type Node = openraft::BasicNode;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type Raft = openraft::Raft<TypeConfig>;

/// A change proposed to the state machine. Conditions are checked at apply time, so that a CAS
/// is decided in log order on every replica alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Write `value` if the key's version is `expected` (0: absent).
    Cas {
        key: String,
        expected: u64,
        #[serde(with = "b64")]
        value: Bytes,
    },
    /// Delete the key if its version is `expected` (`None`: any version).
    Delete { key: String, expected: Option<u64> },
}

/// The outcome of applying a [`Command`]; blank and membership entries answer `Noop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CommandResult {
    /// A CAS wrote the key at this revision.
    Written {
        version: u64,
    },
    /// A delete removed the key at `revision`, or found it absent (`existed == false`).
    Deleted {
        existed: bool,
        revision: u64,
    },
    /// The condition failed: the key's version is `actual` (0: absent).
    Conflict {
        actual: u64,
    },
    Noop,
}

/// Values travel as base64 strings: JSON arrays of numbers would quadruple them.
pub(crate) mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_json_with_base64_values() {
        let c = Command::Cas {
            key: "ring/a".into(),
            expected: 3,
            value: Bytes::from_static(b"\x00\xffhello"),
        };
        let s = serde_json::to_string(&c).unwrap();
        assert!(s.contains("\"AP9oZWxsbw==\""), "{s}");
        assert_eq!(serde_json::from_str::<Command>(&s).unwrap(), c);
    }
}
