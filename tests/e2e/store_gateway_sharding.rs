//! Three store-gateway processes sharding a bucket (replication factor 2, tokens from files so
//! that the test knows every block's owners), a querier and a meta voter. A store-gateway
//! SIGKILLed while queries run costs no query anything: each answer stays exactly the one
//! before the kill (the blocks it held are read from their other owner). With both owners of
//! some blocks dead, queries fail with an error naming exactly those blocks, never a partial
//! answer presented as complete. No timing is asserted.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use strata_model::{Labels, Sample, TenantId};
use strata_ring::{InstanceDesc, InstanceState, Ring, RingOptions};
use strata_storage::block::{BlockWriter, WriterOptions};
use strata_storage::bucket::{BackendKind, Bucket, BucketConfig, FilesystemConfig};
use strata_tests::{api_time, free_port, now_ms, require_strata, truncate, Strata, TestDir};
use ulid::Ulid;

const GATEWAYS: usize = 3;
const TOKENS: u32 = 16;
const BLOCKS: i64 = 12;
const SERIES: i64 = 20;
const H: i64 = 3_600_000;
const MIN: i64 = 60_000;
const STEP_S: i64 = 300;

/// Dead store-gateways stay in the ring (`auto_forget_unhealthy_periods: 0`): the blocks they
/// own must stay theirs however long the test runs.
fn config(name: &str, grpc: u16, meta: u16, bucket: &Path, voter: bool) -> String {
    let boot = if voter { "  bootstrap: true\n" } else { "" };
    format!(
        "server:\n  grpc_listen_address: '127.0.0.1:{grpc}'\nmeta:\n  peers: [{{id: 1, address: '127.0.0.1:{meta}'}}]\n{boot}bucket:\n  filesystem: {{directory: '{bucket}'}}\ningester:\n  ring: {{instance_id: ingester-1, replication_factor: 1, heartbeat_period: 1s, heartbeat_timeout: 10s}}\nstore_gateway:\n  ring: {{instance_id: {name}, replication_factor: 2, num_tokens: {TOKENS}, heartbeat_period: 1s, heartbeat_timeout: 4s, auto_forget_unhealthy_periods: 0, tokens_file: tokens.json}}\n",
        bucket = bucket.display(),
    )
}

/// Tokens of store-gateway `i`: spread evenly, interleaved with the others'.
fn tokens(i: usize) -> Vec<u32> {
    (0..TOKENS)
        .map(|k| k * (u32::MAX / TOKENS) + i as u32 * (u32::MAX / TOKENS / GATEWAYS as u32))
        .collect()
}

/// The ring the processes will form, to know each block's owners.
fn ring() -> Ring {
    let instances = (0..GATEWAYS).map(|i| InstanceDesc {
        id: format!("sg-{i}"),
        addr: String::new(),
        http_addr: String::new(),
        zone: String::new(),
        state: InstanceState::Active,
        tokens: tokens(i),
        heartbeat_ms: 0,
        registered_ms: 0,
    });
    Ring::new(
        instances,
        &RingOptions {
            replication_factor: 2,
            ..RingOptions::default()
        },
    )
}

fn value(k: i64, t: i64, base: i64) -> f64 {
    (k * 100_000 + (t - base) / MIN) as f64
}

