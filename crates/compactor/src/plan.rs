//! Deciding what to do with a tenant's blocks. Pure functions over the bucket index, so every
//! rule is unit-tested without a bucket.

use std::collections::{HashMap, HashSet};
use strata_storage::index::IndexedBlock;
use ulid::Ulid;

/// A block made redundant by another: every source of `block` is a source of `covered_by`,
/// whose data therefore includes `block`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redundant {
    /// The block to mark for deletion.
    pub block: Ulid,
    /// The block that holds its data.
    pub covered_by: Ulid,
}

/// Blocks whose data another block of the same resolution already holds: the sources of a
/// compaction whose marks were not written (a crash between upload and marking), and copies
/// made by two compactors merging the same blocks. Of blocks with identical sources the one
/// with the smallest ULID is kept, so that concurrent compactors agree on the survivor.
/// `blocks` must not contain blocks marked for deletion: a marked block covers nothing.
pub fn redundant_blocks(blocks: &[IndexedBlock]) -> Vec<Redundant> {
    let mut by_source: HashMap<Ulid, Vec<usize>> = HashMap::new();
    for (i, b) in blocks.iter().enumerate() {
        for s in &b.sources {
            by_source.entry(*s).or_default().push(i);
        }
    }
    let sets: Vec<HashSet<Ulid>> = blocks
        .iter()
        .map(|b| b.sources.iter().copied().collect())
        .collect();
    let mut out = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let Some(first) = b.sources.first() else {
            continue;
        };
        let cover = by_source[first].iter().copied().find(|&j| {
            let c = &blocks[j];
            j != i
                && c.resolution == b.resolution
                && sets[i].is_subset(&sets[j])
                && (sets[i].len() < sets[j].len() || c.ulid < b.ulid)
        });
        if let Some(j) = cover {
            out.push(Redundant {
                block: b.ulid,
                covered_by: blocks[j].ulid,
            });
        }
    }
    out
}

/// Why a group of blocks is merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// The blocks overlap in time (replicas, re-uploads, late blocks): vertical compaction.
    Overlapping,
    /// The blocks tile a complete aligned range of the next level.
    Level {
        /// The range, ms.
        range: i64,
    },
}

/// Blocks to merge into one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Why.
    pub kind: GroupKind,
    /// The blocks, sorted by (min time, ULID).
    pub blocks: Vec<Ulid>,
}

/// The next group to merge among `blocks` (live blocks of one resolution), or `None`.
///
/// Overlapping blocks come first, as one group per run of transitively overlapping blocks. Then
/// for each level range after the first, ascending, blocks lying wholly inside one aligned range
/// `[k·R, (k+1)·R)` are grouped; a group is merged when it has at least two blocks and the range
/// is complete, i.e. some block of the tenant already reaches `(k+1)·R` (no more 2h blocks will
/// normally arrive for it; a late one is merged later as an overlap).
pub fn next_group(blocks: &[IndexedBlock], ranges: &[i64]) -> Option<Group> {
    let mut sorted: Vec<&IndexedBlock> = blocks.iter().collect();
    sorted.sort_by_key(|b| (b.min_time, b.ulid));
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i + 1;
        let mut end = sorted[i].max_time;
        while j < sorted.len() && sorted[j].min_time <= end {
            end = end.max(sorted[j].max_time);
            j += 1;
        }
        if j - i >= 2 {
            return Some(Group {
                kind: GroupKind::Overlapping,
                blocks: sorted[i..j].iter().map(|b| b.ulid).collect(),
            });
        }
        i = j;
    }
    let newest = sorted.iter().map(|b| b.max_time).max()?;
    for &range in ranges.iter().skip(1) {
        let mut groups: Vec<(i64, Vec<Ulid>)> = Vec::new();
        for b in &sorted {
            let start = b.min_time - b.min_time.rem_euclid(range);
            if b.max_time >= start + range {
                continue;
            }
            match groups.last_mut() {
                Some((s, v)) if *s == start => v.push(b.ulid),
                _ => groups.push((start, vec![b.ulid])),
            }
        }
        if let Some((_, v)) = groups
            .into_iter()
            .find(|(start, v)| v.len() >= 2 && newest >= start + range)
        {
            return Some(Group {
                kind: GroupKind::Level { range },
                blocks: v,
            });
        }
    }
    None
}

/// Time span of a block, ms (its range is inclusive).
pub fn span(b: &IndexedBlock) -> i64 {
    b.max_time - b.min_time + 1
}

/// Blocks of `blocks` (live, one resolution) spanning at least `min_span` that have no
/// downsampled counterpart yet among `downsampled` (every block of the target resolution, marked
/// ones included: a counterpart marked for retention must not be made again each cycle): a
/// counterpart's sources include all of the block's. Blocks ending before `retained_from` (the
/// target resolution's retention cutoff) are skipped, as their output would be marked at once.
pub fn to_downsample(
    blocks: &[IndexedBlock],
    downsampled: &[IndexedBlock],
    min_span: i64,
    retained_from: i64,
) -> Vec<Ulid> {
    let done: Vec<HashSet<Ulid>> = downsampled
        .iter()
        .map(|d| d.sources.iter().copied().collect())
        .collect();
    blocks
        .iter()
        .filter(|b| span(b) >= min_span && b.max_time >= retained_from)
        .filter(|b| !done.iter().any(|d| b.sources.iter().all(|s| d.contains(s))))
        .map(|b| b.ulid)
        .collect()
}

