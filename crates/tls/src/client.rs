//! rustls client configurations: reloading ones from files (gRPC between processes) and fixed
//! ones from PEM text (notifiers).

use crate::pem::{self, Source};
use crate::server::ReloadingCert;
use crate::verify::{FixedName, NoVerification, ReloadingServerVerifier};
use crate::{ClientTlsConfig, TlsError};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::ResolvesClientCert;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;
use std::path::PathBuf;
use std::sync::Arc;

impl ResolvesClientCert for ReloadingCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn server_name(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName {
        name: name.to_owned(),
    })
}

/// A client configuration from files: servers verified against `ca_file` (for
/// `server_name` when set), `cert_file`/`key_file` presented when set. Every file is read now
/// and again when it changes.
pub fn client_config(
    cfg: &ClientTlsConfig,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut verifier: Arc<dyn ServerCertVerifier> =
        Arc::new(ReloadingServerVerifier::new(PathBuf::from(&cfg.ca_file))?);
    if !cfg.server_name.is_empty() {
        verifier = Arc::new(FixedName {
            inner: verifier,
            name: server_name(&cfg.server_name)?,
        });
    }
    let builder = rustls::ClientConfig::builder_with_provider(crate::provider())
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            what: "TLS versions",
            source,
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut c = if cfg.cert_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder
            .with_client_cert_resolver(Arc::new(ReloadingCert::new(&cfg.cert_file, &cfg.key_file)?))
    };
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(c))
}

/// A fixed client TLS setup from PEM text, as a notifier's `tls_config` gives it (files are
/// read by the caller, which decides whether files are allowed).
#[derive(Debug, Clone, Default)]
pub struct StaticClientTls {
    /// CA bundle of the server; `None`: `default_roots`.
    pub ca_pem: Option<Vec<u8>>,
    /// The client's certificate chain and key, both or neither.
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
    /// The name checked in the server's certificate instead of the URL's host.
    pub server_name: Option<String>,
    /// Accept any server certificate.
    pub insecure_skip_verify: bool,
}

/// A client configuration from [`StaticClientTls`]; `default_roots` verify servers when no CA
/// is given (the system's roots, as the caller loaded them).
pub fn static_client_config(
    t: &StaticClientTls,
    default_roots: Arc<rustls::RootCertStore>,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = crate::provider();
    let verifier: Arc<dyn ServerCertVerifier> = if t.insecure_skip_verify {
        Arc::new(NoVerification(provider.clone()))
    } else {
        let v: Arc<dyn ServerCertVerifier> = match &t.ca_pem {
            Some(ca) => crate::verify::webpki_server(Source::Inline(ca))?,
            None => rustls::client::WebPkiServerVerifier::builder_with_provider(
                default_roots,
                provider.clone(),
            )
            .build()
            .map_err(|source| TlsError::Verifier {
                what: "system CA bundle",
                source,
            })?,
        };
        match &t.server_name {
            Some(n) if !n.is_empty() => Arc::new(FixedName {
                inner: v,
                name: server_name(n)?,
            }),
            _ => v,
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|source| TlsError::Rustls {
            what: "TLS versions",
            source,
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&t.cert_pem, &t.key_pem) {
        (Some(c), Some(k)) => {
            let chain = pem::certs(Source::Inline(c), "client certificate")?;
            let key = pem::key(Source::Inline(k), "client key")?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|source| TlsError::Rustls {
                    what: "client certificate and key do not belong together",
                    source,
                })
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(TlsError::Pem {
            what: "client certificate",
            path: PathBuf::from("(inline)"),
            reason: "a client certificate needs its key and the key its certificate".into(),
        }),
    }
}
