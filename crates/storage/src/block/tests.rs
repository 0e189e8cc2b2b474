use super::*;
use crate::bucket::{Bucket, BucketConfig};
use crate::query::Series;
use proptest::prelude::*;
use strata_model::{Labels, MatchOp, Matcher, Sample, TenantId, STALE_NAN};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn local_bucket(dir: &std::path::Path) -> Bucket {
    let mut cfg = BucketConfig::default();
    cfg.filesystem.directory = dir.to_path_buf();
    Bucket::from_config(&cfg).unwrap()
}

fn tenant() -> TenantId {
    TenantId::new("t1").unwrap()
}

/// Writes, uploads and reopens a block; returns everything selected with no matcher.
async fn round_trip(
    bucket: &Bucket,
    input: &[(Labels, Vec<Sample>)],
    opts: WriterOptions,
) -> (BlockReader, Vec<Series>) {
    let mut w = BlockWriter::new(tenant(), 0, 1_000_000, opts).unwrap();
    for (l, s) in input {
        w.add_series(l.clone(), s.clone()).unwrap();
    }
    let files = w.finish().unwrap();
    files.upload(bucket).await.unwrap();
    let r = BlockReader::open(bucket, &tenant(), files.meta.ulid)
        .await
        .unwrap();
    let all = r
        .select(
            &[Matcher::new(MatchOp::RegexMatch, "__name__", ".*").unwrap()],
            0,
            1_000_000,
        )
        .await
        .unwrap();
    (r, all)
}

fn assert_same(input: &[(Labels, Vec<Sample>)], got: &[Series]) {
    let mut want: Vec<(Labels, Vec<Sample>)> = input
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .cloned()
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(want.len(), got.len(), "series count");
    for ((l, s), g) in want.iter().zip(got) {
        assert_eq!(l, &g.labels);
        assert_eq!(s.len(), g.samples.len(), "{l}");
        for (a, b) in s.iter().zip(&g.samples) {
            assert!(
                a.bit_eq(b),
                "{l}: {a:?} != {b:?} ({:x} vs {:x})",
                a.v.to_bits(),
                b.v.to_bits()
            );
        }
    }
}

fn special_values() -> Vec<f64> {
    vec![
        STALE_NAN,
        f64::NAN,
        f64::from_bits(0x7ff8_0000_0000_0abc),
        f64::from_bits(0xfff8_0000_0000_0001),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        9_007_199_254_740_992.0,
        -9_007_199_254_740_991.0,
        1e300,
        0.1,
        42.0,
    ]
}

#[test]
fn special_floats_round_trip_bit_exactly_in_every_layout() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let vals = special_values();
    let samples: Vec<Sample> = vals
        .iter()
        .enumerate()
        .map(|(i, &v)| Sample::new(i as i64 * 1000, v))
        .collect();
    let input = vec![(Labels::from_pairs([("__name__", "x")]), samples)];
    for (enc, split) in [
        (ValueEncoding::Plain, false),
        (ValueEncoding::ByteStreamSplit, false),
        (ValueEncoding::ByteStreamSplit, true),
        (ValueEncoding::Plain, true),
    ] {
        let opts = WriterOptions {
            value_encoding: enc,
            split_integers: split,
            ..Default::default()
        };
        let (_, got) = rt().block_on(round_trip(&bucket, &input, opts));
        assert_same(&input, &got);
    }
}

