//! Keeps the current ring snapshot from a KV prefix watch, and the time health is judged at.

use crate::desc::{ring_prefix, InstanceDesc};
use crate::metrics::RingMetrics;
use crate::ring::{Ring, RingOptions};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use strata_meta::{KvStore, WatchEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A source of Unix milliseconds; tests substitute a manual one.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    })
}

/// How a [`RingWatcher`] builds rings and judges freshness.
#[derive(Clone)]
pub struct WatcherOptions {
    pub ring: RingOptions,
    /// While the watch delivered anything (progress included) within this window, health is
    /// judged at the wall clock; after it, time stops at the last contact plus the window.
    /// About 3x the store's progress interval.
    pub freshness_window: Duration,
    /// The ring's name in metrics (`ingester`, `store-gateway`, ...).
    pub name: String,
    pub metrics: Option<RingMetrics>,
    pub clock: Clock,
    /// First wait before watching again after the watch broke; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl std::fmt::Debug for WatcherOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatcherOptions")
            .field("ring", &self.ring)
            .field("freshness_window", &self.freshness_window)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl WatcherOptions {
    /// Defaults for a ring called `name`, read with `ring`.
    pub fn new(name: impl Into<String>, ring: RingOptions) -> Self {
        Self {
            ring,
            freshness_window: Duration::from_secs(3),
            name: name.into(),
            metrics: None,
            clock: system_clock(),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

struct Shared {
    tx: watch::Sender<Arc<Ring>>,
    last_contact_ms: AtomicI64,
    window_ms: i64,
    clock: Clock,
}

impl Shared {
    fn now_ms(&self) -> i64 {
        let now = (self.clock)();
        now.min(
            self.last_contact_ms
                .load(Ordering::Relaxed)
                .saturating_add(self.window_ms),
        )
    }
}

/// The current ring of one KV prefix, rebuilt on every change.
pub struct RingWatcher {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for RingWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingWatcher").finish_non_exhaustive()
    }
}

impl Drop for RingWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RingWatcher {
    /// Watches `prefix` (e.g. `ring/ingester`) until dropped. The ring is empty (revision
    /// `None`) until the first snapshot arrives; see [`Self::wait_for`].
    pub fn start(kv: Arc<dyn KvStore>, prefix: &str, opts: WatcherOptions) -> Arc<Self> {
        let (tx, _) = watch::channel(Arc::new(Ring::empty(&opts.ring)));
        let shared = Arc::new(Shared {
            tx,
            last_contact_ms: AtomicI64::new((opts.clock)()),
            window_ms: i64::try_from(opts.freshness_window.as_millis()).unwrap_or(i64::MAX),
            clock: opts.clock.clone(),
        });
        let task = tokio::spawn(run(kv, ring_prefix(prefix), shared.clone(), opts));
        Arc::new(Self { shared, task })
    }

    /// The current snapshot.
    pub fn ring(&self) -> Arc<Ring> {
        self.shared.tx.borrow().clone()
    }

    /// Notified on every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Ring>> {
        self.shared.tx.subscribe()
    }

    /// Waits until the ring satisfies `f` and returns that snapshot.
    pub async fn wait_for(&self, mut f: impl FnMut(&Ring) -> bool) -> Arc<Ring> {
        let mut rx = self.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let r = rx.wait_for(|r| f(r)).await.expect("sender held by self");
        r.clone()
    }

    /// The time to judge heartbeats at: the wall clock while the KV watch is live, frozen at
    /// the last contact (plus the freshness window) when it is not, so losing the meta store
    /// does not turn every instance unhealthy after the heartbeat timeout.
    pub fn now_ms(&self) -> i64 {
        self.shared.now_ms()
    }
}

async fn run(kv: Arc<dyn KvStore>, prefix: String, shared: Arc<Shared>, opts: WatcherOptions) {
    let mut map: BTreeMap<String, InstanceDesc> = BTreeMap::new();
    let mut backoff = opts.min_backoff;
    loop {
        match kv.watch(&prefix).await {
            Ok(mut stream) => {
                while let Some(item) = stream.next().await {
                    let ev = match item {
                        Ok(ev) => ev,
                        Err(e) => {
                            tracing::warn!(ring = %opts.name, error = %e, "ring watch broke; watching again");
                            break;
                        }
                    };
                    shared
                        .last_contact_ms
                        .store((shared.clock)(), Ordering::Relaxed);
                    backoff = opts.min_backoff;
                    if let Some(revision) = apply(&mut map, &prefix, ev) {
                        let ring =
                            Ring::new(map.values().cloned(), &opts.ring).with_revision(revision);
                        shared.tx.send_replace(Arc::new(ring));
                    }
                    if let Some(m) = &opts.metrics {
                        m.observe(&opts.name, &shared.tx.borrow(), shared.now_ms());
                    }
                }
            }
            Err(e) => {
                tracing::warn!(ring = %opts.name, error = %e, "cannot watch the ring; retrying");
            }
        }
        // Jitter spreads the reconnects of many processes after a meta-store outage.
        let jitter = Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64 / 4));
        tokio::time::sleep(backoff + jitter).await;
        backoff = (backoff * 2).min(opts.max_backoff);
    }
}

/// Applies one event; returns the revision when the instance map changed.
fn apply(map: &mut BTreeMap<String, InstanceDesc>, prefix: &str, ev: WatchEvent) -> Option<u64> {
    match ev {
        WatchEvent::Snapshot { revision, entries } => {
            map.clear();
            for e in entries {
                put(map, prefix, &e.key, &e.value);
            }
            Some(revision)
        }
        WatchEvent::Put(e) => {
            put(map, prefix, &e.key, &e.value);
            Some(e.version)
        }
        WatchEvent::Delete { key, revision } => {
            map.remove(&key);
            Some(revision)
        }
        WatchEvent::Progress { .. } => None,
    }
}

fn put(map: &mut BTreeMap<String, InstanceDesc>, prefix: &str, key: &str, value: &[u8]) {
    let id = &key[prefix.len().min(key.len())..];
    if id.is_empty() || id.contains('/') {
        return; // not an instance key of this ring
    }
    match InstanceDesc::decode(key, value) {
        Ok(mut d) => {
            // The key is authoritative: two keys can never claim one id.
            d.id = id.to_owned();
            map.insert(key.to_owned(), d);
        }
        Err(e) => {
            tracing::warn!(error = %e, "ignoring an unreadable ring entry");
            map.remove(key);
        }
    }
}
