//! Errors of the compactor.

use strata_storage::block::BlockError;
use strata_storage::bucket::BucketError;
use thiserror::Error;
use ulid::Ulid;

/// A compactor operation failed.
#[derive(Debug, Error)]
pub enum CompactorError {
    /// The configuration is invalid; `field` is its YAML path (e.g. `compactor.block_ranges`).
    #[error("invalid compactor configuration: {field}: {reason}")]
    Config {
        /// Path of the offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading, writing or indexing a block failed.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// The bucket failed outside block I/O (tenant listing, lock object).
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// The lock object could not be produced.
    #[error("cannot encode lock object {path}")]
    LockEncode {
        /// Path of the lock object.
        path: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// Another compactor took over the tenant's lock while this one worked (its heartbeat was
    /// late); the work stops before changing anything else.
    #[error("lost the compactor lock of tenant {tenant}")]
    LockLost {
        /// The tenant.
        tenant: String,
    },
    /// A block to downsample from 5m has a series without the `__aggr__` label.
    #[error("block {block}: series {labels} of a downsampled block has no __aggr__ label")]
    MissingAggregate {
        /// The block.
        block: Ulid,
        /// The series.
        labels: String,
    },
    /// A block has a resolution the compactor cannot downsample further.
    #[error("block {block} has resolution {resolution}, which has no coarser level")]
    UnexpectedResolution {
        /// The block.
        block: Ulid,
        /// Its resolution, ms.
        resolution: i64,
    },
    /// A compaction was asked to merge no blocks.
    #[error("nothing to compact")]
    EmptyGroup,
}