#[test]
fn meta_and_sort_order() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let input = vec![
        (
            Labels::from_pairs([("__name__", "b"), ("A", "1")]),
            vec![Sample::new(10, 1.0)],
        ),
        (
            Labels::from_pairs([("__name__", "a"), ("z", "1")]),
            vec![Sample::new(20, 2.0), Sample::new(30, 3.0)],
        ),
        (
            Labels::from_pairs([("job", "nameless")]),
            vec![Sample::new(5, 0.5)],
        ),
        (Labels::from_pairs([("__name__", "empty")]), vec![]),
    ];
    rt().block_on(async {
        let (r, got) = round_trip(&bucket, &input, WriterOptions::default()).await;
        let m = r.meta();
        assert_eq!(m.stats.num_series, 3);
        assert_eq!(m.stats.num_samples, 4);
        assert_eq!(m.schema_version, SCHEMA_VERSION);
        assert_eq!(m.sources, vec![m.ulid]);
        assert_eq!(m.compaction_level, 1);
        // The nameless series is left out by `__name__=~".*"`? No: ".*" matches "".
        assert_eq!(got.len(), 3);
        // meta.json is valid JSON with the documented field names.
        let raw = bucket
            .get(&block_path("t1", &m.ulid, META_FILE))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        for k in [
            "ulid",
            "schemaVersion",
            "minTime",
            "maxTime",
            "resolution",
            "compactionLevel",
            "sources",
            "stats",
            "labelColumns",
            "files",
        ] {
            assert!(v.get(k).is_some(), "meta.json lacks {k}: {v}");
        }
        assert_eq!(
            r.label_names(&[], 0, 100),
            vec!["A", "__name__", "job", "z"]
        );
        assert_eq!(
            r.label_values("__name__", &[], 0, 100),
            vec!["a".to_owned(), "b".to_owned()]
        );
        assert_eq!(
            r.label_values("z", &[Matcher::equal("__name__", "a")], 0, 100),
            vec!["1".to_owned()]
        );
        assert!(
            r.label_values("z", &[], 0, 15).is_empty(),
            "time range applies"
        );
        let sel = r
            .select(&[Matcher::equal("__name__", "a")], 25, 100)
            .await
            .unwrap();
        assert_eq!(sel.len(), 1);
        assert_eq!(sel[0].samples, vec![Sample::new(30, 3.0)]);
        let none = r
            .select(&[Matcher::equal("__name__", "a")], 40, 100)
            .await
            .unwrap();
        assert!(none.is_empty());
    });
}

#[test]
fn writer_rejects_bad_input() {
    let mut w = BlockWriter::new(tenant(), 0, 100, WriterOptions::default()).unwrap();
    let l = Labels::from_pairs([("__name__", "x")]);
    assert!(matches!(
        w.add_series(l.clone(), vec![Sample::new(101, 1.0)]),
        Err(BlockError::SampleOutOfRange { .. })
    ));
    assert!(matches!(
        w.add_series(l.clone(), vec![Sample::new(5, 1.0), Sample::new(5, 2.0)]),
        Err(BlockError::Unsorted { .. })
    ));
    w.add_series(l.clone(), vec![Sample::new(5, 1.0)]).unwrap();
    assert!(matches!(
        w.add_series(l, vec![Sample::new(6, 1.0)]),
        Err(BlockError::DuplicateSeries { .. })
    ));
    assert!(matches!(
        BlockWriter::new(tenant(), 10, 0, WriterOptions::default()),
        Err(BlockError::InvalidRange { .. })
    ));
}

#[test]
fn rare_label_names_go_to_the_map_column() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    // 300 series, each with a unique label name: none reaches 1%, so none gets a column.
    let input: Vec<(Labels, Vec<Sample>)> = (0..300)
        .map(|i| {
            (
                Labels::from_pairs([
                    ("__name__", "m".to_owned()),
                    ("job", "j".to_owned()),
                    (&*format!("rare_{i}"), format!("v{i}")),
                ]),
                vec![Sample::new(i, i as f64)],
            )
        })
        .collect();
    rt().block_on(async {
        let (r, got) = round_trip(&bucket, &input, WriterOptions::default()).await;
        assert_eq!(r.meta().label_columns, vec!["job".to_owned()]);
        assert_same(&input, &got);
        let one = r
            .select(&[Matcher::equal("rare_7", "v7")], 0, 1000)
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].samples, vec![Sample::new(7, 7.0)]);
        assert_eq!(r.label_names(&[], 0, 1000).len(), 302);
    });
}

