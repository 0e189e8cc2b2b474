//! The periodic loop, metrics, and the lock's heartbeat.

use crate::common::*;
use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use strata_compactor::lock::{lock_path, LockFile, TenantLock};
use strata_compactor::{Compactor, CompactorConfig};
use strata_model::Overrides;
use strata_storage::block::WriterOptions;
use strata_storage::index::BucketIndex;

async fn seed(bucket: &strata_storage::bucket::Bucket, t: &strata_model::TenantId) {
    for k in 0..7 {
        let d = synth(BASE + k * 2 * H, 2 * H, k as u64);
        write_block(
            bucket,
            t,
            BASE + k * 2 * H,
            BASE + (k + 1) * 2 * H - 1,
            &d,
            WriterOptions::default(),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_a_cycle_did() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let t = tenant("m");
    seed(&bucket, &t).await;
    let mut reg = Registry::default();
    let c = Compactor::new(
        CompactorConfig::default(),
        bucket.clone(),
        Arc::new(RwLock::new(Overrides::default())),
        &mut reg,
    )
    .unwrap();
    c.run_once(BASE + 15 * H).await.unwrap();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
    for line in [
        "strata_compactor_runs_total 1",
        "strata_compactor_run_failures_total 0",
        r#"strata_compactor_compactions_total{tenant="m"} 1"#,
        r#"strata_compactor_blocks_compacted_total{tenant="m"} 6"#,
        r#"strata_compactor_blocks_marked_for_deletion_total{tenant="m",reason="compacted"} 6"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    let last = text
        .lines()
        .find_map(|l| l.strip_prefix("strata_compactor_last_successful_run_timestamp_seconds "))
        .expect("last success gauge");
    assert!(last.parse::<f64>().unwrap() > 1.7e9, "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_compacts_periodically_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let t = tenant("loop");
    seed(&bucket, &t).await;
    let cfg = CompactorConfig {
        compaction_interval: Duration::from_secs(1),
        ..CompactorConfig::default()
    };
    let c = compactor(bucket.clone(), cfg, Overrides::default());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(c.run(rx));
    // The loop uses the wall clock, long after the synthetic data: the 12h range is complete.
    let done = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(Some(idx)) = BucketIndex::read(&bucket, &t).await {
                if idx.blocks.iter().any(|b| b.compaction_level == 2) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "no compaction within 30 s");
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("run stops on shutdown")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_is_exclusive_renewed_and_lost_when_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let t = tenant("l");
    let ttl = Duration::from_secs(3);
    let a = TenantLock::acquire(&bucket, &t, "a", ttl)
        .await
        .unwrap()
        .unwrap();
    let held = TenantLock::acquire(&bucket, &t, "b", ttl)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(held.owner, "a");
    let read = || async {
        serde_json::from_slice::<LockFile>(&bucket.get(&lock_path(&t)).await.unwrap()).unwrap()
    };
    let first = read().await;
    // The heartbeat runs every second for a 3 s TTL.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let renewed = read().await;
    assert_eq!(renewed.token, first.token);
    assert!(
        renewed.expires_at > first.expires_at,
        "{first:?} {renewed:?}"
    );
    assert!(!a.lost());
    // Someone else overwrites it (as a takeover racing a late heartbeat would).
    let other = LockFile {
        owner: "c".into(),
        token: ulid::Ulid::generate(),
        expires_at: i64::MAX,
    };
    bucket
        .put(&lock_path(&t), serde_json::to_vec(&other).unwrap().into())
        .await
        .unwrap();
    // The next heartbeat notices; poll with slack for a loaded machine.
    for _ in 0..50 {
        if a.lost() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(a.lost());
    // Releasing a lost lock leaves the new holder's lock alone.
    a.release().await.unwrap();
    assert_eq!(read().await, other);
}
