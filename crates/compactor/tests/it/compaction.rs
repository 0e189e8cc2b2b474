//! Level compaction and vertical compaction of overlapping blocks.

use crate::common::*;
use strata_compactor::{CompactorConfig, MarkReason};
use strata_model::{Labels, Overrides, Sample};
use strata_storage::block::WriterOptions;
use strata_storage::index::{read_deletion_mark, BucketIndex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hour_blocks_become_one_twelve_hour_block_and_sources_go_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let t = tenant("team-a");
    let mut data = Vec::new();
    let mut sources = Vec::new();
    for k in 0..6 {
        let d = synth(BASE + k * 2 * H, 2 * H, k as u64);
        sources.push(
            write_block(
                &bucket,
                &t,
                BASE + k * 2 * H,
                BASE + (k + 1) * 2 * H - 1,
                &d,
                WriterOptions::default(),
            )
            .await,
        );
        data.push(d);
    }
    // The first block of the next 12h range: it makes [0h, 12h) complete.
    let later = synth(BASE + 12 * H, 2 * H, 99);
    let later_id = write_block(
        &bucket,
        &t,
        BASE + 12 * H,
        BASE + 14 * H - 1,
        &later,
        WriterOptions::default(),
    )
    .await;

    let cfg = CompactorConfig::default();
    let c = compactor(bucket.clone(), cfg.clone(), Overrides::default());
    let now = BASE + 15 * H;
    let r = c.run_once(now).await.unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.compacted.len(), 1, "{:?}", r.compacted);
    let out = r.compacted[0].block;
    let mut from = r.compacted[0].from.clone();
    from.sort();
    let mut want_sources = sources.clone();
    want_sources.sort();
    assert_eq!(from, want_sources);

    let (reader, got) = read_block(&bucket, &t, out).await;
    let parts: Vec<&[(Labels, Vec<Sample>)]> = data.iter().map(|d| d.as_slice()).collect();
    assert_same_series(&got, &union(&parts));
    let meta = reader.meta();
    assert_eq!((meta.min_time, meta.max_time), (BASE, BASE + 12 * H - 1));
    assert_eq!(meta.compaction_level, 2);
    assert_eq!(meta.sources, want_sources);
    let total: usize = data.iter().flatten().map(|(_, s)| s.len()).sum();
    assert_eq!(meta.stats.num_samples as usize, total);

    for s in &sources {
        let m = read_deletion_mark(&bucket, &t, s)
            .await
            .unwrap()
            .expect("source marked");
        assert_eq!(m.deletion_time, now);
    }
    assert!(read_deletion_mark(&bucket, &t, &later_id)
        .await
        .unwrap()
        .is_none());
    assert!(r.marked.iter().all(|m| m.reason == MarkReason::Compacted));
    // Until the sources are gone, queriers read both generations; merging makes them one.
    let mut all = parts.clone();
    all.push(&later);
    assert_same_series(&query_all(&bucket, &t, now).await, &union(&all));

    // Before the delay nothing is deleted.
    let r = c.run_once(now + H).await.unwrap();
    assert!(
        r.deleted.is_empty() && r.compacted.is_empty() && r.marked.is_empty(),
        "{r:?}"
    );
    let after = now + cfg.deletion_delay.as_millis() as i64;
    let r = c.run_once(after).await.unwrap();
    let mut deleted: Vec<_> = r.deleted.iter().map(|(_, u)| *u).collect();
    deleted.sort();
    assert_eq!(deleted, want_sources);
    let idx = BucketIndex::read(&bucket, &t).await.unwrap().unwrap();
    let mut listed: Vec<_> = idx.blocks.iter().map(|b| b.ulid).collect();
    listed.sort();
    let mut want = vec![out, later_id];
    want.sort();
    assert_eq!(listed, want);
    assert!(idx.deletion_marks.is_empty());
    for s in &sources {
        assert!(bucket
            .list(&format!("team-a/{s}/"))
            .await
            .unwrap()
            .is_empty());
    }
    assert_same_series(&query_all(&bucket, &t, after).await, &union(&all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_partially_overlapping_blocks_become_one_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let t = tenant("team-b");
    let mut a = synth(BASE, 2 * H, 1);
    // Series that sort unusually: no metric name (first in a block), and a label name that
    // sorts before `__name__` byte-wise.
    let steps: Vec<Sample> = (0..480)
        .map(|i| Sample::new(BASE + i * 15_000, i as f64))
        .collect();
    a.push((Labels::from_pairs([("job", "nameless")]), steps.clone()));
    a.push((
        Labels::from_pairs([("__name__", "up"), ("AZ", "eu-1"), ("job", "node")]),
        steps,
    ));
    // A replica's block covering [1h, 3h): the same samples as `a` in [1h, 2h), new ones after.
    let tail = synth(BASE + 2 * H, H, 2);
    let mut c_data: Vec<(Labels, Vec<Sample>)> = a
        .iter()
        .map(|(l, s)| {
            (
                l.clone(),
                s.iter().copied().filter(|x| x.t >= BASE + H).collect(),
            )
        })
        .collect();
    for (l, s) in &tail {
        match c_data.iter_mut().find(|(cl, _)| cl == l) {
            Some((_, v)) => v.extend_from_slice(s),
            None => c_data.push((l.clone(), s.clone())),
        }
    }
    let ids = [
        write_block(
            &bucket,
            &t,
            BASE,
            BASE + 2 * H - 1,
            &a,
            WriterOptions::default(),
        )
        .await,
        // The same block uploaded twice (a retried upload, or two replicas of the same data).
        write_block(
            &bucket,
            &t,
            BASE,
            BASE + 2 * H - 1,
            &a,
            WriterOptions::default(),
        )
        .await,
        write_block(
            &bucket,
            &t,
            BASE + H,
            BASE + 3 * H - 1,
            &c_data,
            WriterOptions::default(),
        )
        .await,
    ];
    let want = union(&[&a, &tail]);
    let want_samples: usize = want.iter().map(|s| s.samples.len()).sum();

    let c = compactor(
        bucket.clone(),
        CompactorConfig::default(),
        Overrides::default(),
    );
    let r = c.run_once(BASE + 4 * H).await.unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.compacted.len(), 1);
    assert_eq!(r.compacted[0].from.len(), 3);
    let out = r.compacted[0].block;
    let (reader, got) = read_block(&bucket, &t, out).await;
    assert_same_series(&got, &want);
    // The block itself holds each sample once (not just queries after merging).
    assert_eq!(reader.meta().stats.num_samples as usize, want_samples);
    assert_eq!(
        (reader.meta().min_time, reader.meta().max_time),
        (BASE, BASE + 3 * H - 1)
    );
    assert_eq!(live_blocks(&bucket, &t).await, vec![out]);
    for id in ids {
        assert!(read_deletion_mark(&bucket, &t, &id)
            .await
            .unwrap()
            .is_some());
    }
    // A second cycle finds nothing more to do.
    let r = c.run_once(BASE + 5 * H).await.unwrap();
    assert!(r.compacted.is_empty() && r.marked.is_empty(), "{r:?}");
}