#[test]
fn selecting_one_series_fetches_only_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    // 2,000 series × 480 samples (2 h at 15 s), many pages.
    let input = synth::node_exporter_like(20, 0, 2 * 3_600_000, 1);
    rt().block_on(async {
        let mut w = BlockWriter::new(tenant(), 0, 2 * 3_600_000, WriterOptions::default()).unwrap();
        for (l, s) in &input {
            w.add_series(l.clone(), s.clone()).unwrap();
        }
        let files = w.finish().unwrap();
        let total = files.samples.len() as u64;
        files.upload(&bucket).await.unwrap();
        let r = BlockReader::open(&bucket, &tenant(), files.meta.ulid)
            .await
            .unwrap();
        assert_eq!(r.samples_bytes_fetched(), 0);
        let m = [
            Matcher::equal("__name__", "node_load1"),
            Matcher::equal("instance", "host-0007:9100"),
        ];
        let got = r.select(&m, 0, 2 * 3_600_000).await.unwrap();
        assert_eq!(got.len(), 1);
        let want = input.iter().find(|(l, _)| l == &got[0].labels).unwrap();
        assert_eq!(want.1.len(), got[0].samples.len());
        let fetched = r.samples_bytes_fetched();
        assert!(
            fetched * 20 < total,
            "one series fetched {fetched} of {total} bytes"
        );
        // Time-range pruning by series min/max: nothing fetched for a range the series misses.
        let before = r.samples_bytes_fetched();
        let none = r
            .select(
                &[Matcher::equal("__name__", "node_scrape_collector_success")],
                2 * 3_600_000 - 1000,
                2 * 3_600_000,
            )
            .await
            .unwrap();
        assert!(none.is_empty());
        assert_eq!(r.samples_bytes_fetched(), before);
        // Whole block still round-trips.
        let all = r
            .select(
                &[Matcher::new(MatchOp::RegexMatch, "job", ".+").unwrap()],
                0,
                2 * 3_600_000,
            )
            .await
            .unwrap();
        assert_same(&input, &all);
    });
}

fn arb_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        3 => any::<f64>(),
        1 => any::<u64>().prop_map(f64::from_bits),
        1 => prop::sample::select(special_values()),
    ]
}

