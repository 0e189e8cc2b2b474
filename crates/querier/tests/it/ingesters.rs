//! Reads from the ingester ring: replicas merged, one ingester may be missing, two sharing a
//! range may not, and only the recent window is asked.

use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use strata_meta::{KvStore, MemoryKv};
use strata_model::{Labels, Matcher, Sample, TenantId};
use strata_promql::testing::MemStore;
use strata_querier::ingesters::{IngesterQueryClients, IngesterReadConfig, RingQueryable};
use strata_ring::{
    instance_key, InstanceDesc, InstanceState, RingOptions, RingWatcher, WatcherOptions,
};
use strata_storage::{
    ChunkedSeries, LimitExceeded, QueryError, Queryable, ReadLimit, ReadLimits, SelectHints,
    Series, SeriesMetadata, NO_LIMIT,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Answer,
    Fail,
    BadRequest,
    Hang,
}

pub(crate) struct Fake {
    pub(crate) store: MemStore,
    pub(crate) mode: Mutex<Mode>,
    pub(crate) calls: Mutex<usize>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fake")
    }
}

impl Fake {
    fn check(&self) -> Result<(), QueryError> {
        *self.calls.lock() += 1;
        match *self.mode.lock() {
            Mode::Answer | Mode::Hang => Ok(()),
            Mode::Fail => Err(QueryError::Unavailable("ingester")),
            Mode::BadRequest => Err(QueryError::BadData("bad regex (test)".into())),
        }
    }
}

