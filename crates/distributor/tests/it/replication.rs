//! Replication over the ingester ring: quorum per series, refusals, slow and dead replicas,
//! extension past LEAVING instances; HA deduplication through the HTTP handler.

use super::*;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;
use strata_distributor::{IngesterClients, ReplicatedPusher};
use strata_meta::{KvStore, MemoryKv};
use strata_model::Sample;
use strata_ring::{
    instance_key, InstanceDesc, InstanceState, RingOptions, RingWatcher, WatcherOptions,
};
use strata_storage::EncodedPusher;

/// What a fake ingester does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Store,
    Fail,
    Hang,
    /// Refuses series whose metric name is `bad` as bad data, stores the rest.
    RefuseBad,
}

/// A fake ingester: records the series it stored.
#[derive(Debug)]
pub struct FakeIngester {
    pub mode: Mutex<Mode>,
    pub stored: Mutex<Vec<String>>,
}

#[async_trait]
impl EncodedPusher for FakeIngester {
    async fn push_encoded(&self, _t: &TenantId, body: Bytes) -> Result<PushOutcome, PushError> {
        let mode = *self.mode.lock();
        match mode {
            Mode::Fail => {
                return Err(PushError::Unavailable("ingester", "injected failure"));
            }
            Mode::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            _ => {}
        }
        let mut b = WriteBatch::default();
        strata_proto::decode::decode_write_request_v1(&body, &mut b).unwrap();
        let mut o = PushOutcome::default();
        for i in 0..b.series.len() {
            let name = b
                .series_labels(i)
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let n = b.series_samples(i).len() as u64;
            if mode == Mode::RefuseBad && name.contains("__name__=bad") {
                o.reject(n, || Rejection {
                    kind: RejectionKind::BadData,
                    reason: "sample-out-of-order",
                    message: format!("refused {name}"),
                });
                o.rejected_series.push((i as u32, RejectionKind::BadData));
            } else {
                o.samples_written += n;
                self.stored.lock().push(name);
            }
        }
        Ok(o)
    }
}

pub struct Cluster {
    pub kv: Arc<dyn KvStore>,
    pub ingesters: HashMap<String, Arc<FakeIngester>>,
    pub ring: Arc<RingWatcher>,
}

impl IngesterClients for Cluster {
    fn client(&self, d: &InstanceDesc) -> Result<Arc<dyn EncodedPusher>, PushError> {
        Ok(self.ingesters[&d.id].clone())
    }
}

struct Clients(Arc<Cluster>);

impl IngesterClients for Clients {
    fn client(&self, d: &InstanceDesc) -> Result<Arc<dyn EncodedPusher>, PushError> {
        self.0.client(d)
    }
}

fn tokens(i: usize) -> Vec<u32> {
    // 64 tokens per instance spread deterministically over the ring.
    let mut t: Vec<u32> = (0..64u32)
        .map(|k| (k.wrapping_mul(67_108_864)).wrapping_add(i as u32 * 9_999_991))
        .collect();
    t.sort_unstable();
    t
}

pub async fn put(kv: &dyn KvStore, id: &str, state: InstanceState, toks: Vec<u32>) {
    let now = strata_model::time::now_ms();
    let d = InstanceDesc {
        id: id.into(),
        addr: format!("{id}:9095"),
        http_addr: format!("{id}:8080"),
        zone: String::new(),
        state,
        tokens: toks,
        heartbeat_ms: now,
        registered_ms: now,
    };
    let key = instance_key("ring/ingester", id);
    let v = kv.get(&key).await.unwrap().map_or(0, |e| e.version);
    kv.cas(&key, v, d.encode()).await.unwrap();
}

pub async fn cluster(n: usize) -> Arc<Cluster> {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let mut ingesters = HashMap::new();
    for i in 0..n {
        let id = format!("ingester-{i}");
        put(kv.as_ref(), &id, InstanceState::Active, tokens(i)).await;
        ingesters.insert(
            id,
            Arc::new(FakeIngester {
                mode: Mutex::new(Mode::Store),
                stored: Mutex::new(Vec::new()),
            }),
        );
    }
    let ring = RingWatcher::start(
        kv.clone(),
        "ring/ingester",
        WatcherOptions::new("ingester", RingOptions::default()),
    );
    ring.wait_for(|r| r.len() == n).await;
    Arc::new(Cluster {
        kv,
        ingesters,
        ring,
    })
}

fn pusher(c: &Arc<Cluster>) -> ReplicatedPusher {
    ReplicatedPusher::new(
        c.ring.clone(),
        Arc::new(Clients(c.clone())),
        &mut Registry::default(),
    )
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("s{i}")).collect()
}

fn batch<'a>(names: &'a [String], metric: &'a str) -> WriteBatch<'a> {
    let mut b = WriteBatch::default();
    for n in names {
        b.push_series(
            &[("__name__", metric), ("s", n.as_str())],
            &[Sample::new(1, 1.0)],
        );
    }
    b
}

fn tenant() -> TenantId {
    TenantId::new("t").unwrap()
}

fn stored(c: &Cluster, id: &str) -> usize {
    c.ingesters[id].stored.lock().len()
}