fn arb_series() -> impl Strategy<Value = Vec<(Labels, Vec<Sample>)>> {
    let labels = (
        prop::sample::select(vec!["up", "a_total", "b", "Z"]),
        prop::collection::btree_map(
            prop::sample::select(vec!["job", "instance", "le", "A", "x_y"]),
            "[a-z0-9]{1,3}",
            0..4,
        ),
    );
    let samples = prop::collection::vec((1i64..50, arb_value()), 0..40).prop_map(|v| {
        let mut t = 0;
        v.into_iter()
            .map(|(dt, val)| {
                t += dt;
                Sample::new(t, val)
            })
            .collect::<Vec<_>>()
    });
    prop::collection::vec((labels, samples), 1..12).prop_map(|v| {
        let mut seen = std::collections::HashSet::new();
        v.into_iter()
            .filter_map(|((name, rest), s)| {
                let mut pairs: Vec<(String, String)> = vec![("__name__".into(), name.into())];
                pairs.extend(rest.into_iter().map(|(k, v)| (k.to_owned(), v)));
                let l = Labels::from_pairs(pairs);
                seen.insert(l.clone()).then_some((l, s))
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Format v3's time buckets: whole reads, windows and the compactor's cursor give back
    /// exactly the input whatever the bucket width (including widths that split a series into
    /// many short runs, and tiny pages that straddle buckets' series).
    #[test]
    fn random_blocks_in_time_buckets_round_trip(
        input in arb_series(),
        width in prop::sample::select(vec![13i64, 100, 700, 5_000]),
        window in (0i64..2_100, 0i64..2_100),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let bucket = local_bucket(dir.path());
        let opts = WriterOptions {
            time_bucket_ms: Some(width),
            rows_per_page: 16,
            ..Default::default()
        };
        let mut w = BlockWriter::new(tenant(), 0, 2_099, opts).unwrap();
        for (l, s) in &input {
            w.add_series(l.clone(), s.clone()).unwrap();
        }
        let files = w.finish().unwrap();
        let nb = files.meta.time_buckets.len() as i64;
        prop_assert!((1..=MAX_BUCKETS).contains(&nb));
        rt().block_on(files.upload(&bucket)).unwrap();
        let r = rt().block_on(BlockReader::open(&bucket, &tenant(), files.meta.ulid)).unwrap();
        let all_names = [Matcher::new(MatchOp::RegexMatch, "__name__", ".*").unwrap()];
        let all = rt().block_on(r.select(&all_names, 0, 2_099)).unwrap();
        assert_same(&input, &all);
        let (a, b) = (window.0.min(window.1), window.0.max(window.1));
        let want: Vec<(Labels, Vec<Sample>)> = input
            .iter()
            .map(|(l, s)| (l.clone(), s.iter().filter(|x| x.t >= a && x.t <= b).copied().collect()))
            .collect();
        let got = rt().block_on(r.select(&all_names, a, b)).unwrap();
        assert_same(&want, &got);
        // The cursor: every series, in block order, with all its samples.
        let mut cursor = r.series_cursor();
        let mut streamed = Vec::new();
        while let Some(s) = rt().block_on(cursor.next_series()).unwrap() {
            streamed.push(s);
        }
        prop_assert!(streamed.windows(2).all(|p| series_order(&p[0].labels, &p[1].labels).is_lt()));
        streamed.sort_by(|x, y| x.labels.cmp(&y.labels));
        assert_same(&input, &streamed);
    }

    #[test]
    fn random_blocks_round_trip(
        input in arb_series(),
        split in any::<bool>(),
        bss in any::<bool>(),
        max_cols in 0usize..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let bucket = local_bucket(dir.path());
        let opts = WriterOptions {
            split_integers: split,
            value_encoding: if bss { ValueEncoding::ByteStreamSplit } else { ValueEncoding::Plain },
            max_label_columns: max_cols,
            // Tiny pages so that selections cross page boundaries.
            rows_per_page: 16,
            ..Default::default()
        };
        let (r, got) = rt().block_on(round_trip(&bucket, &input, opts));
        assert_same(&input, &got);
        // Each series alone, by every one of its labels.
        for (l, s) in input.iter().filter(|(_, s)| !s.is_empty()) {
            let m: Vec<Matcher> = l.iter().map(|x| Matcher::equal(&x.name, &x.value)).collect();
            let one = rt().block_on(r.select(&m, 0, 1_000_000)).unwrap();
            let exact: Vec<&Series> = one.iter().filter(|x| &x.labels == l).collect();
            prop_assert_eq!(exact.len(), 1);
            prop_assert!(exact[0].samples.iter().zip(s).all(|(a, b)| a.bit_eq(b)));
        }
    }
}

#[test]
fn empty_block_and_missing_block() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    rt().block_on(async {
        let (r, all) = round_trip(&bucket, &[], WriterOptions::default()).await;
        assert!(all.is_empty());
        assert_eq!(r.meta().stats.num_series, 0);
        assert!(r.label_names(&[], 0, 1_000_000).is_empty());
        let missing = BlockReader::open(&bucket, &tenant(), ulid::Ulid::nil()).await;
        assert!(
            matches!(
                missing,
                Err(BlockError::Bucket(
                    crate::bucket::BucketError::NotFound { .. }
                ))
            ),
            "{missing:?}"
        );
    });
}

#[test]
fn subtract_ranges() {
    let ex = vec![2..4, 6..8, 10..20];
    let mut out = Vec::new();
    super::reader::subtract_for_tests(0..12, &ex, &mut out);
    assert_eq!(out, vec![0..2, 4..6, 8..10]);
    out.clear();
    super::reader::subtract_for_tests(3..7, &ex, &mut out);
    assert_eq!(out, vec![4..6]);
    out.clear();
    super::reader::subtract_for_tests(12..15, &ex, &mut out);
    assert!(out.is_empty());
    out.clear();
    super::reader::subtract_for_tests(20..25, &ex, &mut out);
    assert_eq!(out, vec![20..25]);
}

#[test]
fn short_window_of_a_long_series_reads_only_its_pages() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    // Two series of 100,000 samples each (~17 days at 15 s), pages of 1,024 rows.
    let mk = |name: &str, off: f64| {
        (
            Labels::from_pairs([("__name__", name)]),
            (0..100_000)
                .map(|i| Sample::new(i * 15_000, off + (i % 977) as f64 * 0.25))
                .collect::<Vec<_>>(),
        )
    };
    let input = vec![mk("a", 0.0), mk("b", 1.0)];
    let opts = WriterOptions {
        rows_per_page: 1024,
        ..Default::default()
    };
    rt().block_on(async {
        let mut w = BlockWriter::new(tenant(), 0, 100_000 * 15_000, opts).unwrap();
        for (l, s) in &input {
            w.add_series(l.clone(), s.clone()).unwrap();
        }
        let files = w.finish().unwrap();
        files.upload(&bucket).await.unwrap();
        let r = BlockReader::open(&bucket, &tenant(), files.meta.ulid)
            .await
            .unwrap();
        let m = [Matcher::equal("__name__", "b")];
        let full = r.select(&m, 0, i64::MAX).await.unwrap();
        assert_eq!(full[0].samples.len(), 100_000);
        let full_bytes = r.samples_bytes_fetched();
        // One hour in the middle: 240 samples.
        let (s, e) = (50_000 * 15_000, 50_000 * 15_000 + 3_600_000 - 1);
        let got = r.select(&m, s, e).await.unwrap();
        let want: Vec<Sample> = input[1]
            .1
            .iter()
            .copied()
            .filter(|x| x.t >= s && x.t <= e)
            .collect();
        assert_eq!(got[0].samples, want);
        let window_bytes = r.samples_bytes_fetched() - full_bytes;
        assert!(
            window_bytes * 20 < full_bytes,
            "window read {window_bytes} bytes, whole series {full_bytes}"
        );
    });
}

#[test]
fn series_cursor_streams_every_series_in_block_order_across_row_groups() {
    rt().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let bucket = local_bucket(dir.path());
        let input = synth::node_exporter_like(3, 0, 3_600_000, 7);
        // Small row groups and pages so that series straddle batches and row groups.
        let opts = WriterOptions {
            rows_per_row_group: 5_000,
            rows_per_page: 1_000,
            ..WriterOptions::default()
        };
        let mut w = BlockWriter::new(tenant(), 0, 3_700_000, opts).unwrap();
        for (l, s) in &input {
            w.add_series(l.clone(), s.clone()).unwrap();
        }
        let files = w.finish().unwrap();
        files.upload(&bucket).await.unwrap();
        let r = BlockReader::open(&bucket, &tenant(), files.meta.ulid)
            .await
            .unwrap();
        let mut cur = r.series_cursor();
        let mut got = Vec::new();
        while let Some(s) = cur.next_series().await.unwrap() {
            got.push(s);
        }
        assert!(cur.next_series().await.unwrap().is_none());
        for pair in got.windows(2) {
            assert_eq!(
                series_order(&pair[0].labels, &pair[1].labels),
                std::cmp::Ordering::Less
            );
        }
        got.sort_by(|a, b| a.labels.cmp(&b.labels));
        assert_same(&input, &got);
    });
}

