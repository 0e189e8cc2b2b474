use crate::amconfig::AmConfigError;
use crate::silence::SilenceError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::path::PathBuf;
use thiserror::Error;

/// Errors of the alertmanager component.
#[derive(Debug, Error)]
pub enum AlertmanagerError {
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("cannot read alertmanager configuration {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid alertmanager configuration {path}: {source}")]
    LoadConfig {
        path: PathBuf,
        #[source]
        source: AmConfigError,
    },
    #[error("cannot build the HTTP client for notifications: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// A request the HTTP API refuses.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    BadFilter(crate::matcher::MatcherError),
    #[error("invalid receiver regex {0:?}: {1}")]
    BadReceiverRegex(String, #[source] regex::Error),
    #[error(transparent)]
    Silence(#[from] SilenceError),
    #[error("silence not found")]
    SilenceNotFound,
    #[error("failed to reload config: {0}")]
    Reload(#[source] AlertmanagerError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BadFilter(_) | ApiError::BadReceiverRegex(..) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Silence(SilenceError::NotFound) | ApiError::SilenceNotFound => {
                StatusCode::NOT_FOUND
            }
            ApiError::Silence(_) => StatusCode::BAD_REQUEST,
            ApiError::Reload(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    /// Upstream answers errors with a JSON string body.
    fn into_response(self) -> Response {
        let body = serde_json::Value::String(self.to_string()).to_string();
        (
            self.status(),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}

/// A failed notification attempt.
#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("POST {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("POST {url}: unexpected status code {status}: {body}")]
    ServerError {
        url: String,
        status: u16,
        body: String,
    },
    #[error("POST {url}: unexpected status code {status}: {body}")]
    ClientError {
        url: String,
        status: u16,
        body: String,
    },
    #[error("POST {url}: cannot read credentials: {source}")]
    Credentials {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("POST {url}: notify retry canceled: deadline exceeded")]
    DeadlineExceeded { url: String },
}

impl NotifyError {
    /// Transport errors and 5xx are retried; 4xx (including 429) is not, like upstream's webhook.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            NotifyError::Transport { .. } | NotifyError::ServerError { .. }
        )
    }
}
