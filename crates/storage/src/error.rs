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
    /// A call to another process failed: transport error, deadline, or the remote's own
    /// server error (`target` names the instance).
    #[error("push to {target} failed: {source}")]
    Remote {
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The request was malformed for the receiving end (a bug or version skew, not bad data).
    #[error("invalid push request: {0}")]
    InvalidRequest(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A series reached fewer ingesters than a write needs; nothing about it is acknowledged.
    #[error("series {series} was stored by {succeeded} of the {required} ingesters a write needs: {cause}")]
    Quorum {
        series: String,
        succeeded: usize,
        required: usize,
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
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
    /// A call to another process failed (`target` names the instance).
    #[error("query of {target} failed: {source}")]
    Remote {
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Too few replicas answered to be sure the answer is complete; never answered partially.
    #[error("incomplete answer: {0}")]
    Incomplete(#[source] Box<dyn std::error::Error + Send + Sync>),
}
