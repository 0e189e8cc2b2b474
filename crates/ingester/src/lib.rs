//! The ingester: per-tenant in-memory heads of compressed chunks with a postings index, made
//! durable by a write-ahead log with group commit and periodic checkpoints.
//!
//! It implements [`strata_storage::Pusher`] for distributors and [`strata_storage::Queryable`]
//! for queriers.

pub mod config;
mod error;
pub mod head;
mod ingester;
pub mod membership;
mod metrics;
mod shipper;
pub mod wal;

pub use config::IngesterConfig;
pub use error::IngesterError;
pub use ingester::Ingester;
pub use membership::RingMembership;
pub use shipper::ShipReport;
