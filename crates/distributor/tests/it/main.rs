//! The distributor's HTTP contract: status codes, headers and error bodies per the remote-write
//! specs, exercised through the real router with a recording ingester.

mod as_pusher;
mod ha;
mod push;
mod replication;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, Response};
use http_body_util::BodyExt;
use parking_lot::{Mutex, RwLock};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use strata_distributor::{router, ClusterHooks, Distributor, DistributorConfig};
use strata_model::{Limits, Overrides, TenancyConfig, TenantId, WriteBatch};
use strata_storage::{PushError, PushOutcome, Pusher, Rejection, RejectionKind};
use tower::ServiceExt;

/// What the fake ingester does with a push.
#[derive(Clone, Copy)]
pub enum Behaviour {
    Store,
    LimitEverything,
    FailWal,
}

/// One recorded push: the tenant and each series (labels joined) with its sample count.
pub type RecordedPush = (String, Vec<(String, usize)>);

/// An ingester that records what it was asked to store.
pub struct Recorder {
    pub pushes: Mutex<Vec<RecordedPush>>,
    pub behaviour: Behaviour,
}

#[async_trait]
impl Pusher for Recorder {
    async fn push(
        &self,
        tenant: &TenantId,
        batch: &WriteBatch<'_>,
    ) -> Result<PushOutcome, PushError> {
        let mut series = Vec::new();
        let mut n = 0;
        for i in 0..batch.series.len() {
            let s = batch.series_samples(i).len();
            if s == 0 {
                continue;
            }
            let name = batch
                .series_labels(i)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            series.push((name, s));
            n += s as u64;
        }
        self.pushes.lock().push((tenant.to_string(), series));
        match self.behaviour {
            Behaviour::Store => Ok(PushOutcome {
                samples_written: n,
                ..Default::default()
            }),
            Behaviour::LimitEverything => {
                let mut o = PushOutcome::default();
                o.reject(n, || Rejection {
                    kind: RejectionKind::Limit,
                    reason: "max-series-per-tenant",
                    message: "limit".into(),
                });
                Ok(o)
            }
            Behaviour::FailWal => Err(PushError::Wal(std::io::Error::other("disk full"))),
        }
    }
}

pub struct Harness {
    pub app: axum::Router,
    pub recorder: Arc<Recorder>,
}

pub fn harness(behaviour: Behaviour, tenancy: TenancyConfig, limits: Limits) -> Harness {
    harness_with(behaviour, tenancy, limits, ClusterHooks::default())
}

/// A distributor with cluster hooks (HA tracker, distributor count).
pub fn harness_with(
    behaviour: Behaviour,
    tenancy: TenancyConfig,
    limits: Limits,
    hooks: ClusterHooks,
) -> Harness {
    let recorder = Arc::new(Recorder {
        pushes: Mutex::new(Vec::new()),
        behaviour,
    });
    let overrides = Arc::new(RwLock::new(Overrides {
        defaults: limits,
        tenants: Default::default(),
    }));
    let d = Distributor::with_cluster(
        DistributorConfig {
            max_recv_msg_size: 64 << 10,
            ..Default::default()
        },
        tenancy,
        overrides,
        recorder.clone(),
        hooks,
        &mut Registry::default(),
    )
    .unwrap();
    Harness {
        app: router(d),
        recorder,
    }
}

pub async fn send(
    app: &axum::Router,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, Response<Body>, String) {
    let mut req = Request::builder().method("POST").uri("/api/v1/push");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, Response::from_parts(parts, Body::empty()), text)
}
