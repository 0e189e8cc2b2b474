//! Static configuration of the compactor (`compactor:` in the YAML file). Retention is per
//! tenant and lives in `strata_model::Limits`.

use crate::error::CompactorError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The `compactor:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactorConfig {
    /// Time between two compaction cycles over all tenants.
    #[serde(with = "humantime_serde")]
    pub compaction_interval: Duration,
    /// Block ranges of the compaction levels, ascending, each a multiple of the previous. The
    /// first is the range the ingesters cut; blocks are merged into aligned ranges of each next
    /// level once the range is complete.
    #[serde(with = "durations")]
    pub block_ranges: Vec<Duration>,
    /// A block marked for deletion is deleted this long after the mark. Queriers stop reading a
    /// marked block earlier than this, once the block that replaced it is in their index.
    #[serde(with = "humantime_serde")]
    pub deletion_delay: Duration,
    /// A block directory without `meta.json` (an abandoned upload or a crashed compaction)
    /// is deleted once its ULID is older than this. Must exceed the longest upload.
    #[serde(with = "humantime_serde")]
    pub partial_block_delay: Duration,
    /// Produce 5m and 1h downsampled blocks.
    pub downsampling_enabled: bool,
    /// Raw blocks spanning at least this get a 5-minute downsampled copy. Thanos uses 40h with
    /// 48h and 14d levels; the default here is the largest default level (24h), so that
    /// downsampling happens with the default `block_ranges`, whose merges stay in memory.
    #[serde(with = "humantime_serde")]
    pub downsample_5m_after_range: Duration,
    /// 5-minute blocks spanning at least this get a 1-hour downsampled copy (Thanos: 10 days;
    /// 24h by default here, for the same reason).
    #[serde(with = "humantime_serde")]
    pub downsample_1h_after_range: Duration,
    /// A tenant's lock (`<tenant>/compactor.lock`) expires this long after its last heartbeat,
    /// so a crashed compactor blocks a tenant for at most this long.
    #[serde(with = "humantime_serde")]
    pub lock_ttl: Duration,
    /// Identity written into lock objects; empty = a fresh `compactor-<ULID>` per process.
    pub instance_id: String,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        const H: u64 = 3600;
        Self {
            compaction_interval: Duration::from_secs(H),
            block_ranges: vec![
                Duration::from_secs(2 * H),
                Duration::from_secs(12 * H),
                Duration::from_secs(24 * H),
            ],
            deletion_delay: Duration::from_secs(12 * H),
            partial_block_delay: Duration::from_secs(24 * H),
            downsampling_enabled: true,
            downsample_5m_after_range: Duration::from_secs(24 * H),
            downsample_1h_after_range: Duration::from_secs(24 * H),
            lock_ttl: Duration::from_secs(10 * 60),
            instance_id: String::new(),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl CompactorConfig {
    /// Checks values; errors name the field.
    pub fn validate(&self) -> Result<(), CompactorError> {
        let bad = |field: &'static str, reason: String| CompactorError::Config { field, reason };
        if self.compaction_interval < Duration::from_secs(1) {
            return Err(bad(
                "compactor.compaction_interval",
                "must be at least 1s".into(),
            ));
        }
        if self.block_ranges.is_empty() {
            return Err(bad(
                "compactor.block_ranges",
                "must list at least one range".into(),
            ));
        }
        for (i, r) in self.block_ranges.iter().enumerate() {
            if *r < Duration::from_secs(60)
                || r.subsec_millis() != 0
                || r.as_nanos() % 1_000_000 != 0
            {
                return Err(bad(
                    "compactor.block_ranges",
                    format!("range {r:?} must be at least 1m and a whole number of seconds"),
                ));
            }
            if i > 0 {
                let prev = self.block_ranges[i - 1];
                // Aligned ranges of a level must tile the ranges of the next one exactly, or
                // blocks would straddle the next level's boundaries and never be merged.
                if *r <= prev || ms(*r) % ms(prev) != 0 {
                    return Err(bad(
                        "compactor.block_ranges",
                        format!("{r:?} must be larger than and a multiple of {prev:?}"),
                    ));
                }
            }
        }
        if self.downsample_5m_after_range < Duration::from_secs(300) {
            return Err(bad(
                "compactor.downsample_5m_after_range",
                "must be at least 5m (one 5m window)".into(),
            ));
        }
        if self.downsample_1h_after_range < Duration::from_secs(3600) {
            return Err(bad(
                "compactor.downsample_1h_after_range",
                "must be at least 1h (one 1h window)".into(),
            ));
        }
        if self.lock_ttl < Duration::from_secs(3) {
            return Err(bad("compactor.lock_ttl", "must be at least 3s".into()));
        }
        if self.instance_id.contains(['\n', '"']) {
            return Err(bad(
                "compactor.instance_id",
                "must not contain newlines or quotes".into(),
            ));
        }
        Ok(())
    }

    /// Block ranges in milliseconds.
    pub(crate) fn ranges_ms(&self) -> Vec<i64> {
        self.block_ranges.iter().map(|d| ms(*d)).collect()
    }

    pub(crate) fn deletion_delay_ms(&self) -> i64 {
        ms(self.deletion_delay)
    }

    pub(crate) fn partial_block_delay_ms(&self) -> i64 {
        ms(self.partial_block_delay)
    }

    pub(crate) fn downsample_5m_ms(&self) -> i64 {
        ms(self.downsample_5m_after_range)
    }

    pub(crate) fn downsample_1h_ms(&self) -> i64 {
        ms(self.downsample_1h_after_range)
    }
}

/// `humantime` strings for a list of durations (`[2h, 12h, 24h]`).
mod durations {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let v: Vec<humantime_serde::Serde<Duration>> = v.iter().map(|d| (*d).into()).collect();
        v.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        let v: Vec<humantime_serde::Serde<Duration>> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|x| x.into_inner()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip_through_yaml() {
        let c = CompactorConfig::default();
        c.validate().unwrap();
        let yaml = serde_yaml::to_string(&c).unwrap();
        let back: CompactorConfig = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, c);
        let c: CompactorConfig = serde_yaml::from_str("block_ranges: [2h, 48h]\n").unwrap();
        assert_eq!(
            c.block_ranges,
            vec![Duration::from_secs(7200), Duration::from_secs(172_800)]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = serde_yaml::from_str::<CompactorConfig>("block_range: [2h]\n").unwrap_err();
        assert!(e.to_string().contains("block_range"), "{e}");
        for (yaml, field) in [
            ("block_ranges: []\n", "compactor.block_ranges"),
            ("block_ranges: [2h, 3h]\n", "compactor.block_ranges"),
            ("block_ranges: [2h, 1h]\n", "compactor.block_ranges"),
            ("compaction_interval: 0s\n", "compactor.compaction_interval"),
            (
                "downsample_5m_after_range: 1m\n",
                "compactor.downsample_5m_after_range",
            ),
            (
                "downsample_1h_after_range: 30m\n",
                "compactor.downsample_1h_after_range",
            ),
            ("lock_ttl: 1s\n", "compactor.lock_ttl"),
        ] {
            let c: CompactorConfig = serde_yaml::from_str(yaml).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(field), "{yaml}: {e}");
        }
    }
}
