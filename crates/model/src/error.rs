use thiserror::Error;

/// Errors raised while building model values from untrusted input.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A regular expression in a `=~` or `!~` matcher does not compile.
    #[error("invalid regular expression {pattern:?} for label {label:?}: {source}")]
    InvalidRegex {
        label: String,
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
    /// A tenant id breaks the rules of [`crate::TenantId::new`].
    #[error("invalid tenant id {id:?}: {reason}")]
    InvalidTenant { id: String, reason: &'static str },
    /// A per-tenant limit has an invalid value; `field` is its full path.
    #[error("{field}: {reason}")]
    InvalidLimit { field: String, reason: &'static str },
    /// A query shard (`__query_shard__`) is malformed or out of range.
    #[error("__query_shard__ {value:?}: {reason}")]
    InvalidShard { value: String, reason: String },
}
