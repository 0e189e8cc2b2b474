//! A 48h raw dataset goes through every level and is downsampled to 5m and 1h; the aggregates
//! answer like the raw data.

use crate::common::*;
use std::collections::HashMap;
use std::time::Duration;
use strata_compactor::downsample::AGGR_LABEL;
use strata_compactor::CompactorConfig;
use strata_model::{Label, Labels, Overrides, Sample, STALE_NAN};
use strata_storage::block::{WriterOptions, RESOLUTION_1H, RESOLUTION_5M};
use strata_storage::Series;

/// A counter with resets, a gauge with NaNs, and a series that goes stale, 15 s scrapes.
fn dataset(start: i64, end: i64) -> Vec<(Labels, Vec<Sample>)> {
    let mut counter = Vec::new();
    let mut gauge = Vec::new();
    let mut stale = Vec::new();
    let (mut c, mut i) = (1000.0f64, 0u64);
    let mut t = start;
    while t < end {
        i += 1;
        c += (i % 7) as f64;
        // Resets: one mid-window, one right at a 5m boundary, one at an hour boundary.
        if t == start + 3 * H + 150_000 || t == start + 20 * H || t == start + 31 * H + 3_600_000 {
            c = (i % 5) as f64;
        }
        counter.push(Sample::new(t, c));
        let g = if i % 97 == 0 {
            f64::NAN
        } else {
            ((i * 7919) % 1000) as f64 / 10.0 - 20.0
        };
        gauge.push(Sample::new(t, g));
        if t < start + 30 * H {
            stale.push(Sample::new(t, 1.0));
        } else if t == start + 30 * H {
            stale.push(Sample::new(t, STALE_NAN));
        }
        t += 15_000;
    }
    vec![
        (
            Labels::from_pairs([("__name__", "requests_total"), ("job", "api")]),
            counter,
        ),
        (
            Labels::from_pairs([("__name__", "temperature"), ("job", "api")]),
            gauge,
        ),
        (
            Labels::from_pairs([("__name__", "up"), ("job", "old")]),
            stale,
        ),
    ]
}

fn in_range(all: &[(Labels, Vec<Sample>)], lo: i64, hi: i64) -> Vec<(Labels, Vec<Sample>)> {
    all.iter()
        .map(|(l, s)| {
            (
                l.clone(),
                s.iter()
                    .copied()
                    .filter(|x| x.t >= lo && x.t < hi)
                    .collect(),
            )
        })
        .collect()
}

/// PromQL's increase without extrapolation: resets add the new value.
fn increase(v: &[Sample]) -> f64 {
    v.windows(2)
        .map(|p| {
            if p[1].v >= p[0].v {
                p[1].v - p[0].v
            } else {
                p[1].v
            }
        })
        .sum()
}

fn without_aggr(l: &Labels) -> Labels {
    Labels::from_sorted(
        l.iter()
            .filter(|x| x.name != AGGR_LABEL)
            .cloned()
            .collect::<Vec<Label>>(),
    )
}

/// Aggregate series of a downsampled block, by base labels and aggregate name.
fn by_aggr(series: Vec<Series>) -> HashMap<(Labels, String), Vec<Sample>> {
    series
        .into_iter()
        .map(|s| {
            let a = s
                .labels
                .get(AGGR_LABEL)
                .expect("every series carries __aggr__")
                .to_owned();
            ((without_aggr(&s.labels), a), s.samples)
        })
        .collect()
}

