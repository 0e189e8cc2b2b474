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
    /// A read limit was reached; the store stopped reading there (HTTP 422, `execution`).
    #[error("query limit exceeded: {0}")]
    LimitExceeded(#[from] LimitExceeded),
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

/// A limit on what one read may return. Each is a setting of the querier, which passes its
/// value down with the read so that every store stops as soon as its answer exceeds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadLimit {
    /// Series in one answer (`querier.max_series_per_request`).
    Series,
    /// Samples in one answer (`querier.max_samples_per_read`).
    Samples,
    /// Estimated bytes one PromQL query holds (`querier.max_query_memory_bytes`).
    QueryMemory,
    /// Distinct label names in one answer (`querier.max_label_names_per_request`).
    LabelNames,
    /// Distinct values of one label in one answer (`querier.max_label_values_per_request`).
    LabelValues,
}

impl ReadLimit {
    /// Every limit, for lookups by name.
    pub const ALL: [ReadLimit; 5] = [
        Self::Series,
        Self::Samples,
        Self::QueryMemory,
        Self::LabelNames,
        Self::LabelValues,
    ];

    /// The configuration field that sets this limit.
    pub fn setting(self) -> &'static str {
        match self {
            Self::Series => "querier.max_series_per_request",
            Self::Samples => "querier.max_samples_per_read",
            Self::QueryMemory => "querier.max_query_memory_bytes",
            Self::LabelNames => "querier.max_label_names_per_request",
            Self::LabelValues => "querier.max_label_values_per_request",
        }
    }

    /// A short stable name (gRPC peers exchange limits by it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Series => "series",
            Self::Samples => "samples",
            Self::QueryMemory => "query_memory",
            Self::LabelNames => "label_names",
            Self::LabelValues => "label_values",
        }
    }

    /// The limit named `s` by [`ReadLimit::as_str`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    fn describe(self, max: u64) -> String {
        match self {
            Self::Series => format!("the query matches more than {max} series"),
            Self::Samples => format!("the query selects more than {max} samples"),
            Self::QueryMemory => format!("the query needs more than {max} bytes of memory"),
            Self::LabelNames => format!("the query matches more than {max} label names"),
            Self::LabelValues => format!("the query matches more than {max} label values"),
        }
    }
}

/// An answer would exceed a read limit; the read stopped there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{} ({}); narrow the selector or the time range", .limit.describe(*.max), .limit.setting())]
pub struct LimitExceeded {
    /// Which limit.
    pub limit: ReadLimit,
    /// Its value.
    pub max: u64,
}
