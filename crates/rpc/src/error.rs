use thiserror::Error;

/// Errors of setting up gRPC clients and servers.
#[derive(Debug, Error)]
pub enum RpcError {
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    /// The TLS files of `grpc_client.tls` do not load.
    #[error("{0}")]
    Tls(#[from] strata_tls::TlsError),
    #[error("invalid address {address:?} of instance {target}: {source}")]
    Address {
        target: String,
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// A gRPC status from another process, shown as `<code>: <message>` (tonic's own `Display`
/// dumps details and metadata into log lines and HTTP error bodies).
#[derive(Debug, Error)]
#[error("{code:?}: {message}")]
pub struct RemoteStatus {
    pub code: tonic::Code,
    pub message: String,
}

impl From<tonic::Status> for RemoteStatus {
    fn from(s: tonic::Status) -> Self {
        Self {
            code: s.code(),
            message: s.message().to_owned(),
        }
    }
}
