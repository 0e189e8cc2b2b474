//! Strata's shared data model: label sets, samples, label matchers, tenants and per-tenant limits.
//!
//! Every component speaks these types; none of them knows about wire formats or storage layout.

pub mod batch;
mod error;
pub mod labels;
pub mod limits;
pub mod matcher;
pub mod sample;
pub mod tenant;
pub mod time;

pub use batch::{MetricMetadata, MetricType, SeriesEntry, WriteBatch};
pub use error::ModelError;
pub use labels::{Label, Labels, METRIC_NAME};
pub use limits::{Limits, Overrides};
pub use matcher::{MatchOp, Matcher};
pub use sample::{is_stale_nan, Sample, STALE_NAN};
pub use tenant::{TenancyConfig, TenancyMode, TenantError, TenantId};
