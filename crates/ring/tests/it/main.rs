//! Lifecycler, watcher and ring pages against the in-memory KV.

mod http;
mod lifecycler;
mod watcher;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata_meta::{KvStore, MemoryKv};
use strata_ring::{instance_key, Clock, InstanceDesc, InstanceState, RingConfig};

pub const PREFIX: &str = "ring/ingester";
/// A fixed "now" for tests with a manual clock.
pub const T0: i64 = 1_700_000_000_000;

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(ms)))
    }
    pub fn clock(&self) -> Clock {
        let a = self.0.clone();
        Arc::new(move || a.load(Ordering::SeqCst))
    }
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

/// A configuration whose heartbeat task stays out of the way: tests call `heartbeat()`.
pub fn cfg(id: &str) -> RingConfig {
    RingConfig {
        instance_id: id.into(),
        instance_addr: Some(format!("{id}.local:9095")),
        instance_http_addr: Some(format!("{id}.local:8080")),
        heartbeat_period: Duration::from_secs(3600),
        heartbeat_timeout: Duration::from_secs(7200),
        ..Default::default()
    }
}

pub fn kv() -> (MemoryKv, Arc<dyn KvStore>) {
    let m = MemoryKv::with_progress_interval(Duration::from_millis(20));
    let a: Arc<dyn KvStore> = Arc::new(m.clone());
    (m, a)
}

/// The stored record of `id`, if any.
pub async fn entry(kv: &dyn KvStore, id: &str) -> Option<InstanceDesc> {
    let key = instance_key(PREFIX, id);
    kv.get(&key)
        .await
        .unwrap()
        .map(|e| InstanceDesc::decode(&key, &e.value).unwrap())
}

/// Writes a record for `id` directly, as another process would.
pub async fn put(kv: &dyn KvStore, id: &str, state: InstanceState, tokens: Vec<u32>, hb: i64) {
    let d = InstanceDesc {
        id: id.into(),
        addr: format!("{id}.local:9095"),
        http_addr: format!("{id}.local:8080"),
        zone: String::new(),
        state,
        tokens,
        heartbeat_ms: hb,
        registered_ms: hb,
    };
    let key = instance_key(PREFIX, id);
    let version = kv.get(&key).await.unwrap().map_or(0, |e| e.version);
    kv.cas(&key, version, d.encode()).await.unwrap();
}
