//! One lazily connected channel per remote address, shared by every client of that address.

use crate::{GrpcClientConfig, RpcError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use strata_tls::GrpcClientTls;
use tonic::transport::{Channel, Endpoint};

/// Channels by address. A tonic channel multiplexes calls over one HTTP/2 connection and
/// reconnects by itself, so one per address is enough.
#[derive(Debug, Clone)]
pub struct ChannelPool {
    cfg: GrpcClientConfig,
    local_ip: Option<IpAddr>,
    /// Set with `grpc_client.tls`: every connection is mutual TLS.
    tls: Option<GrpcClientTls>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl ChannelPool {
    /// `local_ip`: the address outgoing connections bind to (the instance's advertised IP), so a
    /// peer sees the same address it would dial back and firewall rules can name a process.
    /// With `cfg.tls` the TLS files are read now (an error names them) and again whenever they
    /// change: new connections present the new certificate.
    pub fn new(cfg: GrpcClientConfig, local_ip: Option<IpAddr>) -> Result<Self, RpcError> {
        let tls = cfg.tls.as_ref().map(GrpcClientTls::new).transpose()?;
        Ok(Self {
            cfg,
            local_ip,
            tls,
            channels: Arc::default(),
        })
    }

    /// The TLS side of this process's gRPC clients, when `grpc_client.tls` is set (for clients
    /// outside the pool: the meta client, alertmanager peers).
    pub fn tls(&self) -> Option<&GrpcClientTls> {
        self.tls.as_ref()
    }

    pub fn config(&self) -> &GrpcClientConfig {
        &self.cfg
    }

    /// The channel to `address` (`host:port`); `target` names the instance in errors.
    pub fn get(&self, target: &str, address: &str) -> Result<Channel, RpcError> {
        if let Some(c) = self.channels.lock().get(address) {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|source| RpcError::Address {
                target: target.to_owned(),
                address: address.to_owned(),
                source,
            })?
            .connect_timeout(self.cfg.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(self.cfg.keepalive_interval)
            .keep_alive_timeout(self.cfg.keepalive_timeout)
            .keep_alive_while_idle(true)
            .local_address(self.local_ip);
        let channel = match &self.tls {
            Some(tls) => tls.channel(endpoint, self.local_ip),
            None => endpoint.connect_lazy(),
        };
        Ok(self
            .channels
            .lock()
            .entry(address.to_owned())
            .or_insert(channel)
            .clone())
    }

    /// Drops the channels of addresses not in `keep` (instances that left the ring).
    pub fn retain(&self, keep: &dyn Fn(&str) -> bool) {
        self.channels.lock().retain(|a, _| keep(a));
    }
}
