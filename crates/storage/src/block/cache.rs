//! A byte-bounded cache of the samples-file ranges readers fetched, shared by every open block
//! of a store-gateway. Repeated queries (dashboards refreshing, the same panel over many
//! series) then cost no object-store request; the least recently used ranges go first.
//! Keys are exact byte ranges: Parquet's reader asks for the same (coalesced) page ranges when
//! the same series and time window are selected again.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ops::Range;

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<(String, u64, u64), (Bytes, u64)>,
    bytes: u64,
    clock: u64,
    hits: u64,
    misses: u64,
}

/// Cache of fetched byte ranges, bounded by `budget` bytes.
#[derive(Debug)]
pub struct RangeCache {
    budget: u64,
    inner: Mutex<Inner>,
}

impl RangeCache {
    /// A cache holding at most `budget` bytes of data.
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The cached bytes of `path[range]`, if present.
    pub fn get(&self, path: &str, range: &Range<u64>) -> Option<Bytes> {
        let mut g = self.inner.lock();
        g.clock += 1;
        let clock = g.clock;
        let hit = g
            .entries
            .get_mut(&(path.to_owned(), range.start, range.end))
            .map(|e| {
                e.1 = clock;
                e.0.clone()
            });
        if hit.is_some() {
            g.hits += 1;
        } else {
            g.misses += 1;
        }
        hit
    }

    /// Stores `path[range]`; ranges larger than a quarter of the budget are not kept.
    pub fn put(&self, path: &str, range: &Range<u64>, data: Bytes) {
        let len = data.len() as u64;
        if len > self.budget / 4 {
            return;
        }
        let mut g = self.inner.lock();
        g.clock += 1;
        let clock = g.clock;
        if let Some(old) = g
            .entries
            .insert((path.to_owned(), range.start, range.end), (data, clock))
        {
            g.bytes -= old.0.len() as u64;
        }
        g.bytes += len;
        while g.bytes > self.budget {
            let Some(victim) = g
                .entries
                .iter()
                .min_by_key(|(_, v)| v.1)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(v) = g.entries.remove(&victim) {
                g.bytes -= v.0.len() as u64;
            }
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        let g = self.inner.lock();
        (g.hits, g.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_beyond_the_budget() {
        let c = RangeCache::new(100);
        c.put("a", &(0..10), Bytes::from(vec![1u8; 20]));
        c.put("a", &(10..20), Bytes::from(vec![2u8; 20]));
        assert!(c.get("a", &(0..10)).is_some()); // a/0..10 now most recent
        for i in 0..4u64 {
            c.put("b", &(i..i + 1), Bytes::from(vec![3u8; 20]));
        }
        assert!(c.bytes() <= 100);
        assert!(
            c.get("a", &(10..20)).is_none(),
            "least recently used went first"
        );
        assert!(c.get("a", &(0..10)).is_some());
        c.put("big", &(0..1), Bytes::from(vec![0u8; 60]));
        assert!(
            c.get("big", &(0..1)).is_none(),
            "over a quarter of the budget: not kept"
        );
        assert_eq!(c.stats().0, 2);
    }
}
