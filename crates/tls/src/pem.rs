//! Certificates, keys and CA bundles from PEM files or PEM text.

use crate::TlsError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use std::path::{Path, PathBuf};

/// Where PEM comes from: a file, or text from a configuration.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    File(&'a Path),
    Inline(&'a [u8]),
}

impl Source<'_> {
    fn path(&self) -> PathBuf {
        match self {
            Source::File(p) => p.to_path_buf(),
            Source::Inline(_) => PathBuf::from("(inline)"),
        }
    }

    fn bytes(&self, what: &'static str) -> Result<Vec<u8>, TlsError> {
        match self {
            Source::File(p) => std::fs::read(p).map_err(|e| TlsError::Pem {
                what,
                path: p.to_path_buf(),
                reason: format!("cannot read: {e}"),
            }),
            Source::Inline(b) => Ok(b.to_vec()),
        }
    }
}

/// Every certificate in `src`, in order; at least one.
pub(crate) fn certs(
    src: Source<'_>,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = src.bytes(what)?;
    let bad = |reason: String| TlsError::Pem {
        what,
        path: src.path(),
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad("holds no certificate".into()));
    }
    Ok(certs)
}

/// The one private key in `src`.
pub(crate) fn key(src: Source<'_>, what: &'static str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = src.bytes(what)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        what,
        path: src.path(),
        reason: format!("holds no usable private key: {e}"),
    })
}

/// A certificate chain and its key, checked to belong together.
pub(crate) fn certified_key(
    cert: Source<'_>,
    key_src: Source<'_>,
) -> Result<CertifiedKey, TlsError> {
    let chain = certs(cert, "certificate")?;
    let key = key(key_src, "private key")?;
    CertifiedKey::from_der(chain, key, &crate::provider()).map_err(|source| TlsError::Rustls {
        what: "certificate and key do not belong together",
        source,
    })
}

/// A CA bundle as a root store; at least one certificate must be usable as a root.
pub(crate) fn roots(src: Source<'_>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for c in certs(src, "CA bundle")? {
        store.add(c).map_err(|source| TlsError::Rustls {
            what: "CA bundle holds a certificate that is not a usable root",
            source,
        })?;
    }
    Ok(store)
}
