//! The store-gateway: answers series selections from the blocks in the bucket.
//!
//! It never lists the bucket on the query path: each tenant's bucket index (kept by the
//! compactor) says which blocks exist, and is re-read every `sync_interval`. Blocks are opened
//! on first use (meta, series file, samples footer and page index) and kept in a cache bounded
//! by bytes; a selection then fetches only the samples pages of matching series (see
//! `strata_storage::block::BlockReader`). Memory therefore depends on the cache budget and the
//! query, not on the size of the bucket.

pub mod config;
mod error;
mod gateway;
mod metrics;

pub use config::StoreGatewayConfig;
pub use error::StoreGatewayError;
pub use gateway::{BlockSharding, StoreGateway, AGGR_LABEL};

/// Key prefix of the store-gateway ring in the cluster KV.
pub const RING_PREFIX: &str = "ring/store-gateway";
