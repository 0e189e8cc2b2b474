use crate::{cfg, put, ManualClock, PREFIX, T0};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata_meta::{KvEntry, KvError, KvStore, MemoryKv, WatchStream};
use strata_ring::{
    InstanceState, Lifecycler, Operation, RingConfig, RingMetrics, RingOptions, RingWatcher,
    WatcherOptions,
};

/// A KV whose watch streams can be silenced (a meta store without quorum sends nothing) or
/// broken once.
#[derive(Debug)]
struct FlakyKv {
    inner: MemoryKv,
    silent: Arc<AtomicBool>,
    break_next: Arc<AtomicBool>,
    watches: AtomicUsize,
}

impl FlakyKv {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryKv::with_progress_interval(Duration::from_millis(20)),
            silent: Arc::default(),
            break_next: Arc::default(),
            watches: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl KvStore for FlakyKv {
    async fn get(&self, key: &str) -> Result<Option<KvEntry>, KvError> {
        self.inner.get(key).await
    }
    async fn cas(&self, key: &str, expected: u64, value: Bytes) -> Result<u64, KvError> {
        self.inner.cas(key, expected, value).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, KvError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<bool, KvError> {
        self.inner.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str) -> Result<WatchStream, KvError> {
        self.watches.fetch_add(1, Ordering::SeqCst);
        let s = self.inner.watch(prefix).await?;
        let silent = self.silent.clone();
        let broken = self.break_next.clone();
        Ok(Box::pin(s.filter_map(move |item| {
            let out = if broken.swap(false, Ordering::SeqCst) {
                Some(Err(KvError::Unavailable {
                    what: "injected".into(),
                    source: None,
                }))
            } else if silent.load(Ordering::SeqCst) {
                None
            } else {
                Some(item)
            };
            async move { out }
        })))
    }
}

fn options(clock: &ManualClock) -> WatcherOptions {
    WatcherOptions {
        freshness_window: Duration::from_secs(1),
        clock: clock.clock(),
        min_backoff: Duration::from_millis(10),
        ..WatcherOptions::new(
            "ingester",
            RingOptions {
                replication_factor: 1,
                ..Default::default()
            },
        )
    }
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// A current-thread runtime: the watcher task runs only at this test's await points, so
// silencing the KV and moving the clock happen with no event in between.
#[tokio::test]
async fn health_time_stops_while_the_kv_is_silent() {
    let kv = FlakyKv::new();
    let clock = ManualClock::new(T0);
    put(&*kv, "ing-1", InstanceState::Active, vec![1], T0).await;
    let w = RingWatcher::start(kv.clone(), PREFIX, options(&clock));
    let ring = w.wait_for(|r| r.get("ing-1").is_some()).await;
    let d = ring.get("ing-1").unwrap().clone();
    assert_eq!(w.now_ms(), T0);

    kv.silent.store(true, Ordering::SeqCst);
    let ten_minutes_later = T0 + 600_000;
    clock.set(ten_minutes_later);
    assert_eq!(
        w.now_ms(),
        T0 + 1_000,
        "frozen at the last contact plus the window"
    );
    assert!(ring.is_healthy(&d, Operation::Write, w.now_ms()));
    assert!(
        !ring.is_healthy(&d, Operation::Write, ten_minutes_later),
        "by the wall clock it would be dead"
    );
    // Progress keeps being produced but never arrives.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.now_ms(), T0 + 1_000);

    kv.silent.store(false, Ordering::SeqCst);
    eventually("contact after the KV speaks again", || {
        w.now_ms() == ten_minutes_later
    })
    .await;
    assert!(!ring.is_healthy(&d, Operation::Write, w.now_ms()));
}

#[tokio::test]
async fn the_watcher_watches_again_after_the_stream_breaks() {
    let kv = FlakyKv::new();
    let clock = ManualClock::new(T0);
    let w = RingWatcher::start(kv.clone(), PREFIX, options(&clock));
    w.wait_for(|r| r.revision().is_some()).await;
    assert_eq!(kv.watches.load(Ordering::SeqCst), 1);
    kv.break_next.store(true, Ordering::SeqCst);
    eventually("a second watch", || kv.watches.load(Ordering::SeqCst) >= 2).await;
    put(&*kv, "ing-2", InstanceState::Active, vec![7], T0).await;
    let r = w.wait_for(|r| r.get("ing-2").is_some()).await;
    assert_eq!(r.get("ing-2").unwrap().tokens, vec![7]);
}

#[tokio::test]
async fn the_ring_follows_an_instance_through_its_lifecycle() {
    let kv = FlakyKv::new();
    let clock = ManualClock::new(T0);
    let mut reg = Registry::default();
    let metrics = RingMetrics::new(&mut reg);
    let w = RingWatcher::start(
        kv.clone(),
        PREFIX,
        WatcherOptions {
            metrics: Some(metrics),
            ..options(&clock)
        },
    );
    // Keys of another ring that shares the prefix's beginning are not members.
    put_raw(&*kv, "ring/ingester-other/x").await;
    let l = Lifecycler::start(
        RingConfig {
            num_tokens: 16,
            ..cfg("ing-1")
        },
        kv.clone(),
        PREFIX,
    )
    .await
    .unwrap();
    w.wait_for(|r| {
        r.get("ing-1")
            .is_some_and(|d| d.state == InstanceState::Pending)
    })
    .await;
    l.join().await.unwrap();
    let r = w
        .wait_for(|r| {
            r.get("ing-1")
                .is_some_and(|d| d.state == InstanceState::Active)
        })
        .await;
    assert_eq!(r.len(), 1);
    assert_eq!(r.token_count(), 16);
    let now = l.desc().heartbeat_ms;
    let set = r.replication_set(12345, Operation::Write, now).unwrap();
    assert_eq!(set.instances(&r).next().unwrap().id, "ing-1");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    assert!(
        text.contains(r#"strata_ring_members{name="ingester",state="ACTIVE"} 1"#),
        "{text}"
    );
    l.stop().await.unwrap();
    w.wait_for(|r| r.is_empty()).await;
}

async fn put_raw(kv: &dyn KvStore, key: &str) {
    kv.cas(key, 0, Bytes::from_static(b"{}")).await.unwrap();
}
