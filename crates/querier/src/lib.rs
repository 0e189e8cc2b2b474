//! The querier's HTTP API: the Prometheus query endpoints over a storage-agnostic
//! [`strata_storage::Queryable`], served under `/api/v1` and Mimir's `/prometheus/api/v1`.

mod api;
mod body_limit;
pub mod config;
pub mod dedup;
mod error;
pub mod federation;
pub mod ingesters;
mod params;
mod query;
mod remote_read;
pub mod selector;
pub mod shard;
pub mod store_after;
pub mod store_gateways;

pub use api::{router, Querier};
pub use config::{QuerierConfig, TenantFederationConfig};
pub use error::ApiError;
