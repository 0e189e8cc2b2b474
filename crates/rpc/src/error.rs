use thiserror::Error;

/// Errors of setting up gRPC clients and servers.
#[derive(Debug, Error)]
pub enum RpcError {
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("invalid address {address:?} of instance {target}: {source}")]
    Address {
        target: String,
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
}
