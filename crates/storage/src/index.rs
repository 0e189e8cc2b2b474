//! The per-tenant bucket index: one object, `<tenant>/bucket-index.json`, listing the tenant's
//! complete blocks and their deletion marks. The compactor keeps it up to date; queriers and
//! store-gateways read it instead of listing the bucket (a listing costs one request per
//! thousand objects and grows with history, the index is one GET).
//!
//! Deletion is two-phase: a block is first *marked* (`<tenant>/<ulid>/deletion-mark.json`),
//! readers stop using it `ignore_deletion_marks_delay` after the mark (by then the block that
//! replaced it is in their index), and the compactor deletes it `deletion_delay` after the mark.

use crate::block::{block_path, BlockError, BlockMeta, META_FILE};
use crate::bucket::{Bucket, BucketError};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use strata_model::TenantId;
use ulid::Ulid;

/// Object name of the bucket index inside a tenant's prefix.
pub const INDEX_FILE: &str = "bucket-index.json";
/// Object name of a block's deletion mark.
pub const DELETION_MARK_FILE: &str = "deletion-mark.json";
/// Version of the index format this build writes and reads.
pub const INDEX_VERSION: u32 = 1;

/// The bucket index of one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketIndex {
    /// [`INDEX_VERSION`].
    pub version: u32,
    /// When the index was built, ms since the epoch.
    pub updated_at: i64,
    /// Complete blocks (those with a `meta.json`), sorted by min time then ULID.
    pub blocks: Vec<IndexedBlock>,
    /// Deletion marks, sorted by ULID.
    pub deletion_marks: Vec<DeletionMark>,
}

/// What a reader needs to know about a block to decide whether to open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexedBlock {
    /// Block id.
    pub ulid: Ulid,
    /// Inclusive start, ms.
    pub min_time: i64,
    /// Inclusive end, ms.
    pub max_time: i64,
    /// Resolution in ms (0 = raw).
    pub resolution: i64,
    /// Compaction level.
    pub compaction_level: u32,
    /// Blocks this one was built from.
    pub sources: Vec<Ulid>,
    /// Series in the block.
    pub num_series: u64,
    /// Samples (rows) in the block.
    pub num_samples: u64,
    /// Bytes of all the block's objects.
    pub size_bytes: u64,
}

impl IndexedBlock {
    /// The index entry of a block.
    pub fn from_meta(meta: &BlockMeta, meta_json_len: u64) -> Self {
        Self {
            ulid: meta.ulid,
            min_time: meta.min_time,
            max_time: meta.max_time,
            resolution: meta.resolution,
            compaction_level: meta.compaction_level,
            sources: meta.sources.clone(),
            num_series: meta.stats.num_series,
            num_samples: meta.stats.num_samples,
            size_bytes: meta.files.iter().map(|f| f.size_bytes).sum::<u64>() + meta_json_len,
        }
    }
}

/// A block marked for deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletionMark {
    /// The block.
    pub ulid: Ulid,
    /// When it was marked, ms since the epoch.
    pub deletion_time: i64,
    /// Why (for operators reading the bucket).
    #[serde(default)]
    pub details: String,
}

/// What [`BucketIndex::build`] found besides complete blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildReport {
    /// Block directories without `meta.json`: uploads in progress or abandoned.
    pub partial: Vec<Ulid>,
    /// Blocks whose `meta.json` was read (not taken from the previous index).
    pub metas_read: usize,
}

fn meta_err(path: String) -> impl FnOnce(serde_json::Error) -> BlockError {
    move |source| BlockError::Meta { path, source }
}

impl BucketIndex {
    /// An empty index.
    pub fn empty(now_ms: i64) -> Self {
        Self {
            version: INDEX_VERSION,
            updated_at: now_ms,
            blocks: Vec::new(),
            deletion_marks: Vec::new(),
        }
    }

    /// Path of a tenant's index.
    pub fn path(tenant: &TenantId) -> String {
        format!("{}/{INDEX_FILE}", tenant.as_str())
    }

