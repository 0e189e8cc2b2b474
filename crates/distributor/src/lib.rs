//! The distributor: receives Prometheus remote write (1.0 and 2.0), validates series like Mimir,
//! enforces per-tenant limits, and forwards the valid rest to the ingesters.

pub mod config;
mod error;
pub mod ha_tracker;
mod http;
mod metrics;
mod rate_limit;
pub mod replication;
pub mod validation;

pub use config::DistributorConfig;
pub use error::DistributorError;
pub use ha_tracker::{HaTracker, HaTrackerConfig};
pub use http::{router, ClusterHooks, Distributor};
pub use replication::{IngesterClients, ReplicatedPusher};
