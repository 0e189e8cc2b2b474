//! Rule groups sharded over two rulers in one ring: each group runs in exactly one ruler;
//! when a ruler stops heartbeating its groups continue on the other within the ring check
//! period after the heartbeat timeout (and the stale ruler stops them), and they split again
//! when it comes back.

use crate::common::Store;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use strata_meta::{KvStore, MemoryKv};
use strata_model::{TenancyConfig, TenancyMode, TenantId};
use strata_promql::Engine;
use strata_ring::{
    instance_key, InstanceDesc, InstanceState, RingOptions, RingWatcher, WatcherOptions,
};
use strata_ruler::metrics::Metrics;
use strata_ruler::notifier::Notifier;
use strata_ruler::rulefmt::RuleGroup;
use strata_ruler::sharding::{RingSharding, RING_PREFIX};
use strata_ruler::store::RuleStore;
use strata_ruler::{Ruler, RulerConfig};
use strata_storage::bucket::Bucket;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Writes ruler `id`'s ring entry as its process would, heartbeat at `hb`.
async fn put(kv: &dyn KvStore, id: &str, seed: u32, hb: i64) {
    let mut tokens: Vec<u32> = (0..32u32)
        .map(|k| k.wrapping_mul(134_217_728).wrapping_add(seed * 7_777_777))
        .collect();
    tokens.sort_unstable();
    let d = InstanceDesc {
        id: id.into(),
        addr: format!("{id}:9095"),
        http_addr: String::new(),
        zone: String::new(),
        state: InstanceState::Active,
        tokens,
        heartbeat_ms: hb,
        registered_ms: hb,
    };
    let key = instance_key(RING_PREFIX, id);
    let version = kv.get(&key).await.unwrap().map_or(0, |e| e.version);
    kv.cas(&key, version, d.encode()).await.unwrap();
}

async fn running(r: &Ruler, t: &TenantId) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for g in r.groups(t) {
        out.insert(g.lock().await.name.clone());
    }
    out
}

/// Polls until `f` holds (the rulers re-shard every 5 s).
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_run_once_move_off_a_dead_ruler_and_split_again() {
    let kv: Arc<dyn KvStore> =
        Arc::new(MemoryKv::with_progress_interval(Duration::from_millis(20)));
    put(kv.as_ref(), "r1", 1, now_ms()).await;
    put(kv.as_ref(), "r2", 2, now_ms()).await;

    let bucket = Bucket::from_store(
        Arc::new(object_store::memory::InMemory::new()),
        Duration::from_secs(10),
    );
    let rules = RuleStore::new(bucket, "@rules");
    let tenant = TenantId::new("t").unwrap();
    let all: BTreeSet<String> = (0..20).map(|i| format!("g{i:02}")).collect();
    for name in &all {
        let g: RuleGroup = serde_yaml::from_str(&format!(
            "name: {name}\nrules:\n  - record: r_{name}\n    expr: vector(1)\n"
        ))
        .unwrap();
        rules.put(&tenant, "ns", &g).await.unwrap();
    }

    let store = Store::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut rulers = Vec::new();
    for id in ["r1", "r2"] {
        let watcher = RingWatcher::start(
            kv.clone(),
            RING_PREFIX,
            WatcherOptions::new("ruler", RingOptions::default()),
        );
        watcher.wait_for(|r| r.len() == 2).await;
        let metrics = Metrics::default();
        let ruler = Ruler::new(
            RulerConfig::default(),
            TenancyConfig {
                mode: TenancyMode::Header,
                single_tenant_id: String::new(),
            },
            Engine::default(),
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            rules.clone(),
            Arc::new(Notifier::new(vec![], 100, metrics.clone())),
            metrics,
            Some(RingSharding::new(watcher, id)),
            None,
        )
        .unwrap();
        tokio::spawn(ruler.clone().run(stop_rx.clone()));
        rulers.push(ruler);
    }
    let (r1, r2) = (rulers[0].clone(), rulers[1].clone());

    let split = || async {
        let (a, b) = (running(&r1, &tenant).await, running(&r2, &tenant).await);
        !a.is_empty()
            && !b.is_empty()
            && a.is_disjoint(&b)
            && a.union(&b).cloned().collect::<BTreeSet<_>>() == all
    };
    eventually("each group in exactly one of two rulers", split).await;

    // r1 stops heartbeating (its entry is two minutes old: past the 1 m timeout).
    put(kv.as_ref(), "r1", 1, now_ms() - 120_000).await;
    eventually("every group on r2, none left on the stale r1", || async {
        running(&r2, &tenant).await == all && running(&r1, &tenant).await.is_empty()
    })
    .await;

    // Back: the groups split again, still each in exactly one ruler.
    put(kv.as_ref(), "r1", 1, now_ms()).await;
    eventually("the groups split again", split).await;
    let _ = stop_tx.send(true);
}
