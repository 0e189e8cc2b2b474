//! Query shards: the query-frontend runs a shardable aggregation once per shard, each over the
//! series whose label hash falls in that shard, and combines the partial answers. The frontend
//! names the shard in a request parameter; the querier keeps only that shard's series. Both
//! sides use [`QueryShard::contains`], so they agree on every series' shard.

use crate::{Labels, ModelError};
use std::fmt;

/// Request parameter naming the shard a query reads (`"3_of_16"`, 1-based like Mimir's
/// `__query_shard__` matcher value).
pub const QUERY_SHARD_PARAM: &str = "__query_shard__";

/// At most this many shards per query.
pub const MAX_QUERY_SHARDS: u32 = 512;

/// One shard of a query's series: those whose label hash modulo `total` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryShard {
    index: u32,
    total: u32,
}

impl QueryShard {
    /// Shard `index` (0-based) of `total`.
    pub fn new(index: u32, total: u32) -> Result<Self, ModelError> {
        if total == 0 || total > MAX_QUERY_SHARDS || index >= total {
            return Err(ModelError::InvalidShard {
                value: format!("{}_of_{total}", u64::from(index) + 1),
                reason: format!("want 1 ≤ shard ≤ total ≤ {MAX_QUERY_SHARDS}"),
            });
        }
        Ok(Self { index, total })
    }

    /// Parses `"<shard>_of_<total>"` (1-based shard).
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let bad = || ModelError::InvalidShard {
            value: s.to_owned(),
            reason: "not <shard>_of_<total>, e.g. 1_of_16".to_owned(),
        };
        let (i, n) = s.split_once("_of_").ok_or_else(bad)?;
        let i: u32 = i.parse().map_err(|_| bad())?;
        let n: u32 = n.parse().map_err(|_| bad())?;
        if i == 0 {
            return Err(bad());
        }
        Self::new(i - 1, n)
    }

    /// The number of shards.
    pub fn total(&self) -> u32 {
        self.total
    }

    /// Whether the series `labels` belongs to this shard.
    pub fn contains(&self, labels: &Labels) -> bool {
        shard_hash(labels) % u64::from(self.total) == u64::from(self.index)
    }
}

impl fmt::Display for QueryShard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_of_{}", self.index + 1, self.total)
    }
}

/// FNV-1a 64 over `name 0xff value 0xff` of each label in order: stable across processes and
/// versions (part of the frontend–querier protocol), and spreads series evenly.
fn shard_hash(labels: &Labels) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for l in labels {
        eat(l.name.as_bytes());
        eat(&[0xff]);
        eat(l.value.as_bytes());
        eat(&[0xff]);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_one_based() {
        let s = QueryShard::parse("3_of_16").unwrap();
        assert_eq!(s.to_string(), "3_of_16");
        assert_eq!(s.total(), 16);
        for bad in [
            "0_of_4", "5_of_4", "1_of_0", "x_of_2", "1of2", "1_of_513", "",
        ] {
            let e = QueryShard::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(QUERY_SHARD_PARAM), "{bad}: {e}");
        }
    }

    #[test]
    fn every_series_is_in_exactly_one_shard_and_shards_are_even() {
        let total = 8;
        let mut sizes = vec![0usize; total as usize];
        for i in 0..4000 {
            let l = Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]);
            let owners: Vec<u32> = (0..total)
                .filter(|&k| QueryShard::new(k, total).unwrap().contains(&l))
                .collect();
            assert_eq!(owners.len(), 1, "{l}");
            sizes[owners[0] as usize] += 1;
        }
        // 500 expected per shard.
        assert!(sizes.iter().all(|&n| (400..600).contains(&n)), "{sizes:?}");
    }

    #[test]
    fn the_hash_is_stable() {
        // Part of the protocol between query-frontends and queriers of different versions
        // (the value checked with an independent FNV-1a in Python).
        let l = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        assert_eq!(format!("{:016x}", shard_hash(&l)), "7bfed62635f64858");
    }
}
