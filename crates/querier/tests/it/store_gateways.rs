//! Reads through sharded store-gateways: the querier plans blocks from the bucket index, asks
//! each block's owners, retries a failed or non-holding owner on the next, fails naming the
//! blocks no owner read, and lets limits stop the read without retrying them.

use crate::ingesters::{m, now, t, Mode};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use strata_meta::{KvStore, MemoryKv};
use strata_model::{Labels, Sample};
use strata_promql::testing::MemStore;
use strata_querier::store_gateways::{BlockPlanning, StoreGatewayClients, StoreGatewaySet};
use strata_ring::{
    instance_key, InstanceDesc, InstanceState, RingOptions, RingWatcher, WatcherOptions,
};
use strata_storage::bucket::Bucket;
use strata_storage::index::{BucketIndex, IndexedBlock};
use strata_storage::merge::{merge_chunked, merge_sorted_strings};
use strata_storage::{
    BlockQueryable, BlockSelection, BlocksAnswer, ChunkedSeries, LimitExceeded, QueryError,
    Queryable, ReadLimit, ReadLimits, SelectHints, NO_LIMIT,
};
use ulid::Ulid;

const BLOCKS: u64 = 8;
const SERIES: usize = 50;
const HOUR: i64 = 3_600_000;

/// A store-gateway holding some blocks, each a store of its own.
struct Gateway {
    blocks: Mutex<HashMap<Ulid, Arc<MemStore>>>,
    mode: Mutex<Mode>,
    /// Blocks asked of it, per call.
    asked: Mutex<Vec<Vec<Ulid>>>,
}

impl Gateway {
    fn check(&self, sel: &BlockSelection<'_>) -> Result<Vec<(Ulid, Arc<MemStore>)>, QueryError> {
        self.asked.lock().push(sel.blocks.to_vec());
        match *self.mode.lock() {
            Mode::Fail => return Err(QueryError::Unavailable("store-gateway (test)")),
            Mode::BadRequest => return Err(QueryError::BadData("bad regex (test)".into())),
            Mode::Answer | Mode::Hang => {}
        }
        let held = self.blocks.lock();
        Ok(sel
            .blocks
            .iter()
            .filter_map(|b| held.get(b).map(|s| (*b, s.clone())))
            .collect())
    }
}

fn answer<T>(value: T, held: &[(Ulid, Arc<MemStore>)]) -> BlocksAnswer<T> {
    BlocksAnswer {
        value,
        queried: held.iter().map(|(b, _)| *b).collect(),
    }
}

#[async_trait]
impl BlockQueryable for Gateway {
    async fn select_blocks(
        &self,
        sel: BlockSelection<'_>,
        hints: &SelectHints,
    ) -> Result<BlocksAnswer<Vec<ChunkedSeries>>, QueryError> {
        let held = self.check(&sel)?;
        let mut lists = Vec::new();
        for (_, s) in &held {
            lists.push(
                s.select_chunks_hinted(sel.tenant, sel.matchers, sel.start, sel.end, hints)
                    .await?,
            );
        }
        Ok(answer(merge_chunked(lists, sel.start, sel.end), &held))
    }

    async fn series_blocks(
        &self,
        sel: BlockSelection<'_>,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<Labels>>, QueryError> {
        let held = self.check(&sel)?;
        let mut out = Vec::new();
        for (_, s) in &held {
            out.extend(
                s.series(sel.tenant, sel.matchers, sel.start, sel.end, limit)
                    .await?,
            );
        }
        out.sort();
        out.dedup();
        Ok(answer(out, &held))
    }

    async fn label_names_blocks(
        &self,
        sel: BlockSelection<'_>,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<String>>, QueryError> {
        let held = self.check(&sel)?;
        let mut lists = Vec::new();
        for (_, s) in &held {
            lists.push(
                s.label_names(sel.tenant, sel.matchers, sel.start, sel.end, limit)
                    .await?,
            );
        }
        Ok(answer(merge_sorted_strings(lists), &held))
    }

