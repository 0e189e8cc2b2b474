//! The querier's HTTP contract against Prometheus's JSON shapes, with an in-memory queryable.

mod dedup;
mod federation;
mod ingesters;
mod store_gateways;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use prost::Message;
use std::sync::Arc;
use strata_model::{Labels, MetricType, Sample, TenancyConfig};
use strata_promql::testing::MemStore;
use strata_proto::prometheus as pb;
use strata_querier::{router, Querier, QuerierConfig};
use strata_storage::query::SeriesMetadata;
use tower::ServiceExt;

mod limits;

fn app() -> axum::Router {
    router(
        Querier::new(
            QuerierConfig::default(),
            TenancyConfig::default(),
            Arc::new(store()),
        )
        .unwrap(),
    )
}

/// The test data: `up` of two jobs, `node_load1`, and metadata of `up`.
fn store() -> MemStore {
    let mut store = MemStore::new();
    let mut add = |pairs: &[(&str, &str)], ts: &[i64]| {
        store.add(
            Labels::from_pairs(pairs.iter().copied()),
            ts.iter().map(|&t| Sample::new(t, t as f64 / 1000.0)),
        )
    };
    add(
        &[("__name__", "up"), ("job", "node"), ("instance", "a:9100")],
        &[10_000, 20_000],
    );
    add(
        &[("__name__", "up"), ("job", "prom"), ("instance", "b:9090")],
        &[30_000],
    );
    add(
        &[
            ("__name__", "node_load1"),
            ("job", "node"),
            ("instance", "a:9100"),
        ],
        &[10_000],
    );
    store.set_metadata(vec![SeriesMetadata {
        family: "up".into(),
        metric_type: MetricType::Gauge,
        help: "Up.".into(),
        unit: "".into(),
    }]);
    store
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

#[tokio::test]
async fn instant_query_json() {
    let (status, body) = get("/api/v1/query?query=up&time=20").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"a:9100","job":"node"},"value":[20,"20"]}]}}"#
    );
    let (_, body) = get("/api/v1/query?query=1%2B1&time=20.5").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[20.5,"2"]}}"#
    );
    let (_, body) = get("/api/v1/query?query=%22hi%22&time=1").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"string","result":[1,"hi"]}}"#
    );
    let (_, body) = get("/api/v1/query?query=up%5B15s%5D&time=20").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"a:9100","job":"node"},"values":[[10,"10"],[20,"20"]]}]}}"#
    );
}

#[tokio::test]
async fn range_query_json_and_limits() {
    let (status, body) = get("/api/v1/query_range?query=up&start=10&end=30&step=10").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    assert_eq!(
        result[0]["values"],
        serde_json::json!([[10, "10"], [20, "20"], [30, "20"]])
    );
    let (status, body) = get("/api/v1/query_range?query=up&start=10&end=30&step=0").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("zero or negative query resolution step widths are not accepted"),
        "{body}"
    );
    let (status, body) = get("/api/v1/query_range?query=up&start=0&end=100000&step=1").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("exceeded maximum resolution of 11000 points per timeseries"),
        "{body}"
    );
    let (status, body) = get("/api/v1/query_range?query=sum(&start=0&end=10&step=1").await;
    assert_eq!(status, 400);
    assert!(body.contains(r#""errorType":"bad_data""#), "{body}");
    let (status, body) = get("/api/v1/query?query=up%20%2B%20ignoring(job)%20up&time=30").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn execution_errors_are_422() {
    // Two series that collide after the operation drops their differing label.
    let (status, body) =
        get("/api/v1/query?query=sum%20without(job)%20(up)%20%2B%20on()%20group_left%20up&time=30")
            .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains(r#""errorType":"execution""#), "{body}");
}

#[tokio::test]
async fn buildinfo_format_query_and_tsdb_status() {
    let (_, body) = get("/api/v1/status/buildinfo").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    assert!(v["data"]["version"].as_str().unwrap().starts_with('3'));
    let (_, body) = get("/api/v1/format_query?query=sum(rate(x%5B5m%5D))%20by%20(job)").await;
    assert_eq!(
        body,
        r#"{"status":"success","data":"sum by (job) (rate(x[5m]))"}"#
    );
    let (_, body) = get("/api/v1/status/tsdb").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["data"]["seriesCountByMetricName"][0],
        serde_json::json!({"name": "up", "value": 2})
    );
    assert_eq!(v["data"]["headStats"]["numLabelPairs"], 6);
    let (_, body) = get("/api/v1/query_exemplars?query=up&start=0&end=10").await;
    assert_eq!(body, r#"{"status":"success","data":[]}"#);
}
