//! `meta.json`: what a reader needs to know about a block before opening its Parquet files.

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// Version of the block format this build writes (and the highest it reads).
pub const SCHEMA_VERSION: u32 = 3;

/// Contents of `meta.json`. Field names are camelCase, as in Thanos/Prometheus block metas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockMeta {
    /// Block id; also the directory name.
    pub ulid: Ulid,
    /// Block format version ([`SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// Inclusive start of the block's time range, ms since the epoch.
    pub min_time: i64,
    /// Inclusive end of the block's time range, ms since the epoch.
    pub max_time: i64,
    /// Downsampling resolution in ms: 0 (raw), 300000 (5m) or 3600000 (1h).
    pub resolution: i64,
    /// Compaction level: 1 for a block cut from a head, +1 per compaction.
    pub compaction_level: u32,
    /// Blocks this one was compacted from (itself for a level-1 block).
    pub sources: Vec<Ulid>,
    /// Counts.
    pub stats: BlockStats,
    /// Label names that have their own column in `series.parquet` (`l_<name>`); all other
    /// labels are in its `labels` map column.
    pub label_columns: Vec<String>,
    /// The data files with their sizes, so readers can fetch footers without a HEAD request.
    pub files: Vec<BlockFile>,
    /// Format v3: the time buckets of `samples.parquet`, in order. The file holds bucket after
    /// bucket (each sorted by series id, then time, and starting a new row group), so a query
    /// window reads only the buckets it overlaps. Empty in v1/v2 blocks, whose single
    /// series-major run is one bucket covering the whole block ([`BlockMeta::buckets`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_buckets: Vec<TimeBucket>,
}

/// One time bucket of a v3 samples file: the rows of every series' samples in
/// `[min_time, max_time]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeBucket {
    /// Inclusive start, ms since the epoch.
    pub min_time: i64,
    /// Inclusive end, ms since the epoch.
    pub max_time: i64,
    /// Rows of `samples.parquet` in this bucket.
    pub num_samples: u64,
}

/// Series and sample counts of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockStats {
    /// Rows of `series.parquet`.
    pub num_series: u64,
    /// Rows of `samples.parquet`.
    pub num_samples: u64,
}

/// One data file of a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockFile {
    /// Path relative to the block directory.
    pub rel_path: String,
    /// Size in bytes.
    pub size_bytes: u64,
}

impl BlockMeta {
    /// The block's time buckets: those listed (v3), or one bucket spanning the whole block
    /// (v1/v2 files are a single series-major run).
    pub fn buckets(&self) -> Vec<TimeBucket> {
        if self.time_buckets.is_empty() {
            vec![TimeBucket {
                min_time: self.min_time,
                max_time: self.max_time,
                num_samples: self.stats.num_samples,
            }]
        } else {
            self.time_buckets.clone()
        }
    }

    /// Size of a data file as recorded, if listed.
    pub fn file_size(&self, rel_path: &str) -> Option<u64> {
        self.files
            .iter()
            .find(|f| f.rel_path == rel_path)
            .map(|f| f.size_bytes)
    }
}
