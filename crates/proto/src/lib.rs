//! Wire formats Strata speaks, generated from `proto/` at build time, plus a zero-copy decoder for
//! the ingest hot path.
//!
//! The prost-generated types are the reference encoding (tests, load generators, remote read).
//! Decoding remote write with them allocates a `String` per label, which measured ~700 ns per
//! sample (PERFORMANCE.md §1); [`decode`] borrows label bytes from the request instead.

pub mod decode;
pub mod encode;
mod error;

pub use error::DecodeError;

/// Remote write 1.0 and remote read messages (`package prometheus`).
pub mod prometheus {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/prometheus.rs"));
}

/// Remote write 2.0 messages (`package io.prometheus.write.v2`).
pub mod write_v2 {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/io.prometheus.write.v2.rs"));
}
