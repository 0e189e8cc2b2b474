//! Reads through the store-gateway ring: one healthy instance answers, and limits stop it.

use crate::ingesters::{m, now, t, Fake, Mode};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use strata_meta::{KvStore, MemoryKv};
use strata_model::{Labels, Sample};
use strata_promql::testing::MemStore;
use strata_querier::store_gateways::{StoreGatewayClients, StoreGatewaySet};
use strata_ring::{
    instance_key, InstanceDesc, InstanceState, RingOptions, RingWatcher, WatcherOptions,
};
use strata_storage::{
    LimitExceeded, QueryError, Queryable, ReadLimit, ReadLimits, SelectHints, NO_LIMIT,
};

struct Clients(HashMap<String, Arc<Fake>>);

impl StoreGatewayClients for Clients {
    fn client(&self, d: &InstanceDesc) -> Result<Arc<dyn Queryable>, QueryError> {
        Ok(self.0[&d.id].clone())
    }
}

/// Two store-gateways serving the same 1,000 series `m{k="…"}`.
async fn setup() -> (StoreGatewaySet, Arc<Clients>) {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let mut fakes = HashMap::new();
    for i in 0..2u32 {
        let id = format!("store-gateway-{i}");
        let d = InstanceDesc {
            id: id.clone(),
            addr: format!("{id}:9095"),
            http_addr: String::new(),
            zone: String::new(),
            state: InstanceState::Active,
            tokens: vec![i * 1_000_000_000 + 1],
            heartbeat_ms: now(),
            registered_ms: now(),
        };
        kv.cas(&instance_key("ring/store-gateway", &id), 0, d.encode())
            .await
            .unwrap();
        let mut store = MemStore::new();
        for k in 0..1000 {
            store.add(
                Labels::from_pairs([("__name__", "m".to_string()), ("k", format!("{k:04}"))]),
                [Sample::new(now() - 60_000, k as f64)],
            );
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
        "ring/store-gateway",
        WatcherOptions::new("store-gateway", RingOptions::default()),
    );
    ring.wait_for(|r| r.len() == 2).await;
    let clients = Arc::new(Clients(fakes));
    (StoreGatewaySet::new(ring, clients.clone()), clients)
}

/// Series handed out and calls received by both store-gateways.
fn totals(c: &Clients) -> (usize, usize) {
    (
        c.0.values().map(|f| f.store.series_produced()).sum(),
        c.0.values().map(|f| *f.calls.lock()).sum(),
    )
}

#[tokio::test]
async fn limits_stop_the_store_gateway_and_are_not_retried_elsewhere() {
    let (q, c) = setup().await;
    let range = (now() - 3_600_000, now());
    let hints = |max_series| SelectHints {
        limits: ReadLimits {
            max_series,
            ..Default::default()
        },
        ..SelectHints::default()
    };
    let e = q
        .select_chunks_hinted(&t(), &m(), range.0, range.1, &hints(10))
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
    // One store-gateway asked (a limit is the same everywhere), stopped at its 11th series.
    assert_eq!(totals(&c), (11, 1));
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
    let (produced, calls) = totals(&c);
    assert!(produced <= 11 + 11 + 11 + 2, "{produced}");
    assert_eq!(calls, 4);
    // Under the limits: the whole answer.
    let got = q
        .select_chunks_hinted(&t(), &m(), range.0, range.1, &hints(1000))
        .await
        .unwrap();
    assert_eq!(got.len(), 1000);
    assert_eq!(
        q.series(&t(), &m(), range.0, range.1, NO_LIMIT)
            .await
            .unwrap()
            .len(),
        1000
    );
}
