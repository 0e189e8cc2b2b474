//! Per-tenant token buckets for the ingestion rate limit.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by tenant. A request takes all its samples at once or nothing.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes `n` tokens from the tenant's bucket refilled at `rate`/s up to `burst`. A request
    /// larger than the burst is allowed when the bucket is full, so that a burst smaller than
    /// one request cannot block a tenant forever.
    pub fn allow(&self, tenant: &str, rate: f64, burst: u64, n: usize, now: Instant) -> bool {
        if rate <= 0.0 {
            return true;
        }
        let burst = burst as f64;
        let mut map = self.buckets.lock();
        let b = map.entry(tenant.to_owned()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(burst);
        b.last = now;
        let need = n as f64;
        if need <= b.tokens || (need > burst && b.tokens >= burst) {
            b.tokens -= need.min(b.tokens);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_rate() {
        let l = RateLimiter::default();
        let t0 = Instant::now();
        assert!(l.allow("t", 100.0, 200, 150, t0));
        assert!(!l.allow("t", 100.0, 200, 100, t0));
        assert!(l.allow("t", 100.0, 200, 100, t0 + Duration::from_millis(500)));
        assert!(!l.allow("t", 100.0, 200, 10, t0 + Duration::from_millis(500)));
        // Other tenants are independent; zero rate = unlimited.
        assert!(l.allow("u", 100.0, 200, 200, t0));
        assert!(l.allow("v", 0.0, 0, 1_000_000, t0));
        // A request larger than the burst passes only from a full bucket.
        assert!(l.allow("w", 10.0, 50, 60, t0));
        assert!(!l.allow("w", 10.0, 50, 60, t0 + Duration::from_secs(1)));
    }
}
