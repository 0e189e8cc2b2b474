//! Static configuration of the ingester (`ingester:` in the YAML file).

use crate::error::IngesterError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngesterConfig {
    pub wal: WalConfig,
    /// Lock shards per tenant head: more shards, less contention between push threads.
    pub head_shards: usize,
    /// Cutting the head into blocks and shipping them to the bucket.
    pub blocks: BlocksConfig,
    /// The ingester ring (read with the same settings by distributors and queriers).
    pub ring: strata_ring::RingConfig,
    /// Longest time `POST /ingester/shutdown` waits for the flushed blocks' uploads.
    #[serde(with = "humantime_serde")]
    pub flush_timeout: Duration,
}

/// How the head becomes blocks in the bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlocksConfig {
    /// Time range of one block, aligned to multiples of it since the epoch.
    #[serde(with = "humantime_serde")]
    pub block_range: Duration,
    /// A block is cut once the tenant's newest sample is this far past the block's end, so
    /// that late samples of slow senders still land in it (sample time, not wall clock: a
    /// backfill in time order is never cut under its feet). Later samples for a cut range are
    /// refused.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
    /// A tenant that sent nothing for this long has every finished range cut (by wall clock),
    /// so the tail of its data reaches the bucket even when no newer samples arrive.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Where cut blocks wait for (and after) their upload, relative to the data directory.
    pub dir: String,
    /// How long uploaded blocks stay on local disk to answer queries, counted from the block's
    /// end. Must cover the time the compactor and store-gateways need to pick a block up.
    #[serde(with = "humantime_serde")]
    pub retention_period: Duration,
    /// How often to look for blocks to cut, upload and truncate.
    #[serde(with = "humantime_serde")]
    pub ship_interval: Duration,
    /// First wait after a failed upload; doubles per failure up to `upload_max_backoff`.
    #[serde(with = "humantime_serde")]
    pub upload_min_backoff: Duration,
    /// Longest wait between upload attempts.
    #[serde(with = "humantime_serde")]
    pub upload_max_backoff: Duration,
}

impl Default for BlocksConfig {
    fn default() -> Self {
        Self {
            block_range: Duration::from_secs(2 * 3600),
            grace_period: Duration::from_secs(30 * 60),
            idle_timeout: Duration::from_secs(3600),
            dir: "blocks".into(),
            retention_period: Duration::from_secs(6 * 3600),
            ship_interval: Duration::from_secs(15),
            upload_min_backoff: Duration::from_secs(1),
            upload_max_backoff: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WalConfig {
    /// Directory of segments and checkpoints, relative to the data directory if not absolute.
    pub dir: String,
    /// A segment is closed once it holds this many bytes.
    pub segment_size_bytes: u64,
    /// fsync each group commit before acknowledging. Turning it off risks losing acknowledged
    /// samples on power loss (a process crash is still safe).
    pub fsync: bool,
    /// Snapshot the head and drop older segments this often.
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// Also snapshot once this many segments accumulated since the last checkpoint.
    pub checkpoint_after_segments: u64,
}

impl Default for IngesterConfig {
    fn default() -> Self {
        Self {
            wal: WalConfig::default(),
            head_shards: 16,
            blocks: BlocksConfig::default(),
            ring: strata_ring::RingConfig::default(),
            flush_timeout: Duration::from_secs(15 * 60),
        }
    }
}

impl Default for WalConfig {
    fn default() -> Self {
        Self {
            dir: "wal".into(),
            segment_size_bytes: 128 << 20,
            fsync: true,
            checkpoint_interval: Duration::from_secs(15 * 60),
            checkpoint_after_segments: 8,
        }
    }
}

impl IngesterConfig {
    /// Checks values; errors name the field.
    pub fn validate(&self) -> Result<(), IngesterError> {
        self.ring
            .validate("ingester.ring")
            .map_err(IngesterError::Ring)?;
        if self.flush_timeout.is_zero() {
            return Err(IngesterError::Config {
                field: "ingester.flush_timeout",
                reason: "must be > 0".into(),
            });
        }
        if !self.head_shards.is_power_of_two() || self.head_shards > 256 {
            return Err(IngesterError::Config {
                field: "ingester.head_shards",
                reason: format!("must be a power of two ≤ 256, got {}", self.head_shards),
            });
        }
        if self.wal.segment_size_bytes < (1 << 20) {
            return Err(IngesterError::Config {
                field: "ingester.wal.segment_size_bytes",
                reason: format!(
                    "must be at least 1 MiB, got {}",
                    self.wal.segment_size_bytes
                ),
            });
        }
        if self.wal.checkpoint_interval < Duration::from_secs(1) {
            return Err(IngesterError::Config {
                field: "ingester.wal.checkpoint_interval",
                reason: "must be at least 1s".into(),
            });
        }
        if self.wal.checkpoint_after_segments == 0 {
            return Err(IngesterError::Config {
                field: "ingester.wal.checkpoint_after_segments",
                reason: "must be > 0".into(),
            });
        }
        let b = &self.blocks;
        if b.block_range < Duration::from_secs(60) || b.block_range.subsec_nanos() != 0 {
            return Err(IngesterError::Config {
                field: "ingester.blocks.block_range",
                reason: format!(
                    "must be whole seconds and at least 1m, got {:?}",
                    b.block_range
                ),
            });
        }
        if (24 * 3600) % b.block_range.as_secs() != 0 {
            return Err(IngesterError::Config {
                field: "ingester.blocks.block_range",
                reason: format!(
                    "must divide 24h evenly so blocks align with the compactor's ranges, got {:?}",
                    b.block_range
                ),
            });
        }
        if b.dir.is_empty() {
            return Err(IngesterError::Config {
                field: "ingester.blocks.dir",
                reason: "must not be empty".into(),
            });
        }
        if b.ship_interval < Duration::from_millis(100) {
            return Err(IngesterError::Config {
                field: "ingester.blocks.ship_interval",
                reason: "must be at least 100ms".into(),
            });
        }
        if b.upload_min_backoff.is_zero() || b.upload_max_backoff < b.upload_min_backoff {
            return Err(IngesterError::Config {
                field: "ingester.blocks.upload_max_backoff",
                reason: "upload_min_backoff must be > 0 and upload_max_backoff ≥ it".into(),
            });
        }
        if self.wal.dir.is_empty() {
            return Err(IngesterError::Config {
                field: "ingester.wal.dir",
                reason: "must not be empty".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_unknown_fields_fail() {
        IngesterConfig::default().validate().unwrap();
        let e = serde_yaml::from_str::<IngesterConfig>("wal:\n  fsyncc: true\n").unwrap_err();
        assert!(e.to_string().contains("fsyncc"), "{e}");
        let c: IngesterConfig = serde_yaml::from_str("head_shards: 3\n").unwrap();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("ingester.head_shards"));
        let c: IngesterConfig = serde_yaml::from_str("wal:\n  checkpoint_interval: 5m\n").unwrap();
        assert_eq!(c.wal.checkpoint_interval, Duration::from_secs(300));
    }
}
