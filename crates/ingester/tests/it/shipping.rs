//! Block cutting, upload, retry and head truncation.

use super::*;
use std::time::Duration;
use strata_ingester::config::BlocksConfig;
use strata_storage::block::BlockReader;
use strata_storage::bucket::{BackendKind, Bucket, BucketConfig, FilesystemConfig, S3Config};

const MIN: i64 = 60_000;

fn blocks_cfg() -> IngesterConfig {
    IngesterConfig {
        blocks: BlocksConfig {
            block_range: Duration::from_secs(60),
            grace_period: Duration::from_secs(30),
            upload_min_backoff: Duration::from_millis(1),
            upload_max_backoff: Duration::from_millis(1),
            ..BlocksConfig::default()
        },
        ..IngesterConfig::default()
    }
}

fn open_cfg(dir: &Path, cfg: IngesterConfig) -> Arc<Ingester> {
    let overrides = Arc::new(RwLock::new(Overrides::default()));
    Ingester::open(cfg, dir, overrides, &mut Registry::default()).expect("open ingester")
}

fn fs_bucket(dir: &Path) -> Bucket {
    Bucket::from_config(&BucketConfig {
        backend: BackendKind::Filesystem,
        filesystem: FilesystemConfig {
            directory: dir.to_owned(),
        },
        ..BucketConfig::default()
    })
    .unwrap()
}

/// A bucket whose every request fails fast (nothing listens on port 1).
fn dead_bucket() -> Bucket {
    Bucket::from_config(&BucketConfig {
        backend: BackendKind::S3,
        s3: S3Config {
            bucket_name: "b".into(),
            endpoint: "http://127.0.0.1:1".into(),
            access_key_id: "x".into(),
            secret_access_key: "y".into(),
            force_path_style: true,
            allow_http: true,
            ..S3Config::default()
        },
        max_retries: 0,
        request_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(5),
        ..BucketConfig::default()
    })
    .unwrap()
}

/// Block ids of the tenant that are complete in the bucket.
async fn uploaded_blocks(bucket: &Bucket) -> Vec<ulid::Ulid> {
    let mut v: Vec<ulid::Ulid> = bucket
        .list("t1/")
        .await
        .unwrap()
        .into_iter()
        .filter(|o| o.path.ends_with("/meta.json"))
        .map(|o| o.path.split('/').nth(1).unwrap().parse().unwrap())
        .collect();
    v.sort();
    v
}

/// Every sample of metric `m` read back from the bucket's blocks alone.
async fn samples_in_bucket(bucket: &Bucket) -> usize {
    let mut n = 0;
    for u in uploaded_blocks(bucket).await {
        let r = BlockReader::open(bucket, &tenant(), u).await.unwrap();
        n += r
            .select(&[Matcher::equal("__name__", "m")], i64::MIN, i64::MAX)
            .await
            .unwrap()
            .iter()
            .map(|s| s.samples.len())
            .sum::<usize>();
    }
    n
}

#[tokio::test]
async fn cut_upload_and_truncate_keep_every_sample_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let bucket_dir = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(bucket_dir.path());
    let ing = open_cfg(dir.path(), blocks_cfg());
    ing.enable_shipping(bucket.clone(), dir.path())
        .await
        .unwrap();
    // 10 minutes of 15 s samples for 20 series, starting on a minute boundary.
    let base = 100 * MIN;
    for r in 0..40 {
        push_round(&ing, "m", 20, base + r * 15_000).await;
    }
    let before = all_samples(&ing, "m").await;
    assert_eq!(before.iter().map(|s| s.1.len()).sum::<usize>(), 800);

    // The newest sample is at 9:45: ranges ending by 9:15 (30 s grace) are cut, by sample
    // time; the wall clock (here: the same epoch) does not matter while the tenant is active.
    let now = base + 12 * MIN;
    let report = ing.ship(now).await.unwrap();
    assert_eq!(report.blocks_cut, 9, "{report:?}");
    assert_eq!(report.blocks_uploaded, 9, "{report:?}");
    assert_eq!(report.upload_failures, 0);
    // Each series' one open chunk straddles the cut: it is kept whole until it ends.
    assert_eq!(report.chunks_truncated, 0, "{report:?}");
    assert_eq!(uploaded_blocks(&bucket).await.len(), 9);
    assert_eq!(samples_in_bucket(&bucket).await, 720);

    // Head truncated, answers identical (served from the local blocks now).
    assert_eq!(all_samples(&ing, "m").await, before);

    // Samples for a shipped range are refused with a reason that says why.
    let o = push_round(&ing, "m", 20, base + 30_000).await;
    assert_eq!(o.samples_written, 0);
    assert_eq!(o.first_rejection.unwrap().reason, "sample-out-of-bounds");
    // A second cycle cuts nothing new and uploads nothing twice.
    let report = ing.ship(now).await.unwrap();
    assert_eq!((report.blocks_cut, report.blocks_uploaded), (0, 0));

    // New samples after the cut boundary are fine.
    let o = push_round(&ing, "m", 20, base + 10 * MIN).await;
    assert_eq!(o.samples_written, 20);

    // Idle for longer than idle_timeout (by the wall clock): the rest is cut too, and local
    // blocks past retention are deleted; the bucket has everything.
    let later = strata_model::time::now_ms() + 2 * 3600 * 1000;
    let report = ing.ship(later).await.unwrap();
    assert_eq!(report.blocks_cut, 2, "{report:?}");
    assert_eq!(report.blocks_expired, 11, "{report:?}");
    assert_eq!(report.series_truncated, 20, "{report:?}");
    assert_eq!(samples_in_bucket(&bucket).await, 820);
    assert!(
        all_samples(&ing, "m").await.is_empty(),
        "head and local blocks emptied"
    );
}