    /// Builds the index of `tenant` by listing its prefix. Entries of `previous` are reused
    /// (a block never changes once complete), so only new blocks cost a GET.
    pub async fn build(
        bucket: &Bucket,
        tenant: &TenantId,
        previous: Option<&BucketIndex>,
        now_ms: i64,
    ) -> Result<(Self, BuildReport), BlockError> {
        let prefix = format!("{}/", tenant.as_str());
        let objects = bucket.list(&prefix).await?;
        let known: HashMap<Ulid, &IndexedBlock> = previous
            .map(|p| p.blocks.iter().map(|b| (b.ulid, b)).collect())
            .unwrap_or_default();
        // Group object names by block directory.
        let mut dirs: HashMap<Ulid, (bool, bool)> = HashMap::new();
        for o in &objects {
            let rest = &o.path[prefix.len().min(o.path.len())..];
            let Some((dir, file)) = rest.split_once('/') else {
                continue;
            };
            let Ok(ulid) = dir.parse::<Ulid>() else {
                continue;
            };
            let e = dirs.entry(ulid).or_default();
            match file {
                META_FILE => e.0 = true,
                DELETION_MARK_FILE => e.1 = true,
                _ => {}
            }
        }
        let mut index = Self::empty(now_ms);
        let mut report = BuildReport::default();
        let previous_marks: HashMap<Ulid, &DeletionMark> = previous
            .map(|p| p.deletion_marks.iter().map(|m| (m.ulid, m)).collect())
            .unwrap_or_default();
        for (ulid, (has_meta, has_mark)) in dirs {
            if has_meta {
                match known.get(&ulid) {
                    Some(b) => index.blocks.push((*b).clone()),
                    None => {
                        let path = block_path(tenant.as_str(), &ulid, META_FILE);
                        let raw = match bucket.get(&path).await {
                            Ok(r) => r,
                            // Deleted between the listing and now: not part of the index.
                            Err(BucketError::NotFound { .. }) => continue,
                            Err(e) => return Err(e.into()),
                        };
                        let meta: BlockMeta =
                            serde_json::from_slice(&raw).map_err(meta_err(path))?;
                        index
                            .blocks
                            .push(IndexedBlock::from_meta(&meta, raw.len() as u64));
                        report.metas_read += 1;
                    }
                }
            } else if !has_mark {
                report.partial.push(ulid);
            }
            if has_mark {
                match previous_marks.get(&ulid) {
                    Some(m) => index.deletion_marks.push((*m).clone()),
                    None => {
                        if let Some(m) = read_deletion_mark(bucket, tenant, &ulid).await? {
                            index.deletion_marks.push(m);
                        }
                    }
                }
            }
        }
        index.blocks.sort_by_key(|b| (b.min_time, b.ulid));
        index.deletion_marks.sort_by_key(|m| m.ulid);
        report.partial.sort();
        Ok((index, report))
    }

