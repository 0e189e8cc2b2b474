//! Two compactors on the same bucket: with the lock one works and the other waits; with a lock
//! that failed to exclude, both work and queries still see every sample exactly once.

use crate::common::*;
use strata_compactor::lock::{lock_path, LockFile};
use strata_compactor::{CompactorConfig, MarkReason};
use strata_model::{Labels, Overrides, Sample};
use strata_storage::block::WriterOptions;
use strata_storage::bucket::Bucket;
use ulid::Ulid;

async fn seed(bucket: &Bucket, t: &strata_model::TenantId) -> Vec<Vec<(Labels, Vec<Sample>)>> {
    let mut data = Vec::new();
    for k in 0..7 {
        let d = synth(BASE + k * 2 * H, 2 * H, 20 + k as u64);
        write_block(
            bucket,
            t,
            BASE + k * 2 * H,
            BASE + (k + 1) * 2 * H - 1,
            &d,
            WriterOptions::default(),
        )
        .await;
        // Two replicas uploaded the first block.
        if k == 0 {
            write_block(
                bucket,
                t,
                BASE,
                BASE + 2 * H - 1,
                &d,
                WriterOptions::default(),
            )
            .await;
        }
        data.push(d);
    }
    data
}

fn no_overlaps(blocks: &[strata_storage::index::IndexedBlock]) -> bool {
    let mut v: Vec<_> = blocks.iter().map(|b| (b.min_time, b.max_time)).collect();
    v.sort();
    v.windows(2).all(|w| w[1].0 > w[0].1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_compactors_sharing_a_lock_do_the_work_once() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let t = tenant("t");
    let data = seed(&bucket, &t).await;
    let parts: Vec<&[(Labels, Vec<Sample>)]> = data.iter().map(|d| d.as_slice()).collect();
    let want = union(&parts);
    let a = compactor(
        bucket.clone(),
        CompactorConfig::default(),
        Overrides::default(),
    );
    let b = compactor(
        bucket.clone(),
        CompactorConfig::default(),
        Overrides::default(),
    );
    let now = BASE + 15 * H;
    let (ra, rb) = tokio::join!(a.run_once(now), b.run_once(now));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.failures.is_empty() && rb.failures.is_empty());
    // Either one skipped the tenant while the other held it, or it came after and found the
    // work done: in both cases one of them did everything (the replicas' vertical merge, then
    // the 12h merge) and the other nothing.
    assert!(
        ra.compacted.is_empty() || rb.compacted.is_empty(),
        "{ra:?} {rb:?}"
    );
    assert_eq!(ra.compacted.len() + rb.compacted.len(), 2, "{ra:?} {rb:?}");
    assert_same_series(&query_all(&bucket, &t, now).await, &want);
    assert!(
        !bucket.exists(&lock_path(&t)).await.unwrap(),
        "lock released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_compactors_without_a_working_lock_lose_nothing_and_converge() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bucket");
    // Each compactor sees its own lock object, so both always get "the" lock.
    let sa = FaultyStore::new(&root, Some("a"));
    let sb = FaultyStore::new(&root, Some("b"));
    let (ba, bb) = (sa.bucket(), sb.bucket());
    let t = tenant("t");
    let data = seed(&ba, &t).await;
    let parts: Vec<&[(Labels, Vec<Sample>)]> = data.iter().map(|d| d.as_slice()).collect();
    let want = union(&parts);
    let a = compactor(ba.clone(), CompactorConfig::default(), Overrides::default());
    let b = compactor(bb.clone(), CompactorConfig::default(), Overrides::default());
    let now = BASE + 15 * H;
    for round in 0..3 {
        let (ra, rb) = tokio::join!(a.run_once(now + round * H), b.run_once(now + round * H));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        // A compactor may read a source the other just marked, but never one deleted (the
        // deletion delay is 12h), so no cycle fails.
        assert!(
            ra.failures.is_empty() && rb.failures.is_empty(),
            "{:?} {:?}",
            ra.failures,
            rb.failures
        );
        assert!(ra.skipped_locked.is_empty() && rb.skipped_locked.is_empty());
        // Every state in between answers queries exactly.
        assert_same_series(&query_all(&ba, &t, now + round * H).await, &want);
    }
    // Converged: one live block per range, no overlaps, and the redundant copies are marked.
    let (idx, _) = strata_storage::index::BucketIndex::build(&ba, &t, None, 0)
        .await
        .unwrap();
    let live: Vec<_> = idx
        .blocks
        .iter()
        .filter(|b| idx.deletion_mark(&b.ulid).is_none())
        .cloned()
        .collect();
    assert_eq!(live.len(), 2, "{live:?}");
    assert!(no_overlaps(&live));
    // Sweep after the deletion delay: still exact.
    let later = now + 15 * H;
    let r = a.run_once(later).await.unwrap();
    assert!(r.failures.is_empty());
    assert_same_series(&query_all(&ba, &t, later).await, &want);
    assert_eq!(complete_blocks(&ba, &t).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_lock_of_another_compactor_is_respected_and_an_expired_one_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let t = tenant("t");
    seed(&bucket, &t).await;
    let now = BASE + 15 * H;
    let c = compactor(
        bucket.clone(),
        CompactorConfig::default(),
        Overrides::default(),
    );
    let held = LockFile {
        owner: "other".into(),
        token: Ulid::generate(),
        expires_at: i64::MAX,
    };
    bucket
        .put(&lock_path(&t), serde_json::to_vec(&held).unwrap().into())
        .await
        .unwrap();
    let r = c.run_once(now).await.unwrap();
    assert_eq!(r.skipped_locked, vec![t.clone()]);
    assert!(r.compacted.is_empty() && r.marked.is_empty());

    // Its owner died: the lock expired.
    let dead = LockFile {
        expires_at: 1,
        ..held
    };
    bucket
        .put(&lock_path(&t), serde_json::to_vec(&dead).unwrap().into())
        .await
        .unwrap();
    let r = c.run_once(now).await.unwrap();
    assert!(r.skipped_locked.is_empty());
    assert_eq!(r.compacted.len(), 2);
    assert!(r.marked.iter().any(|m| m.reason == MarkReason::Compacted));
    assert!(!bucket.exists(&lock_path(&t)).await.unwrap());
}
