//! The distributor as a [`Pusher`] for other components (the ruler): their batches get the
//! same validation and rate limit as remote write.

use crate::{Behaviour, Recorder};
use parking_lot::{Mutex, RwLock};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use strata_distributor::{ClusterHooks, Distributor, DistributorConfig};
use strata_model::{Limits, Overrides, Sample, TenancyConfig, TenantId, WriteBatch};
use strata_storage::{Pusher, RejectionKind};

fn distributor(limits: Limits) -> (Arc<Distributor>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder {
        pushes: Mutex::new(Vec::new()),
        behaviour: Behaviour::Store,
    });
    let overrides = Arc::new(RwLock::new(Overrides {
        defaults: limits,
        tenants: Default::default(),
    }));
    let d = Distributor::with_cluster(
        DistributorConfig::default(),
        TenancyConfig::default(),
        overrides,
        recorder.clone(),
        ClusterHooks::default(),
        &mut Registry::default(),
    )
    .unwrap();
    (d, recorder)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn invalid_series_are_refused_and_valid_ones_stored() {
    let (d, recorder) = distributor(Limits::default());
    let t = now();
    let mut batch = WriteBatch::default();
    batch.push_series(
        &[("__name__", "job:up:sum"), ("job", "a")],
        &[Sample::new(t, 1.0)],
    );
    batch.push_series(&[("__name__", "bad-name")], &[Sample::new(t, 1.0)]);
    let out = Pusher::push(&*d, &TenantId::new("t").unwrap(), &batch)
        .await
        .unwrap();
    assert_eq!(out.samples_written, 1);
    assert_eq!(out.samples_rejected, 1);
    assert_eq!(out.first_rejection.unwrap().kind, RejectionKind::BadData);
    let pushes = recorder.pushes.lock();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].1.len(), 1);
    assert!(pushes[0].1[0].0.contains("job:up:sum"));
}

#[tokio::test]
async fn the_rate_limit_applies_and_is_reported_as_a_limit() {
    let limits = Limits {
        // Refills a token every ~17 minutes: the second push finds the bucket empty.
        ingestion_rate: 0.001,
        ingestion_burst_size: 1,
        ..Limits::default()
    };
    let (d, recorder) = distributor(limits);
    let t = now();
    let values: Vec<String> = (0..5).map(|i| i.to_string()).collect();
    let mut batch = WriteBatch::default();
    for v in &values {
        batch.push_series(&[("__name__", "x"), ("i", v)], &[Sample::new(t, 1.0)]);
    }
    // A full bucket admits one request larger than the burst (as for remote write)...
    let first = Pusher::push(&*d, &TenantId::new("t").unwrap(), &batch)
        .await
        .unwrap();
    assert_eq!(first.samples_written, 5);
    // ...which empties it.
    let out = Pusher::push(&*d, &TenantId::new("t").unwrap(), &batch)
        .await
        .unwrap();
    assert_eq!(out.samples_written, 0);
    assert_eq!(out.samples_rejected, 5);
    let r = out.first_rejection.unwrap();
    assert_eq!(r.kind, RejectionKind::Limit);
    assert_eq!(r.reason, "rate-limited");
    assert_eq!(
        recorder.pushes.lock().len(),
        1,
        "the refused batch never reached the store"
    );
}
