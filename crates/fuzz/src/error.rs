//! Errors of the seed corpus generator (the targets themselves never fail: they panic on bugs).

use std::path::PathBuf;

/// The seed corpus could not be generated.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A corpus file or directory could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A seed block could not be written.
    #[error("writing a seed block")]
    Block(#[from] strata_storage::block::BlockError),
    /// The ingester that writes the seed WAL failed.
    #[error("writing a seed WAL")]
    Ingester(#[from] strata_ingester::IngesterError),
    /// Pushing a batch into the seed ingester failed.
    #[error("pushing into the seed ingester")]
    Push(#[from] strata_storage::PushError),
    /// A fixed label set or tenant of the seeds is invalid (a bug in the generator).
    #[error("seed data")]
    Model(#[from] strata_model::ModelError),
}

impl SeedError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
