//! HA deduplication and the rate limit split, through the HTTP handler.

use super::*;
use prost::Message;
use strata_distributor::{HaTracker, HaTrackerConfig};
use strata_meta::{KvStore, MemoryKv};
use strata_model::time::now_ms;
use strata_proto::prometheus as v1;

const V1_HEADERS: &[(&str, &str)] = &[
    ("content-type", "application/x-protobuf"),
    ("content-encoding", "snappy"),
];

fn body(replica: &str, n: usize) -> Vec<u8> {
    let raw = v1::WriteRequest {
        timeseries: (0..n)
            .map(|i| v1::TimeSeries {
                labels: [
                    ("__name__", "up"),
                    ("__replica__", replica),
                    ("cluster", "prom-ha"),
                    ("i", &i.to_string()),
                ]
                .iter()
                .map(|(n, v)| v1::Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
                samples: vec![v1::Sample {
                    value: 1.0,
                    timestamp: now_ms(),
                }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    }
    .encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap()
}

#[tokio::test]
async fn the_elected_replica_is_stored_without_its_label_and_the_other_gets_202() {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let ha = HaTracker::new(
        HaTrackerConfig {
            enabled: true,
            ..Default::default()
        },
        kv.clone(),
    );
    let h = harness_with(
        Behaviour::Store,
        TenancyConfig::default(),
        Limits::default(),
        ClusterHooks {
            ha_tracker: Some(ha),
            ..Default::default()
        },
    );
    let (status, _, text) = send(&h.app, V1_HEADERS, body("a", 2)).await;
    assert_eq!(status, 204, "{text}");
    let (status, _, text) = send(&h.app, V1_HEADERS, body("b", 2)).await;
    assert_eq!(status, 202, "{text}");
    assert!(
        text.contains("replicas did not match") && text.contains("replica=b, elected=a"),
        "{text}"
    );
    let pushes = h.recorder.pushes.lock().clone();
    assert_eq!(
        pushes.len(),
        1,
        "only the elected replica reached the ingester"
    );
    for (name, _) in &pushes[0].1 {
        assert!(
            !name.contains("__replica__"),
            "replica label removed: {name}"
        );
        assert!(
            name.contains("cluster=prom-ha"),
            "cluster label kept: {name}"
        );
    }
    // The election is in the KV, where other distributors read it.
    let e = kv
        .get("ha-tracker/anonymous/prom-ha")
        .await
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&e.value).contains("\"replica\":\"a\""));
}

#[tokio::test]
async fn each_distributor_admits_its_share_of_the_rate() {
    // Mimir's global strategy: the rate is split between the healthy distributors, the burst
    // is not (it must still fit one request).
    let limits = Limits {
        ingestion_rate: 10.0,
        ingestion_burst_size: 5,
        ..Limits::default()
    };
    let shared = harness_with(
        Behaviour::Store,
        TenancyConfig::default(),
        limits.clone(),
        ClusterHooks {
            healthy_distributors: Some(Arc::new(|| 2)),
            ..Default::default()
        },
    );
    let single = harness(Behaviour::Store, TenancyConfig::default(), limits);
    let mk = |n| {
        let raw = v1::WriteRequest {
            timeseries: (0..n)
                .map(|i: usize| v1::TimeSeries {
                    labels: vec![
                        v1::Label {
                            name: "__name__".into(),
                            value: "up".into(),
                        },
                        v1::Label {
                            name: "i".into(),
                            value: i.to_string(),
                        },
                    ],
                    samples: vec![v1::Sample {
                        value: 1.0,
                        timestamp: now_ms(),
                    }],
                    ..Default::default()
                })
                .collect(),
            metadata: vec![],
        }
        .encode_to_vec();
        snap::raw::Encoder::new().compress_vec(&raw).unwrap()
    };
    for (h, rate) in [
        (&single, "(10 samples/s, burst 5)"),
        (
            &shared,
            "10 samples/s shared by 2 distributors: 5 samples/s here",
        ),
    ] {
        assert_eq!(send(&h.app, V1_HEADERS, mk(5)).await.0, 204);
        let (status, _, text) = send(&h.app, V1_HEADERS, mk(5)).await;
        assert_eq!(status, 429, "{text}");
        assert!(text.contains(rate), "the limit applied is {rate}: {text}");
    }
}
