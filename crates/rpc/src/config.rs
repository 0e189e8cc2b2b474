//! Settings of gRPC clients (`grpc_client:`) and of the gRPC server (`server.grpc:`).

use crate::RpcError;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use strata_tls::ClientTlsConfig;

/// How components call each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcClientConfig {
    /// Time allowed to open a connection; short, so a dead instance fails fast and the
    /// replicas cover for it.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Deadline of a push from a distributor to an ingester (Mimir's `remote_timeout`).
    #[serde(with = "humantime_serde")]
    pub push_timeout: Duration,
    /// Deadline of a read (a whole streamed selection included).
    #[serde(with = "humantime_serde")]
    pub query_timeout: Duration,
    /// Largest message accepted from a server, bytes.
    pub max_recv_msg_size: usize,
    /// Largest message sent, bytes.
    pub max_send_msg_size: usize,
    /// HTTP/2 keepalive pings on idle connections, so a silently dead peer is noticed.
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// Mutual TLS to every gRPC server of the cluster (ingesters, store-gateways, meta voters,
    /// alertmanager peers): the CA of the servers' certificates and this process's own
    /// certificate. Unset: plain text.
    pub tls: Option<ClientTlsConfig>,
}

impl Default for GrpcClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            push_timeout: Duration::from_secs(5),
            query_timeout: Duration::from_secs(120),
            max_recv_msg_size: 100 << 20,
            max_send_msg_size: 100 << 20,
            keepalive_interval: Duration::from_secs(20),
            keepalive_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

impl GrpcClientConfig {
    pub fn validate(&self) -> Result<(), RpcError> {
        let nonzero = |d: Duration, field: &'static str| {
            if d.is_zero() {
                Err(RpcError::Config {
                    field,
                    reason: "must be greater than 0".into(),
                })
            } else {
                Ok(())
            }
        };
        nonzero(self.connect_timeout, "grpc_client.connect_timeout")?;
        nonzero(self.push_timeout, "grpc_client.push_timeout")?;
        nonzero(self.query_timeout, "grpc_client.query_timeout")?;
        nonzero(self.keepalive_interval, "grpc_client.keepalive_interval")?;
        nonzero(self.keepalive_timeout, "grpc_client.keepalive_timeout")?;
        if let Some(t) = &self.tls {
            t.validate("grpc_client.tls", true)?;
        }
        for (v, field) in [
            (self.max_recv_msg_size, "grpc_client.max_recv_msg_size"),
            (self.max_send_msg_size, "grpc_client.max_send_msg_size"),
        ] {
            if v < 1 << 20 {
                return Err(RpcError::Config {
                    field,
                    reason: format!("must be at least 1 MiB, got {v}"),
                });
            }
        }
        Ok(())
    }
}

/// Limits of the gRPC server every process runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcServerConfig {
    /// Largest message accepted, bytes (a pushed batch, a request).
    pub max_recv_msg_size: usize,
    /// Largest message sent, bytes.
    pub max_send_msg_size: usize,
    /// Concurrent streams per connection.
    pub max_concurrent_streams: u32,
}

impl Default for GrpcServerConfig {
    fn default() -> Self {
        Self {
            max_recv_msg_size: 100 << 20,
            max_send_msg_size: 100 << 20,
            max_concurrent_streams: 1000,
        }
    }
}

impl GrpcServerConfig {
    pub fn validate(&self) -> Result<(), RpcError> {
        for (v, field) in [
            (self.max_recv_msg_size, "server.grpc.max_recv_msg_size"),
            (self.max_send_msg_size, "server.grpc.max_send_msg_size"),
        ] {
            if v < 1 << 20 {
                return Err(RpcError::Config {
                    field,
                    reason: format!("must be at least 1 MiB, got {v}"),
                });
            }
        }
        if self.max_concurrent_streams == 0 {
            return Err(RpcError::Config {
                field: "server.grpc.max_concurrent_streams",
                reason: "must be greater than 0".into(),
            });
        }
        Ok(())
    }
}
