//! Integration tests of the ruler crate (one binary; modules per area).

mod api;
mod common;
mod corpus;
mod relabel;
mod restore;
mod sharding;
mod timelines;
mod unittest;