#[async_trait]
impl Queryable for Fake {
    async fn select(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
    ) -> Result<Vec<Series>, QueryError> {
        self.check()?;
        if *self.mode.lock() == Mode::Hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        self.store.select(t, m, s, e).await
    }
    async fn select_chunks_hinted(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        self.check()?;
        if *self.mode.lock() == Mode::Hang {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        self.store.select_chunks_hinted(t, m, s, e, hints).await
    }
    async fn series(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        self.check()?;
        self.store.series(t, m, s, e, limit).await
    }
    async fn label_names(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.check()?;
        self.store.label_names(t, m, s, e, limit).await
    }
    async fn label_values(
        &self,
        t: &TenantId,
        n: &str,
        m: &[Matcher],
        s: i64,
        e: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.check()?;
        self.store.label_values(t, n, m, s, e, limit).await
    }
    async fn metadata(
        &self,
        t: &TenantId,
        m: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        self.check()?;
        self.store.metadata(t, m).await
    }
}

struct Clients(HashMap<String, Arc<Fake>>);

impl IngesterQueryClients for Clients {
    fn client(&self, d: &InstanceDesc) -> Result<Arc<dyn Queryable>, QueryError> {
        Ok(self.0[&d.id].clone())
    }
}

pub(crate) fn now() -> i64 {
    strata_model::time::now_ms()
}

/// `n` ingesters; every series is held by all but one of them (as after one ingester
/// restarted empty), with samples at now-60s and now-30s.
async fn setup(n: usize) -> (Arc<RingWatcher>, Arc<Clients>) {
    setup_series(n, 10).await
}

/// [`setup`] with `series` series `m{k="…"}`.
async fn setup_series(n: usize, series: usize) -> (Arc<RingWatcher>, Arc<Clients>) {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let mut fakes = HashMap::new();
    let base = now();
    for i in 0..n {
        let id = format!("ingester-{i}");
        let toks: Vec<u32> = {
            let mut t: Vec<u32> = (0..32u32)
                .map(|k| {
                    k.wrapping_mul(134_217_728)
                        .wrapping_add(i as u32 * 7_777_777)
                })
                .collect();
            t.sort_unstable();
            t
        };
        let d = InstanceDesc {
            id: id.clone(),
            addr: format!("{id}:9095"),
            http_addr: String::new(),
            zone: String::new(),
            state: InstanceState::Active,
            tokens: toks,
            heartbeat_ms: now(),
            registered_ms: now(),
        };
        kv.cas(&instance_key("ring/ingester", &id), 0, d.encode())
            .await
            .unwrap();
        let mut store = MemStore::new();
        for k in 0..series {
            if k % n != i {
                // Every series on all but one ingester.
                store.add(
                    Labels::from_pairs([("__name__", "m".to_string()), ("k", k.to_string())]),
                    [
                        Sample::new(base - 60_000, k as f64),
                        Sample::new(base - 30_000, k as f64),
                    ],
                );
            }
        }
        fakes.insert(
            id,
            Arc::new(Fake {
                store,
                mode: Mutex::new(Mode::Answer),
                calls: Mutex::new(0),
            }),
        );
    }
    let ring = RingWatcher::start(
        kv,
        "ring/ingester",
        WatcherOptions::new("ingester", RingOptions::default()),
    );
    ring.wait_for(|r| r.len() == n).await;
    (ring, Arc::new(Clients(fakes)))
}

fn queryable(ring: &Arc<RingWatcher>, c: &Arc<Clients>) -> RingQueryable {
    RingQueryable::new(ring.clone(), c.clone(), IngesterReadConfig::default())
}

pub(crate) fn t() -> TenantId {
    TenantId::new("t").unwrap()
}

pub(crate) fn m() -> Vec<Matcher> {
    vec![Matcher::equal("__name__", "m")]
}

#[tokio::test]
async fn replicas_are_merged_into_one_complete_answer() {
    let (ring, c) = setup(3).await;
    let q = queryable(&ring, &c);
    let got = q
        .select(&t(), &m(), now() - 3_600_000, now())
        .await
        .unwrap();
    assert_eq!(got.len(), 10);
    assert!(
        got.iter().all(|s| s.samples.len() == 2),
        "no duplicated samples"
    );
    assert_eq!(
        q.series(&t(), &m(), 0, now(), NO_LIMIT)
            .await
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        q.label_values(&t(), "k", &[], 0, now(), NO_LIMIT)
            .await
            .unwrap()
            .len(),
        10
    );
}

#[tokio::test]
async fn one_ingester_down_still_answers_completely() {
    let (ring, c) = setup(3).await;
    *c.0["ingester-1"].mode.lock() = Mode::Fail;
    let q = queryable(&ring, &c);
    let got = q
        .select(&t(), &m(), now() - 3_600_000, now())
        .await
        .unwrap();
    assert_eq!(got.len(), 10, "every series has another replica");
}

#[tokio::test]
async fn two_ingesters_down_fail_the_query_and_name_the_ranges() {
    let (ring, c) = setup(3).await;
    *c.0["ingester-0"].mode.lock() = Mode::Fail;
    *c.0["ingester-2"].mode.lock() = Mode::Fail;
    let q = queryable(&ring, &c);
    let e = q
        .select(&t(), &m(), now() - 3_600_000, now())
        .await
        .unwrap_err();
    assert!(matches!(e, QueryError::Incomplete(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("lack a read quorum"), "{msg}");
    assert!(
        msg.contains("ingester-0") && msg.contains("ingester-2"),
        "{msg}"
    );
}

#[tokio::test]
async fn bad_requests_fail_at_once() {
    let (ring, c) = setup(3).await;
    *c.0["ingester-0"].mode.lock() = Mode::BadRequest;
    let q = queryable(&ring, &c);
    let e = q.series(&t(), &m(), 0, now(), NO_LIMIT).await.unwrap_err();
    assert!(matches!(e, QueryError::BadData(_)), "{e}");
}

#[tokio::test]
async fn only_the_recent_window_is_asked() {
    let (ring, c) = setup(3).await;
    let q = RingQueryable::new(
        ring.clone(),
        c.clone(),
        IngesterReadConfig {
            query_ingesters_within: Duration::from_secs(600),
            ..Default::default()
        },
    );
    let old_end = now() - 3_600_000;
    assert!(q.select(&t(), &m(), 0, old_end).await.unwrap().is_empty());
    assert_eq!(
        c.0.values().map(|f| *f.calls.lock()).sum::<usize>(),
        0,
        "nobody asked"
    );
    assert_eq!(q.select(&t(), &m(), 0, now()).await.unwrap().len(), 10);
}

#[tokio::test]
async fn a_hung_ingester_costs_the_grace_not_the_timeout() {
    let (ring, c) = setup(3).await;
    *c.0["ingester-2"].mode.lock() = Mode::Hang;
    let q = queryable(&ring, &c);
    let got = tokio::time::timeout(
        Duration::from_secs(60),
        q.select(&t(), &m(), now() - 3_600_000, now()),
    )
    .await
    .expect("answered without the hung ingester")
    .unwrap();
    assert_eq!(got.len(), 10);
}

fn produced(c: &Clients) -> usize {
    c.0.values().map(|f| f.store.series_produced()).sum()
}

#[tokio::test]
async fn limits_stop_every_ingester_and_the_merged_answer() {
    // 1,000 series, each on two of three ingesters (~667 per ingester).
    let (ring, c) = setup_series(3, 1000).await;
    let q = queryable(&ring, &c);
    let range = (now() - 3_600_000, now());
    let limited = |max_series| SelectHints {
        limits: ReadLimits {
            max_series,
            ..Default::default()
        },
        ..SelectHints::default()
    };
    let e = q
        .select_chunks_hinted(&t(), &m(), range.0, range.1, &limited(10))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            QueryError::LimitExceeded(LimitExceeded {
                limit: ReadLimit::Series,
                max: 10
            })
        ),
        "{e}"
    );
    // Each ingester stopped at its 11th series; without the limit they hand out ~2,000.
    assert!(produced(&c) <= 33, "{} series read", produced(&c));

    let before = produced(&c);
    let e = q
        .series(&t(), &m(), range.0, range.1, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::Series),
        "{e}"
    );
    let e = q
        .label_values(&t(), "k", &m(), range.0, range.1, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::LabelValues),
        "{e}"
    );
    let e = q
        .label_names(&t(), &m(), range.0, range.1, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::LabelNames),
        "{e}"
    );
    assert!(
        produced(&c) - before <= 3 * (11 + 11 + 1),
        "{}",
        produced(&c) - before
    );

    // Every ingester's answer fits (~667 each), their union (1,000) does not.
    let e = q
        .select_chunks_hinted(&t(), &m(), range.0, range.1, &limited(800))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            QueryError::LimitExceeded(LimitExceeded {
                limit: ReadLimit::Series,
                max: 800
            })
        ),
        "{e}"
    );
    let e = q
        .series(&t(), &m(), range.0, range.1, 800)
        .await
        .unwrap_err();
    assert!(
        matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::Series),
        "{e}"
    );
    let got = q
        .select_chunks_hinted(&t(), &m(), range.0, range.1, &limited(1000))
        .await
        .unwrap();
    assert_eq!(got.len(), 1000);
}
