use thiserror::Error;

/// A push that failed as a whole for a reason the sender should retry (HTTP 5xx).
#[derive(Debug, Error)]
pub enum PushError {
    /// The write-ahead log could not make the batch durable.
    #[error("write-ahead log failure: {0}")]
    Wal(#[source] std::io::Error),
    /// The receiving component is shutting down or not ready yet.
    #[error("{0} is not accepting writes: {1}")]
    Unavailable(&'static str, &'static str),
}

/// A query that failed.
#[derive(Debug, Error)]
pub enum QueryError {
    /// The query's inputs are invalid (HTTP 400, `bad_data`).
    #[error("{0}")]
    BadData(String),
    /// A limit protecting the cluster was hit (HTTP 422, `execution`).
    #[error("query limit exceeded: {0}")]
    LimitExceeded(String),
    /// The storage is not ready (HTTP 503).
    #[error("{0} is not ready")]
    Unavailable(&'static str),
    /// Reading persisted blocks failed (HTTP 500/503: the bucket or a block is at fault, not
    /// the query).
    #[error("reading blocks failed")]
    Storage(#[source] Box<crate::block::BlockError>),
}
