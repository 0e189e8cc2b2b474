use std::path::PathBuf;
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

    pub(crate) fn unavailable(what: impl Into<String>) -> Self {
        Self::Unavailable {
            what: what.into(),
            source: None,
        }
    }

    pub(crate) fn unavailable_from(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Unavailable {
            what: what.into(),
            source: Some(Box::new(source)),
        }
    }
}

/// Why the files of a meta node (Raft log, vote, snapshot) could not be read or written.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("opening", "fsync of", ...).
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A record whose checksum does not match, followed by more data: not a torn write at the
    /// end of the file, so it is not cut off silently.
    #[error("corrupt record in {path} at offset {offset}: checksum mismatch")]
    Checksum { path: PathBuf, offset: u64 },
    /// A record with a valid checksum that does not decode (written by another version?).
    #[error("undecodable record in {path} at offset {offset}: {source}")]
    Decode {
        path: PathBuf,
        offset: u64,
        #[source]
        source: serde_json::Error,
    },
    /// Records out of order: the file was not written by this code.
    #[error("corrupt log {path} at offset {offset}: entry {index} follows entry {previous}")]
    OutOfOrder {
        path: PathBuf,
        offset: u64,
        index: u64,
        previous: u64,
    },
    #[error("encoding a record for {path}: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A blocking file task panicked or was cancelled.
    #[error("file task for {path}: {source}")]
    Task {
        path: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Why a meta node could not start or a membership change failed.
#[derive(Debug, Error)]
pub enum MetaError {
    /// The configuration is invalid; `field` is its YAML path (e.g. `meta.peers`).
    #[error("invalid meta configuration: {field}: {reason}")]
    Config { field: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("openraft configuration: {0}")]
    RaftConfig(#[source] Box<openraft::ConfigError>),
    #[error("raft stopped: {0}")]
    Raft(#[source] Box<openraft::error::Fatal<u64>>),
    #[error("initializing the meta cluster: {0}")]
    Initialize(#[source] Box<InitializeFailed>),
    /// A membership change was refused or failed.
    #[error("membership change: {0}")]
    Membership(#[source] Box<MembershipFailed>),
    /// The node is not the leader; membership changes go to the leader.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("membership change timed out after {0:?}")]
    Timeout(std::time::Duration),
}

type InitializeFailed =
    openraft::error::RaftError<u64, openraft::error::InitializeError<u64, openraft::BasicNode>>;
type MembershipFailed =
    openraft::error::RaftError<u64, openraft::error::ClientWriteError<u64, openraft::BasicNode>>;

// openraft's errors are large; boxed so that every Result carrying a MetaError stays small.
impl From<openraft::error::Fatal<u64>> for MetaError {
    fn from(e: openraft::error::Fatal<u64>) -> Self {
        Self::Raft(Box::new(e))
    }
}

impl From<InitializeFailed> for MetaError {
    fn from(e: InitializeFailed) -> Self {
        Self::Initialize(Box::new(e))
    }
}

impl From<MembershipFailed> for MetaError {
    fn from(e: MembershipFailed) -> Self {
        Self::Membership(Box::new(e))
    }
}
