use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

/// An API error, rendered exactly as Prometheus renders it:
/// `{"status":"error","errorType":"bad_data","error":"..."}`.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{0}")]
    BadData(String),
    #[error("{0}")]
    Execution(String),
    #[error("{0}")]
    Unauthorized(#[from] strata_model::TenantError),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    /// Storage failed (the bucket, a block); the message carries the whole error chain.
    #[error("{0}")]
    Internal(String),
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        field: &'static str,
        reason: &'static str,
    },
    #[error("request body is larger than {limit} bytes (querier.max_request_body_bytes)")]
    BodyTooLarge { limit: usize },
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadData(_) => (StatusCode::BAD_REQUEST, "bad_data"),
            Self::Execution(_) => (StatusCode::UNPROCESSABLE_ENTITY, "execution"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "bad_data"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "bad_data"),
            Self::Config { .. } | Self::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl From<strata_storage::QueryError> for ApiError {
    fn from(e: strata_storage::QueryError) -> Self {
        use strata_storage::QueryError as Q;
        match e {
            Q::BadData(m) => Self::BadData(m),
            Q::LimitExceeded(_) => Self::Execution(e.to_string()),
            // A replica set without quorum or a failed remote store: the answer would be partial,
            // so none is given (503: Grafana and promtool show it, senders may retry).
            Q::Unavailable(_) | Q::Remote { .. } | Q::Incomplete(_) => {
                Self::Unavailable(e.to_string())
            }
            Q::Storage(_) => {
                tracing::error!(error = ?e, "query failed reading storage");
                let mut msg = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    msg.push_str(": ");
                    msg.push_str(&s.to_string());
                    src = s.source();
                }
                Self::Internal(msg)
            }
        }
    }
}

impl From<strata_promql::EvalError> for ApiError {
    fn from(e: strata_promql::EvalError) -> Self {
        use strata_promql::EvalError as E;
        match e {
            E::Parse(m) => Self::BadData(m),
            E::Execution(m) | E::Limit(m) => Self::Execution(m),
            E::Timeout(_) => Self::Timeout(e.to_string()),
            E::Storage(s) => s.into(),
            E::LimitExceeded(_) => Self::Execution(e.to_string()),
            E::QueryTooLarge { limit, .. } => {
                let setting = match limit {
                    strata_promql::QueryLimit::Bytes => "querier.max_query_bytes",
                    strata_promql::QueryLimit::Depth => "querier.max_query_depth",
                };
                Self::BadData(format!("{e} ({setting})"))
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_type) = self.parts();
        // Field order as Prometheus writes it.
        let body = format!(
            r#"{{"status":"error","errorType":"{error_type}","error":{}}}"#,
            serde_json::Value::String(self.to_string())
        );
        (status, [("content-type", "application/json")], body).into_response()
    }
}