#[test]
fn limits_stop_block_reads_early() {
    use crate::error::ReadLimit;
    use crate::limits::ReadLimits;
    use std::collections::BTreeSet;
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    // 1,480 series × 480 samples in row groups of 50,000 rows (15 of them).
    let input = synth::node_exporter_like(20, 0, 2 * 3_600_000, 1);
    rt().block_on(async {
        let opts = WriterOptions {
            rows_per_row_group: 50_000,
            ..WriterOptions::default()
        };
        let mut w = BlockWriter::new(tenant(), 0, 2 * 3_600_000, opts).unwrap();
        for (l, s) in &input {
            w.add_series(l.clone(), s.clone()).unwrap();
        }
        let files = w.finish().unwrap();
        files.upload(&bucket).await.unwrap();
        let r = BlockReader::open(&bucket, &tenant(), files.meta.ulid)
            .await
            .unwrap();
        let all = [Matcher::new(MatchOp::RegexMatch, "job", ".+").unwrap()];
        let range = (0, 2 * 3_600_000);
        let n = input.len() as u64;

        // Label queries stop at the entry that takes them past the limit.
        let mut out = BTreeSet::new();
        let e = r
            .collect_series(&all, range.0, range.1, 100, &mut out)
            .unwrap_err();
        assert_eq!((e.limit, e.max), (ReadLimit::Series, 100));
        assert_eq!(r.series_visited(), 101, "of {n}");
        let mut out = BTreeSet::new();
        let e = r
            .collect_label_values("instance", &all, range.0, range.1, 5, &mut out)
            .unwrap_err();
        assert_eq!(e.limit, ReadLimit::LabelValues);
        let mut out = BTreeSet::new();
        let e = r
            .collect_label_names(&all, range.0, range.1, 1, &mut out)
            .unwrap_err();
        assert_eq!(e.limit, ReadLimit::LabelNames);
        assert!(r.series_visited() < n / 2, "{} of {n}", r.series_visited());
        // Without a limit (or under it) every series is visited and answered.
        let mut out = BTreeSet::new();
        r.collect_series(&all, range.0, range.1, input.len(), &mut out)
            .unwrap();
        assert_eq!(out.len(), input.len());

        // Too many matching series: refused before any sample is fetched.
        let limited = |l: ReadLimits| {
            let r = &r;
            let all = &all;
            async move { r.select_limited(all, range.0, range.1, &l).await }
        };
        let e = limited(ReadLimits {
            max_series: 100,
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert!(
            matches!(e, BlockError::LimitExceeded(l) if l.limit == ReadLimit::Series),
            "{e}"
        );
        assert_eq!(r.samples_bytes_fetched(), 0);
        // Too many samples: the read stops within the first row groups.
        let e = limited(ReadLimits {
            max_samples: 20_000,
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert!(
            matches!(e, BlockError::LimitExceeded(l) if l.limit == ReadLimit::Samples),
            "{e}"
        );
        let stopped = r.samples_bytes_fetched();
        let e = limited(ReadLimits {
            max_bytes: 1 << 20,
            ..Default::default()
        })
        .await
        .unwrap_err();
        assert!(
            matches!(e, BlockError::LimitExceeded(l) if l.limit == ReadLimit::QueryMemory),
            "{e}"
        );
        let before = r.samples_bytes_fetched();
        let got = limited(ReadLimits {
            max_series: 2000,
            max_samples: 960_000,
            max_bytes: 0,
        })
        .await
        .unwrap();
        assert_same(&input, &got);
        let full = r.samples_bytes_fetched() - before;
        assert!(
            stopped * 4 < full,
            "stopped after {stopped} of {full} bytes"
        );
    });
}

#[test]
fn block_sets_stop_per_block_and_on_the_union() {
    use crate::block_set;
    use crate::error::ReadLimit;
    use crate::limits::ReadLimits;
    use crate::{QueryError, Queryable, SelectHints};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    rt().block_on(async {
        // Ten 1 h blocks of 100 series each: block b holds ids 10b .. 10b + 99, so each block
        // adds 10 series to the ones before it (190 distinct in all).
        let mut blocks = Vec::new();
        for b in 0..10i64 {
            let mut w =
                BlockWriter::new(tenant(), b * 3_600_000, (b + 1) * 3_600_000 - 1, Default::default())
                    .unwrap();
            let mut input: Vec<(Labels, Vec<Sample>)> = (0..100)
                .map(|i| {
                    let id = format!("{:05}", b * 10 + i);
                    (
                        Labels::from_pairs([("__name__", "m"), ("id", id.as_str())]),
                        vec![Sample::new(b * 3_600_000 + 1000, i as f64)],
                    )
                })
                .collect();
            input.sort_by(|a, b| a.0.cmp(&b.0));
            for (l, s) in &input {
                w.add_series(l.clone(), s.clone()).unwrap();
            }
            let files = w.finish().unwrap();
            files.upload(&bucket).await.unwrap();
            blocks.push(Arc::new(
                BlockReader::open(&bucket, &tenant(), files.meta.ulid)
                    .await
                    .unwrap(),
            ));
        }
        let m = [Matcher::equal("__name__", "m")];
        let end = 10 * 3_600_000;
        let visited = |bs: &[Arc<BlockReader>]| bs.iter().map(|b| b.series_visited()).sum::<u64>();
        // A limit of 150 is passed in the seventh block; the last three are not read.
        let e = block_set::series(&blocks, &m, 0, end, 150).unwrap_err();
        assert!(
            matches!(e, QueryError::LimitExceeded(l) if (l.limit, l.max) == (ReadLimit::Series, 150)),
            "{e}"
        );
        assert!(visited(&blocks) <= 700, "{}", visited(&blocks));
        assert_eq!(visited(&blocks[7..]), 0);
        assert_eq!(
            block_set::series(&blocks, &m, 0, end, 190).unwrap().len(),
            190
        );
        let e = block_set::label_values(&blocks, "id", &m, 0, end, 150).unwrap_err();
        assert!(matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::LabelValues));
        // Selections: every block alone fits 150 series, their union (190) does not.
        let mut st = block_set::StaticBlocks::new();
        for b in &blocks {
            st.add(
                tenant(),
                BlockReader::open(&bucket, &tenant(), b.meta().ulid)
                    .await
                    .unwrap(),
            );
        }
        let hints = |max_series| SelectHints {
            limits: ReadLimits {
                max_series,
                ..Default::default()
            },
            ..SelectHints::default()
        };
        let fetched = |st: &block_set::StaticBlocks| {
            st.blocks(&tenant())
                .iter()
                .map(|b| b.samples_bytes_fetched())
                .sum::<u64>()
        };
        // A block alone over the limit is refused before its samples are read.
        let e = st
            .select_chunks_hinted(&tenant(), &m, 0, end, &hints(50))
            .await
            .unwrap_err();
        assert!(matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::Series), "{e}");
        assert_eq!(fetched(&st), 0);
        let e = st
            .select_chunks_hinted(&tenant(), &m, 0, end, &hints(150))
            .await
            .unwrap_err();
        assert!(matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::Series), "{e}");
        let got = st
            .select_chunks_hinted(&tenant(), &m, 0, end, &hints(190))
            .await
            .unwrap();
        assert_eq!(got.len(), 190);
        // The blocks' bytes count together: a budget of two blocks' worth fails ten.
        let one_block: usize = got.iter().take(100).map(|s| s.heap_bytes()).sum();
        let e = st
            .select_chunks_hinted(
                &tenant(),
                &m,
                0,
                end,
                &SelectHints {
                    limits: ReadLimits {
                        max_bytes: 2 * one_block,
                        ..Default::default()
                    },
                    ..SelectHints::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::QueryMemory), "{e}");
        let e = st
            .series(&tenant(), &m, 0, end, 150)
            .await
            .unwrap_err();
        assert!(matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::Series));
    });
}