/// `BLOCKS` two-hour blocks of `SERIES` series `sharded{k="…"}`, a sample a minute, starting
/// at `base` (three days ago: older than the querier asks ingesters for).
async fn write_blocks(bucket_dir: &Path, base: i64) -> Vec<Ulid> {
    let bucket = Bucket::from_config(&BucketConfig {
        backend: BackendKind::Filesystem,
        filesystem: FilesystemConfig {
            directory: bucket_dir.to_owned(),
        },
        ..BucketConfig::default()
    })
    .unwrap();
    let tenant = TenantId::new("anonymous").unwrap();
    let mut ulids = Vec::new();
    for b in 0..BLOCKS {
        let (lo, hi) = (base + b * 2 * H, base + (b + 1) * 2 * H - 1);
        let mut w = BlockWriter::new(tenant.clone(), lo, hi, WriterOptions::default()).unwrap();
        for k in 0..SERIES {
            let samples: Vec<Sample> = (lo..=hi)
                .step_by(MIN as usize)
                .map(|t| Sample::new(t, value(k, t, base)))
                .collect();
            let labels = Labels::from_pairs([
                ("__name__", "sharded".to_string()),
                ("k", format!("{k:02}")),
            ]);
            w.add_series(labels, samples).unwrap();
        }
        ulids.push(w.ulid());
        w.finish().unwrap().upload(&bucket).await.unwrap();
    }
    ulids
}