#[tokio::test]
async fn failed_uploads_keep_data_and_resume_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let bucket_dir = tempfile::tempdir().unwrap();
    let base = 100 * MIN;
    let now = base + 6 * MIN;
    {
        let ing = open_cfg(dir.path(), blocks_cfg());
        ing.enable_shipping(dead_bucket(), dir.path())
            .await
            .unwrap();
        for r in 0..16 {
            push_round(&ing, "m", 5, base + r * 15_000).await;
        }
        let report = ing.ship(now).await.unwrap();
        assert_eq!(report.blocks_cut, 3);
        assert_eq!(report.blocks_uploaded, 0);
        assert_eq!(report.upload_failures, 3);
        assert_eq!(
            report.chunks_truncated, 0,
            "nothing leaves the head before upload"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // past the 1 ms backoff
        let report = ing.ship(now).await.unwrap();
        assert_eq!(report.upload_failures, 3, "retried on the next cycle");
        assert_eq!(
            all_samples(&ing, "m")
                .await
                .iter()
                .map(|s| s.1.len())
                .sum::<usize>(),
            80
        );
        // Crash: no shutdown, no final checkpoint.
    }
    let bucket = fs_bucket(bucket_dir.path());
    let ing = open_cfg(dir.path(), blocks_cfg());
    ing.enable_shipping(bucket.clone(), dir.path())
        .await
        .unwrap();
    // The cut ranges stay closed across the restart.
    let o = push_round(&ing, "m", 5, base + 15_000 * 3).await;
    assert_eq!(o.first_rejection.unwrap().reason, "sample-out-of-bounds");
    let report = ing.ship(now).await.unwrap();
    assert_eq!(report.blocks_cut, 0, "{report:?}: no range cut twice");
    assert_eq!(report.blocks_uploaded, 3, "{report:?}");
    assert_eq!(samples_in_bucket(&bucket).await, 60);
    assert_eq!(
        all_samples(&ing, "m")
            .await
            .iter()
            .map(|s| s.1.len())
            .sum::<usize>(),
        80
    );
}

#[tokio::test]
async fn truncated_head_survives_restart_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let bucket_dir = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(bucket_dir.path());
    let base = 100 * MIN;
    {
        let ing = open_cfg(dir.path(), blocks_cfg());
        ing.enable_shipping(bucket.clone(), dir.path())
            .await
            .unwrap();
        for r in 0..24 {
            push_round(&ing, "m", 7, base + r * 15_000).await;
        }
        ing.ship(base + 5 * MIN).await.unwrap();
        for r in 24..32 {
            push_round(&ing, "m", 7, base + r * 15_000).await;
        }
    }
    let ing = open_cfg(dir.path(), blocks_cfg());
    ing.enable_shipping(bucket.clone(), dir.path())
        .await
        .unwrap();
    let got = all_samples(&ing, "m").await;
    assert_eq!(got.len(), 7);
    for (id, s) in &got {
        assert_eq!(s.len(), 32, "series {id}");
        assert!(
            s.windows(2).all(|w| w[0].t < w[1].t),
            "sorted, no duplicates"
        );
    }
    let report = ing.ship(base + 10 * MIN).await.unwrap();
    assert_eq!(
        report.blocks_cut, 2,
        "{report:?}: newest sample 7:45, ranges up to 7:00"
    );
    assert_eq!(samples_in_bucket(&bucket).await, 7 * 28);
}

#[tokio::test]
async fn flush_ships_everything_including_the_current_range() {
    let dir = tempfile::tempdir().unwrap();
    let bucket_dir = tempfile::tempdir().unwrap();
    let bucket = fs_bucket(bucket_dir.path());
    let ing = open_cfg(dir.path(), blocks_cfg());
    ing.enable_shipping(bucket.clone(), dir.path())
        .await
        .unwrap();
    // 2.5 minutes of samples: two complete 1-minute ranges and half of the third, which a
    // normal cycle would keep in the head for its grace period.
    let base = 100 * MIN;
    for r in 0..10 {
        push_round(&ing, "m", 4, base + r * 15_000).await;
    }
    let report = ing.flush(Duration::from_secs(30)).await.unwrap();
    assert_eq!(report.blocks_cut, 3, "{report:?}");
    assert_eq!(report.blocks_uploaded, 3, "{report:?}");
    assert_eq!(samples_in_bucket(&bucket).await, 40);
    // Nothing is left to ship, and later samples are still accepted after the flushed end.
    assert_eq!(
        ing.flush(Duration::from_secs(1)).await.unwrap().blocks_cut,
        0
    );
    let o = push_round(&ing, "m", 4, base + 10 * 15_000).await;
    assert_eq!(o.samples_written, 4);
    let o = push_round(&ing, "m", 4, base + 9 * 15_000).await;
    assert_eq!(o.first_rejection.unwrap().reason, "sample-out-of-bounds");
}

#[tokio::test]
async fn flush_reports_uploads_still_pending_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let ing = open_cfg(dir.path(), blocks_cfg());
    ing.enable_shipping(dead_bucket(), dir.path())
        .await
        .unwrap();
    push_round(&ing, "m", 2, 100 * MIN).await;
    let e = ing.flush(Duration::from_millis(200)).await.unwrap_err();
    assert!(e.to_string().contains("1 blocks still wait"), "{e}");
    // The data is still served from the local block.
    assert_eq!(all_samples(&ing, "m").await.len(), 2);
}
