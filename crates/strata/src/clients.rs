//! gRPC clients of other processes, by ring entry, for the components that fan out.

use std::sync::Arc;
use strata_ring::InstanceDesc;
use strata_rpc::{ChannelPool, IngesterClient, StoreGatewayClient};
use strata_storage::{BlockQueryable, EncodedPusher, PushError, QueryError, Queryable};

/// One pool of channels shared by every client of this process.
#[derive(Debug, Clone)]
pub struct Clients {
    pool: ChannelPool,
}

impl Clients {
    pub fn new(pool: ChannelPool) -> Self {
        Self { pool }
    }

    /// The client side of mutual TLS (`grpc_client.tls`), for the clients outside the pool.
    pub fn tls(&self) -> Option<strata_tls::GrpcClientTls> {
        self.pool.tls().cloned()
    }

    fn ingester(&self, d: &InstanceDesc) -> Result<IngesterClient, strata_rpc::RpcError> {
        let ch = self.pool.get(&d.id, &d.addr)?;
        Ok(IngesterClient::new(&d.id, ch, self.pool.config()))
    }
}

impl strata_distributor::IngesterClients for Clients {
    fn client(&self, d: &InstanceDesc) -> Result<Arc<dyn EncodedPusher>, PushError> {
        self.ingester(d)
            .map(|c| Arc::new(c) as Arc<dyn EncodedPusher>)
            .map_err(|e| PushError::Remote {
                target: d.id.clone(),
                source: Box::new(e),
            })
    }
}

impl strata_querier::ingesters::IngesterQueryClients for Clients {
    fn client(&self, d: &InstanceDesc) -> Result<Arc<dyn Queryable>, QueryError> {
        self.ingester(d)
            .map(|c| Arc::new(c) as Arc<dyn Queryable>)
            .map_err(|e| QueryError::Remote {
                target: d.id.clone(),
                source: Box::new(e),
            })
    }
}

impl strata_querier::store_gateways::StoreGatewayClients for Clients {
    fn client(&self, d: &InstanceDesc) -> Result<Arc<dyn BlockQueryable>, QueryError> {
        let ch = self
            .pool
            .get(&d.id, &d.addr)
            .map_err(|e| QueryError::Remote {
                target: d.id.clone(),
                source: Box::new(e),
            })?;
        Ok(Arc::new(StoreGatewayClient::new(
            &d.id,
            ch,
            self.pool.config(),
        )))
    }
}
