use std::path::PathBuf;
use thiserror::Error;

/// Errors of loading TLS settings, certificates and keys.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A setting is missing or wrong; `field` is its full path (`server.grpc_tls.cert_file`).
    #[error("{field}: {reason}")]
    Config { field: String, reason: String },
    /// A PEM file (or inline PEM text) does not hold what it should.
    #[error("{what} {path}: {reason}")]
    Pem {
        what: &'static str,
        /// The file, or `(inline)` for PEM text.
        path: PathBuf,
        reason: String,
    },
    /// rustls refused the certificate, key or CA bundle.
    #[error("{what}: {source}")]
    Rustls {
        what: &'static str,
        #[source]
        source: rustls::Error,
    },
    /// A CA bundle does not make a usable verifier (no usable root, ...).
    #[error("{what}: {source}")]
    Verifier {
        what: &'static str,
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// A server name (`server_name`) is not a DNS name or IP address.
    #[error("server name {name:?} is not a DNS name or an IP address")]
    ServerName { name: String },
}
