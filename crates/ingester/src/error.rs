use std::path::{Path, PathBuf};
use thiserror::Error;

/// Errors of the ingester's own state: the WAL, checkpoints and configuration.
#[derive(Debug, Error)]
pub enum IngesterError {
    #[error(transparent)]
    Ring(#[from] strata_ring::RingError),
    #[error("block shipping is not enabled on this ingester")]
    NoShipping,
    #[error("flush incomplete: {pending} blocks still wait for their upload to the bucket")]
    FlushIncomplete { pending: usize },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt WAL file {path} at byte {offset}: {reason}; it is not the last segment, so this is not a torn write from a crash. Move the file away to start without the data in it and after it")]
    CorruptWal {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },
    #[error(
        "unexpected file {0} in the WAL directory; remove it or point the data directory elsewhere"
    )]
    UnexpectedWalFile(PathBuf),
    #[error(
        "WAL record refers to series {id} of tenant {tenant:?}, which no earlier record defines"
    )]
    UnknownSeries { tenant: String, id: u32 },
    #[error("invalid tenant {0:?} in WAL")]
    BadTenant(String),
    #[error("corrupt record for series {id} of tenant {tenant:?} in the WAL: {reason}")]
    CorruptSeries {
        tenant: String,
        id: u32,
        reason: &'static str,
    },
    #[error("invalid configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error("WAL failure: {0}")]
    Wal(#[source] std::sync::Arc<std::io::Error>),
    #[error("{op} failed for block {ulid} of tenant {tenant:?}")]
    Block {
        tenant: String,
        ulid: ulid::Ulid,
        op: &'static str,
        #[source]
        source: Box<strata_storage::block::BlockError>,
    },
    #[error("cannot open the local blocks directory as a bucket")]
    LocalBucket(#[source] Box<strata_storage::bucket::BucketError>),
    #[error("invalid shipper state file {path}")]
    ShipperState {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("background task failed: {0}")]
    Task(String),
}

impl IngesterError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}