    async fn label_values_blocks(
        &self,
        sel: BlockSelection<'_>,
        name: &str,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<String>>, QueryError> {
        let held = self.check(&sel)?;
        let mut lists = Vec::new();
        for (_, s) in &held {
            lists.push(
                s.label_values(sel.tenant, name, sel.matchers, sel.start, sel.end, limit)
                    .await?,
            );
        }
        Ok(answer(merge_sorted_strings(lists), &held))
    }
}

struct Clients(BTreeMap<String, Arc<Gateway>>);

impl StoreGatewayClients for Clients {
    fn client(&self, d: &InstanceDesc) -> Result<Arc<dyn BlockQueryable>, QueryError> {
        Ok(self.0[&d.id].clone())
    }
}

struct Setup {
    q: StoreGatewaySet,
    clients: Arc<Clients>,
    ring: Arc<RingWatcher>,
    blocks: Vec<Ulid>,
    kv: Arc<dyn KvStore>,
}

impl Setup {
    fn gateway(&self, id: &str) -> &Gateway {
        &self.clients.0[id]
    }

    /// The owners of `block`, in ring order.
    fn owners(&self, block: &Ulid) -> Vec<String> {
        self.ring
            .ring()
            .block_owners(&block.to_string())
            .iter()
            .map(|d| d.id.clone())
            .collect()
    }

