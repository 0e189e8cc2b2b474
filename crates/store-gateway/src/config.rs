//! Static configuration of the store-gateway (`store_gateway:` in the YAML file).

use crate::error::StoreGatewayError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Store-gateway settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreGatewayConfig {
    /// How often a tenant's bucket index is re-read. New blocks become queryable through the
    /// store-gateway at most this long after the compactor indexed them.
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// Blocks marked for deletion are still read for this long after the mark, while the block
    /// that replaced them reaches every reader's index.
    #[serde(with = "humantime_serde")]
    pub ignore_deletion_marks_delay: Duration,
    /// Memory budget of open blocks (series files, footers and page indexes), in bytes. The
    /// least recently used blocks are closed beyond it; a query needing more opens blocks for
    /// its own duration only.
    pub max_open_blocks_bytes: u64,
    /// Blocks opened concurrently by one query.
    pub block_open_concurrency: usize,
    /// Memory budget of the cache of samples-file ranges fetched by queries, in bytes (0: no
    /// cache). Repeated queries then cost no bucket request.
    pub samples_cache_bytes: u64,
    /// The store-gateway ring, where standalone store-gateways register so that queriers find
    /// them (`--target=store-gateway`).
    pub ring: strata_ring::RingConfig,
}

impl Default for StoreGatewayConfig {
    fn default() -> Self {
        Self {
            sync_interval: Duration::from_secs(60),
            ignore_deletion_marks_delay: Duration::from_secs(3600),
            max_open_blocks_bytes: 512 << 20,
            block_open_concurrency: 8,
            samples_cache_bytes: 256 << 20,
            ring: strata_ring::RingConfig::default(),
        }
    }
}

impl StoreGatewayConfig {
    /// Checks values; errors name the field.
    pub fn validate(&self) -> Result<(), StoreGatewayError> {
        self.ring
            .validate("store_gateway.ring")
            .map_err(|e| StoreGatewayError::Config {
                field: "store_gateway.ring",
                reason: e.to_string(),
            })?;
        if self.sync_interval < Duration::from_millis(100) {
            return Err(StoreGatewayError::Config {
                field: "store_gateway.sync_interval",
                reason: format!("must be at least 100ms, got {:?}", self.sync_interval),
            });
        }
        if self.max_open_blocks_bytes < (1 << 20) {
            return Err(StoreGatewayError::Config {
                field: "store_gateway.max_open_blocks_bytes",
                reason: format!("must be at least 1 MiB, got {}", self.max_open_blocks_bytes),
            });
        }
        if self.block_open_concurrency == 0 {
            return Err(StoreGatewayError::Config {
                field: "store_gateway.block_open_concurrency",
                reason: "must be > 0".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_errors_name_the_field() {
        StoreGatewayConfig::default().validate().unwrap();
        let e = serde_yaml::from_str::<StoreGatewayConfig>("sync_intervall: 1m\n").unwrap_err();
        assert!(e.to_string().contains("sync_intervall"), "{e}");
        let c: StoreGatewayConfig = serde_yaml::from_str("block_open_concurrency: 0\n").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("store_gateway.block_open_concurrency"));
    }
}