#[tokio::test]
async fn every_series_goes_to_three_distinct_ingesters() {
    let c = cluster(6).await;
    let ns = names(300);
    let o = pusher(&c).push(&tenant(), &batch(&ns, "m")).await.unwrap();
    assert_eq!(o.samples_written, 300);
    let total: usize = (0..6).map(|i| stored(&c, &format!("ingester-{i}"))).sum();
    assert_eq!(total, 900, "RF 3");
    let mut per_series: HashMap<String, Vec<usize>> = HashMap::new();
    for i in 0..6 {
        for s in c.ingesters[&format!("ingester-{i}")].stored.lock().iter() {
            per_series.entry(s.clone()).or_default().push(i);
        }
    }
    assert_eq!(per_series.len(), 300);
    assert!(per_series.values().all(|v| v.len() == 3));
    // Spread: every ingester holds some series.
    assert!((0..6).all(|i| stored(&c, &format!("ingester-{i}")) > 50));
}

#[tokio::test]
async fn one_failed_replica_is_tolerated_two_are_not() {
    let c = cluster(3).await;
    let ns = names(50);
    *c.ingesters["ingester-1"].mode.lock() = Mode::Fail;
    let o = pusher(&c).push(&tenant(), &batch(&ns, "m")).await.unwrap();
    assert_eq!(o.samples_written, 50);
    *c.ingesters["ingester-2"].mode.lock() = Mode::Fail;
    let e = pusher(&c)
        .push(&tenant(), &batch(&ns, "m"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            PushError::Quorum {
                succeeded: 1,
                required: 2,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("m{s=\""), "names the series: {msg}");
    assert!(msg.contains("injected failure"), "says why: {msg}");
}

#[tokio::test]
async fn a_hanging_replica_does_not_hold_the_push_and_still_gets_the_data_later() {
    let c = cluster(3).await;
    *c.ingesters["ingester-0"].mode.lock() = Mode::Hang;
    let ns = names(20);
    let o = tokio::time::timeout(
        Duration::from_secs(60),
        pusher(&c).push(&tenant(), &batch(&ns, "m")),
    )
    .await
    .expect("the push must not wait for the hanging replica")
    .unwrap();
    assert_eq!(o.samples_written, 20);
    assert_eq!(stored(&c, "ingester-1"), 20);
    assert_eq!(stored(&c, "ingester-2"), 20);
}

#[tokio::test]
async fn refusals_by_a_quorum_are_reported_and_the_rest_is_stored() {
    let c = cluster(3).await;
    for i in 0..3 {
        *c.ingesters[&format!("ingester-{i}")].mode.lock() = Mode::RefuseBad;
    }
    let good = names(5);
    let mut b = batch(&good, "m");
    b.push_series(
        &[("__name__", "bad")],
        &[Sample::new(1, 1.0), Sample::new(2, 2.0)],
    );
    let o = pusher(&c).push(&tenant(), &b).await.unwrap();
    assert_eq!(o.samples_written, 5);
    assert_eq!(o.samples_rejected, 2);
    assert_eq!(o.rejected_series, vec![(5, RejectionKind::BadData)]);
    assert!(o.first_rejection.unwrap().message.contains("__name__=bad"));

    // Refused by one replica only: the other two stored it, so it is stored.
    *c.ingesters["ingester-1"].mode.lock() = Mode::Store;
    *c.ingesters["ingester-2"].mode.lock() = Mode::Store;
    let o = pusher(&c).push(&tenant(), &b).await.unwrap();
    assert_eq!(o.samples_written, 7);
    assert_eq!(o.samples_rejected, 0);
    assert!(o.first_rejection.is_none());
}

#[tokio::test]
async fn a_leaving_ingester_extends_the_set_and_raises_the_quorum() {
    let c = cluster(4).await;
    // ingester-0 leaves: every series whose set had it now goes to the next one and needs all
    // three remaining healthy replicas (dskit's rule).
    put(
        c.kv.as_ref(),
        "ingester-0",
        InstanceState::Leaving,
        tokens(0),
    )
    .await;
    c.ring
        .wait_for(|r| {
            r.get("ingester-0")
                .is_some_and(|d| d.state == InstanceState::Leaving)
        })
        .await;
    let ns = names(100);
    let o = pusher(&c).push(&tenant(), &batch(&ns, "m")).await.unwrap();
    assert_eq!(o.samples_written, 100);
    assert_eq!(
        stored(&c, "ingester-0"),
        0,
        "no writes to a LEAVING instance"
    );
    let total: usize = (1..4).map(|i| stored(&c, &format!("ingester-{i}"))).sum();
    assert_eq!(total, 300);
    // With one of the three left failing, the series that needed 3 of 3 fail.
    *c.ingesters["ingester-3"].mode.lock() = Mode::Fail;
    let e = pusher(&c)
        .push(&tenant(), &batch(&ns, "m"))
        .await
        .unwrap_err();
    assert!(matches!(e, PushError::Quorum { required: 3, .. }), "{e}");
}

#[tokio::test]
async fn an_empty_ring_fails_before_sending_anything() {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let ring = RingWatcher::start(
        kv.clone(),
        "ring/ingester",
        WatcherOptions::new("ingester", RingOptions::default()),
    );
    let c = Arc::new(Cluster {
        kv,
        ingesters: HashMap::new(),
        ring,
    });
    let ns = names(1);
    let e = pusher(&c)
        .push(&tenant(), &batch(&ns, "m"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("empty ring"), "{e}");
}