    fn range(&self) -> (i64, i64) {
        (block_start(0), block_start(BLOCKS) - 1)
    }
}

fn block_start(i: u64) -> i64 {
    now() - 48 * HOUR + i as i64 * HOUR
}

/// Three store-gateways (`store-gateway-0..2`, 16 tokens each) with replication factor `rf`,
/// and `BLOCKS` one-hour blocks of `SERIES` series `m{k="…"}` (one sample per series and
/// block, value = block number), each given to its owners in the ring.
async fn setup(rf: usize) -> Setup {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let mut gateways = BTreeMap::new();
    for i in 0..3u32 {
        let id = format!("store-gateway-{i}");
        let d = InstanceDesc {
            id: id.clone(),
            addr: format!("{id}:9095"),
            http_addr: String::new(),
            zone: String::new(),
            state: InstanceState::Active,
            tokens: (0..16u32)
                .map(|k| k * 268_435_456 + i * 89_478_485)
                .collect(),
            heartbeat_ms: now(),
            registered_ms: now(),
        };
        kv.cas(&instance_key("ring/store-gateway", &id), 0, d.encode())
            .await
            .unwrap();
        gateways.insert(
            id,
            Arc::new(Gateway {
                blocks: Mutex::new(HashMap::new()),
                mode: Mutex::new(Mode::Answer),
                asked: Mutex::new(Vec::new()),
            }),
        );
    }
    let opts = RingOptions {
        replication_factor: rf,
        heartbeat_timeout: Duration::from_secs(60),
        ..RingOptions::default()
    };
    let ring = RingWatcher::start(
        kv.clone(),
        "ring/store-gateway",
        WatcherOptions::new("store-gateway", opts),
    );
    ring.wait_for(|r| r.len() == 3).await;

    let bucket = Bucket::from_store(
        Arc::new(object_store::memory::InMemory::new()),
        Duration::from_secs(10),
    );
    let mut index = BucketIndex::empty(now());
    let mut blocks = Vec::new();
    for i in 0..BLOCKS {
        let ulid = Ulid::from_parts(i + 1, u128::from(i) * 7_919);
        let (lo, hi) = (block_start(i), block_start(i + 1) - 1);
        index.blocks.push(IndexedBlock {
            ulid,
            min_time: lo,
            max_time: hi,
            resolution: 0,
            compaction_level: 1,
            sources: vec![ulid],
            num_series: SERIES as u64,
            num_samples: SERIES as u64,
            size_bytes: 1,
        });
        let mut store = MemStore::new();
        for k in 0..SERIES {
            store.add(
                Labels::from_pairs([("__name__", "m".to_string()), ("k", format!("{k:03}"))]),
                [Sample::new(lo + 1000, i as f64)],
            );
        }
        let store = Arc::new(store);
        for o in ring.ring().block_owners(&ulid.to_string()) {
            gateways[&o.id].blocks.lock().insert(ulid, store.clone());
        }
        blocks.push(ulid);
    }
    index.write(&bucket, &t()).await.unwrap();
    let clients = Arc::new(Clients(gateways));
    let q = StoreGatewaySet::new(
        ring.clone(),
        clients.clone(),
        bucket,
        BlockPlanning {
            sync_interval: Duration::from_secs(60),
            ignore_deletion_marks_delay: Duration::from_secs(3600),
        },
    );
    Setup {
        q,
        clients,
        ring,
        blocks,
        kv,
    }
}

/// Every series with one sample per block, in block order.
fn assert_complete(got: &[ChunkedSeries], s: &Setup) {
    assert_eq!(got.len(), SERIES);
    let (lo, hi) = s.range();
    for c in got {
        let mut samples = Vec::new();
        c.decode_into(lo, hi, &mut samples);
        let values: Vec<f64> = samples.iter().map(|x| x.v).collect();
        let want: Vec<f64> = (0..BLOCKS).map(|i| i as f64).collect();
        assert_eq!(values, want, "{:?}", c.labels());
    }
}

#[tokio::test]
async fn each_block_is_read_once_from_its_first_owner() {
    let s = setup(3).await;
    let (lo, hi) = s.range();
    let got = s.q.select_chunks(&t(), &m(), lo, hi).await.unwrap();
    assert_complete(&got, &s);
    // Every block asked exactly once, of its first owner in ring order.
    let mut asked: HashMap<Ulid, Vec<String>> = HashMap::new();
    for (id, g) in &s.clients.0 {
        for call in g.asked.lock().iter() {
            for b in call {
                asked.entry(*b).or_default().push(id.clone());
            }
        }
    }
    for b in &s.blocks {
        assert_eq!(asked[b], vec![s.owners(b)[0].clone()], "block {b}");
    }
    // Blocks spread: with RF=3 every gateway owns every block, yet more than one is asked.
    let used = s
        .clients
        .0
        .values()
        .filter(|g| !g.asked.lock().is_empty())
        .count();
    assert!(used >= 2, "all blocks went to one store-gateway");

    // Label queries read every block too.
    let values =
        s.q.label_values(&t(), "k", &m(), lo, hi, NO_LIMIT)
            .await
            .unwrap();
    assert_eq!(values.len(), SERIES);
    let names = s.q.label_names(&t(), &m(), lo, hi, NO_LIMIT).await.unwrap();
    assert_eq!(names, vec!["__name__", "k"]);
    let series = s.q.series(&t(), &m(), lo, hi, NO_LIMIT).await.unwrap();
    assert_eq!(series.len(), SERIES);
}

#[tokio::test]
async fn a_failed_store_gateway_s_blocks_are_read_from_their_other_owners() {
    let s = setup(3).await;
    let (lo, hi) = s.range();
    let victim = s.owners(&s.blocks[0])[0].clone();
    *s.gateway(&victim).mode.lock() = Mode::Fail;
    let got = s.q.select_chunks(&t(), &m(), lo, hi).await.unwrap();
    assert_complete(&got, &s);
    // The victim's blocks were asked again of their second owner.
    let retried: Vec<Ulid> = s
        .blocks
        .iter()
        .filter(|b| s.owners(b)[0] == victim)
        .copied()
        .collect();
    assert!(!retried.is_empty());
    for b in &retried {
        let second = &s.owners(b)[1];
        assert!(
            s.gateway(second).asked.lock().iter().any(|c| c.contains(b)),
            "block {b} not asked of {second}"
        );
    }
}

#[tokio::test]
async fn blocks_an_owner_does_not_hold_are_asked_of_the_next_owner() {
    let s = setup(2).await;
    let (lo, hi) = s.range();
    // The first owner of block 0 lost it (say, its ring view differs): it answers without it.
    let b0 = s.blocks[0];
    let first = s.owners(&b0)[0].clone();
    s.gateway(&first).blocks.lock().remove(&b0);
    let got = s.q.select_chunks(&t(), &m(), lo, hi).await.unwrap();
    assert_complete(&got, &s);
    let second = &s.owners(&b0)[1];
    assert!(s
        .gateway(second)
        .asked
        .lock()
        .iter()
        .any(|c| c.contains(&b0)));
}

#[tokio::test]
async fn blocks_no_owner_reads_fail_the_query_naming_them() {
    let s = setup(1).await;
    let (lo, hi) = s.range();
    let victim = s.owners(&s.blocks[0])[0].clone();
    *s.gateway(&victim).mode.lock() = Mode::Fail;
    let e = s.q.select_chunks(&t(), &m(), lo, hi).await.unwrap_err();
    assert!(matches!(e, QueryError::Incomplete(_)), "{e:?}");
    let msg = e.to_string();
    let lost: Vec<Ulid> = s
        .blocks
        .iter()
        .filter(|b| s.owners(b)[0] == victim)
        .copied()
        .collect();
    for b in &s.blocks {
        assert_eq!(
            msg.contains(&b.to_string()),
            lost.contains(b),
            "block {b} in: {msg}"
        );
    }
    assert!(
        msg.contains(&format!(
            "{} block(s) of tenant t were read by no store-gateway",
            lost.len()
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{victim}: store-gateway (test) is not ready")),
        "{msg}"
    );
    // Label queries make the same check.
    let e =
        s.q.label_names(&t(), &m(), lo, hi, NO_LIMIT)
            .await
            .unwrap_err();
    assert!(e.to_string().contains(&lost[0].to_string()), "{e}");

    // An owner whose heartbeat stopped is not asked at all, and named as unhealthy.
    *s.gateway(&victim).mode.lock() = Mode::Answer;
    let mut d = s.ring.ring().get(&victim).unwrap().clone();
    d.heartbeat_ms = now() - 3_600_000;
    let key = instance_key("ring/store-gateway", &victim);
    let version = s.kv.get(&key).await.unwrap().unwrap().version;
    s.kv.cas(&key, version, d.encode()).await.unwrap();
    s.ring
        .wait_for(|r| {
            r.get(&victim)
                .is_some_and(|x| x.heartbeat_ms == d.heartbeat_ms)
        })
        .await;
    s.gateway(&victim).asked.lock().clear();
    let e = s.q.select_chunks(&t(), &m(), lo, hi).await.unwrap_err();
    assert!(
        e.to_string().contains(&format!("{victim}: unhealthy")),
        "{e}"
    );
    assert!(s.gateway(&victim).asked.lock().is_empty());
}

#[tokio::test]
async fn limits_and_bad_requests_stop_the_read_without_retrying_elsewhere() {
    let s = setup(3).await;
    let (lo, hi) = s.range();
    let hints = |max_series| SelectHints {
        limits: ReadLimits {
            max_series,
            ..Default::default()
        },
        ..SelectHints::default()
    };
    let e =
        s.q.select_chunks_hinted(&t(), &m(), lo, hi, &hints(10))
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
    let calls: usize = s.clients.0.values().map(|g| g.asked.lock().len()).sum();
    let first_owners: std::collections::HashSet<String> =
        s.blocks.iter().map(|b| s.owners(b)[0].clone()).collect();
    assert_eq!(calls, first_owners.len(), "a limit was retried elsewhere");
    // Each block stopped at its 11th series at most (a block's store is shared by its owners).
    let produced: usize = s
        .blocks
        .iter()
        .map(|b| s.gateway(&s.owners(b)[0]).blocks.lock()[b].series_produced())
        .sum();
    assert!(produced <= 11 * BLOCKS as usize, "{produced}");
    let e = s.q.series(&t(), &m(), lo, hi, 10).await.unwrap_err();
    assert!(
        matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::Series),
        "{e}"
    );
    // A bad request is the caller's fault: not retried either.
    for g in s.clients.0.values() {
        *g.mode.lock() = Mode::BadRequest;
        g.asked.lock().clear();
    }
    let e = s.q.select_chunks(&t(), &m(), lo, hi).await.unwrap_err();
    assert!(matches!(e, QueryError::BadData(_)), "{e}");
    let calls: usize = s.clients.0.values().map(|g| g.asked.lock().len()).sum();
    assert_eq!(calls, first_owners.len());
    // Under the limits: the whole answer.
    for g in s.clients.0.values() {
        *g.mode.lock() = Mode::Answer;
    }
    let got =
        s.q.select_chunks_hinted(&t(), &m(), lo, hi, &hints(SERIES))
            .await
            .unwrap();
    assert_complete(&got, &s);
}

#[tokio::test]
async fn a_range_without_blocks_asks_no_store_gateway() {
    let s = setup(3).await;
    let got =
        s.q.select_chunks(&t(), &m(), now() - HOUR, now())
            .await
            .unwrap();
    assert!(got.is_empty());
    assert!(s.clients.0.values().all(|g| g.asked.lock().is_empty()));
}