fn check_against_raw(
    aggs: &HashMap<(Labels, String), Vec<Sample>>,
    raw: &[(Labels, Vec<Sample>)],
    resolution: i64,
) {
    for (l, samples) in raw {
        let clean: Vec<Sample> = samples.iter().copied().filter(|s| !s.v.is_nan()).collect();
        let get = |a: &str| {
            aggs.get(&(l.clone(), a.to_owned()))
                .unwrap_or_else(|| panic!("{l} {a}"))
        };
        let count: f64 = get("count").iter().map(|s| s.v).sum();
        assert_eq!(count as usize, clean.len(), "{l} count");
        let sum: f64 = get("sum").iter().map(|s| s.v).sum();
        let raw_sum: f64 = clean.iter().map(|s| s.v).sum();
        assert!(
            (sum - raw_sum).abs() <= 1e-9 * raw_sum.abs().max(1.0),
            "{l} sum {sum} vs {raw_sum}"
        );
        let min = get("min").iter().map(|s| s.v).fold(f64::INFINITY, f64::min);
        let max = get("max")
            .iter()
            .map(|s| s.v)
            .fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(
            min,
            clean.iter().map(|s| s.v).fold(f64::INFINITY, f64::min),
            "{l} min"
        );
        assert_eq!(
            max,
            clean.iter().map(|s| s.v).fold(f64::NEG_INFINITY, f64::max),
            "{l} max"
        );
        // Per window: counts match, and increase() up to every window end equals raw.
        let counter = get("counter");
        let mut window_ends: Vec<i64> = get("count").iter().map(|s| s.t).collect();
        window_ends.dedup();
        for (w, end) in window_ends.iter().enumerate() {
            let start = end - end.rem_euclid(resolution);
            let raw_in = clean.iter().filter(|s| s.t >= start && s.t <= *end).count();
            assert_eq!(
                get("count")[w].v as usize,
                raw_in,
                "{l} count of window ending {end}"
            );
            let upto = |v: &[Sample]| -> Vec<Sample> {
                v.iter().copied().filter(|s| s.t <= *end).collect()
            };
            assert_eq!(
                increase(&upto(counter)),
                increase(&upto(&clean)),
                "{l} increase up to {end}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_48h_block_is_downsampled_to_5m_and_1h_with_exact_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = local_bucket(dir.path());
    let t = tenant("ds");
    let all = dataset(BASE, BASE + 50 * H);
    for k in 0..25 {
        let (lo, hi) = (BASE + k * 2 * H, BASE + (k + 1) * 2 * H);
        write_block(
            &bucket,
            &t,
            lo,
            hi - 1,
            &in_range(&all, lo, hi),
            WriterOptions::default(),
        )
        .await;
    }
    let cfg = CompactorConfig {
        block_ranges: [2, 12, 24, 48]
            .iter()
            .map(|h| Duration::from_secs(h * 3600))
            .collect(),
        // Thanos's 10 days would need 10 days of data; the rule is the same.
        downsample_1h_after_range: Duration::from_secs(48 * 3600),
        ..CompactorConfig::default()
    };
    let c = compactor(bucket.clone(), cfg, Overrides::default());
    let r = c.run_once(BASE + 51 * H).await.unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    // 4 × 12h, 2 × 24h, 1 × 48h.
    assert_eq!(r.compacted.len(), 7, "{:?}", r.compacted);
    let raw48 = r.compacted.last().unwrap().block;
    assert_eq!(r.downsampled.len(), 2, "{:?}", r.downsampled);
    let d5 = &r.downsampled[0];
    assert_eq!((d5.from, d5.resolution), (raw48, RESOLUTION_5M));
    let d1 = &r.downsampled[1];
    assert_eq!((d1.from, d1.resolution), (d5.block, RESOLUTION_1H));

    let (raw_reader, raw_series) = read_block(&bucket, &t, raw48).await;
    let raw: Vec<(Labels, Vec<Sample>)> = raw_series
        .into_iter()
        .map(|s| (s.labels, s.samples))
        .collect();
    assert_eq!(
        raw_reader.meta().max_time - raw_reader.meta().min_time + 1,
        48 * H
    );
    assert_same_series(
        &union(&[&raw]),
        &union(&[&in_range(&all, BASE, BASE + 48 * H)]),
    );

    for (ds, res) in [(d5.block, RESOLUTION_5M), (d1.block, RESOLUTION_1H)] {
        let (reader, series) = read_block(&bucket, &t, ds).await;
        let m = reader.meta();
        assert_eq!(m.resolution, res);
        assert_eq!(
            (m.min_time, m.max_time),
            (raw_reader.meta().min_time, raw_reader.meta().max_time)
        );
        assert_eq!(m.compaction_level, raw_reader.meta().compaction_level);
        assert_eq!(m.sources, raw_reader.meta().sources);
        assert_eq!(series.len(), 3 * 5, "five aggregates per series");
        check_against_raw(&by_aggr(series), &raw, res);
    }

    // Downsampled blocks are not made twice, and raw data is kept.
    let r = c.run_once(BASE + 52 * H).await.unwrap();
    assert!(
        r.downsampled.is_empty() && r.compacted.is_empty() && r.marked.is_empty(),
        "{r:?}"
    );
    assert!(live_blocks(&bucket, &t).await.contains(&raw48));
}
