//! Long-term storage end to end with the real binary: the ingester cuts one-minute blocks,
//! uploads them, drops them from its head and local disk, and queries answer exactly as before
//! (now from the bucket through the store-gateway), also after a SIGKILL and restart. Run on a
//! local-filesystem bucket and on S3 (an s3s-fs server on 127.0.0.1 started by the test).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use strata_tests::{api_time, now_ms, Strata, TestDir};
use tokio::net::TcpListener;

const SERIES: usize = 30;
const STEP: i64 = 15_000;
const METRIC: &str = "e2e_long_term";

fn round_request(t: i64, round: usize) -> WriteRequest {
    WriteRequest {
        timeseries: (0..SERIES)
            .map(|s| TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: METRIC.into(),
                    },
                    Label {
                        name: "series".into(),
                        value: format!("{s:03}"),
                    },
                ],
                samples: vec![Sample {
                    value: (s * 1000 + round) as f64 + 0.25,
                    timestamp: t,
                }],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

async fn query_range(s: &Strata, q: &str, start: i64, end: i64) -> serde_json::Value {
    let r = s
        .client
        .get(s.url("/api/v1/query_range"))
        .query(&[
            ("query", q),
            ("start", &api_time(start)),
            ("end", &api_time(end)),
            ("step", "15s"),
        ])
        .send()
        .await
        .expect("query_range");
    let status = r.status();
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        status.is_success(),
        "{q}: {status} {body}\n{}",
        s.log_tail()
    );
    body["data"]["result"].clone()
}

/// Files named `meta.json` under `dir`, recursively.
fn metas_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(metas_under(&p));
        } else if p.file_name().is_some_and(|n| n == "meta.json") {
            out.push(p);
        }
    }
    out
}

const QUERIES: &[&str] = &[
    "e2e_long_term{series=\"007\"}",
    "sum(e2e_long_term)",
    "count_over_time(e2e_long_term[2m])",
    "rate(e2e_long_term[1m])",
];

/// Pushes 6 minutes of data ending now, records the answers, waits until the blocks are in
/// the bucket and gone from the ingester, and checks the answers again, then after SIGKILL.
async fn scenario(bucket_yaml: &str, bucket_files: &Path) {
    crate::require_environment();
    let cfg = format!(
        "ingester:\n  blocks:\n    block_range: 1m\n    grace_period: 10s\n    ship_interval: 300ms\n    retention_period: 1s\nstore_gateway:\n  sync_interval: 300ms\n{bucket_yaml}"
    );
    let strata = Strata::start_with_config(TestDir::new(), Some(&cfg)).await;
    let end = now_ms() / STEP * STEP;
    let start = end - 6 * 60_000;
    let rounds = ((end - start) / STEP) as usize + 1;
    for r in 0..rounds {
        strata
            .push_ok(&round_request(start + r as i64 * STEP, r))
            .await;
    }
    let mut before = Vec::new();
    for q in QUERIES {
        let res = query_range(&strata, q, start, end).await;
        assert!(
            !res.as_array().unwrap().is_empty(),
            "{q}: empty before flush"
        );
        before.push(res);
    }
    // The raw series is exactly what was pushed.
    let raw = before[0][0]["values"].as_array().unwrap();
    assert_eq!(raw.len(), rounds);
    assert_eq!(raw[3][1], serde_json::json!("7003.25"));

    // Ranges ending ≥ 10 s before the newest sample are cut: about 5 blocks.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let uploaded = strata.metric("strata_ingester_blocks_uploaded_total").await;
        if uploaded >= 5.0 && metas_under(bucket_files).len() >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "blocks not uploaded in time ({uploaded} uploaded)\n{}",
            strata.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A few more cycles: the local copies expire (1 s retention), the store-gateway syncs.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (q, want) in QUERIES.iter().zip(&before) {
        let got = query_range(&strata, q, start, end).await;
        assert_eq!(
            &got, want,
            "{q}: answer changed after the blocks were shipped"
        );
    }
    assert!(
        strata
            .metric("strata_store_gateway_block_loads_total")
            .await
            >= 5.0,
        "old data must now come from the bucket\n{}",
        strata.log_tail()
    );

    // SIGKILL and restart on the same directory: same answers.
    let dir = strata.kill();
    let strata = Strata::start_with_config(dir, Some(&cfg)).await;
    for (q, want) in QUERIES.iter().zip(&before) {
        let got = query_range(&strata, q, start, end).await;
        assert_eq!(&got, want, "{q}: answer changed after restart");
    }
}

