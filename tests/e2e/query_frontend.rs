//! The query-frontend in front of the real querier (in-process, node_exporter-like data over
//! two days and a half): every range query answers exactly what the querier alone answers,
//! whether cut at day boundaries, served from the results cache, or step-aligned (compared with
//! the querier asked for the aligned range).

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use strata_model::TenancyConfig;
use strata_promql::testing::MemStore;
use strata_querier::{router, Querier, QuerierConfig};
use strata_query_frontend::{in_front_of, QueryFrontend, QueryFrontendConfig, RouterDownstream};
use strata_storage::block::synth::node_exporter_like;
use tower::ServiceExt;

const DAY: i64 = 86_400_000;

/// Side-by-side style queries: rates, aggregations, quantiles, windows across midnight,
/// subqueries, offsets, and functions of time.
const QUERIES: &[&str] = &[
    "node_load1",
    "rate(node_cpu_seconds_total[5m])",
    "sum by (mode) (rate(node_cpu_seconds_total[5m]))",
    "histogram_quantile(0.9, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[5m])))",
    "topk(3, max_over_time(node_load1[1h]))",
    "avg_over_time(node_memory_MemFree_bytes[6h])",
    "increase(node_network_receive_bytes_total[2h])",
    "max_over_time(rate(node_cpu_seconds_total{mode=\"user\"}[5m])[1h:5m])",
    "node_load1 offset 3h",
    "count_over_time(up[30m])",
    "time() - 1",
    "up @ end()",
    "absent(nonexistent_metric)",
];

async fn get(app: &axum::Router, uri: &str) -> Value {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!(status, 200, "{uri}: {v}");
    v
}

/// The answer with its series sorted by labels.
fn normalized(mut v: Value) -> Value {
    if let Some(r) = v["data"]["result"].as_array_mut() {
        r.sort_by_key(|s| s["metric"].to_string());
    }
    v
}

fn uri(q: &str, start: i64, end: i64, step: i64) -> String {
    format!(
        "/api/v1/query_range?query={}&start={}&end={}&step={}",
        form_urlencoded_encode(q),
        start as f64 / 1000.0,
        end as f64 / 1000.0,
        step / 1000
    )
}

fn form_urlencoded_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_cached_and_aligned_answers_equal_the_querier_s() {
    let base = 20_000 * DAY - 12 * 3_600_000;
    let mut store = MemStore::new();
    for (labels, samples) in node_exporter_like(1, base, 2 * DAY + 12 * 3_600_000, 11) {
        store.add(labels, samples);
    }
    let querier = router(
        Querier::new(
            QuerierConfig::default(),
            TenancyConfig::default(),
            Arc::new(store),
        )
        .unwrap(),
    );
    let front = |cfg: QueryFrontendConfig| {
        let f = QueryFrontend::new(
            cfg,
            TenancyConfig::default(),
            Arc::new(RouterDownstream(querier.clone())),
            &mut Default::default(),
        )
        .unwrap();
        (f.clone(), in_front_of(f, querier.clone()))
    };
    let (f, app) = front(QueryFrontendConfig::default());
    // Unaligned start, two midnights inside the range.
    let (start, end, step) = (
        base + 3_600_000 + 7_000,
        base + 2 * DAY + 6 * 3_600_000,
        600_000,
    );
    for q in QUERIES {
        let plain = normalized(get(&querier, &uri(q, start, end, step)).await);
        let split = normalized(get(&app, &uri(q, start, end, step)).await);
        assert_eq!(split, plain, "{q} (split)");
        let cached = normalized(get(&app, &uri(q, start, end, step)).await);
        assert_eq!(cached, plain, "{q} (cached)");
        assert!(
            !plain["data"]["result"].as_array().unwrap().is_empty() || q.starts_with("absent"),
            "{q}: empty answer proves nothing"
        );
    }
    // The data is two years old: every piece of the split queries was cacheable.
    assert!(
        f.cached_pieces() >= 3 * (QUERIES.len() - 1),
        "{}",
        f.cached_pieces()
    );

    // Aligned to the step: the querier's answer for the aligned range.
    let (_, aligned) = front(QueryFrontendConfig {
        align_queries_with_step: true,
        ..QueryFrontendConfig::default()
    });
    for q in &QUERIES[..4] {
        let plain = normalized(
            get(
                &querier,
                &uri(q, start - start % step, end - end % step, step),
            )
            .await,
        );
        let got = normalized(get(&aligned, &uri(q, start, end, step)).await);
        assert_eq!(got, plain, "{q} (aligned)");
    }
}

