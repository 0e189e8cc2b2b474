//! Malformed or invalid remote-write requests are refused with the right 4xx, and the valid
//! series of a partially invalid request are still stored.

use std::collections::BTreeSet;

use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use strata_tests::{encode_write_request, fmt_labels, now_ms, snappy_compress, LabelSet, Strata};

use crate::require_environment;

const PROTOBUF_HEADERS: [(&str, &str); 3] = [
    ("Content-Encoding", "snappy"),
    ("Content-Type", "application/x-protobuf"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

const INVALID_NAME: &str = "1_invalid-metric.name";

fn series(name: &str, extra: &[(&str, &str)], ts: i64, value: f64) -> TimeSeries {
    let mut labels = vec![Label {
        name: "__name__".into(),
        value: name.into(),
    }];
    labels.extend(extra.iter().map(|(n, v)| Label {
        name: (*n).into(),
        value: (*v).into(),
    }));
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels,
        samples: vec![Sample {
            value,
            timestamp: ts,
        }],
        ..Default::default()
    }
}

fn label_set(name: &str, extra: &[(&str, &str)]) -> LabelSet {
    let mut ls = LabelSet::new();
    ls.insert("__name__".into(), name.into());
    for (n, v) in extra {
        ls.insert((*n).into(), (*v).into());
    }
    ls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_4xx() {
    require_environment();
    let strata = Strata::start().await;
    let ts = now_ms();
    let tag = [("test", "bad_requests")];

    // 1a. A body that is not snappy block format at all.
    let r = strata
        .push_raw(
            b"\xff\xfe this is definitely not snappy \x00\x01".to_vec(),
            &PROTOBUF_HEADERS,
        )
        .await;
    assert_eq!(
        r.status.as_u16(),
        400,
        "POST /api/v1/push with a non-snappy body: expected 400, got {} with body {:?}",
        r.status,
        r.body
    );

    // 1b. Valid snappy around bytes that are not a WriteRequest: field 1 (timeseries) declares
    // 16 bytes of payload but only 2 follow.
    let r = strata
        .push_raw(
            snappy_compress(&[0x0a, 0x10, 0x0a, 0x00]),
            &PROTOBUF_HEADERS,
        )
        .await;
    assert_eq!(
        r.status.as_u16(),
        400,
        "POST /api/v1/push with snappy(truncated protobuf): expected 400, got {} with body {:?}",
        r.status,
        r.body
    );

    // 2. A partially bad request: one series with an invalid metric name between two valid ones.
    let good_before = series("e2e_partial_good_before", &tag, ts, 1.5);
    let bad = series(INVALID_NAME, &tag, ts, 2.5);
    let good_after = series("e2e_partial_good_after", &tag, ts, 3.5);
    let req = WriteRequest {
        timeseries: vec![good_before, bad, good_after],
        ..Default::default()
    };
    let r = strata
        .push_raw(encode_write_request(&req), &PROTOBUF_HEADERS)
        .await;
    assert_eq!(
        r.status.as_u16(),
        400,
        "push with metric name {INVALID_NAME:?}: expected 400, got {} with body {:?}",
        r.status,
        r.body
    );
    assert!(
        r.body.contains(INVALID_NAME),
        "the 400 for an invalid metric name must name the series ({INVALID_NAME:?}); body was {:?}",
        r.body
    );

    // 3. A valid body with the wrong Content-Type.
    let req = WriteRequest {
        timeseries: vec![series("e2e_wrong_content_type", &tag, ts, 4.5)],
        ..Default::default()
    };
    let r = strata
        .push_raw(
            encode_write_request(&req),
            &[
                ("Content-Encoding", "snappy"),
                ("Content-Type", "application/json"),
            ],
        )
        .await;
    assert_eq!(
        r.status.as_u16(),
        415,
        "push with Content-Type application/json: expected 415, got {} with body {:?}",
        r.status,
        r.body
    );

    // Exactly the two valid series of the partially bad request were stored: not the invalid
    // one, and nothing from the malformed requests or the one with the wrong Content-Type.
    let got: BTreeSet<LabelSet> = strata
        .series(&[r#"{test="bad_requests"}"#], ts - 60_000, ts + 60_000)
        .await
        .into_iter()
        .collect();
    let want: BTreeSet<LabelSet> = [
        label_set("e2e_partial_good_before", &tag),
        label_set("e2e_partial_good_after", &tag),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        got,
        want,
        "after the partially bad request, /api/v1/series?match[]={{test=\"bad_requests\"}} returned {:?}; expected exactly {:?}",
        got.iter().map(fmt_labels).collect::<Vec<_>>(),
        want.iter().map(fmt_labels).collect::<Vec<_>>()
    );
}
