//! Crashes at every step leave the bucket consistent: no data lost, no block generations piling
//! up, leftovers cleaned.

use crate::common::*;
use strata_compactor::{CompactorConfig, CompactorError, MarkReason};
use strata_model::{Labels, Overrides, Sample};
use strata_storage::block::{block_path, BlockWriter, WriterOptions, SAMPLES_FILE, SERIES_FILE};
use strata_storage::index::BucketIndex;
use ulid::Ulid;

/// Six 2h blocks and one more to complete the 12h range; returns the data.
async fn seed(
    bucket: &strata_storage::bucket::Bucket,
    t: &strata_model::TenantId,
) -> Vec<Vec<(Labels, Vec<Sample>)>> {
    let mut data = Vec::new();
    for k in 0..7 {
        let d = synth(BASE + k * 2 * H, 2 * H, 10 + k as u64);
        write_block(
            bucket,
            t,
            BASE + k * 2 * H,
            BASE + (k + 1) * 2 * H - 1,
            &d,
            WriterOptions::default(),
        )
        .await;
        data.push(d);
    }
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_upload_and_marks_is_finished_without_compacting_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = FaultyStore::new(dir.path(), None);
    let faulty = store.bucket();
    let t = tenant("t");
    let data = seed(&faulty, &t).await;
    let parts: Vec<&[(Labels, Vec<Sample>)]> = data.iter().map(|d| d.as_slice()).collect();
    let want = union(&parts);
    let now = BASE + 15 * H;

    // The output is uploaded, then writing the first deletion mark fails: as if the process
    // died right after the upload.
    store.fail_puts_ending_with("deletion-mark.json", usize::MAX);
    let c = compactor(
        faulty.clone(),
        CompactorConfig::default(),
        Overrides::default(),
    );
    let r = c.run_once(now).await.unwrap();
    assert_eq!(r.compacted.len(), 1);
    assert_eq!(r.failures.len(), 1);
    assert!(
        matches!(
            r.failures[0].error,
            CompactorError::Block(strata_storage::block::BlockError::Bucket(_))
        ),
        "{:?}",
        r.failures[0].error
    );
    let output = r.compacted[0].block;
    assert_eq!(complete_blocks(&faulty, &t).await.len(), 8);
    assert_eq!(
        live_blocks(&faulty, &t).await.len(),
        8,
        "no source was marked"
    );
    // The failed cycle still put the output in the index queriers read.
    let idx = BucketIndex::read(&faulty, &t).await.unwrap().unwrap();
    assert!(idx.blocks.iter().any(|b| b.ulid == output));
    // Both generations are visible; queries merge them into the original samples.
    assert_same_series(&query_all(&faulty, &t, now).await, &want);

    store.heal();
    let r = c.run_once(now + H).await.unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert!(
        r.compacted.is_empty(),
        "must not merge the same sources again: {:?}",
        r.compacted
    );
    assert_eq!(r.marked.len(), 6);
    assert!(r.marked.iter().all(|m| m.reason == MarkReason::Redundant));
    assert_eq!(complete_blocks(&faulty, &t).await.len(), 8, "no new block");
    let live = live_blocks(&faulty, &t).await;
    assert_eq!(live.len(), 2);
    assert!(live.contains(&output));
    assert_same_series(&query_all(&faulty, &t, now + H).await, &want);
    // And it stays that way.
    let r = c.run_once(now + 2 * H).await.unwrap();
    assert!(r.compacted.is_empty() && r.marked.is_empty(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_during_output_upload_leaves_a_partial_block_that_is_cleaned_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = FaultyStore::new(dir.path(), None);
    let bucket = store.bucket();
    let t = tenant("t");
    let data = seed(&bucket, &t).await;
    let parts: Vec<&[(Labels, Vec<Sample>)]> = data.iter().map(|d| d.as_slice()).collect();
    let want = union(&parts);
    // Clocks near the ULIDs' wall time, so the partial block's age is meaningful.
    let now = ulid::Ulid::generate().timestamp_ms() as i64;

    // The data files of the output are written, its meta.json is not.
    store.fail_puts_ending_with("meta.json", 1);
    let c = compactor(
        bucket.clone(),
        CompactorConfig::default(),
        Overrides::default(),
    );
    let r = c.run_once(now).await.unwrap();
    assert_eq!(r.failures.len(), 1);
    assert!(r.compacted.is_empty() && r.marked.is_empty());
    let (idx, build) = BucketIndex::build(&bucket, &t, None, now).await.unwrap();
    assert_eq!(build.partial.len(), 1);
    let partial = build.partial[0];
    assert_eq!(idx.blocks.len(), 7, "the partial block is not a block");
    assert_same_series(&query_all(&bucket, &t, now).await, &want);

    // An abandoned upload of someone else, older than the delay.
    let old = Ulid::from_parts((now - 25 * H) as u64, 7);
    let mut w = BlockWriter::new(t.clone(), BASE, BASE + H, WriterOptions::default())
        .unwrap()
        .with_ulid(old);
    w.add_series(
        Labels::from_pairs([("__name__", "x")]),
        vec![Sample::new(BASE, 1.0)],
    )
    .unwrap();
    let files = w.finish().unwrap();
    bucket
        .put(&block_path("t", &old, SERIES_FILE), files.series.clone())
        .await
        .unwrap();
    bucket
        .put(&block_path("t", &old, SAMPLES_FILE), files.samples.clone())
        .await
        .unwrap();

    // The retry compacts once; the fresh partial stays (it could be an upload in progress),
    // the old one goes.
    let r = c.run_once(now + H).await.unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.compacted.len(), 1);
    assert_eq!(r.partial_deleted, vec![(t.clone(), old)]);
    assert!(bucket.list(&format!("t/{old}/")).await.unwrap().is_empty());
    assert!(!bucket
        .list(&format!("t/{partial}/"))
        .await
        .unwrap()
        .is_empty());
    assert_same_series(&query_all(&bucket, &t, now + H).await, &want);

    let r = c.run_once(now + 25 * H).await.unwrap();
    assert!(
        r.partial_deleted.iter().any(|(_, u)| *u == partial),
        "{r:?}"
    );
    assert!(bucket
        .list(&format!("t/{partial}/"))
        .await
        .unwrap()
        .is_empty());
    // After the deletion delay only the compacted block and the 7th block remain.
    assert_eq!(complete_blocks(&bucket, &t).await.len(), 2);
    assert_same_series(&query_all(&bucket, &t, now + 25 * H).await, &want);
}
