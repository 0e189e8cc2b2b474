//! Answers of query pieces, kept within a byte budget, least recently used out first. A map
//! with a use counter is enough here (eviction scans it; thousands of entries): no crate needed
//! for that, and `moka`/`lru` would add a dependency for a few lines.

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;

#[derive(Debug)]
struct Entry {
    value: Bytes,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    bytes: u64,
    clock: u64,
}

/// A bounded cache of piece answers by key.
#[derive(Debug)]
pub struct ResultsCache {
    max_bytes: u64,
    inner: Mutex<Inner>,
}

impl ResultsCache {
    pub fn new(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn cost(key: &str, value: &Bytes) -> u64 {
        (key.len() + value.len() + 64) as u64
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        let mut c = self.inner.lock();
        c.clock += 1;
        let clock = c.clock;
        let e = c.entries.get_mut(key)?;
        e.last_used = clock;
        Some(e.value.clone())
    }

    /// Stores `value`; one larger than the whole budget is not kept.
    pub fn put(&self, key: String, value: Bytes) {
        let cost = Self::cost(&key, &value);
        if cost > self.max_bytes {
            return;
        }
        let mut c = self.inner.lock();
        c.clock += 1;
        let clock = c.clock;
        if let Some(old) = c.entries.remove(&key) {
            c.bytes -= Self::cost(&key, &old.value);
        }
        c.bytes += cost;
        c.entries.insert(
            key,
            Entry {
                value,
                last_used: clock,
            },
        );
        while c.bytes > self.max_bytes {
            let Some(victim) = c
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(e) = c.entries.remove(&victim) {
                c.bytes -= Self::cost(&victim, &e.value);
            }
        }
    }

    /// Bytes held (keys, values and a fixed overhead per entry).
    pub fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_budget_and_evicts_the_least_recently_used() {
        let c = ResultsCache::new(3 * (1 + 100 + 64));
        for k in ["a", "b", "c"] {
            c.put(k.into(), Bytes::from(vec![0u8; 100]));
        }
        assert_eq!(c.len(), 3);
        assert!(c.get("a").is_some());
        c.put("d".into(), Bytes::from(vec![0u8; 100]));
        assert!(c.bytes() <= 3 * 165);
        assert!(c.get("b").is_none(), "b was the least recently used");
        assert!(c.get("a").is_some() && c.get("d").is_some());
        c.put("huge".into(), Bytes::from(vec![0u8; 10_000]));
        assert!(c.get("huge").is_none());
    }
}
