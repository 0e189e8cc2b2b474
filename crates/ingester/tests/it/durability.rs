use super::*;
use strata_storage::RejectionKind;

#[tokio::test]
async fn restart_replays_wal_without_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ing = open(dir.path(), Limits::default());
        for r in 0..300 {
            let o = push_round(&ing, "m", 50, 1000 + r * 15_000).await;
            assert_eq!(o.samples_written, 50);
        }
        // Dropped without shutdown: no final checkpoint, only the WAL.
    }
    let ing = open(dir.path(), Limits::default());
    let got = all_samples(&ing, "m").await;
    assert_eq!(got.len(), 50);
    for (id, samples) in &got {
        let i: i64 = id.parse().unwrap();
        assert_eq!(samples.len(), 300, "series {id}");
        for (r, s) in samples.iter().enumerate() {
            let t = 1000 + r as i64 * 15_000;
            assert_eq!((s.t, s.v), (t, (t + i) as f64));
        }
    }
    // Appending continues after the replayed data, and order is still enforced.
    let o = push_round(&ing, "m", 50, 1000).await;
    assert_eq!(o.samples_written, 0);
    assert_eq!(o.first_rejection.unwrap().reason, "sample-out-of-order");
}

#[tokio::test]
async fn torn_final_record_is_dropped_and_the_rest_replayed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ing = open(dir.path(), Limits::default());
        push_round(&ing, "m", 10, 1000).await;
        push_round(&ing, "m", 10, 2000).await;
        push_round(&ing, "m", 10, 3000).await;
    }
    // Cut the last segment in the middle of its last record, as a crash during write would.
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    segs.sort();
    let last = segs.last().expect("a non-empty segment");
    let len = std::fs::metadata(last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(len - 7).unwrap();
    drop(f);

    let ing = open(dir.path(), Limits::default());
    let got = all_samples(&ing, "m").await;
    assert_eq!(got.len(), 10);
    let counts: Vec<usize> = got.iter().map(|(_, s)| s.len()).collect();
    // A push writes one record per head shard; only the torn last record is lost, so every
    // series keeps rounds 1 and 2 and some lose round 3.
    assert!(counts.iter().all(|&c| c == 2 || c == 3), "{counts:?}");
    assert!(counts.contains(&2), "{counts:?}");
    // The repaired WAL keeps working across another restart.
    push_round(&ing, "m", 10, 4000).await;
    drop(ing);
    let ing = open(dir.path(), Limits::default());
    let got = all_samples(&ing, "m").await;
    assert!(got
        .iter()
        .all(|(_, s)| s.len() >= 3 && s.last().unwrap().t == 4000));
}

#[tokio::test]
async fn corruption_in_an_older_segment_is_an_error_not_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ing = open(dir.path(), Limits::default());
        push_round(&ing, "m", 10, 1000).await;
    }
    {
        // The second run replays and checkpoints at start, then writes a new segment: the
        // checkpoint is no longer the last file.
        let ing = open(dir.path(), Limits::default());
        push_round(&ing, "m", 10, 2000).await;
    }
    let seg = dir.path().join("wal").join("checkpoint.00000001");
    let mut data = std::fs::read(&seg).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&seg, data).unwrap();
    let overrides = Arc::new(RwLock::new(Overrides::default()));
    let err = Ingester::open(
        IngesterConfig::default(),
        dir.path(),
        overrides,
        &mut Registry::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("checkpoint.00000001") && msg.contains("corrupt"),
        "{msg}"
    );
}

#[tokio::test]
async fn checkpoint_replaces_old_segments_and_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ing = open(dir.path(), Limits::default());
        for r in 0..130 {
            push_round(&ing, "m", 20, r * 1000).await;
        }
        ing.checkpoint().await.unwrap();
        for r in 130..200 {
            push_round(&ing, "m", 20, r * 1000).await;
        }
    }
    let names: Vec<String> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "checkpoint.00000001"),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n == "00000000"),
        "segment 0 must be deleted: {names:?}"
    );
    let ing = open(dir.path(), Limits::default());
    let got = all_samples(&ing, "m").await;
    assert_eq!(got.len(), 20);
    for (id, s) in &got {
        assert_eq!(s.len(), 200, "series {id}");
        assert!(
            s.windows(2).all(|w| w[0].t < w[1].t),
            "no duplicates, in order"
        );
    }
}

