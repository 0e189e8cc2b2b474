//! Limits checked before any work: body size, remote read's claimed size and matchers, PromQL
//! length and depth.

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
use strata_storage::{QueryError, Queryable};
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

    async fn series(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.series(t, m, s, e).await
    }

    async fn label_names(
        &self,
        t: &TenantId,
        m: &[Matcher],
        s: i64,
        e: i64,
    ) -> Result<Vec<String>, QueryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.label_names(t, m, s, e).await
    }

    async fn label_values(
        &self,
        t: &TenantId,
        n: &str,
        m: &[Matcher],
        s: i64,
        e: i64,
    ) -> Result<Vec<String>, QueryError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.label_values(t, n, m, s, e).await
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
        let store = Arc::new(Counting {
            inner: crate::store(),
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
