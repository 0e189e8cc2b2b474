//! The configuration file: one section per component, every field defaulted, unknown fields
//! rejected. Command-line flags override the file.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;
use strata_alertmanager::AlertmanagerConfig;
use strata_compactor::CompactorConfig;
use strata_distributor::DistributorConfig;
use strata_ingester::IngesterConfig;
use strata_meta::MetaConfig;
use strata_model::{Limits, TenancyConfig};
use strata_querier::QuerierConfig;
use strata_ring::RingConfig;
use strata_rpc::{GrpcClientConfig, GrpcServerConfig};
use strata_ruler::RulerConfig;
use strata_storage::bucket::{BackendKind, BucketConfig};
use strata_store_gateway::StoreGatewayConfig;
use strata_tls::ServerTlsConfig;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where every component keeps its state.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub tenancy: TenancyConfig,
    /// Default per-tenant limits; per-tenant overrides live in the runtime config file.
    pub limits: Limits,
    pub runtime_config: RuntimeConfigOptions,
    /// How components call each other over gRPC.
    pub grpc_client: GrpcClientConfig,
    /// The cluster KV: this node's Raft id and the voters every process talks to.
    pub meta: MetaConfig,
    pub distributor: DistributorConfig,
    pub ingester: IngesterConfig,
    pub querier: QuerierConfig,
    /// Range-query splitting and results cache (`docs/query-frontend.md`).
    pub query_frontend: strata_query_frontend::QueryFrontendConfig,
    pub alertmanager: AlertmanagerConfig,
    /// Object storage for blocks. The default is a directory under `data_dir`; a relative
    /// `bucket.filesystem.directory` is resolved against `data_dir`.
    pub bucket: BucketConfig,
    pub store_gateway: StoreGatewayConfig,
    pub compactor: CompactorConfig,
    /// Recording and alerting rules (`docs/ruler.md`).
    pub ruler: RulerConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub http_listen_address: String,
    /// Where components of other processes reach this one (ingester, store-gateway and meta
    /// services). Only listened on when this process runs such a component alone: `all`
    /// calls its components in-process.
    pub grpc_listen_address: String,
    pub grpc: GrpcServerConfig,
    /// `error`, `warn`, `info`, `debug` or `trace` (or a tracing filter directive).
    pub log_level: String,
    /// `logfmt` (human-readable) or `json`.
    pub log_format: LogFormat,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub graceful_shutdown_timeout: Duration,
    /// Largest header section of a request (431 above it).
    pub max_request_header_bytes: usize,
    /// Built-in authentication of every HTTP route but the health checks (off by default).
    pub auth: crate::auth::AuthConfig,
    /// HTTPS for the HTTP API (certificate files read again when they change; with
    /// `client_ca_file` clients must present a certificate). Unset: plain HTTP.
    pub http_tls: Option<ServerTlsConfig>,
    /// Mutual TLS of the gRPC server (and of the Alertmanager ring's listener): the server's
    /// certificate and the CA every client's certificate must chain to. Set it together with
    /// `grpc_client.tls`. Unset: plain text.
    pub grpc_tls: Option<ServerTlsConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// The runtime config file holds per-tenant limit overrides and is re-read periodically, so
/// limits change without a restart (Mimir's runtime config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfigOptions {
    /// YAML file with `overrides: {<tenant>: {<limit>: <value>}}`; empty = none.
    pub file: String,
    #[serde(with = "humantime_serde")]
    pub period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            tenancy: TenancyConfig::default(),
            limits: Limits::default(),
            runtime_config: RuntimeConfigOptions::default(),
            grpc_client: GrpcClientConfig::default(),
            meta: MetaConfig::default(),
            distributor: DistributorConfig::default(),
            ingester: IngesterConfig::default(),
            querier: QuerierConfig::default(),
            query_frontend: strata_query_frontend::QueryFrontendConfig::default(),
            alertmanager: AlertmanagerConfig::default(),
            bucket: BucketConfig::default(),
            store_gateway: StoreGatewayConfig::default(),
            compactor: CompactorConfig::default(),
            ruler: RulerConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http_listen_address: "127.0.0.1:9009".into(),
            grpc_listen_address: "127.0.0.1:9095".into(),
            grpc: GrpcServerConfig::default(),
            log_level: "info".into(),
            log_format: LogFormat::Logfmt,
            graceful_shutdown_timeout: Duration::from_secs(30),
            max_request_header_bytes: 64 << 10,
            auth: crate::auth::AuthConfig::default(),
            http_tls: None,
            grpc_tls: None,
        }
    }
}

