use super::*;
use prost::Message;
use strata_model::time::now_ms;
use strata_model::TenancyMode;
use strata_proto::{prometheus as v1, write_v2 as v2};

const V1_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/x-protobuf"),
    ("content-encoding", "snappy"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

fn series(labels: &[(&str, &str)], t: i64) -> v1::TimeSeries {
    v1::TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| v1::Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: vec![v1::Sample {
            value: 1.0,
            timestamp: t,
        }],
        ..Default::default()
    }
}

fn v1_body(ts: Vec<v1::TimeSeries>) -> Vec<u8> {
    let raw = v1::WriteRequest {
        timeseries: ts,
        metadata: vec![],
    }
    .encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap()
}

fn default_harness(b: Behaviour) -> Harness {
    harness(b, TenancyConfig::default(), Limits::default())
}

#[tokio::test]
async fn v1_valid_push_is_204_and_forwarded() {
    let h = default_harness(Behaviour::Store);
    let body = v1_body(vec![series(&[("__name__", "up"), ("job", "a")], now_ms())]);
    let (status, _, _) = send(&h.app, V1_HEADERS, body).await;
    assert_eq!(status, 204);
    let pushes = h.recorder.pushes.lock();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].0, "anonymous");
    assert_eq!(pushes[0].1, vec![("__name__=up,job=a".to_string(), 1)]);
}

#[tokio::test]
async fn v2_push_reports_written_counts() {
    let h = default_harness(Behaviour::Store);
    let req = v2::Request {
        symbols: vec!["".into(), "__name__".into(), "up".into()],
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2],
            samples: vec![
                v2::Sample {
                    value: 1.0,
                    timestamp: now_ms() - 1000,
                    start_timestamp: 0,
                },
                v2::Sample {
                    value: 2.0,
                    timestamp: now_ms(),
                    start_timestamp: 0,
                },
            ],
            ..Default::default()
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let headers = [
        (
            "content-type",
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        ),
        ("content-encoding", "snappy"),
        ("x-prometheus-remote-write-version", "2.0.0"),
    ];
    let (status, resp, _) = send(&h.app, &headers, body).await;
    assert_eq!(status, 204);
    let hdr = |n: &str| {
        resp.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        hdr("x-prometheus-remote-write-samples-written").as_deref(),
        Some("2")
    );
    assert_eq!(
        hdr("x-prometheus-remote-write-histograms-written").as_deref(),
        Some("0")
    );
    assert_eq!(
        hdr("x-prometheus-remote-write-exemplars-written").as_deref(),
        Some("0")
    );
}

#[tokio::test]
async fn unsupported_media_is_415() {
    let h = default_harness(Behaviour::Store);
    let body = v1_body(vec![series(&[("__name__", "up")], now_ms())]);
    for headers in [
        vec![
            ("content-type", "application/json"),
            ("content-encoding", "snappy"),
        ],
        vec![
            ("content-type", "application/x-protobuf;proto=foo.Bar"),
            ("content-encoding", "snappy"),
        ],
        vec![
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
    ] {
        let (status, _, text) = send(&h.app, &headers, body.clone()).await;
        assert_eq!(status, 415, "{headers:?}: {text}");
    }
    assert!(h.recorder.pushes.lock().is_empty());
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let h = default_harness(Behaviour::Store);
    let (status, _, text) = send(&h.app, V1_HEADERS, b"not snappy at all".to_vec()).await;
    assert_eq!(status, 400, "{text}");
    let garbage = snap::raw::Encoder::new()
        .compress_vec(&[0x0a, 0xff, 0xff, 0xff])
        .unwrap();
    let (status, _, text) = send(&h.app, V1_HEADERS, garbage).await;
    assert_eq!(status, 400);
    assert!(text.contains("prometheus.WriteRequest"), "{text}");
}

#[tokio::test]
async fn invalid_series_is_400_naming_it_and_the_rest_is_stored() {
    let h = default_harness(Behaviour::Store);
    let body = v1_body(vec![
        series(&[("__name__", "good")], now_ms()),
        series(&[("__name__", "bad metric")], now_ms()),
        series(&[("__name__", "also_good")], now_ms()),
    ]);
    let (status, _, text) = send(&h.app, V1_HEADERS, body).await;
    assert_eq!(status, 400);
    assert!(
        text.contains("bad metric") && text.contains("metric-name-invalid"),
        "{text}"
    );
    assert!(text.starts_with("1 of 3 samples rejected"), "{text}");
    let pushes = h.recorder.pushes.lock();
    let names: Vec<&str> = pushes[0].1.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["__name__=good", "__name__=also_good"]);
}

