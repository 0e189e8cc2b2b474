use axum::http::StatusCode;
use thiserror::Error;

/// Errors that end a push request as a whole.
#[derive(Debug, Error)]
pub enum DistributorError {
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("unsupported Content-Encoding {0:?}: remote write requires snappy")]
    UnsupportedEncoding(String),
    #[error("unsupported Content-Type {0:?}: expected application/x-protobuf, optionally with proto=prometheus.WriteRequest or proto=io.prometheus.write.v2.Request")]
    UnsupportedContentType(String),
    #[error("request of {size} bytes exceeds the limit of {limit} bytes (distributor.max_recv_msg_size)")]
    TooLarge { size: usize, limit: usize },
    #[error("body is not valid snappy block-format data: {0}")]
    Snappy(#[source] snap::Error),
    #[error("body is not a valid {message}: {source}")]
    Decode {
        message: &'static str,
        #[source]
        source: strata_proto::DecodeError,
    },
    #[error(transparent)]
    Tenant(#[from] strata_model::TenantError),
    #[error("ingestion rate limit ({}, burst {burst}) exceeded for tenant {tenant}: request with {samples} samples refused; raise limits.ingestion_rate / ingestion_burst_size or slow the sender", describe_rate(*rate, *distributors))]
    RateLimited {
        tenant: String,
        /// The tenant's limit, samples/s.
        rate: f64,
        /// Healthy distributors sharing it (each admits `rate / distributors`).
        distributors: usize,
        burst: u64,
        samples: usize,
    },
    #[error(transparent)]
    Push(#[from] strata_storage::PushError),
    #[error(transparent)]
    Ha(#[from] crate::ha_tracker::HaError),
    #[error(transparent)]
    Ring(#[from] strata_ring::RingError),
}

impl DistributorError {
    /// The status a remote-write sender understands: 4xx is never retried, 429 and 5xx are.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Config { .. } | Self::Ring(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UnsupportedEncoding(_) | Self::UnsupportedContentType(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Snappy(_) | Self::Decode { .. } => StatusCode::BAD_REQUEST,
            Self::Tenant(_) => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Push(
                strata_storage::PushError::Unavailable(..)
                | strata_storage::PushError::Quorum { .. },
            ) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Push(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Ha(crate::ha_tracker::HaError::TooManyClusters { .. }) => StatusCode::BAD_REQUEST,
            Self::Ha(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Short reason label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Config { .. } | Self::Ring(_) => "config",
            Self::UnsupportedEncoding(_) => "unsupported-encoding",
            Self::UnsupportedContentType(_) => "unsupported-content-type",
            Self::TooLarge { .. } => "too-large",
            Self::Snappy(_) => "bad-snappy",
            Self::Decode { .. } => "bad-protobuf",
            Self::Tenant(_) => "no-tenant",
            Self::RateLimited { .. } => "rate-limited",
            Self::Push(_) => "ingester-failure",
            Self::Ha(crate::ha_tracker::HaError::TooManyClusters { .. }) => "too-many-ha-clusters",
            Self::Ha(_) => "ha-tracker-failure",
        }
    }
}

fn describe_rate(rate: f64, distributors: usize) -> String {
    if distributors <= 1 {
        format!("{rate} samples/s")
    } else {
        format!(
            "{rate} samples/s shared by {distributors} distributors: {} samples/s here",
            rate / distributors as f64
        )
    }
}
