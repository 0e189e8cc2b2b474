//! `snappy_body`: a compressed HTTP body through the two endpoints that take snappy: the
//! distributor's push (`Distributor::push`: the size checks on the compressed length and on the
//! decompressed length the snappy header claims, decompression, decoding, validation, the push)
//! and the querier's remote read (the whole router: body limit, claimed length, decompression,
//! `prometheus.ReadRequest`, matchers, selection, the snappy-compressed answer).
//!
//! The first byte picks the endpoint (`% 3`: push 1.0, push 2.0, remote read); the rest is the
//! body as sent. Both endpoints are configured with a 64 KiB limit so that a body claiming more
//! is refused (as it must be) without the target allocating it.
//!
//! Oracle: a body is only ever the client's fault, so no answer may be a 5xx.

use crate::runtime::block_on;
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request};
use parking_lot::RwLock;
use std::sync::Arc;
use strata_distributor::{Distributor, DistributorConfig};
use strata_model::{Overrides, TenancyConfig, TenancyMode, TenantId, WriteBatch};
use strata_promql::testing::MemStore;
use strata_querier::{Querier, QuerierConfig};
use strata_storage::{PushError, PushOutcome, Pusher};

/// Request size limit of both endpoints here (compressed and decompressed).
pub const BODY_LIMIT: usize = 64 << 10;

/// Tenant named in every request.
const TENANT: &str = "fuzz";

/// A pusher that stores nothing and accepts everything, as a healthy ingester would.
struct AcceptAll;

#[async_trait]
impl Pusher for AcceptAll {
    async fn push(
        &self,
        _tenant: &TenantId,
        batch: &WriteBatch<'_>,
    ) -> Result<PushOutcome, PushError> {
        let written: usize = batch
            .series
            .iter()
            .map(|s| (s.samples.end - s.samples.start) as usize)
            .sum();
        Ok(PushOutcome {
            samples_written: written as u64,
            ..PushOutcome::default()
        })
    }
}

fn tenancy() -> TenancyConfig {
    TenancyConfig {
        mode: TenancyMode::Header,
        single_tenant_id: "anonymous".into(),
    }
}

thread_local! {
    static DISTRIBUTOR: Arc<Distributor> = Distributor::new(
        DistributorConfig {
            max_recv_msg_size: BODY_LIMIT,
            ..DistributorConfig::default()
        },
        tenancy(),
        Arc::new(RwLock::new(Overrides::default())),
        Arc::new(AcceptAll),
        &mut prometheus_client::registry::Registry::default(),
    )
    .expect("the fuzz distributor's configuration is valid");

    static QUERIER: axum::Router = {
        let mut store = MemStore::new();
        for (labels, samples) in crate::fixture::series() {
            store.add(labels, samples);
        }
        let q = Querier::new(
            QuerierConfig {
                max_request_body_bytes: BODY_LIMIT,
                ..QuerierConfig::default()
            },
            tenancy(),
            Arc::new(store),
        )
        .expect("the fuzz querier's configuration is valid");
        strata_querier::router(q)
    };
}

/// Body of the `snappy_body` target.
pub fn run(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => push(body, "application/x-protobuf;proto=prometheus.WriteRequest"),
        1 => push(
            body,
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        ),
        _ => remote_read(body),
    }
}

fn push(body: &[u8], content_type: &'static str) {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
    headers.insert("x-scope-orgid", HeaderValue::from_static(TENANT));
    let d = DISTRIBUTOR.with(Arc::clone);
    if let Err(e) = block_on(d.push(&headers, body)) {
        assert!(
            !e.status().is_server_error(),
            "a push body got {}: {e}",
            e.status()
        );
    }
}

fn remote_read(body: &[u8]) {
    let req = Request::post("/api/v1/read")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(header::CONTENT_ENCODING, "snappy")
        .header("x-scope-orgid", TENANT)
        .body(Body::from(body.to_vec()))
        .expect("a fixed request builds");
    let mut router = QUERIER.with(Clone::clone);
    let resp = match block_on(tower_service::Service::call(&mut router, req)) {
        Ok(r) => r,
        Err(never) => match never {},
    };
    assert!(
        !resp.status().is_server_error(),
        "a remote-read body got {}",
        resp.status()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use strata_proto::prometheus as pb;

    fn snappy(b: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(b).unwrap()
    }

    #[test]
    fn valid_bodies_reach_the_end_of_both_paths() {
        let req = pb::WriteRequest {
            timeseries: vec![pb::TimeSeries {
                labels: vec![pb::Label {
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                samples: vec![pb::Sample {
                    value: 1.0,
                    timestamp: strata_model::time::now_ms(),
                }],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let d = DISTRIBUTOR.with(Arc::clone);
        let mut headers = HeaderMap::new();
        headers.insert("x-scope-orgid", HeaderValue::from_static(TENANT));
        let r = block_on(d.push(&headers, &snappy(&req.encode_to_vec()))).unwrap();
        assert_eq!(r.outcome.samples_written, 1);

        let read = pb::ReadRequest {
            queries: vec![pb::Query {
                start_timestamp_ms: 0,
                end_timestamp_ms: i64::MAX,
                matchers: vec![pb::LabelMatcher {
                    r#type: 0,
                    name: "__name__".into(),
                    value: "up".into(),
                }],
                hints: None,
            }],
            accepted_response_types: vec![],
        };
        let mut router = QUERIER.with(Clone::clone);
        let http = Request::post("/api/v1/read")
            .header("x-scope-orgid", TENANT)
            .body(Body::from(snappy(&read.encode_to_vec())))
            .unwrap();
        let resp = block_on(tower_service::Service::call(&mut router, http)).unwrap();
        assert_eq!(resp.status(), 200);
    }

    #[test]
    fn a_claimed_length_over_the_limit_is_refused_before_allocating() {
        // A snappy header claiming 2^32 - 1 bytes, and nothing else.
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let d = DISTRIBUTOR.with(Arc::clone);
        let mut headers = HeaderMap::new();
        headers.insert("x-scope-orgid", HeaderValue::from_static(TENANT));
        let e = block_on(d.push(&headers, &body)).unwrap_err();
        assert_eq!(e.status(), 413);
        run(&[2, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    }
}
