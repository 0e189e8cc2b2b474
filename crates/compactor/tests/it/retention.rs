//! Retention per tenant and resolution marks exactly the blocks past it.

use crate::common::*;
use std::collections::HashSet;
use std::time::Duration;
use strata_compactor::{CompactorConfig, MarkReason};
use strata_model::{Labels, Limits, Overrides, Sample};
use strata_storage::block::{WriterOptions, RESOLUTION_1H, RESOLUTION_5M, RESOLUTION_RAW};
use strata_storage::index::read_deletion_mark;

const DAY: i64 = 24 * H;

async fn block(
    bucket: &strata_storage::bucket::Bucket,
    t: &strata_model::TenantId,
    day: i64,
    res: i64,
) -> ulid::Ulid {
    let lo = BASE + day * DAY;
    let data = vec![(
        Labels::from_pairs([("__name__", "m")]),
        vec![Sample::new(lo, 1.0), Sample::new(lo + H, 2.0)],
    )];
    let opts = WriterOptions {
        resolution: res,
        ..WriterOptions::default()
    };
    write_block(bucket, t, lo, lo + 2 * H - 1, &data, opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_marks_exactly_the_blocks_past_it_per_resolution_and_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let (a, b) = (tenant("a"), tenant("b"));
    let now = BASE + 400 * DAY;
    // Ages in days (now is day 400): raw 20 and 5, 5m 40 and 20, 1h 399.
    let raw_old = block(&bucket, &a, 380, RESOLUTION_RAW).await;
    let raw_new = block(&bucket, &a, 395, RESOLUTION_RAW).await;
    let m5_old = block(&bucket, &a, 360, RESOLUTION_5M).await;
    let m5_new = block(&bucket, &a, 380, RESOLUTION_5M).await;
    let h1 = block(&bucket, &a, 1, RESOLUTION_1H).await;
    // Tenant b keeps everything (the defaults).
    let b_old = block(&bucket, &b, 1, RESOLUTION_RAW).await;

    let mut overrides = Overrides::default();
    overrides.tenants.insert(
        "a".into(),
        Limits {
            compactor_blocks_retention_period: Duration::from_secs(10 * 86_400),
            compactor_blocks_retention_period_5m: Duration::from_secs(30 * 86_400),
            compactor_blocks_retention_period_1h: Duration::ZERO,
            ..Limits::default()
        },
    );
    let c = compactor(bucket.clone(), CompactorConfig::default(), overrides);
    let r = c.run_once(now).await.unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert!(r.compacted.is_empty() && r.downsampled.is_empty(), "{r:?}");
    let marked: HashSet<_> = r
        .marked
        .iter()
        .map(|m| (m.tenant.as_str().to_owned(), m.block))
        .collect();
    let want: HashSet<_> = [("a".to_owned(), raw_old), ("a".to_owned(), m5_old)]
        .into_iter()
        .collect();
    assert_eq!(marked, want);
    assert!(r.marked.iter().all(|m| m.reason == MarkReason::Retention));
    for (t, id, is_marked) in [
        (&a, raw_old, true),
        (&a, raw_new, false),
        (&a, m5_old, true),
        (&a, m5_new, false),
        (&a, h1, false),
        (&b, b_old, false),
    ] {
        assert_eq!(
            read_deletion_mark(&bucket, t, &id).await.unwrap().is_some(),
            is_marked,
            "{id}"
        );
    }
    // The marks are swept after the deletion delay; the rest stays.
    let r = c.run_once(now + 13 * H).await.unwrap();
    let deleted: HashSet<_> = r.deleted.iter().map(|(_, u)| *u).collect();
    assert_eq!(deleted, [raw_old, m5_old].into_iter().collect());
    let left: HashSet<_> = complete_blocks(&bucket, &a).await.into_iter().collect();
    assert_eq!(left, [raw_new, m5_new, h1].into_iter().collect());
}