impl Default for RuntimeConfigOptions {
    fn default() -> Self {
        Self {
            file: String::new(),
            period: Duration::from_secs(10),
        }
    }
}

/// The runtime config file's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    pub overrides: std::collections::HashMap<String, Limits>,
}

impl Config {
    /// Reads and parses a YAML file; errors carry the file name, line and the offending field.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        Ok(serde_yaml::from_str(text)?)
    }

    /// Validates every section; the error names the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.data_dir.as_os_str().is_empty() {
            anyhow::bail!("data_dir: must not be empty");
        }
        self.server
            .http_listen_address
            .parse::<std::net::SocketAddr>()
            .map_err(|e| {
                anyhow::anyhow!(
                    "server.http_listen_address: {:?} is not host:port ({e})",
                    self.server.http_listen_address
                )
            })?;
        self.server
            .grpc_listen_address
            .parse::<std::net::SocketAddr>()
            .map_err(|e| {
                anyhow::anyhow!(
                    "server.grpc_listen_address: {:?} is not host:port ({e})",
                    self.server.grpc_listen_address
                )
            })?;
        self.server.grpc.validate()?;
        self.grpc_client.validate()?;
        self.meta.validate()?;
        tracing_subscriber::EnvFilter::try_new(&self.server.log_level)
            .map_err(|e| anyhow::anyhow!("server.log_level: {:?}: {e}", self.server.log_level))?;
        if self.server.max_request_header_bytes < crate::http_server::MIN_HEADER_BYTES {
            anyhow::bail!(
                "server.max_request_header_bytes: must be at least {}",
                crate::http_server::MIN_HEADER_BYTES
            );
        }
        self.server.auth.validate()?;
        if let Some(t) = &self.server.http_tls {
            t.validate("server.http_tls", false)?;
        }
        if let Some(t) = &self.server.grpc_tls {
            t.validate("server.grpc_tls", true)?;
        }
        match (&self.server.grpc_tls, &self.grpc_client.tls) {
            (Some(_), None) => anyhow::bail!(
                "grpc_client.tls: must be set with server.grpc_tls: the processes of a cluster call each other over mutual TLS"
            ),
            (None, Some(_)) => anyhow::bail!(
                "server.grpc_tls: must be set with grpc_client.tls: the processes of a cluster call each other over mutual TLS"
            ),
            _ => {}
        }
        self.tenancy
            .validate()
            .map_err(|e| anyhow::anyhow!("tenancy.single_tenant_id: {e}"))?;
        self.limits.validate("limits")?;
        if self.runtime_config.period < Duration::from_secs(1) {
            anyhow::bail!("runtime_config.period: must be at least 1s");
        }
        self.distributor.validate()?;
        self.ingester.validate()?;
        self.querier.validate()?;
        self.query_frontend.validate()?;
        self.alertmanager.validate()?;
        self.bucket.validate()?;
        self.store_gateway.validate()?;
        self.compactor.validate()?;
        self.ruler.validate()?;
        Ok(())
    }

    /// A component's ring settings with the instance's addresses filled from the listen
    /// addresses and a relative tokens file anchored at `data_dir`.
    pub fn resolved_ring(&self, ring: &RingConfig) -> RingConfig {
        let mut r = ring.clone();
        if r.instance_addr.is_none() {
            r.instance_addr = Some(self.server.grpc_listen_address.clone());
        }
        if r.instance_http_addr.is_none() {
            r.instance_http_addr = Some(self.server.http_listen_address.clone());
        }
        if !r.tokens_file.is_empty() && Path::new(&r.tokens_file).is_relative() {
            r.tokens_file = self.data_dir.join(&r.tokens_file).display().to_string();
        }
        r
    }

    /// The IP outgoing connections bind to: the gRPC listen address's, unless it is a
    /// wildcard. Peers then see the address they would dial back, and in tests each process
    /// owns one 127.0.0.x that firewall rules can name.
    pub fn local_ip(&self) -> Option<std::net::IpAddr> {
        let a: std::net::SocketAddr = self.server.grpc_listen_address.parse().ok()?;
        (!a.ip().is_unspecified()).then_some(a.ip())
    }

    /// What `GET /config` serves: the YAML with every secret as `<secret>` (loading it back
    /// fails on the placeholders instead of using them as credentials).
    pub fn shown(&self) -> Result<String, serde_yaml::Error> {
        serde_yaml::to_string(self)
    }

    /// The bucket configuration with a relative filesystem directory anchored at `data_dir`.
    pub fn resolved_bucket(&self) -> BucketConfig {
        let mut b = self.bucket.clone();
        if b.backend == BackendKind::Filesystem && b.filesystem.directory.is_relative() {
            b.filesystem.directory = self.data_dir.join(&b.filesystem.directory);
        }
        b
    }
}

