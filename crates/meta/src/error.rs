use thiserror::Error;

/// Why a key-value operation failed.
#[derive(Debug, Error)]
pub enum KvError {
    /// A compare-and-swap or conditional delete found another version than the caller expected.
    #[error("version conflict on key {key:?}: expected version {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: u64,
        /// The key's current version; 0 if it does not exist.
        actual: u64,
    },
    /// The store cannot be reached or has no quorum; the operation may be retried.
    #[error("key-value store unavailable: {what}")]
    Unavailable {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A [`crate::cas_update`] loop gave up after too many conflicting writers.
    #[error("too many concurrent updates of key {key:?} ({attempts} attempts)")]
    TooManyConflicts { key: String, attempts: u32 },
    /// A key or value that the store refuses (empty key, too large).
    #[error("invalid key-value request: {0}")]
    Invalid(&'static str),
    /// The store was closed.
    #[error("key-value store closed")]
    Closed,
}

impl KvError {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Closed)
    }
}