/// Aggregations the frontend shards, and some it must pass on whole (`avg`, `topk`, nested
/// aggregations, two selectors matched): with query sharding on, every answer equals the
/// querier's alone. Sums of non-integers may differ in the last bits (addition order); every
/// other value must be equal exactly.
const SHARDED_QUERIES: &[&str] = &[
    "sum(rate(node_cpu_seconds_total[5m]))",
    "sum by (mode) (rate(node_cpu_seconds_total[5m]))",
    "sum without (cpu) (irate(node_cpu_seconds_total[5m]) * 100)",
    "count(node_cpu_seconds_total)",
    "count by (mode) (node_cpu_seconds_total > 1000)",
    "min by (mode) (rate(node_cpu_seconds_total[10m]))",
    "max(max_over_time(node_load1[1h]))",
    "max by (device) (increase(node_network_receive_bytes_total[2h]))",
    "group by (mode) (node_cpu_seconds_total)",
    "sum(rate(prometheus_http_request_duration_seconds_bucket[5m])) by (le)",
    "(sum(node_memory_MemFree_bytes))",
    "avg by (mode) (rate(node_cpu_seconds_total[5m]))",
    "topk(2, rate(node_cpu_seconds_total[5m]))",
    "bottomk by (mode) (1, max_over_time(node_cpu_seconds_total[10m]))",
    "avg(node_load1 * 2)",
    "quantile(0.5, node_load1)",
    "sum(sum by (mode) (node_cpu_seconds_total))",
    "sum(node_load1 / node_load5)",
];

fn assert_close(got: &Value, want: &Value, q: &str) {
    let (g, w) = (
        got["data"]["result"].as_array().unwrap(),
        want["data"]["result"].as_array().unwrap(),
    );
    assert!(!w.is_empty(), "{q}: empty answer proves nothing");
    assert_eq!(g.len(), w.len(), "{q}: series");
    for (gs, ws) in g.iter().zip(w) {
        assert_eq!(gs["metric"], ws["metric"], "{q}");
        let (gv, wv) = (
            gs["values"].as_array().unwrap(),
            ws["values"].as_array().unwrap(),
        );
        assert_eq!(gv.len(), wv.len(), "{q} {}: points", ws["metric"]);
        for (a, b) in gv.iter().zip(wv) {
            assert_eq!(a[0], b[0], "{q}: timestamps");
            if a[1] == b[1] {
                continue;
            }
            let (x, y): (f64, f64) = (
                a[1].as_str().unwrap().parse().unwrap(),
                b[1].as_str().unwrap().parse().unwrap(),
            );
            assert!(
                (q.starts_with("sum") || q.starts_with("avg"))
                    && (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                "{q} {} at {}: {x} != {y}",
                ws["metric"],
                a[0]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_aggregations_equal_the_querier_s() {
    let base = 20_000 * DAY - 12 * 3_600_000;
    let mut store = MemStore::new();
    for (labels, samples) in node_exporter_like(3, base, DAY + 12 * 3_600_000, 5) {
        store.add(labels, samples);
    }
    let querier = router(
        Querier::new(
            QuerierConfig::default(),
            TenancyConfig::default(),
            Arc::new(store),
        )
        .unwrap(),
    );
    let mut registry = prometheus_client::registry::Registry::default();
    let f = QueryFrontend::new(
        QueryFrontendConfig {
            query_sharding_total_shards: 4,
            ..QueryFrontendConfig::default()
        },
        TenancyConfig::default(),
        Arc::new(RouterDownstream(querier.clone())),
        &mut registry,
    )
    .unwrap();
    let app = in_front_of(f, querier.clone());
    // One midnight inside the range: two pieces, each run as four shards.
    let (start, end, step) = (base + 3_600_000, base + DAY + 6 * 3_600_000, 300_000);
    for q in SHARDED_QUERIES {
        let plain = normalized(get(&querier, &uri(q, start, end, step)).await);
        let sharded = normalized(get(&app, &uri(q, start, end, step)).await);
        assert_close(&sharded, &plain, q);
        // Again, from the results cache (each shard's piece is cached on its own).
        let cached = normalized(get(&app, &uri(q, start, end, step)).await);
        assert_close(&cached, &plain, q);
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    // Each shardable query counted once per request (twice: plain then cached).
    let shardable = 15;
    assert!(
        text.contains(&format!(
            "strata_query_frontend_sharded_queries_total {}\n",
            2 * shardable
        )),
        "{text}"
    );
    // A shard alone answers part of the series: the querier honours the shard parameter.
    let all = get(
        &querier,
        &uri("count(node_cpu_seconds_total)", start, end, step),
    )
    .await;
    let one = get(
        &querier,
        &format!(
            "{}&__query_shard__=1_of_4",
            uri("count(node_cpu_seconds_total)", start, end, step)
        ),
    )
    .await;
    let n = |v: &Value| -> f64 {
        v["data"]["result"][0]["values"][0][1]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        n(&one) > 0.0 && n(&one) < n(&all),
        "{} of {}",
        n(&one),
        n(&all)
    );
    // A malformed shard is the client's error, named, never a silently unsharded answer.
    for bad in ["0_of_4", "5_of_4", "1_of_0", "1of4", "x_of_y", "1_of_4096"] {
        let u = format!(
            "{}&__query_shard__={bad}",
            uri("count(node_cpu_seconds_total)", start, end, step)
        );
        let resp = querier
            .clone()
            .oneshot(Request::get(&u).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errorType"], "bad_data", "{bad}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("__query_shard__"),
            "{bad}: {v}"
        );
    }
}
