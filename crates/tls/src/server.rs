//! rustls server configurations with a certificate read again when its files change.

use crate::pem::{self, Source};
use crate::reload::Reloading;
use crate::verify::ReloadingClientVerifier;
use crate::{ServerTlsConfig, TlsError};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::PathBuf;
use std::sync::Arc;

/// A certificate and key from two files, read again when either changes. Serves as the
/// server's certificate and as a client's.
#[derive(Debug)]
pub(crate) struct ReloadingCert(Reloading<CertifiedKey>);

impl ReloadingCert {
    pub(crate) fn new(cert_file: &str, key_file: &str) -> Result<Self, TlsError> {
        let (c, k) = (PathBuf::from(cert_file), PathBuf::from(key_file));
        let files = vec![c.clone(), k.clone()];
        Ok(Self(Reloading::new("certificate", files, move || {
            pem::certified_key(Source::File(&c), Source::File(&k))
        })?))
    }

    pub(crate) fn current(&self) -> Arc<CertifiedKey> {
        self.0.get()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A server configuration: `cfg`'s certificate, and with `client_ca_file` a required client
/// certificate signed by that CA. `alpn`: the protocols offered (`h2` for gRPC; `h2` and
/// `http/1.1` for the HTTP API). Every file is read now (an error names it) and again when it
/// changes.
pub fn server_config(
    cfg: &ServerTlsConfig,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert = Arc::new(ReloadingCert::new(&cfg.cert_file, &cfg.key_file)?);
    let builder = rustls::ServerConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            what: "TLS versions",
            source,
        })?;
    let mut c = if cfg.client_ca_file.is_empty() {
        builder.with_no_client_auth().with_cert_resolver(cert)
    } else {
        let v = ReloadingClientVerifier::new(PathBuf::from(&cfg.client_ca_file))?;
        builder
            .with_client_cert_verifier(Arc::new(v))
            .with_cert_resolver(cert)
    };
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(c))
}
