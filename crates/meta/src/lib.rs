//! Cluster state for Strata: a small, strongly consistent key-value store with versions,
//! compare-and-swap and prefix watches, in the shape of dskit's `kv.Client`.
//!
//! Rings (instances, tokens, heartbeats) and HA-tracker elections live here. Components code
//! against [`KvStore`]; the backends are [`MemoryKv`] (one process, tests), [`MetaNode`] (a voter
//! of the Raft-replicated store, openraft 0.9) and [`RemoteKv`] (a process that is not a voter,
//! over gRPC). [`conformance`] checks any backend against the contract. See docs/meta.md.

mod admin;
pub mod config;
pub mod conformance;
mod error;
mod grpc;
pub mod kv;
pub mod memory;
mod node;
pub mod raft;
mod remote;
mod server;
mod watch;

pub use admin::{AddLearner, ChangeMembership, MemberStatus, MetaStatus};
pub use config::{MetaConfig, MetaPeer};
pub use error::{KvError, MetaError, StoreError};
pub use kv::{
    cas_update, KvEntry, KvStore, WatchEvent, WatchStream, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};
pub use memory::MemoryKv;
pub use node::MetaNode;
pub use remote::{RemoteKv, RemoteKvOptions};
pub use server::{KvServer, KvService, RaftServer, RaftService};
