//! The openraft pieces: type configuration, log store, state machine, network.

pub(crate) mod log_store;
pub(crate) mod network;
mod record;
pub(crate) mod state_machine;
pub mod types;

pub use log_store::LogStore;
pub use state_machine::{SnapshotBuilder, StateMachine};
