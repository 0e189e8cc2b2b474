use thiserror::Error;

/// Errors of the store-gateway.
#[derive(Debug, Error)]
pub enum StoreGatewayError {
    /// A configuration value is invalid; `field` is its YAML path.
    #[error("invalid configuration: {field}: {reason}")]
    Config {
        /// YAML path of the field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Reading a tenant's bucket index or a block failed.
    #[error("tenant {tenant}: {op}")]
    Block {
        /// The tenant.
        tenant: String,
        /// What was being done.
        op: &'static str,
        /// The cause.
        #[source]
        source: Box<strata_storage::block::BlockError>,
    },
}