/// Status and body of a range query over every block.
async fn query(q: &Strata, base: i64) -> (u16, Value) {
    let r = q
        .client
        .get(q.url("/prometheus/api/v1/query_range"))
        .query(&[
            ("query", "sharded"),
            ("start", &api_time(base + 10 * MIN)),
            ("end", &api_time(base + BLOCKS * 2 * H - MIN)),
            ("step", &STEP_S.to_string()),
        ])
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("query_range");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn label_values(q: &Strata, base: i64) -> (u16, Value) {
    let r = q
        .client
        .get(q.url("/prometheus/api/v1/label/k/values"))
        .query(&[
            ("start", &api_time(base)),
            ("end", &api_time(base + BLOCKS * 2 * H - 1)),
        ])
        .send()
        .await
        .expect("label values");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Checks every point of a complete answer against the written data.
fn check_complete(body: &Value, base: i64) {
    let series = body["data"]["result"].as_array().expect("result");
    assert_eq!(series.len(), SERIES as usize, "{body}");
    for s in series {
        let k: i64 = s["metric"]["k"].as_str().unwrap().parse().unwrap();
        let points = s["values"].as_array().unwrap();
        let first = base + 10 * MIN;
        let last = base + BLOCKS * 2 * H - MIN;
        assert_eq!(points.len() as i64, (last - first) / (STEP_S * 1000) + 1);
        for p in points {
            let t = (p[0].as_f64().unwrap() * 1000.0) as i64;
            let v: f64 = p[1].as_str().unwrap().parse().unwrap();
            assert_eq!(v, value(k, t, base), "k={k} t={t}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_store_gateways_cost_no_block_and_missing_owners_fail_naming_the_blocks() {
    require_strata();
    let shared = TestDir::new();
    let bucket = shared.root().join("bucket");
    let base = (now_ms() - 3 * 24 * H) / (2 * H) * (2 * H);
    let blocks = write_blocks(&bucket, base).await;

    let meta_grpc = free_port();
    let start = |name: String, target: &'static str, dir: TestDir, grpc: u16| {
        let cfg = config(&name, grpc, meta_grpc, &bucket, target == "meta");
        async move { Strata::start_target(dir, &name, target, &cfg).await }
    };
    let _meta = start("meta".into(), "meta", TestDir::new(), meta_grpc).await;
    let mut gateways = Vec::new();
    for i in 0..GATEWAYS {
        let dir = TestDir::new();
        std::fs::create_dir_all(dir.data_dir()).unwrap();
        std::fs::write(
            dir.data_dir().join("tokens.json"),
            serde_json::json!({ "tokens": tokens(i) }).to_string(),
        )
        .unwrap();
        gateways.push(Some(
            start(format!("sg-{i}"), "store-gateway", dir, free_port()).await,
        ));
    }
    let querier = start("querier".into(), "querier", TestDir::new(), free_port()).await;

    // The querier sees the three store-gateways once every block is answered; the answer is
    // then the written data, point by point.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let baseline = loop {
        let (status, body) = query(&querier, base).await;
        if status == 200 && body["data"]["result"].as_array().map(Vec::len) == Some(SERIES as usize)
        {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no complete answer: {status} {body}\nquerier: {}",
            querier.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    check_complete(&baseline, base);

    // A query-frontend process in front of the querier (over HTTP) answers the same, split at
    // the midnight in the range (if any), and again from its cache.
    let fe_cfg = format!(
        "query_frontend:\n  downstream_url: 'http://{}'\n",
        querier
            .url("")
            .trim_start_matches("http://")
            .trim_end_matches('/')
    );
    let frontend =
        Strata::start_target(TestDir::new(), "query-frontend", "query-frontend", &fe_cfg).await;
    for round in 0..2 {
        let (status, body) = query(&frontend, base).await;
        assert!(
            status == 200 && body == baseline,
            "query-frontend answer {round} differs: {status} {}",
            truncate(&body.to_string(), 600)
        );
    }
    let days = ((base + BLOCKS * 2 * H - MIN) / (24 * H) - (base + 10 * MIN) / (24 * H) + 1) as f64;
    assert_eq!(
        frontend
            .metric("strata_query_frontend_split_queries_total")
            .await,
        2.0 * days
    );
    assert_eq!(
        frontend
            .metric("strata_query_frontend_results_cache_hits_total")
            .await,
        days
    );
    let ring = ring();
    let owners = |b: &Ulid| -> BTreeSet<String> {
        ring.block_owners(&b.to_string())
            .iter()
            .map(|d| d.id.clone())
            .collect()
    };
    for b in &blocks {
        assert_eq!(owners(b).len(), 2, "block {b}");
    }

    // Queries run back to back; sg-0 is SIGKILLed after the second. Every answer, before the
    // kill, while the ring still shows sg-0 healthy (its heartbeat is 4 s from timing out),
    // and after, is exactly the baseline.
    let mut answered = 0;
    let killed_at = std::time::Instant::now();
    let mut killed = false;
    while !killed || killed_at.elapsed() < Duration::from_secs(8) {
        let (status, body) = query(&querier, base).await;
        assert!(
            status == 200 && body == baseline,
            "answer {answered} (sg-0 killed: {killed}) differs: {status} {}",
            truncate(&body.to_string(), 600)
        );
        answered += 1;
        if answered == 2 {
            gateways[0].take().unwrap().kill();
            killed = true;
        }
    }
    let (status, body) = label_values(&querier, base).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), SERIES as usize);

    // Kill the gateway that, with sg-0, owns the most blocks: those blocks have no owner left.
    let lost_with = |g: &str| -> Vec<Ulid> {
        let pair: BTreeSet<String> = ["sg-0".to_string(), g.to_string()].into();
        let mut v: Vec<Ulid> = blocks
            .iter()
            .filter(|b| owners(b) == pair)
            .copied()
            .collect();
        v.sort();
        v
    };
    let second = if lost_with("sg-1").len() >= lost_with("sg-2").len() {
        1
    } else {
        2
    };
    let lost = lost_with(&format!("sg-{second}"));
    assert!(!lost.is_empty() && lost.len() <= 10, "{lost:?}");
    gateways[second].take().unwrap().kill();
    for _ in 0..2 {
        let (status, body) = query(&querier, base).await;
        assert!(status >= 500, "a partial answer was served: {status}");
        let msg = body["error"].as_str().unwrap_or_default().to_string();
        assert!(
            msg.contains(&format!(
                "{} block(s) of tenant anonymous were read by no store-gateway",
                lost.len()
            )),
            "{msg}"
        );
        for b in &blocks {
            assert_eq!(msg.contains(&b.to_string()), lost.contains(b), "{b}: {msg}");
        }
        let (status, body) = label_values(&querier, base).await;
        assert!(status >= 500, "{status} {body}");
        assert!(body["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&lost[0].to_string()));
        // Again once the ring shows both dead (their heartbeats time out after 4 s).
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}
