//! The querier's HTTP contract against Prometheus's JSON shapes, with an in-memory queryable.

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use prost::Message;
use std::sync::Arc;
use strata_model::{Labels, Matcher, MetricType, Sample, TenancyConfig, TenantId};
use strata_proto::prometheus as pb;
use strata_querier::{router, Querier, QuerierConfig};
use strata_storage::query::{Series, SeriesMetadata};
use strata_storage::{QueryError, Queryable};
use tower::ServiceExt;

/// Series in memory; applies matchers and time ranges like a real store.
struct Memory(Vec<Series>);

impl Memory {
    fn matching(&self, m: &[Matcher], start: i64, end: i64) -> Vec<Series> {
        self.0
            .iter()
            .filter(|s| {
                m.iter()
                    .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
            })
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: s
                    .samples
                    .iter()
                    .copied()
                    .filter(|x| x.t >= start && x.t <= end)
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect()
    }
}

#[async_trait]
impl Queryable for Memory {
    async fn select(
        &self,
        _: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        Ok(self.matching(m, start, end))
    }
    async fn series(
        &self,
        _: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        Ok(self
            .matching(m, start, end)
            .into_iter()
            .map(|s| s.labels)
            .collect())
    }
    async fn label_names(
        &self,
        _: &TenantId,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, QueryError> {
        let mut v: Vec<String> = self
            .matching(m, start, end)
            .iter()
            .flat_map(|s| s.labels.iter().map(|l| l.name.clone()))
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }
    async fn label_values(
        &self,
        _: &TenantId,
        n: &str,
        m: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, QueryError> {
        let mut v: Vec<String> = self
            .matching(m, start, end)
            .iter()
            .filter_map(|s| s.labels.get(n).map(str::to_owned))
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }
    async fn metadata(
        &self,
        _: &TenantId,
        _: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        Ok(vec![SeriesMetadata {
            family: "up".into(),
            metric_type: MetricType::Gauge,
            help: "Up.".into(),
            unit: "".into(),
        }])
    }
}

fn app() -> axum::Router {
    let s = |pairs: &[(&str, &str)], ts: &[i64]| Series {
        labels: Labels::from_pairs(pairs.iter().copied()),
        samples: ts
            .iter()
            .map(|&t| Sample::new(t, t as f64 / 1000.0))
            .collect(),
    };
    let store = Memory(vec![
        s(
            &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
            &[10_000, 20_000],
        ),
        s(
            &[("__name__", "up"), ("job", "prom"), ("instance", "b:9090")],
            &[30_000],
        ),
        s(
            &[
                ("__name__", "node_load1"),
                ("job", "node"),
                ("instance", "a:9100"),
            ],
            &[10_000],
        ),
    ]);
    router(
        Querier::new(
            QuerierConfig::default(),
            TenancyConfig::default(),
            Arc::new(store),
        )
        .unwrap(),
    )
}

async fn call(req: Request<Body>) -> (u16, String) {
    let resp = app().oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn get(uri: &str) -> (u16, String) {
    call(Request::get(uri).body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn series_json_is_prometheus_shaped() {
    let (status, body) = get("/api/v1/series?match[]=up&start=0&end=15").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"up","instance":"a:9100","job":"node"}]}"#
    );
    // Several match[] are unioned, and the Mimir prefix serves the same API.
    let (_, body) = get("/prometheus/api/v1/series?match[]=up&match[]=node_load1").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn series_by_form_post_and_rfc3339() {
    let req = Request::post("/api/v1/series")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(
            "match%5B%5D=%7Bjob%3D%22prom%22%7D&start=1970-01-01T00:00:25Z",
        ))
        .unwrap();
    let (status, body) = call(req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":[{"__name__":"up","instance":"b:9090","job":"prom"}]}"#
    );
}

#[tokio::test]
async fn errors_use_prometheus_error_format() {
    let (status, body) = get("/api/v1/series").await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        r#"{"status":"error","errorType":"bad_data","error":"no match[] parameter provided"}"#
    );
    let (status, body) = get("/api/v1/series?match[]=up&start=yesterday").await;
    assert_eq!(status, 400);
    assert!(
        body.contains(
            r#"invalid parameter \"start\": cannot parse \"yesterday\" to a valid timestamp"#
        ),
        "{body}"
    );
    let (status, body) = get("/api/v1/series?match[]=rate(up[5m])").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = get("/api/v1/series?match[]=up&start=10&end=5").await;
    assert_eq!(status, 400);
    let (status, body) = get("/api/v1/series?match[]=%7Bjob%3D%22%22%7D").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn labels_and_values() {
    let (_, body) = get("/api/v1/labels").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":["__name__","instance","job"]}"#
    );
    let (_, body) = get("/api/v1/label/job/values").await;
    assert_eq!(body, r#"{"status":"success","data":["node","prom"]}"#);
    let (_, body) = get("/api/v1/label/job/values?match[]=node_load1").await;
    assert_eq!(body, r#"{"status":"success","data":["node"]}"#);
    let (_, body) = get("/api/v1/label/nope/values").await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
}

#[tokio::test]
async fn metadata_endpoint() {
    let (_, body) = get("/api/v1/metadata").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"up":[{"help":"Up.","type":"gauge","unit":""}]}}"#
    );
}

#[tokio::test]
async fn remote_read_returns_samples() {
    let req = pb::ReadRequest {
        queries: vec![pb::Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 15_000,
            matchers: vec![pb::LabelMatcher {
                r#type: 0,
                name: "__name__".into(),
                value: "up".into(),
            }],
            hints: None,
        }],
        accepted_response_types: vec![0],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let resp = app()
        .oneshot(
            Request::post("/api/v1/read")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-encoding"], "snappy");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let raw = snap::raw::Decoder::new().decompress_vec(&bytes).unwrap();
    let rr = pb::ReadResponse::decode(raw.as_slice()).unwrap();
    assert_eq!(rr.results.len(), 1);
    let ts = &rr.results[0].timeseries;
    assert_eq!(ts.len(), 1);
    assert_eq!(
        ts[0].samples,
        vec![pb::Sample {
            value: 10.0,
            timestamp: 10_000
        }]
    );
}
