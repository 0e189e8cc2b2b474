//! The notification log: what was last sent per group and integration, so that repeats respect
//! `repeat_interval` and resolved notifications follow `send_resolved` (upstream `nflog` and
//! `DedupStage`).

use crate::time::{add, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

/// Identifies one integration of one receiver for one aggregation group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NflogKey {
    pub group_key: String,
    pub receiver: String,
    pub integration: String,
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NflogEntry {
    pub key: NflogKey,
    pub timestamp: Timestamp,
    /// Fingerprints of the alerts that were firing / resolved in the notified group.
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
    pub expires_at: Timestamp,
}

#[derive(Debug, Default)]
pub struct Nflog {
    entries: HashMap<NflogKey, NflogEntry>,
}

/// Upstream `DedupStage.needsUpdate`.
pub fn needs_update(
    entry: Option<&NflogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: Duration,
    now: Timestamp,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&e.firing) {
        return true;
    }
    if firing.is_empty() {
        // All resolved: notify (regardless of send_resolved, to clear the log) only if the
        // receiver was told about firing alerts.
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return true;
    }
    add(e.timestamp, repeat) < now
}

impl Nflog {
    pub fn get(&self, key: &NflogKey) -> Option<&NflogEntry> {
        self.entries.get(key)
    }

    /// Records a successful notification; the entry lives for `2 × repeat_interval`.
    pub fn log(
        &mut self,
        key: NflogKey,
        firing: BTreeSet<u64>,
        resolved: BTreeSet<u64>,
        now: Timestamp,
        repeat: Duration,
    ) {
        let expires_at = add(now, repeat * 2);
        self.entries.insert(
            key.clone(),
            NflogEntry {
                key,
                timestamp: now,
                firing,
                resolved,
                expires_at,
            },
        );
    }

    pub fn gc(&mut self, now: Timestamp) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_at > now);
        before - self.entries.len()
    }

    pub fn entries(&self) -> impl Iterator<Item = &NflogEntry> {
        self.entries.values()
    }

    /// Merges a replicated or snapshotted entry, last writer wins: the newer timestamp, and on
    /// equal timestamps the entry whose JSON encoding sorts last, so replicas receiving the same
    /// entries in any order agree. Returns whether the log changed.
    pub fn merge(&mut self, e: NflogEntry) -> bool {
        if let Some(old) = self.entries.get(&e.key) {
            let wins = match e.timestamp.cmp(&old.timestamp) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Less => false,
                std::cmp::Ordering::Equal => {
                    serde_json::to_vec(&e).unwrap_or_default()
                        > serde_json::to_vec(old).unwrap_or_default()
                }
            };
            if !wins {
                return false;
            }
        }
        self.entries.insert(e.key.clone(), e);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    #[test]
    fn merge_is_last_writer_wins_in_any_order() {
        let key = NflogKey {
            group_key: "g".into(),
            receiver: "r".into(),
            integration: "webhook".into(),
            index: 0,
        };
        let at = |ts: &str, firing: &[u64]| NflogEntry {
            key: key.clone(),
            timestamp: parse_rfc3339(ts).unwrap(),
            firing: firing.iter().copied().collect(),
            resolved: BTreeSet::new(),
            expires_at: parse_rfc3339("2026-01-02T00:00:00Z").unwrap(),
        };
        let old = at("2026-01-01T00:00:00Z", &[1]);
        let new = at("2026-01-01T00:01:00Z", &[1, 2]);
        let tie = at("2026-01-01T00:01:00Z", &[1, 3]);
        for order in [[&old, &new, &tie], [&tie, &new, &old], [&new, &old, &tie]] {
            let mut log = Nflog::default();
            for e in order {
                log.merge(e.clone());
            }
            // [1,3] encodes after [1,2]: the tie goes to it whatever the order.
            assert_eq!(log.get(&key), Some(&tie), "{order:?}");
        }
        let mut log = Nflog::default();
        assert!(log.merge(new.clone()));
        assert!(!log.merge(old), "older entries change nothing");
        assert!(!log.merge(new), "the same entry changes nothing");
    }

    #[test]
    fn dedup_table() {
        let now = parse_rfc3339("2026-01-01T01:00:00Z").unwrap();
        let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
        let entry = |f: &[u64], r: &[u64], ts: &str| NflogEntry {
            key: NflogKey {
                group_key: "g".into(),
                receiver: "r".into(),
                integration: "webhook".into(),
                index: 0,
            },
            timestamp: parse_rfc3339(ts).unwrap(),
            firing: set(f),
            resolved: set(r),
            expires_at: now,
        };
        let h = Duration::from_secs(3600);
        // No entry: only if something fires.
        assert!(needs_update(None, &set(&[1]), &set(&[]), true, h, now));
        assert!(!needs_update(None, &set(&[]), &set(&[1]), true, h, now));
        let e = entry(&[1, 2], &[], "2026-01-01T00:30:00Z");
        // New firing alert.
        assert!(needs_update(
            Some(&e),
            &set(&[1, 3]),
            &set(&[]),
            true,
            h,
            now
        ));
        // Subset, nothing new.
        assert!(!needs_update(
            Some(&e),
            &set(&[1]),
            &set(&[]),
            false,
            h,
            now
        ));
        // Newly resolved with send_resolved.
        assert!(needs_update(Some(&e), &set(&[1]), &set(&[2]), true, h, now));
        assert!(!needs_update(
            Some(&e),
            &set(&[1]),
            &set(&[2]),
            false,
            h,
            now
        ));
        // All resolved: always (clears the log).
        assert!(needs_update(
            Some(&e),
            &set(&[]),
            &set(&[1, 2]),
            false,
            h,
            now
        ));
        let cleared = entry(&[], &[1], "2026-01-01T00:30:00Z");
        assert!(!needs_update(
            Some(&cleared),
            &set(&[]),
            &set(&[1]),
            true,
            h,
            now
        ));
        // Repeat interval elapsed.
        let old = entry(&[1], &[], "2025-12-31T23:59:00Z");
        assert!(needs_update(
            Some(&old),
            &set(&[1]),
            &set(&[]),
            true,
            h,
            now
        ));
    }
}
