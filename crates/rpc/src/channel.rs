//! One lazily connected channel per remote address, shared by every client of that address.

use crate::{GrpcClientConfig, RpcError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use tonic::transport::{Channel, Endpoint};

/// Channels by address. A tonic channel multiplexes calls over one HTTP/2 connection and
/// reconnects by itself, so one per address is enough.
#[derive(Debug, Clone)]
pub struct ChannelPool {
    cfg: GrpcClientConfig,
    local_ip: Option<IpAddr>,
    channels: Arc<Mutex<HashMap<String, Channel>>>,
}

impl ChannelPool {
    /// `local_ip`: the address outgoing connections bind to (the instance's advertised IP), so a
    /// peer sees the same address it would dial back and firewall rules can name a process.
    pub fn new(cfg: GrpcClientConfig, local_ip: Option<IpAddr>) -> Self {
        Self {
            cfg,
            local_ip,
            channels: Arc::default(),
        }
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
        let channel = endpoint.connect_lazy();
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
