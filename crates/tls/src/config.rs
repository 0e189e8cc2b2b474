//! The TLS settings shared by every listener and client.

use crate::TlsError;
use serde::{Deserialize, Serialize};

/// TLS of a listener: its certificate and key, and optionally the CA its clients'
/// certificates must chain to (then a client without a valid certificate is refused during
/// the handshake). PEM files, read again when they change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// The server's certificate chain (leaf first).
    pub cert_file: String,
    /// The private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
    /// CA bundle of client certificates. Set: every client must present a certificate it
    /// signed. Empty: no client certificate is asked for.
    pub client_ca_file: String,
}

/// TLS of a client: the CA that signs the servers' certificates, the client's own certificate
/// and key (mutual TLS), and the name expected in the servers' certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// The client's certificate chain, presented to servers that ask for one.
    pub cert_file: String,
    /// The private key of the client's certificate.
    pub key_file: String,
    /// CA bundle the servers' certificates must chain to.
    pub ca_file: String,
    /// The name checked in every server's certificate instead of the host dialled (useful when
    /// peers are dialled by IP address and share one certificate name). Empty: the host.
    pub server_name: String,
}

fn required(v: &str, field: String, why: &str) -> Result<(), TlsError> {
    if v.trim().is_empty() {
        return Err(TlsError::Config {
            field,
            reason: format!("must be set: {why}"),
        });
    }
    Ok(())
}

impl ServerTlsConfig {
    /// Checks the settings under `prefix` (e.g. `server.grpc_tls`); with
    /// `require_client_ca` (mutual TLS) the client CA must be set.
    pub fn validate(&self, prefix: &str, require_client_ca: bool) -> Result<(), TlsError> {
        required(
            &self.cert_file,
            format!("{prefix}.cert_file"),
            "the server's certificate",
        )?;
        required(
            &self.key_file,
            format!("{prefix}.key_file"),
            "the key of the server's certificate",
        )?;
        if require_client_ca {
            required(
                &self.client_ca_file,
                format!("{prefix}.client_ca_file"),
                "every gRPC client must present a certificate this CA signed",
            )?;
        }
        Ok(())
    }
}

impl ClientTlsConfig {
    /// Checks the settings under `prefix` (e.g. `grpc_client.tls`); with `require_cert`
    /// (mutual TLS) the client's certificate and key must be set.
    pub fn validate(&self, prefix: &str, require_cert: bool) -> Result<(), TlsError> {
        required(
            &self.ca_file,
            format!("{prefix}.ca_file"),
            "the CA that signs the servers' certificates",
        )?;
        if require_cert || !self.cert_file.is_empty() || !self.key_file.is_empty() {
            required(
                &self.cert_file,
                format!("{prefix}.cert_file"),
                "the client's certificate, which the servers require",
            )?;
            required(
                &self.key_file,
                format!("{prefix}.key_file"),
                "the key of the client's certificate",
            )?;
        }
        if !self.server_name.is_empty()
            && rustls_pki_types::ServerName::try_from(self.server_name.as_str()).is_err()
        {
            return Err(TlsError::Config {
                field: format!("{prefix}.server_name"),
                reason: format!("{:?} is not a DNS name or an IP address", self.server_name),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let e = ServerTlsConfig::default()
            .validate("server.http_tls", false)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("server.http_tls.cert_file: "),
            "{e}"
        );
        let s = ServerTlsConfig {
            cert_file: "c".into(),
            key_file: "k".into(),
            client_ca_file: String::new(),
        };
        s.validate("server.http_tls", false).unwrap();
        let e = s.validate("server.grpc_tls", true).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("server.grpc_tls.client_ca_file: "),
            "{e}"
        );
        let c = ClientTlsConfig {
            ca_file: "ca".into(),
            ..Default::default()
        };
        c.validate("x", false).unwrap();
        let e = c.validate("grpc_client.tls", true).unwrap_err();
        assert!(
            e.to_string().starts_with("grpc_client.tls.cert_file: "),
            "{e}"
        );
        let bad = ClientTlsConfig {
            server_name: "not a name!".into(),
            ..c
        };
        let e = bad.validate("grpc_client.tls", false).unwrap_err();
        assert!(
            e.to_string().starts_with("grpc_client.tls.server_name: "),
            "{e}"
        );
        let e = serde_yaml::from_str::<ServerTlsConfig>("cert_file: a\nbogus: 1\n").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