/// A `meta.json` whose sample count disagrees with the series file: refused at open.
/// Selections used to turn the series' row ranges into a Parquet row selection longer than the
/// count, which panics (seen while fixing the `parquet_block` fuzz finding below).
#[test]
fn miscounted_samples_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let input = vec![(
        Labels::from_pairs([("__name__", "a")]),
        vec![Sample::new(10, 1.0), Sample::new(20, 2.0)],
    )];
    rt().block_on(async {
        let (r, _) = round_trip(&bucket, &input, WriterOptions::default()).await;
        let good = r.meta().clone();
        let put = |meta: BlockMeta| {
            let bucket = bucket.clone();
            async move {
                let path = block_path("t1", &meta.ulid, META_FILE);
                let json = serde_json::to_vec(&meta).unwrap();
                bucket.put(&path, json.into()).await.unwrap();
                BlockReader::open(&bucket, &tenant(), meta.ulid).await
            }
        };
        // The stats disagree with the time buckets.
        for n in [1, 3, u64::MAX] {
            let mut meta = good.clone();
            meta.stats.num_samples = n;
            match put(meta).await {
                Err(BlockError::Corrupt { file, .. }) => assert_eq!(file, META_FILE, "{n}"),
                other => panic!("num_samples {n}: {other:?}"),
            }
        }
        // Stats and buckets agree with each other, not with the series file.
        for n in [1, 3] {
            let mut meta = good.clone();
            meta.stats.num_samples = n;
            meta.time_buckets[0].num_samples = n;
            match put(meta).await {
                Err(BlockError::Corrupt { file, .. }) => assert_eq!(file, SERIES_FILE, "{n}"),
                other => panic!("bucket rows {n}: {other:?}"),
            }
        }
        // A bucket outside the block.
        let mut meta = good.clone();
        meta.time_buckets[0].max_time = meta.max_time + 1;
        assert!(matches!(put(meta).await, Err(BlockError::Corrupt { .. })));
    });
}