    /// Reads a tenant's index; `None` if it has none yet.
    pub async fn read(bucket: &Bucket, tenant: &TenantId) -> Result<Option<Self>, BlockError> {
        let path = Self::path(tenant);
        let raw = match bucket.get(&path).await {
            Ok(r) => r,
            Err(BucketError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let idx: Self = serde_json::from_slice(&raw).map_err(meta_err(path.clone()))?;
        if idx.version > INDEX_VERSION {
            return Err(BlockError::UnsupportedVersion {
                path,
                found: idx.version,
                supported: INDEX_VERSION,
            });
        }
        Ok(Some(idx))
    }

    /// Stores the index (one PUT, atomic for readers).
    pub async fn write(&self, bucket: &Bucket, tenant: &TenantId) -> Result<(), BlockError> {
        let path = Self::path(tenant);
        let json = serde_json::to_vec(self).map_err(meta_err(path.clone()))?;
        bucket.put(&path, Bytes::from(json)).await?;
        Ok(())
    }

    /// The deletion mark of a block, if any.
    pub fn deletion_mark(&self, ulid: &Ulid) -> Option<&DeletionMark> {
        self.deletion_marks
            .binary_search_by_key(ulid, |m| m.ulid)
            .ok()
            .map(|i| &self.deletion_marks[i])
    }

    /// Blocks a reader should query at `now_ms`: every complete block except those marked for
    /// deletion more than `ignore_marked_after_ms` ago (their replacement has been indexed for
    /// that long; until then both are read and duplicates merged away).
    pub fn queryable_blocks(
        &self,
        now_ms: i64,
        ignore_marked_after_ms: i64,
    ) -> impl Iterator<Item = &IndexedBlock> {
        self.blocks.iter().filter(move |b| {
            self.deletion_mark(&b.ulid)
                .is_none_or(|m| now_ms - m.deletion_time < ignore_marked_after_ms)
        })
    }
}

/// The blocks of one resolution that a query reads (see [`BucketIndex::plan`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedBlocks {
    /// Resolution in milliseconds ([`crate::block::RESOLUTION_RAW`] for raw blocks).
    pub resolution: i64,
    pub blocks: Vec<IndexedBlock>,
}

impl BucketIndex {
    /// The blocks answering `[start, end]` with resolutions up to `max_resolution`, grouped by
    /// resolution, coarsest first: the coarsest allowed blocks, then finer ones only where the
    /// coarser leave a gap (Thanos's choice: downsampled data exists to make long ranges
    /// cheap). Queriers and store-gateways plan with this one function, so both agree on which
    /// blocks a query needs.
    pub fn plan(
        &self,
        now_ms: i64,
        ignore_marked_after_ms: i64,
        start: i64,
        end: i64,
        max_resolution: i64,
    ) -> Vec<PlannedBlocks> {
        let mut candidates: Vec<&IndexedBlock> = self
            .queryable_blocks(now_ms, ignore_marked_after_ms)
            .filter(|b| {
                b.resolution <= max_resolution.max(crate::block::RESOLUTION_RAW)
                    && b.max_time >= start
                    && b.min_time <= end
            })
            .collect();
        candidates.sort_by_key(|b| (std::cmp::Reverse(b.resolution), b.min_time, b.ulid));
        let mut covered: Vec<(i64, i64)> = Vec::new();
        let mut plan = Vec::new();
        let mut i = 0;
        while i < candidates.len() {
            let resolution = candidates[i].resolution;
            let mut chosen = Vec::new();
            while i < candidates.len() && candidates[i].resolution == resolution {
                let b = candidates[i];
                let (lo, hi) = (b.min_time.max(start), b.max_time.min(end));
                if !is_covered(&covered, lo, hi) {
                    chosen.push(b.clone());
                }
                i += 1;
            }
            covered.extend(chosen.iter().map(|b| (b.min_time, b.max_time)));
            covered = merge_intervals(covered);
            if !chosen.is_empty() {
                plan.push(PlannedBlocks {
                    resolution,
                    blocks: chosen,
                });
            }
        }
        plan
    }
}

fn is_covered(covered: &[(i64, i64)], lo: i64, hi: i64) -> bool {
    covered.iter().any(|&(a, b)| a <= lo && hi <= b)
}

/// Sorted, merged intervals (adjacent ones joined).
fn merge_intervals(mut v: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Reads a block's deletion mark; `None` if it is not marked.
pub async fn read_deletion_mark(
    bucket: &Bucket,
    tenant: &TenantId,
    ulid: &Ulid,
) -> Result<Option<DeletionMark>, BlockError> {
    let path = block_path(tenant.as_str(), ulid, DELETION_MARK_FILE);
    match bucket.get(&path).await {
        Ok(raw) => Ok(Some(serde_json::from_slice(&raw).map_err(meta_err(path))?)),
        Err(BucketError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Marks a block for deletion (phase one of a delete). Idempotent: an existing mark keeps its
/// original time, so retries do not postpone the deletion.
pub async fn mark_for_deletion(
    bucket: &Bucket,
    tenant: &TenantId,
    ulid: &Ulid,
    now_ms: i64,
    details: &str,
) -> Result<DeletionMark, BlockError> {
    if let Some(m) = read_deletion_mark(bucket, tenant, ulid).await? {
        return Ok(m);
    }
    let mark = DeletionMark {
        ulid: *ulid,
        deletion_time: now_ms,
        details: details.to_owned(),
    };
    let path = block_path(tenant.as_str(), ulid, DELETION_MARK_FILE);
    let json = serde_json::to_vec(&mark).map_err(meta_err(path.clone()))?;
    bucket.put(&path, Bytes::from(json)).await?;
    Ok(mark)
}

/// Deletes every object of a block (phase two). `meta.json` goes first so that a crash midway
/// leaves a partial block (ignored by readers, cleaned up later) rather than a block whose meta
/// points at missing files; the deletion mark goes last so the deletion is retried after a crash.
pub async fn delete_block(
    bucket: &Bucket,
    tenant: &TenantId,
    ulid: &Ulid,
) -> Result<(), BlockError> {
    let t = tenant.as_str();
    bucket.delete(&block_path(t, ulid, META_FILE)).await?;
    let prefix = format!("{t}/{ulid}/");
    for o in bucket.list(&prefix).await? {
        if !o.path.ends_with(DELETION_MARK_FILE) {
            bucket.delete(&o.path).await?;
        }
    }
    bucket
        .delete(&block_path(t, ulid, DELETION_MARK_FILE))
        .await?;
    Ok(())
}

/// Tenants that have anything in the bucket (top-level directories that are valid tenant ids).
pub async fn list_tenants(bucket: &Bucket) -> Result<Vec<TenantId>, BucketError> {
    Ok(bucket
        .list_dirs("")
        .await?
        .into_iter()
        .filter_map(|d| TenantId::new(&d).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u64, min_time: i64, max_time: i64, resolution: i64) -> IndexedBlock {
        IndexedBlock {
            ulid: Ulid::from_parts(n, 0),
            min_time,
            max_time,
            resolution,
            compaction_level: 1,
            sources: Vec::new(),
            num_series: 1,
            num_samples: 1,
            size_bytes: 1,
        }
    }

    fn ulids(p: &PlannedBlocks) -> Vec<u64> {
        p.blocks.iter().map(|b| b.ulid.timestamp_ms()).collect()
    }

    #[test]
    fn plans_the_coarsest_blocks_and_finer_ones_only_for_gaps() {
        let mut index = BucketIndex::empty(0);
        // Raw blocks 0-99, 100-199, 200-299; a 5m block covering 0-199.
        index.blocks = vec![
            block(1, 0, 99, 0),
            block(2, 100, 199, 0),
            block(3, 200, 299, 0),
            block(4, 0, 199, 300_000),
        ];
        let plan = index.plan(0, 1000, 50, 250, 300_000);
        assert_eq!(plan.len(), 2);
        assert_eq!((plan[0].resolution, ulids(&plan[0])), (300_000, vec![4]));
        assert_eq!((plan[1].resolution, ulids(&plan[1])), (0, vec![3]));
        // Raw only: every raw block overlapping the range, none outside it.
        let plan = index.plan(0, 1000, 150, 250, 0);
        assert_eq!(plan.len(), 1);
        assert_eq!(ulids(&plan[0]), vec![2, 3]);
        // A block marked for deletion longer ago than the delay is left out.
        index.deletion_marks = vec![DeletionMark {
            ulid: Ulid::from_parts(2, 0),
            deletion_time: 0,
            details: String::new(),
        }];
        assert_eq!(ulids(&index.plan(5000, 1000, 150, 250, 0)[0]), vec![3]);
        assert_eq!(ulids(&index.plan(500, 1000, 150, 250, 0)[0]), vec![2, 3]);
    }

    #[test]
    fn coverage_joins_adjacent_blocks() {
        let c = merge_intervals(vec![(10, 19), (0, 9), (30, 39)]);
        assert_eq!(c, vec![(0, 19), (30, 39)]);
        assert!(is_covered(&c, 5, 15));
        assert!(!is_covered(&c, 15, 35));
    }
}
