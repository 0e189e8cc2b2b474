//! The query-frontend (`--target=query-frontend`, and in front of the querier in `all`): cuts
//! range queries at day boundaries so that each day is a query of its own, answers days that
//! are old enough from a results cache bounded in bytes, retries a querier's 5xx, and joins the
//! pieces into the answer the querier would have given (`docs/query-frontend.md`).

mod cache;
pub mod config;
mod downstream;
mod error;
mod frontend;
mod memcached;
mod merge;
mod metrics;
mod queue;
pub mod shard;
pub mod split;

pub use cache::ResultsCache;
pub use config::{CacheBackend, MemcachedConfig, QueryFrontendConfig};
pub use downstream::{Downstream, HttpDownstream, RouterDownstream};
pub use error::FrontendError;
pub use frontend::{in_front_of, router, QueryFrontend};
pub use merge::merge_matrices;
pub use queue::FairQueue;
