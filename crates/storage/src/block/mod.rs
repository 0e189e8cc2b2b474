//! Persisted blocks, format v3 (see `docs/block-format.md`): per tenant, `<tenant>/<ULID>/` holds
//! `meta.json`, `series.parquet` (one row per series) and `samples.parquet` (one row per sample,
//! in time buckets, each sorted by series id then time). Written by [`BlockWriter`], read by
//! [`BlockReader`], which also reads v1 and v2.

mod cache;
mod meta;
mod reader;
mod scale;
mod schema;
pub mod synth;
mod writer;

#[cfg(test)]
mod tests;

pub use cache::RangeCache;
pub use meta::{BlockFile, BlockMeta, BlockStats, TimeBucket, SCHEMA_VERSION};
pub use reader::{BlockReader, SeriesCursor};
pub use schema::ValueEncoding;
pub use writer::{
    default_bucket_ms, BlockFiles, BlockWriter, WriterOptions, MAX_BUCKETS, RAW_BUCKET_MS,
};

use crate::bucket::BucketError;
use thiserror::Error;

/// Name of the metadata object of a block. It is uploaded last: a block directory without it is
/// an incomplete upload and readers ignore it.
pub const META_FILE: &str = "meta.json";
/// Name of the series file of a block.
pub const SERIES_FILE: &str = "series.parquet";
/// Name of the samples file of a block.
pub const SAMPLES_FILE: &str = "samples.parquet";

/// Raw resolution (no downsampling).
pub const RESOLUTION_RAW: i64 = 0;
/// Label naming the aggregate (`count`, `sum`, `min`, `max`, `counter`) of a series in a
/// downsampled block: the compactor writes it, the store-gateway selects by it.
pub const AGGR_LABEL: &str = "__aggr__";

/// 5-minute downsampled resolution, in milliseconds.
pub const RESOLUTION_5M: i64 = 300_000;
/// 1-hour downsampled resolution, in milliseconds.
pub const RESOLUTION_1H: i64 = 3_600_000;

/// The order of series inside a block (rows of `series.parquet`): metric name (`""` when absent)
/// first, then the whole label set. Readers that merge several blocks' series in one pass (the
/// compactor) rely on every block using exactly this order.
pub fn series_order(a: &strata_model::Labels, b: &strata_model::Labels) -> std::cmp::Ordering {
    let ka = a.metric_name().unwrap_or("");
    let kb = b.metric_name().unwrap_or("");
    ka.cmp(kb).then_with(|| a.cmp(b))
}

/// Path of a file of a block inside the bucket.
pub fn block_path(tenant: &str, ulid: &ulid::Ulid, file: &str) -> String {
    format!("{tenant}/{ulid}/{file}")
}

/// A block could not be written or read.
#[derive(Debug, Error)]
pub enum BlockError {
    /// The block's time range is empty or inverted.
    #[error("invalid block time range [{min_t}, {max_t}]")]
    InvalidRange {
        /// Inclusive start, ms.
        min_t: i64,
        /// Inclusive end, ms.
        max_t: i64,
    },
    /// A sample lies outside the block's time range.
    #[error("series {labels}: sample at {t} outside block range [{min_t}, {max_t}]")]
    SampleOutOfRange {
        /// The series.
        labels: String,
        /// The sample's timestamp.
        t: i64,
        /// Block start.
        min_t: i64,
        /// Block end.
        max_t: i64,
    },
    /// A series' samples are not strictly increasing in time.
    #[error("series {labels}: samples not strictly increasing at {t}")]
    Unsorted {
        /// The series.
        labels: String,
        /// The first out-of-order timestamp.
        t: i64,
    },
    /// The same label set was added twice.
    #[error("series {labels} added twice")]
    DuplicateSeries {
        /// The series.
        labels: String,
    },
    /// Arrow failed building a record batch.
    #[error("arrow error in {context}")]
    Arrow {
        /// What was being done.
        context: &'static str,
        /// The error.
        #[source]
        source: arrow_schema::ArrowError,
    },
    /// Parquet failed encoding or decoding.
    #[error("parquet error in {file}")]
    Parquet {
        /// The file concerned.
        file: String,
        /// The error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// `meta.json` could not be parsed or produced.
    #[error("invalid {path}")]
    Meta {
        /// Path of the meta file.
        path: String,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
    /// The block uses a schema version this build cannot read.
    #[error("block {path} has schema version {found}, this build reads up to {supported}")]
    UnsupportedVersion {
        /// Path of the meta file.
        path: String,
        /// Version in the meta file.
        found: u32,
        /// Highest version supported.
        supported: u32,
    },
    /// A file does not have the layout format v1 prescribes.
    #[error("{file}: {reason}")]
    Corrupt {
        /// The file concerned.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    /// A read stopped at one of its limits (not a fault of the block).
    #[error(transparent)]
    LimitExceeded(#[from] crate::LimitExceeded),
}
