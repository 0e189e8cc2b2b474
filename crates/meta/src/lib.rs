//! Cluster state for Strata: a small, strongly consistent key-value store with versions,
//! compare-and-swap and prefix watches, in the shape of dskit's `kv.Client`.
//!
//! Rings (instances, tokens, heartbeats) and HA-tracker elections live here. Components code
//! against [`KvStore`]; the backends are [`MemoryKv`] (one process, tests) and the Raft-replicated
//! store run by the `meta` target.

mod error;
pub mod kv;
pub mod memory;

pub use error::KvError;
pub use kv::{cas_update, KvEntry, KvStore, WatchEvent, WatchStream};
pub use memory::MemoryKv;
