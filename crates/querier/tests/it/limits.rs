//! Limits checked before any work (body size, remote read's claimed size and matchers, PromQL
//! length and depth) and while reading (series, samples, label names and values, query
//! memory).

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use prost::Message;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strata_model::{Labels, Matcher, TenancyConfig, TenantId};
use strata_proto::prometheus as pb;
use strata_querier::{router, Querier, QuerierConfig};
use strata_storage::query::{Series, SeriesMetadata};
use strata_storage::{ChunkedSeries, QueryError, Queryable, SelectHints};
use tower::ServiceExt;

/// The test store, counting every selection that reaches it.
struct Counting {
    inner: strata_promql::testing::MemStore,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl Queryable for Counting {
    async fn select(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
    ) -> Result<Vec<Series>, QueryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.select(t, m, s, e).await
    }

    async fn select_chunks_hinted(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.select_chunks_hinted(t, m, s, e, hints).await
    }

    async fn series(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.series(t, m, s, e, limit).await
    }

    async fn label_names(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.label_names(t, m, s, e, limit).await
    }

    async fn label_values(
        &self,
        t: &TenantId,
        n: &str,
        m: &[Matcher],
        s: i64,
        e: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.label_values(t, n, m, s, e, limit).await
    }

    async fn metadata(
        &self,
        t: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        self.inner.metadata(t, metric).await
    }
}

struct App {
    router: axum::Router,
    store: Arc<Counting>,
}

impl App {
    fn new(cfg: QuerierConfig) -> Self {
        Self::with_store(cfg, crate::store())
    }

    fn with_store(cfg: QuerierConfig, inner: strata_promql::testing::MemStore) -> Self {
        let store = Arc::new(Counting {
            inner,
            calls: AtomicUsize::new(0),
        });
        let q = Querier::new(cfg, TenancyConfig::default(), store.clone()).unwrap();
        Self {
            router: router(q),
            store,
        }
    }

