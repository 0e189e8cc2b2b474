//! Integration tests of the compactor against a local-filesystem bucket.

mod common;
mod compaction;
mod concurrency;
mod crash;
mod downsampling;
mod lifecycle;
mod retention;