impl RuntimeConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read runtime config {}: {e}", path.display()))?;
        let rc: Self = if text.trim().is_empty() {
            Self::default()
        } else {
            serde_yaml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("runtime config {}: {e}", path.display()))?
        };
        for (tenant, l) in &rc.overrides {
            l.validate(&format!("overrides.{tenant}"))?;
        }
        Ok(rc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        c.validate().unwrap();
    }

    #[test]
    fn unknown_field_is_named_with_its_location() {
        let e = Config::parse("ingester:\n  wal:\n    segment_sise_bytes: 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("segment_sise_bytes"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = Config::parse("bogus: 1\n").unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let c = Config::parse("server:\n  http_listen_address: nowhere\n").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("server.http_listen_address"));
        let c = Config::parse("limits:\n  ingestion_rate: 5\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("limits.ingestion_burst_size"), "{e}");
        let e = Config::parse("ingester:\n  wal:\n    checkpoint_interval: soon\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("checkpoint_interval"), "{e}");
        let c = Config::parse("tenancy:\n  mode: header\n  single_tenant_id: 'a/b'\n").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("tenancy.single_tenant_id"));
    }

    #[test]
    fn tls_and_auth_settings_are_checked() {
        let c = Config::parse("server:\n  auth:\n    enabled: true\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("server.auth.users_file"), "{e}");
        let c = Config::parse("server:\n  http_tls:\n    cert_file: c.pem\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("server.http_tls.key_file"), "{e}");
        let c = Config::parse("server:\n  grpc_tls:\n    cert_file: c.pem\n    key_file: k.pem\n")
            .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("server.grpc_tls.client_ca_file"), "{e}");
        let c = Config::parse(
            "server:\n  grpc_tls:\n    cert_file: c.pem\n    key_file: k.pem\n    client_ca_file: ca.pem\n",
        )
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.starts_with("grpc_client.tls: must be set"), "{e}");
        let c = Config::parse(
            "server:\n  grpc_tls:\n    cert_file: c.pem\n    key_file: k.pem\n    client_ca_file: ca.pem\ngrpc_client:\n  tls:\n    ca_file: ca.pem\n    cert_file: c.pem\n    key_file: k.pem\n",
        )
        .unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn default_config_round_trips_through_yaml() {
        let text = serde_yaml::to_string(&Config::default()).unwrap();
        assert_eq!(Config::parse(&text).unwrap(), Config::default());
    }
}
