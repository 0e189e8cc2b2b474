//! Integration tests of the ruler crate (one binary; modules per area).

mod common;
mod api;
mod corpus;
mod timelines;
