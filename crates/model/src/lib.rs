//! Strata's shared data model: label sets, samples, label matchers, tenants, per-tenant limits
//! and configuration secrets.
//!
//! Every component speaks these types; none of them knows about wire formats or storage layout.

pub mod batch;
mod error;
pub mod labels;
pub mod limits;
pub mod matcher;
pub mod relabel;
pub mod sample;
pub mod secret;
pub mod secret_audit;
pub mod shard;
pub mod tenant;
pub mod time;

pub use batch::{MetricMetadata, MetricType, SeriesEntry, WriteBatch};
pub use error::ModelError;
pub use labels::{Label, Labels, METRIC_NAME};
pub use limits::{Limits, Overrides};
pub use matcher::{MatchOp, Matcher};
pub use sample::{is_stale_nan, Sample, STALE_NAN};
pub use secret::{PlaceholderError, Secret, SECRET_PLACEHOLDER};
pub use shard::{QueryShard, QUERY_SHARD_PARAM};
pub use tenant::{TenancyConfig, TenancyMode, TenantError, TenantId};
