//! Replica deduplication over the HTTP API (`querier.replica_labels`): an HA pair stored
//! separately answers as one series, following one replica and filling its gap from the other.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use strata_model::{Labels, Sample, TenancyConfig};
use strata_promql::testing::MemStore;
use strata_querier::{router, Querier, QuerierConfig};
use tower::ServiceExt;

/// `up{replica="a"}` = 1 every 15 s but missing 60–105 s; `up{replica="b"}` = 2, 5 s later;
/// and `solo{replica="a"}`, which has no twin.
fn app(replica_labels: &[&str]) -> axum::Router {
    let mut store = MemStore::new();
    let secs = |v: &[i64], value: f64| -> Vec<Sample> {
        v.iter().map(|&s| Sample::new(s * 1000, value)).collect()
    };
    store.add(
        Labels::from_pairs([("__name__", "up"), ("replica", "a")]),
        secs(&[0, 15, 30, 45, 120, 135], 1.0),
    );
    store.add(
        Labels::from_pairs([("__name__", "up"), ("replica", "b")]),
        secs(&[5, 20, 35, 50, 65, 80, 95, 110, 125, 140], 2.0),
    );
    store.add(
        Labels::from_pairs([("__name__", "solo"), ("replica", "a")]),
        secs(&[0], 7.0),
    );
    let cfg = QuerierConfig {
        replica_labels: replica_labels.iter().map(|s| s.to_string()).collect(),
        ..QuerierConfig::default()
    };
    router(Querier::new(cfg, TenancyConfig::default(), Arc::new(store)).unwrap())
}

async fn get(app: axum::Router, uri: &str) -> Value {
    let resp = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test]
async fn an_ha_pair_answers_as_one_series_with_the_gap_filled() {
    let a = app(&["replica"]);
    let v = get(
        a.clone(),
        "/api/v1/query_range?query=up&start=0&end=140&step=5",
    )
    .await;
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{v}");
    assert_eq!(result[0]["metric"], serde_json::json!({"__name__": "up"}));
    // Replica a while it has samples (its samples at 0–45 s), then b from 80 s on: the
    // penalty rule's choice (b's 65 s sample is within twice a's interval of a's last).
    let points: Vec<(i64, String)> = result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_f64().unwrap() as i64,
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let value_at = |t: i64| points.iter().find(|p| p.0 == t).map(|p| p.1.as_str());
    assert_eq!(value_at(50), Some("1"));
    assert_eq!(value_at(75), Some("1"));
    assert_eq!(value_at(100), Some("2"));
    assert_eq!(value_at(140), Some("2"));
    // One series for count, series and labels; the twin-less series loses its label too.
    let v = get(a.clone(), "/api/v1/query?query=count(up)&time=100").await;
    assert_eq!(v["data"]["result"][0]["value"][1], "1");
    let v = get(a.clone(), "/api/v1/series?match[]=up&start=0&end=140").await;
    assert_eq!(v["data"], serde_json::json!([{"__name__": "up"}]));
    let v = get(a.clone(), "/api/v1/labels?start=0&end=140").await;
    assert_eq!(v["data"], serde_json::json!(["__name__"]));
    let v = get(a, "/api/v1/query?query=solo&time=10").await;
    assert_eq!(
        v["data"]["result"][0]["metric"],
        serde_json::json!({"__name__": "solo"})
    );

    // Without replica labels both replicas answer.
    let v = get(app(&[]), "/api/v1/query?query=count(up)&time=100").await;
    assert_eq!(v["data"]["result"][0]["value"][1], "2");
}

#[test]
fn replica_labels_must_be_label_names() {
    for bad in ["", "0x", "a-b", "__name__"] {
        let cfg = QuerierConfig {
            replica_labels: vec![bad.into()],
            ..QuerierConfig::default()
        };
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("querier.replica_labels"), "{bad}: {e}");
    }
}
