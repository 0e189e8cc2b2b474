//! TLS of HTTP notifiers (webhook, Slack, PagerDuty) with a `tls_config`: a rustls client
//! configuration per distinct setting, over the system's roots when it names no CA.

use std::sync::{Arc, OnceLock};

/// The system's CA certificates, loaded once (what reqwest's default clients trust too).
pub(crate) fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "cannot load some of the system's CA certificates");
            }
            let (added, ignored) = store.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system CA certificates loaded");
            Arc::new(store)
        })
        .clone()
}

/// The rustls configuration of a notifier's `tls_config`, HTTP/1.1 only (the clients speak no
/// HTTP/2).
pub(crate) fn client_config(
    t: &strata_tls::StaticClientTls,
) -> Result<rustls::ClientConfig, strata_tls::TlsError> {
    let mut c = strata_tls::static_client_config(t, system_roots())?;
    c.alpn_protocols = vec![strata_tls::ALPN_HTTP1.to_vec()];
    Ok(c)
}
