//! TLS for Strata's servers and clients, with rustls (ring) only.
//!
//! - [`ServerTlsConfig`] / [`ClientTlsConfig`]: the settings every TLS listener and client of
//!   Strata shares (`server.http_tls`, `server.grpc_tls`, `grpc_client.tls`).
//! - [`server_config`] / [`client_config`]: rustls configurations whose certificates, keys and
//!   CA bundles are read again when their files change, checked at every handshake: rotating
//!   a certificate is replacing its files; connections opened afterwards use the new one, open
//!   ones keep theirs. A file that does not load (half written, key and certificate not
//!   matching yet) keeps the previous certificate in use and is logged once per change.
//! - [`grpc`]: a tonic listener that accepts TLS connections only, and a tonic connector that
//!   opens them ([`GrpcClientTls`]).
//! - [`static_client_config`]: a fixed client configuration from PEM text (notifiers'
//!   `tls_config`).

mod client;
mod config;
mod error;
pub mod grpc;
mod pem;
mod reload;
mod server;
#[cfg(feature = "testing")]
pub mod testing;
mod verify;

pub use client::{client_config, static_client_config, StaticClientTls};
pub use config::{ClientTlsConfig, ServerTlsConfig};
pub use error::TlsError;
pub use grpc::{GrpcClientTls, GrpcServerTls};
pub use server::server_config;

use std::sync::Arc;

/// The one crypto provider Strata's TLS uses: the dependency tree holds two (ring and
/// aws-lc-rs), so rustls cannot pick a process default by itself.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// ALPN of gRPC (HTTP/2 only).
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";
