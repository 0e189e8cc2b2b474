//! gRPC between Strata's components.
//!
//! The services are the storage crate's interfaces on the wire: an ingester serves
//! [`strata_storage::Pusher`] (as `Ingester.Push`) and [`strata_storage::Queryable`]
//! (`QueryStream`, `Series`, `LabelNames`, `LabelValues`, `Metadata`); a store-gateway serves
//! `Queryable` (`StoreGateway.Series`, …). The clients implement the same traits, so a
//! distributor or querier does not know whether its ingester is in-process or remote.
//!
//! Every call has a deadline, messages are bounded in size, channels are shared per address
//! and can bind the caller's advertised IP (one 127.0.0.x per process in the chaos tests).

mod channel;
mod config;
mod convert;
mod error;
mod ingester;
mod local;
mod query;
mod store_gateway;

pub use channel::ChannelPool;
pub use config::{GrpcClientConfig, GrpcServerConfig};
pub use error::{RemoteStatus, RpcError};
pub use ingester::{IngesterClient, IngesterService};
pub use local::LocalEncoded;
pub use store_gateway::{StoreGatewayClient, StoreGatewayService};

/// Generated protobuf and gRPC code; modules follow the proto packages (`strata.query.v1`, …)
/// because generated code refers across packages by relative paths.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    /// Selection messages shared by ingesters and store-gateways.
    pub mod query {
        pub mod v1 {
            tonic::include_proto!("strata.query.v1");
        }
    }
    /// The ingester service.
    pub mod ingester {
        pub mod v1 {
            tonic::include_proto!("strata.ingester.v1");
        }
    }
    /// The store-gateway service.
    pub mod storegateway {
        pub mod v1 {
            tonic::include_proto!("strata.storegateway.v1");
        }
    }
}
