//! `meta.json`: what a reader needs to know about a block before opening its Parquet files.

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// Version of the block format this build writes (and the highest it reads).
pub const SCHEMA_VERSION: u32 = 2;

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
    /// Size of a data file as recorded, if listed.
    pub fn file_size(&self, rel_path: &str) -> Option<u64> {
        self.files
            .iter()
            .find(|f| f.rel_path == rel_path)
            .map(|f| f.size_bytes)
    }
}
