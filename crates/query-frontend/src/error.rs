//! Errors of the query-frontend.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum FrontendError {
    #[error("invalid configuration {field}: {reason}")]
    Config { field: &'static str, reason: String },
    /// The downstream querier could not be reached or did not answer.
    #[error("querier {target} did not answer: {source}")]
    Downstream {
        target: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A piece's answer is not the Prometheus JSON a querier gives.
    #[error("querier answer for {piece} is not a Prometheus matrix: {reason}")]
    BadAnswer { piece: String, reason: String },
}