/// Page locations the Parquet reader and `rows_outside` would follow out of their row group
/// (found by the `parquet_block` fuzz target: a negative first row overflowed `rows_outside`).
#[test]
fn corrupt_page_locations_are_refused() {
    use parquet::file::page_index::offset_index::PageLocation;
    let page = |offset, size, first| PageLocation {
        offset,
        compressed_page_size: size,
        first_row_index: first,
    };
    let check = super::reader::check_pages_for_tests;
    let good = [page(4, 100, 0), page(104, 100, 16), page(204, 50, 32)];
    assert_eq!(check(&good, 40, 1000), Ok(()));
    assert_eq!(check(&[], 0, 1000), Ok(()));
    for (bad, rows) in [
        (vec![page(4, 100, -48)], 40),
        (vec![page(4, 100, 0), page(104, 100, -48)], 40),
        (vec![page(4, 100, 1)], 40),
        (
            vec![page(4, 100, 0), page(104, 100, 16), page(204, 50, 16)],
            40,
        ),
        (vec![page(4, 100, 0), page(104, 100, 40)], 40),
        (vec![page(-4, 100, 0)], 40),
        (vec![page(4, -100, 0)], 40),
        (vec![page(950, 100, 0)], 40),
        (vec![page(i64::MAX, i32::MAX, 0)], 40),
    ] {
        assert!(check(&bad, rows, 1000).is_err(), "{bad:?}");
    }
}