#[tokio::test]
async fn blocks_on_the_local_filesystem_answer_like_the_head() {
    let bucket = tempfile::tempdir().unwrap();
    let yaml = format!(
        "bucket:\n  backend: filesystem\n  filesystem:\n    directory: {}\n",
        bucket.path().display()
    );
    scenario(&yaml, bucket.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_on_s3_answer_like_the_head() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("strata")).unwrap();
    let fs = s3s_fs::FileSystem::new(root.path()).unwrap();
    let mut b = s3s::service::S3ServiceBuilder::new(fs);
    b.set_auth(s3s::auth::SimpleAuth::from_single("e2ekey", "e2esecret"));
    let service = b.build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            let conn = http
                .serve_connection(TokioIo::new(sock), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    });
    let yaml = format!(
        "bucket:\n  backend: s3\n  s3:\n    bucket_name: strata\n    endpoint: http://{addr}\n    access_key_id: e2ekey\n    secret_access_key: e2esecret\n    force_path_style: true\n    allow_http: true\n"
    );
    scenario(&yaml, &root.path().join("strata")).await;
    server.abort();
}

/// SIGKILL at arbitrary moments while blocks are being cut and uploaded: after the last
/// restart every pushed sample is there exactly once, and the bucket holds each range once.
#[tokio::test]
async fn sigkill_while_shipping_loses_and_duplicates_nothing() {
    crate::require_environment();
    let bucket = tempfile::tempdir().unwrap();
    let cfg = format!(
        "ingester:\n  blocks:\n    block_range: 1m\n    grace_period: 5s\n    ship_interval: 100ms\n    retention_period: 1s\nstore_gateway:\n  sync_interval: 200ms\nbucket:\n  backend: filesystem\n  filesystem:\n    directory: {}\n",
        bucket.path().display()
    );
    let mut strata = Strata::start_with_config(TestDir::new(), Some(&cfg)).await;
    let end = now_ms() / STEP * STEP;
    let start = end - 12 * 60_000;
    let rounds = ((end - start) / STEP) as usize + 1;
    for r in 0..rounds {
        strata
            .push_ok(&round_request(start + r as i64 * STEP, r))
            .await;
    }
    // Kill at different points of the cut/upload/truncate cycle.
    for (i, delay_ms) in [150u64, 420, 80, 700, 260, 1100].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let dir = strata.kill();
        strata = Strata::start_with_config(dir, Some(&cfg)).await;
        // Pushes between kills keep the head busy (and retries of acknowledged data are
        // refused or deduplicated, never doubled).
        let r = rounds - 1 - i;
        let _ = strata
            .push(&round_request(start + r as i64 * STEP, r))
            .await;
    }
    // Let the last instance finish shipping.
    let deadline = Instant::now() + Duration::from_secs(60);
    while strata.metric("strata_ingester_blocks_pending_upload").await > 0.0
        || metas_under(bucket.path()).len() < 11
    {
        assert!(
            Instant::now() < deadline,
            "shipping did not finish\n{}",
            strata.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let res = query_range(&strata, "count_over_time(e2e_long_term[15s])", start, end).await;
    let series = res.as_array().unwrap();
    assert_eq!(series.len(), SERIES);
    for s in series {
        let values = s["values"].as_array().unwrap();
        assert_eq!(values.len(), rounds, "{s}");
        assert!(
            values.iter().all(|v| v[1] == serde_json::json!("1")),
            "a sample missing or doubled: {s}"
        );
    }
    // Each one-minute range was uploaded once: no two blocks share a range.
    let mut ranges: Vec<(i64, i64)> = metas_under(bucket.path())
        .iter()
        .map(|p| {
            let m: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            (
                m["minTime"].as_i64().unwrap(),
                m["maxTime"].as_i64().unwrap(),
            )
        })
        .collect();
    ranges.sort();
    let n = ranges.len();
    ranges.dedup();
    assert_eq!(ranges.len(), n, "a range was uploaded twice: {ranges:?}");
}
