//! Interfaces between components: appending write batches and querying series.
//!
//! A distributor pushes to a [`Pusher`] without knowing whether the ingester lives in the same
//! process or behind gRPC; the query API reads from a [`Queryable`] without knowing whether the
//! data sits in an ingester's head or in blocks. Component crates depend on these traits, never
//! on each other.

pub mod block;
pub mod block_query;
pub mod block_set;
pub mod bucket;
pub mod chunk;
mod error;
pub mod index;
pub mod index_cache;
pub mod limits;
pub mod merge;
pub mod push;
pub mod query;

pub use block_query::{BlockQueryable, BlockSelection, BlocksAnswer};
pub use error::{LimitExceeded, PushError, QueryError, ReadLimit};
pub use limits::{ReadLimits, NO_LIMIT};
pub use merge::MergeQueryable;
pub use push::{EncodedPusher, PushOutcome, Pusher, Rejection, RejectionKind};
pub use query::{
    ChunkedSeries, EncodedChunk, HeadStats, Queryable, SelectHints, Series, SeriesMetadata,
    SeriesPart,
};