/// A samples file the parquet crate's decoder panics on (a damaged page header sends it before
/// its column chunk; found by the `parquet_block` fuzz target): selections and the series
/// cursor fail with a corrupt-block error instead of taking the thread down.
#[test]
fn a_file_the_parquet_decoder_panics_on_is_a_corrupt_block() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let meta: BlockMeta =
        serde_json::from_slice(include_bytes!("testdata/decoder-panic/meta.json")).unwrap();
    let tenant = TenantId::new("fuzz").unwrap();
    rt().block_on(async {
        for (name, data) in [
            (
                SERIES_FILE,
                &include_bytes!("testdata/decoder-panic/series.parquet")[..],
            ),
            (
                SAMPLES_FILE,
                &include_bytes!("testdata/decoder-panic/samples.parquet")[..],
            ),
            (
                META_FILE,
                &include_bytes!("testdata/decoder-panic/meta.json")[..],
            ),
        ] {
            let path = block_path("fuzz", &meta.ulid, name);
            bucket.put(&path, data.to_vec().into()).await.unwrap();
        }
        let r = BlockReader::open(&bucket, &tenant, meta.ulid)
            .await
            .unwrap();
        let all = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()];
        match r.select(&all, i64::MIN, i64::MAX).await {
            Err(BlockError::Corrupt { file, .. }) => assert_eq!(file, SAMPLES_FILE),
            other => panic!("{other:?}"),
        }
        let mut cursor = r.series_cursor();
        let err = loop {
            match cursor.next_series().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the cursor read the whole damaged file"),
                Err(e) => break e,
            }
        };
        assert!(matches!(err, BlockError::Corrupt { .. }), "{err}");
        assert!(
            cursor.next_series().await.is_err(),
            "a broken cursor stays broken"
        );
    });
}