    async fn call(&self, req: Request<Body>) -> (u16, String) {
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn selections(&self) -> usize {
        self.store.calls.load(Ordering::SeqCst)
    }

    /// Series the store handed out so far.
    fn produced(&self) -> usize {
        self.store.inner.series_produced()
    }
}

fn read_request(matchers: Vec<pb::LabelMatcher>) -> Vec<u8> {
    let req = pb::ReadRequest {
        queries: vec![pb::Query {
            start_timestamp_ms: 0,
            end_timestamp_ms: 100_000,
            matchers,
            hints: None,
        }],
        accepted_response_types: vec![0],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn matcher(kind: i32, name: &str, value: &str) -> pb::LabelMatcher {
    pb::LabelMatcher {
        r#type: kind,
        name: name.into(),
        value: value.into(),
    }
}

fn post_read(body: Vec<u8>) -> Request<Body> {
    Request::post("/api/v1/read")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn remote_read_refuses_a_huge_claimed_size_before_decompressing() {
    let app = App::new(QuerierConfig::default());
    // A snappy block whose header claims ~4 GiB followed by a few bytes: decompressing it
    // would allocate the claimed size first.
    let mut body = Vec::new();
    let mut claimed: u64 = u32::MAX as u64;
    while claimed >= 0x80 {
        body.push((claimed as u8) | 0x80);
        claimed >>= 7;
    }
    body.push(claimed as u8);
    body.extend_from_slice(&[0, 1, 2, 3]);
    let (status, text) = app.call(post_read(body)).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("querier.max_request_body_bytes"), "{text}");
    assert!(text.contains("4294967295"), "{text}");
    assert_eq!(app.selections(), 0);
}

#[tokio::test]
async fn remote_read_refuses_matchers_that_select_everything() {
    let app = App::new(QuerierConfig::default());
    for (name, matchers) in [
        ("no matcher", vec![]),
        ("empty value", vec![matcher(0, "job", "")]),
        ("dot star", vec![matcher(2, "__name__", ".*")]),
        (
            "all match empty",
            vec![matcher(1, "job", "x"), matcher(3, "instance", ".+")],
        ),
    ] {
        let (status, text) = app.call(post_read(read_request(matchers))).await;
        assert_eq!(status, 400, "{name}: {text}");
        assert!(
            text.contains("match[] must contain at least one non-empty matcher"),
            "{name}: {text}"
        );
    }
    assert_eq!(app.selections(), 0, "refused before any selection");
    // One non-empty matcher is enough.
    let (status, text) = app
        .call(post_read(read_request(vec![
            matcher(0, "__name__", "up"),
            matcher(0, "job", ""),
        ])))
        .await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test]
async fn metadata_endpoints_refuse_empty_matchers() {
    let app = App::new(QuerierConfig::default());
    for uri in [
        "/api/v1/series?match[]=%7B__name__%3D~%22.*%22%7D",
        "/api/v1/labels?match[]=%7Bjob%3D%22%22%7D",
        "/api/v1/label/job/values?match[]=%7Bjob!%3D%22x%22%7D",
    ] {
        let (status, text) = app
            .call(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        assert_eq!(status, 400, "{uri}: {text}");
        assert!(text.contains("non-empty matcher"), "{uri}: {text}");
    }
    assert_eq!(app.selections(), 0);
}

fn form_query(path: &str, query: &str) -> Request<Body> {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", query)
        .append_pair("time", "20")
        .append_pair("start", "0")
        .append_pair("end", "20")
        .append_pair("step", "10")
        .finish();
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn deep_or_long_promql_is_bad_data() {
    let app = App::new(QuerierConfig::default());
    // Deep enough to overflow a request thread's stack in the parser if it were parsed.
    let deep = format!("{}up{}", "(".repeat(50_000), ")".repeat(50_000));
    let chain = format!("up{}", " + up".repeat(200));
    for path in [
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/format_query",
        "/api/v1/query_exemplars",
    ] {
        for q in [&deep, &chain] {
            let (status, text) = app.call(form_query(path, q)).await;
            assert_eq!(status, 400, "{path}: {text}");
            assert!(text.contains(r#""errorType":"bad_data""#), "{path}: {text}");
            assert!(
                text.contains("nests deeper than 128 levels (querier.max_query_depth)"),
                "{path}: {text}"
            );
        }
    }
    let deep_match = format!(
        "/api/v1/series?match[]={}up{}",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    let (status, text) = app
        .call(Request::get(deep_match).body(Body::empty()).unwrap())
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("querier.max_query_depth"), "{text}");
    // Within the limit: evaluated.
    let (status, text) = app
        .call(form_query(
            "/api/v1/query",
            &format!("{}up{}", "(".repeat(100), ")".repeat(100)),
        ))
        .await;
    assert_eq!(status, 200, "{text}");

    let app = App::new(QuerierConfig {
        max_query_bytes: 64,
        ..Default::default()
    });
    let long = format!("up{{job=\"{}\"}}", "x".repeat(100));
    let (status, text) = app.call(form_query("/api/v1/query", &long)).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("longer than 64 bytes (querier.max_query_bytes)"),
        "{text}"
    );
    assert_eq!(app.selections(), 0);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = App::new(QuerierConfig {
        max_request_body_bytes: 64 << 10,
        ..Default::default()
    });
    let big = format!("query=up&pad={}", "x".repeat(100 << 10));
    // Declared by Content-Length, and streamed without it.
    for declared in [true, false] {
        let mut req = Request::post("/api/v1/query")
            .header("content-type", "application/x-www-form-urlencoded");
        if declared {
            req = req.header("content-length", big.len());
        }
        let (status, text) = app.call(req.body(Body::from(big.clone())).unwrap()).await;
        assert_eq!(status, 413, "{text}");
        assert!(text.contains("querier.max_request_body_bytes"), "{text}");
    }
    let (status, text) = app.call(post_read(vec![0u8; 100 << 10])).await;
    assert_eq!(status, 413, "{text}");
    // Under the limit, and above axum's own 2 MiB default when the setting allows it.
    let (status, _) = app.call(form_query("/api/v1/query", "up")).await;
    assert_eq!(status, 200);
    let app = App::new(QuerierConfig {
        max_request_body_bytes: 4 << 20,
        ..Default::default()
    });
    let three_mib = format!("query=up&time=20&pad={}", "x".repeat(3 << 20));
    let (status, text) = app
        .call(
            Request::post("/api/v1/query")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(three_mib))
                .unwrap(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
}

/// 2,000 series `wide{i="…",l<i%50>="x"}` (50 distinct extra label names), 100 samples each
/// from 0 to 99 s.
fn wide_store() -> strata_promql::testing::MemStore {
    let mut s = strata_promql::testing::MemStore::new();
    for i in 0..2000 {
        s.add(
            Labels::from_pairs([
                ("__name__".to_string(), "wide".to_string()),
                ("i".to_string(), format!("{i:05}")),
                (format!("l{}", i % 50), "x".to_string()),
            ]),
            (0..100).map(|t| strata_model::Sample::new(t * 1000, t as f64)),
        );
    }
    s
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// `s` percent-encoded for a query string.
fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn series_and_label_endpoints_stop_at_their_limits() {
    let cfg = QuerierConfig {
        max_series_per_request: 100,
        max_label_names_per_request: 10,
        max_label_values_per_request: 100,
        ..Default::default()
    };
    let cases = [
        (
            "/api/v1/series?match[]=wide&start=0&end=100",
            "more than 100 series (querier.max_series_per_request)",
        ),
        (
            "/api/v1/labels?match[]=wide&start=0&end=100",
            "more than 10 label names (querier.max_label_names_per_request)",
        ),
        (
            "/api/v1/label/i/values?match[]=wide&start=0&end=100",
            "more than 100 label values (querier.max_label_values_per_request)",
        ),
        (
            "/api/v1/label/i/values?start=0&end=100",
            "more than 100 label values (querier.max_label_values_per_request)",
        ),
        (
            "/api/v1/status/tsdb",
            "more than 100 series (querier.max_series_per_request)",
        ),
    ];
    for (uri, message) in cases {
        let app = App::with_store(cfg.clone(), wide_store());
        let (status, text) = app.call(get(uri)).await;
        // As for the sample limit of queries: 422, `execution`.
        assert_eq!(status, 422, "{uri}: {text}");
        assert!(text.contains(r#""errorType":"execution""#), "{uri}: {text}");
        assert!(text.contains(message), "{uri}: {text}");
        // The store stopped just past the limit instead of reading all 2,000 series.
        assert!(
            app.produced() <= 101,
            "{uri}: {} series read",
            app.produced()
        );
    }
    // Narrower selections within the limits answer.
    let app = App::with_store(cfg, wide_store());
    let (status, text) = app
        .call(get(&format!(
            "/api/v1/series?match[]={}&start=0&end=100",
            enc(r#"wide{i=~"0000."}"#)
        )))
        .await;
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 10);
    let (status, text) = app
        .call(get(&format!(
            "/api/v1/labels?match[]={}&start=0&end=100",
            enc(r#"wide{l3="x"}"#)
        )))
        .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#"["__name__","i","l3"]"#), "{text}");
}

#[tokio::test]
async fn several_match_sets_count_together() {
    let app = App::with_store(
        QuerierConfig {
            max_series_per_request: 15,
            ..Default::default()
        },
        wide_store(),
    );
    // 10 series each: every store answer fits, their union does not.
    let (status, text) = app
        .call(get(&format!(
            "/api/v1/series?match[]={}&match[]={}&start=0&end=100",
            enc(r#"wide{i=~"0000."}"#),
            enc(r#"wide{i=~"0001."}"#)
        )))
        .await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("querier.max_series_per_request"), "{text}");
}

#[tokio::test]
async fn remote_read_stops_at_series_and_samples() {
    let wide = || vec![matcher(0, "__name__", "wide")];
    for (cfg, setting) in [
        (
            QuerierConfig {
                max_series_per_request: 50,
                ..Default::default()
            },
            "more than 50 series (querier.max_series_per_request)",
        ),
        (
            QuerierConfig {
                max_samples_per_read: 5_000,
                ..Default::default()
            },
            "more than 5000 samples (querier.max_samples_per_read)",
        ),
    ] {
        let app = App::with_store(cfg, wide_store());
        let (status, text) = app.call(post_read(read_request(wide()))).await;
        assert_eq!(status, 422, "{text}");
        assert!(text.contains(setting), "{text}");
        assert!(app.produced() <= 51, "{} series read", app.produced());
    }
    // The limits hold for the whole request: two queries of 30 series each exceed 50.
    let app = App::with_store(
        QuerierConfig {
            max_series_per_request: 50,
            ..Default::default()
        },
        wide_store(),
    );
    let query = |re: &str| pb::Query {
        start_timestamp_ms: 0,
        end_timestamp_ms: 100_000,
        matchers: vec![matcher(0, "__name__", "wide"), matcher(2, "i", re)],
        hints: None,
    };
    let two = pb::ReadRequest {
        queries: vec![query("000[0-2].*"), query("001[0-2].*")],
        accepted_response_types: vec![0],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&two.encode_to_vec())
        .unwrap();
    let (status, text) = app.call(post_read(body)).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("more than 50 series"), "{text}");
    // Within the limits: every series and sample.
    let app = App::with_store(QuerierConfig::default(), wide_store());
    let one = pb::ReadRequest {
        queries: vec![query("000[0-2].*")],
        accepted_response_types: vec![0],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&one.encode_to_vec())
        .unwrap();
    let req = Request::post("/api/v1/read")
        .body(Body::from(body))
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let raw = snap::raw::Decoder::new().decompress_vec(&bytes).unwrap();
    let r = pb::ReadResponse::decode(raw.as_slice()).unwrap();
    assert_eq!(r.results[0].timeseries.len(), 30);
    assert!(r.results[0]
        .timeseries
        .iter()
        .all(|t| t.samples.len() == 100));
}

#[tokio::test]
async fn promql_memory_limit_fails_while_fetching() {
    let query = || get("/api/v1/query?query=sum(wide)&time=50");
    // 2,000 series of 100 samples: well over 1 MiB fetched.
    let app = App::with_store(
        QuerierConfig {
            max_query_memory_bytes: 256 << 10,
            ..Default::default()
        },
        wide_store(),
    );
    let (status, text) = app.call(query()).await;
    assert_eq!(status, 422, "{text}");
    assert!(text.contains(r#""errorType":"execution""#), "{text}");
    assert!(
        text.contains("more than 262144 bytes of memory (querier.max_query_memory_bytes)"),
        "{text}"
    );
    assert!(
        app.produced() < 2000,
        "the fetch stopped after {} series",
        app.produced()
    );
    // The same query under the default limit.
    let app = App::with_store(QuerierConfig::default(), wide_store());
    let (status, text) = app.call(query()).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""value":[50,"100000"]"#), "{text}");
}
