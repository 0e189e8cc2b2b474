//! Integration tests of the ingester: durability across restarts, WAL repair, checkpoints,
//! limits and Prometheus's append rules.

mod durability;
mod limits;
mod shipping;

use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use std::path::Path;
use std::sync::Arc;
use strata_ingester::{Ingester, IngesterConfig};
use strata_model::{Limits, Matcher, Overrides, Sample, TenantId, WriteBatch};
use strata_storage::{PushOutcome, Pusher, Queryable};

pub fn open(dir: &Path, limits: Limits) -> Arc<Ingester> {
    let overrides = Arc::new(RwLock::new(Overrides {
        defaults: limits,
        tenants: Default::default(),
    }));
    Ingester::open(
        IngesterConfig::default(),
        dir,
        overrides,
        &mut Registry::default(),
    )
    .expect("open ingester")
}

pub fn tenant() -> TenantId {
    TenantId::new("t1").unwrap()
}

/// Pushes `series` series of metric `name`, one sample each at `t` with value `t + i`.
pub async fn push_round(ing: &Ingester, name: &str, series: usize, t: i64) -> PushOutcome {
    let ids: Vec<String> = (0..series).map(|i| format!("{i:05}")).collect();
    let mut batch = WriteBatch::default();
    for (i, id) in ids.iter().enumerate() {
        batch.push_series(
            &[("__name__", name), ("id", id.as_str())],
            &[Sample::new(t, (t + i as i64) as f64)],
        );
    }
    ing.push(&tenant(), &batch).await.expect("push")
}

pub async fn all_samples(ing: &Ingester, name: &str) -> Vec<(String, Vec<Sample>)> {
    ing.select(
        &tenant(),
        &[Matcher::equal("__name__", name)],
        i64::MIN,
        i64::MAX,
    )
    .await
    .unwrap()
    .into_iter()
    .map(|s| (s.labels.get("id").unwrap_or("").to_owned(), s.samples))
    .collect()
}