#[tokio::test]
async fn series_limit_is_a_retryable_rejection_naming_the_series() {
    let dir = tempfile::tempdir().unwrap();
    let ing = open(
        dir.path(),
        Limits {
            max_series_per_tenant: 5,
            ..Limits::default()
        },
    );
    let o = push_round(&ing, "m", 8, 1000).await;
    assert_eq!(o.samples_written, 5);
    assert_eq!(o.samples_rejected, 3);
    let r = o.first_rejection.unwrap();
    assert_eq!(r.kind, RejectionKind::Limit);
    assert!(r.message.contains("m{id=\"0000"), "{}", r.message);
    // Existing series still accept samples; new ones are still refused.
    let o = push_round(&ing, "m", 8, 2000).await;
    assert_eq!((o.samples_written, o.samples_rejected), (5, 3));
    assert_eq!(all_samples(&ing, "m").await.len(), 5);
}

#[tokio::test]
async fn duplicates_and_conflicts_follow_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let ing = open(dir.path(), Limits::default());
    push_round(&ing, "m", 3, 1000).await;
    // Identical resend (a retried request) is accepted.
    let o = push_round(&ing, "m", 3, 1000).await;
    assert_eq!((o.samples_written, o.samples_rejected), (3, 0));
    // Same timestamp, different value: rejected.
    let mut batch = WriteBatch::default();
    batch.push_series(
        &[("__name__", "m"), ("id", "00000")],
        &[Sample::new(1000, 42.0)],
    );
    let o = ing.push(&tenant(), &batch).await.unwrap();
    let r = o.first_rejection.unwrap();
    assert_eq!(
        (r.kind, r.reason),
        (RejectionKind::BadData, "sample-duplicate-timestamp")
    );
    let got = all_samples(&ing, "m").await;
    assert_eq!(got[0].1, vec![Sample::new(1000, 1000.0)]);
}

#[tokio::test]
async fn stale_markers_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let ing = open(dir.path(), Limits::default());
        let mut batch = WriteBatch::default();
        batch.push_series(
            &[("__name__", "up")],
            &[
                Sample::new(1, 1.0),
                Sample::new(2, strata_model::STALE_NAN),
                Sample::new(3, f64::NAN),
            ],
        );
        ing.push(&tenant(), &batch).await.unwrap();
        ing.checkpoint().await.unwrap();
    }
    let ing = open(dir.path(), Limits::default());
    let s = ing
        .select(&tenant(), &[Matcher::equal("__name__", "up")], 0, 10)
        .await
        .unwrap();
    let v: Vec<u64> = s[0].samples.iter().map(|x| x.v.to_bits()).collect();
    assert_eq!(
        v,
        vec![
            1f64.to_bits(),
            strata_model::STALE_NAN.to_bits(),
            f64::NAN.to_bits()
        ]
    );
}

/// A WAL series record whose key decodes to unsorted labels (a corrupt record with a valid
/// checksum, found by the `wal_record` fuzz target) stops the replay with an error naming it,
/// instead of loading a series that every label lookup would then get wrong.
#[tokio::test]
async fn a_series_key_out_of_order_is_an_error() {
    use strata_ingester::head::key::encode_into;
    use strata_ingester::wal::record::RecordWriter;
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    let mut key = Vec::new();
    encode_into(&[("job", "a"), ("__name__", "m")], &mut key);
    let mut w = RecordWriter::default();
    w.series("t1", 1, &key);
    let mut r = w.begin_samples("t1");
    w.sample(&mut r, 1, 1000, 1.0);
    w.end_samples(r);
    std::fs::write(wal.join("00000000"), &w.buf).unwrap();
    let err = Ingester::open(
        IngesterConfig::default(),
        dir.path(),
        Arc::new(RwLock::new(Overrides::default())),
        &mut Registry::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            strata_ingester::IngesterError::CorruptSeries { id: 1, .. }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("not a sorted label encoding"),
        "{err}"
    );
}