#[tokio::test]
async fn sample_too_far_in_future_is_400() {
    let h = default_harness(Behaviour::Store);
    let body = v1_body(vec![series(&[("__name__", "up")], now_ms() + 3_600_000)]);
    let (status, _, text) = send(&h.app, V1_HEADERS, body).await;
    assert_eq!(status, 400);
    assert!(text.contains("too-far-in-future"), "{text}");
}

#[tokio::test]
async fn rate_limit_is_429() {
    let limits = Limits {
        ingestion_rate: 1.0,
        ingestion_burst_size: 2,
        ..Limits::default()
    };
    let h = harness(Behaviour::Store, TenancyConfig::default(), limits);
    let mk = || {
        v1_body(
            (0..2)
                .map(|i| series(&[("__name__", "up"), ("i", &i.to_string())], now_ms()))
                .collect(),
        )
    };
    let (status, _, _) = send(&h.app, V1_HEADERS, mk()).await;
    assert_eq!(status, 204);
    let (status, _, text) = send(&h.app, V1_HEADERS, mk()).await;
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("ingestion rate limit"), "{text}");
}

#[tokio::test]
async fn ingester_limit_is_429_and_wal_failure_is_500() {
    let body = v1_body(vec![series(&[("__name__", "up")], now_ms())]);
    let h = default_harness(Behaviour::LimitEverything);
    let (status, _, _) = send(&h.app, V1_HEADERS, body.clone()).await;
    assert_eq!(status, 429);
    let h = default_harness(Behaviour::FailWal);
    let (status, _, text) = send(&h.app, V1_HEADERS, body).await;
    assert_eq!(status, 500);
    assert!(text.contains("disk full"), "{text}");
}

#[tokio::test]
async fn tenancy_modes() {
    let body = v1_body(vec![series(&[("__name__", "up")], now_ms())]);
    let h = harness(
        Behaviour::Store,
        TenancyConfig {
            mode: TenancyMode::Header,
            ..Default::default()
        },
        Limits::default(),
    );
    let (status, _, _) = send(&h.app, V1_HEADERS, body.clone()).await;
    assert_eq!(status, 401);
    let mut with = V1_HEADERS.to_vec();
    with.push(("x-scope-orgid", "team-a"));
    let (status, _, _) = send(&h.app, &with, body.clone()).await;
    assert_eq!(status, 204);
    let h = harness(
        Behaviour::Store,
        TenancyConfig {
            mode: TenancyMode::BasicAuth,
            ..Default::default()
        },
        Limits::default(),
    );
    let mut with = V1_HEADERS.to_vec();
    with.push(("authorization", "Basic dGVhbTE6c2VjcmV0"));
    let (status, _, _) = send(&h.app, &with, body).await;
    assert_eq!(status, 204);
    assert_eq!(h.recorder.pushes.lock()[0].0, "team1");
}

#[tokio::test]
async fn oversized_request_is_413() {
    let h = default_harness(Behaviour::Store);
    let big: Vec<v1::TimeSeries> = (0..5000)
        .map(|i| series(&[("__name__", "up"), ("i", &format!("{i:08}"))], now_ms()))
        .collect();
    let (status, _, text) = send(&h.app, V1_HEADERS, v1_body(big)).await;
    assert_eq!(status, 413, "{text}");
}

#[tokio::test]
async fn metadata_only_request_is_accepted() {
    let h = default_harness(Behaviour::Store);
    let raw = v1::WriteRequest {
        timeseries: vec![],
        metadata: vec![v1::MetricMetadata {
            r#type: 1,
            metric_family_name: "up".into(),
            help: "h".into(),
            unit: "".into(),
        }],
    }
    .encode_to_vec();
    let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
    let (status, _, _) = send(&h.app, V1_HEADERS, body).await;
    assert_eq!(status, 204);
}