/// Blocks whose newest sample is older than `now_ms - retention_ms`; a retention of 0 keeps
/// everything.
pub fn past_retention(blocks: &[IndexedBlock], now_ms: i64, retention_ms: i64) -> Vec<Ulid> {
    if retention_ms <= 0 {
        return Vec::new();
    }
    let cutoff = now_ms.saturating_sub(retention_ms);
    blocks
        .iter()
        .filter(|b| b.max_time < cutoff)
        .map(|b| b.ulid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn id(n: u64) -> Ulid {
        Ulid::from_parts(n, 0)
    }

    fn block(n: u64, min: i64, max: i64, sources: &[u64]) -> IndexedBlock {
        IndexedBlock {
            ulid: id(n),
            min_time: min,
            max_time: max,
            resolution: 0,
            compaction_level: if sources.len() > 1 { 2 } else { 1 },
            sources: sources.iter().map(|s| id(*s)).collect(),
            num_series: 1,
            num_samples: 1,
            size_bytes: 1,
        }
    }

    fn two_hour(n: u64, k: i64) -> IndexedBlock {
        block(n, k * 2 * H, (k + 1) * 2 * H - 1, &[n])
    }

    #[test]
    fn sources_of_an_existing_output_and_identical_copies_are_redundant() {
        let a = two_hour(1, 0);
        let b = two_hour(2, 1);
        let out = block(10, 0, 4 * H - 1, &[1, 2]);
        let copy = block(11, 0, 4 * H - 1, &[2, 1]);
        let other = two_hour(3, 2);
        let r = redundant_blocks(&[a, b, out, copy, other]);
        assert_eq!(
            r,
            vec![
                Redundant {
                    block: id(1),
                    covered_by: id(10)
                },
                Redundant {
                    block: id(2),
                    covered_by: id(10)
                },
                Redundant {
                    block: id(11),
                    covered_by: id(10)
                },
            ]
        );
        // Another resolution never covers.
        let mut ds = block(12, 0, 4 * H - 1, &[1, 2]);
        ds.resolution = 300_000;
        assert!(redundant_blocks(&[two_hour(1, 0), ds]).is_empty());
    }

    #[test]
    fn overlapping_blocks_are_merged_first() {
        let blocks = vec![
            two_hour(1, 0),
            two_hour(2, 0),
            block(3, H, 3 * H, &[3]),
            two_hour(4, 5),
        ];
        let g = next_group(&blocks, &[2 * H, 12 * H]).unwrap();
        assert_eq!(g.kind, GroupKind::Overlapping);
        assert_eq!(g.blocks, vec![id(1), id(2), id(3)]);
    }

    #[test]
    fn a_level_range_is_merged_only_once_complete() {
        let mut blocks: Vec<IndexedBlock> = (0..6).map(|k| two_hour(k as u64 + 1, k)).collect();
        // Nothing reaches 12h yet: the range may still receive blocks.
        assert_eq!(next_group(&blocks, &[2 * H, 12 * H, 24 * H]), None);
        blocks.push(two_hour(7, 6));
        let g = next_group(&blocks, &[2 * H, 12 * H, 24 * H]).unwrap();
        assert_eq!(g.kind, GroupKind::Level { range: 12 * H });
        assert_eq!(g.blocks, (1..=6).map(id).collect::<Vec<_>>());
        // A single block in a range is already as compact as it gets.
        assert_eq!(
            next_group(&[two_hour(1, 0), two_hour(7, 6)], &[2 * H, 12 * H]),
            None
        );
    }

    #[test]
    fn next_levels_merge_outputs_of_previous_ones() {
        let blocks = vec![
            block(1, 0, 12 * H - 1, &[1, 2]),
            block(2, 12 * H, 24 * H - 1, &[3, 4]),
            two_hour(5, 12),
        ];
        let g = next_group(&blocks, &[2 * H, 12 * H, 24 * H]).unwrap();
        assert_eq!(g.kind, GroupKind::Level { range: 24 * H });
        assert_eq!(g.blocks, vec![id(1), id(2)]);
    }

    #[test]
    fn downsampling_skips_short_and_already_downsampled_blocks() {
        let long = block(1, 0, 48 * H - 1, &[7, 8]);
        let short = block(2, 48 * H, 72 * H - 1, &[9]);
        let longer = block(3, 72 * H, 120 * H - 1, &[10, 11]);
        let mut done = block(4, 72 * H, 120 * H - 1, &[10, 11]);
        done.resolution = 300_000;
        let v = to_downsample(&[long.clone(), short, longer], &[done], 40 * H, i64::MIN);
        assert_eq!(v, vec![id(1)]);
        // Past the 5m retention: its 5m block would be deleted right away.
        assert!(to_downsample(&[long], &[], 40 * H, 48 * H).is_empty());
    }

    #[test]
    fn retention_marks_only_blocks_wholly_past_it() {
        let blocks = vec![two_hour(1, 0), two_hour(2, 1), two_hour(3, 2)];
        assert_eq!(past_retention(&blocks, 10 * H, 6 * H), vec![id(1), id(2)]);
        assert!(past_retention(&blocks, 10 * H, 0).is_empty());
        assert!(past_retention(&blocks, 10 * H, 100 * H).is_empty());
    }
}
