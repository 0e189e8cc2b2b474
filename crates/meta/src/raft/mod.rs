//! The openraft pieces: type configuration, log store, state machine, network.

pub(crate) mod log_store;
pub(crate) mod network;
mod record;
pub(crate) mod state_machine;
pub mod types;

pub use log_store::LogStore;
pub use state_machine::{SnapshotBuilder, StateMachine};

#[cfg(test)]
mod suite {
    use super::types::{StorageError, TypeConfig};
    use super::{LogStore, StateMachine};
    use openraft::testing::{StoreBuilder, Suite};
    use openraft::StorageIOError;

    struct Builder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
            let io = |e: std::io::Error| StorageError::from(StorageIOError::write(&e));
            let dir = tempfile::tempdir().map_err(io)?;
            let log = LogStore::open(dir.path()).map_err(|e| io(std::io::Error::other(e)))?;
            let sm = StateMachine::open(dir.path()).map_err(|e| io(std::io::Error::other(e)))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's own checks of a log store and state machine.
    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(Builder).unwrap();
    }
}
