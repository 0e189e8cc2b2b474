//! Static configuration of the distributor (`distributor:` in the YAML file).

use crate::error::DistributorError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributorConfig {
    /// Largest accepted request, compressed or decompressed, in bytes.
    pub max_recv_msg_size: usize,
    /// Deduplication of HA Prometheus pairs (needs the cluster KV).
    pub ha_tracker: crate::HaTrackerConfig,
    /// The distributor ring: distributors of a cluster register there so that each admits its
    /// share of a tenant's ingestion rate.
    pub ring: strata_ring::RingConfig,
}

impl Default for DistributorConfig {
    fn default() -> Self {
        Self {
            max_recv_msg_size: 100 << 20,
            ha_tracker: crate::HaTrackerConfig::default(),
            ring: strata_ring::RingConfig {
                // Distributors own no data: a token each is enough to be counted.
                num_tokens: 1,
                ..Default::default()
            },
        }
    }
}

impl DistributorConfig {
    pub fn validate(&self) -> Result<(), DistributorError> {
        if self.max_recv_msg_size < 1024 {
            return Err(DistributorError::Config {
                field: "distributor.max_recv_msg_size",
                reason: format!(
                    "must be at least 1024 bytes, got {}",
                    self.max_recv_msg_size
                ),
            });
        }
        self.ha_tracker.validate()?;
        self.ring.validate("distributor.ring")?;
        Ok(())
    }
}
