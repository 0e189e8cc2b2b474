use thiserror::Error;

/// Why a query failed. Each variant maps to one Prometheus API `errorType`.
#[derive(Debug, Error)]
pub enum EvalError {
    /// The query does not parse or is invalid (`bad_data`, HTTP 400).
    #[error("{0}")]
    Parse(String),
    /// The query is valid but cannot be evaluated, e.g. many-to-many matching or duplicate
    /// series after label removal (`execution`, HTTP 422).
    #[error("{0}")]
    Execution(String),
    /// A limit such as the maximum number of samples was hit (`execution`, HTTP 422).
    #[error("{0}")]
    Limit(String),
    /// The query ran longer than its timeout (`timeout`, HTTP 503).
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] strata_storage::QueryError),
    /// The query would exceed one of its limits, e.g. `querier.max_query_memory_bytes`
    /// (`execution`, HTTP 422); the message names the setting.
    #[error(transparent)]
    LimitExceeded(strata_storage::LimitExceeded),
    /// The query is longer or nests deeper than allowed; found before parsing or evaluating
    /// it (`bad_data`, HTTP 400).
    #[error("{}", match .limit {
        crate::QueryLimit::Bytes => format!("the query is longer than {} bytes", .max),
        crate::QueryLimit::Depth => format!("the query nests deeper than {} levels", .max),
    })]
    QueryTooLarge {
        limit: crate::QueryLimit,
        max: usize,
    },
}
