//! Downsampling (Thanos semantics, adapted to block format v1): per series and per aligned
//! window of the target resolution, five aggregates, each stored as its own series carrying the
//! label `__aggr__`:
//!
//! - `count`, `sum`, `min`, `max` of the window's samples, timestamped at the window's last
//!   millisecond (the series' last window at its last sample, so that no aggregate lies past
//!   the data, as Thanos does);
//! - `counter`: the samples of the raw series that `rate()`/`increase()` need to answer exactly
//!   as on raw data over whole windows: the first sample, the last sample of every window, and
//!   both samples around every counter reset (a decrease).
//!
//! Thanos stores the counter aggregate as a reset-adjusted running total plus the raw last value
//! repeated at the same timestamp, which its querier must unfold. Format v1 keeps timestamps
//! strictly increasing per series and queries merge equal timestamps away, so that trick cannot
//! be stored. Keeping the raw values around resets instead gives the same `increase()` within a
//! block *and* across block boundaries with plain PromQL: between two kept samples there is no
//! reset, so their difference is the raw increase, and each reset is seen by PromQL exactly as
//! in the raw series. The cost is two extra samples per reset.
//!
//! NaN values (stale markers included) are ignored, as in Thanos. A 5m block is downsampled to
//! 1h from its aggregates: counts and sums are summed, min of mins, max of maxes, and the
//! `counter` series is thinned again by the same rule (its samples are raw samples).

use crate::error::CompactorError;
use strata_model::{Label, Labels, Sample};
use strata_storage::block::{BlockReader, RESOLUTION_1H, RESOLUTION_5M, RESOLUTION_RAW};

/// Label that names the aggregate a series of a downsampled block holds.
pub use strata_storage::block::AGGR_LABEL;

/// One aggregate of a downsampled series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aggr {
    /// Samples in the window.
    Count,
    /// Sum of the window's values.
    Sum,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Raw counter samples kept for `rate`/`increase` (see the module docs).
    Counter,
}

impl Aggr {
    /// All aggregates, in the order they are produced.
    pub const ALL: [Aggr; 5] = [Aggr::Count, Aggr::Sum, Aggr::Min, Aggr::Max, Aggr::Counter];

    /// The `__aggr__` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggr::Count => "count",
            Aggr::Sum => "sum",
            Aggr::Min => "min",
            Aggr::Max => "max",
            Aggr::Counter => "counter",
        }
    }

    /// The aggregate a `__aggr__` value names.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The five aggregate series of one series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregates {
    /// Samples per window.
    pub count: Vec<Sample>,
    /// Sum per window.
    pub sum: Vec<Sample>,
    /// Minimum per window.
    pub min: Vec<Sample>,
    /// Maximum per window.
    pub max: Vec<Sample>,
    /// Counter samples (first, last of each window, both sides of each reset).
    pub counter: Vec<Sample>,
}

impl Aggregates {
    /// The series of one aggregate.
    pub fn get(&self, a: Aggr) -> &[Sample] {
        match a {
            Aggr::Count => &self.count,
            Aggr::Sum => &self.sum,
            Aggr::Min => &self.min,
            Aggr::Max => &self.max,
            Aggr::Counter => &self.counter,
        }
    }
}

/// Last millisecond of the window of `resolution` holding `t` (windows aligned to the epoch).
pub fn window_end(t: i64, resolution: i64) -> i64 {
    t - t.rem_euclid(resolution) + resolution - 1
}

/// Splits time-sorted samples into windows: yields (window timestamp, samples of the window),
/// the last window stamped at its last sample rather than past it.
fn windows(samples: &[Sample], resolution: i64) -> impl Iterator<Item = (i64, &[Sample])> {
    let last_t = samples.last().map_or(0, |s| s.t);
    let mut rest = samples;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let end = window_end(first.t, resolution);
        let n = rest.partition_point(|s| s.t <= end);
        let (w, r) = rest.split_at(n);
        rest = r;
        Some((end.min(last_t), w))
    })
}

/// The counter samples to keep from time-sorted, NaN-free samples: the first, the last of every
/// window, and both samples of every decrease.
pub fn thin_counter(samples: &[Sample], resolution: i64) -> Vec<Sample> {
    let mut keep = vec![false; samples.len()];
    if let Some(k) = keep.first_mut() {
        *k = true;
    }
    for i in 1..samples.len() {
        if samples[i].v < samples[i - 1].v {
            keep[i - 1] = true;
            keep[i] = true;
        }
        if window_end(samples[i].t, resolution) != window_end(samples[i - 1].t, resolution) {
            keep[i - 1] = true;
        }
    }
    if let Some(k) = keep.last_mut() {
        *k = true;
    }
    samples
        .iter()
        .zip(keep)
        .filter_map(|(s, k)| k.then_some(*s))
        .collect()
}

/// Aggregates a raw series (time-sorted) into windows of `resolution`. NaN samples, stale
/// markers included, are ignored; a series with no other samples has no aggregates.
pub fn aggregate_raw(samples: &[Sample], resolution: i64) -> Aggregates {
    let clean: Vec<Sample> = samples.iter().copied().filter(|s| !s.v.is_nan()).collect();
    let mut out = Aggregates::default();
    for (t, w) in windows(&clean, resolution) {
        let (mut sum, mut min, mut max) = (0.0, f64::INFINITY, f64::NEG_INFINITY);
        for s in w {
            sum += s.v;
            min = min.min(s.v);
            max = max.max(s.v);
        }
        out.count.push(Sample::new(t, w.len() as f64));
        out.sum.push(Sample::new(t, sum));
        out.min.push(Sample::new(t, min));
        out.max.push(Sample::new(t, max));
    }
    out.counter = thin_counter(&clean, resolution);
    out
}

/// Re-aggregates one aggregate series of a downsampled block into coarser windows.
pub fn reaggregate(aggr: Aggr, samples: &[Sample], resolution: i64) -> Vec<Sample> {
    let clean: Vec<Sample> = samples.iter().copied().filter(|s| !s.v.is_nan()).collect();
    if aggr == Aggr::Counter {
        return thin_counter(&clean, resolution);
    }
    windows(&clean, resolution)
        .map(|(t, w)| {
            let v = match aggr {
                Aggr::Count | Aggr::Sum => w.iter().map(|s| s.v).sum(),
                Aggr::Min => w.iter().map(|s| s.v).fold(f64::INFINITY, f64::min),
                Aggr::Max => w.iter().map(|s| s.v).fold(f64::NEG_INFINITY, f64::max),
                Aggr::Counter => f64::NAN,
            };
            Sample::new(t, v)
        })
        .collect()
}

/// `labels` plus `__aggr__=<aggr>`.
pub fn with_aggr(labels: &Labels, aggr: Aggr) -> Labels {
    let mut v: Vec<Label> = labels
        .iter()
        .filter(|l| l.name != AGGR_LABEL)
        .cloned()
        .collect();
    v.push(Label::new(AGGR_LABEL, aggr.as_str()));
    v.sort();
    Labels::from_sorted(v)
}

/// The resolution a block of `resolution` is downsampled to, if any.
pub fn next_resolution(resolution: i64) -> Option<i64> {
    match resolution {
        RESOLUTION_RAW => Some(RESOLUTION_5M),
        RESOLUTION_5M => Some(RESOLUTION_1H),
        _ => None,
    }
}

/// Streams the series of `src` and calls `emit` with each output series of the downsampled
/// block at `resolution`.
pub(crate) async fn downsample_series(
    src: &BlockReader,
    resolution: i64,
    mut emit: impl FnMut(Labels, Vec<Sample>) -> Result<(), CompactorError>,
) -> Result<(), CompactorError> {
    let meta = src.meta();
    if next_resolution(meta.resolution) != Some(resolution) {
        return Err(CompactorError::UnexpectedResolution {
            block: meta.ulid,
            resolution: meta.resolution,
        });
    }
    let mut cur = src.series_cursor();
    while let Some(s) = cur.next_series().await? {
        if meta.resolution == RESOLUTION_RAW {
            let a = aggregate_raw(&s.samples, resolution);
            for aggr in Aggr::ALL {
                let v = a.get(aggr);
                if !v.is_empty() {
                    emit(with_aggr(&s.labels, aggr), v.to_vec())?;
                }
            }
        } else {
            let aggr = s
                .labels
                .get(AGGR_LABEL)
                .and_then(Aggr::parse)
                .ok_or_else(|| CompactorError::MissingAggregate {
                    block: meta.ulid,
                    labels: s.labels.to_string(),
                })?;
            let v = reaggregate(aggr, &s.samples, resolution);
            if !v.is_empty() {
                emit(s.labels, v)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::STALE_NAN;

    const M5: i64 = 300_000;

    fn s(t: i64, v: f64) -> Sample {
        Sample::new(t, v)
    }

    /// PromQL's counter increase between the first and last sample: resets add the new value.
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

    #[test]
    fn windows_are_aligned_and_the_last_is_stamped_at_its_last_sample() {
        assert_eq!(window_end(0, M5), M5 - 1);
        assert_eq!(window_end(M5 - 1, M5), M5 - 1);
        assert_eq!(window_end(M5, M5), 2 * M5 - 1);
        assert_eq!(window_end(-1, M5), -1);
        let raw: Vec<Sample> = (0..25).map(|i| s(i * 15_000, i as f64)).collect();
        let a = aggregate_raw(&raw, M5);
        // 20 samples in [0, 5m), 5 in [5m, 6m15s].
        assert_eq!(a.count, vec![s(M5 - 1, 20.0), s(24 * 15_000, 5.0)]);
        assert_eq!(a.sum[0].v, (0..20).sum::<i64>() as f64);
        assert_eq!(a.min, vec![s(M5 - 1, 0.0), s(24 * 15_000, 20.0)]);
        assert_eq!(a.max, vec![s(M5 - 1, 19.0), s(24 * 15_000, 24.0)]);
        // No reset: first sample and the last of each window.
        assert_eq!(
            a.counter,
            vec![s(0, 0.0), s(19 * 15_000, 19.0), s(24 * 15_000, 24.0)]
        );
    }

    #[test]
    fn counter_resets_keep_both_sides_so_increase_matches_raw() {
        // Reset in the middle of the first window, then growth past the old value: a naive
        // "last value per window" would see 10 -> 30 and miss the 50 before the reset.
        let raw = vec![
            s(0, 10.0),
            s(15_000, 40.0),
            s(30_000, 50.0),
            s(45_000, 3.0),
            s(60_000, 30.0),
            s(M5 + 1_000, 35.0),
            s(M5 + 16_000, 2.0),
            s(2 * M5 + 5_000, 9.0),
        ];
        let a = aggregate_raw(&raw, M5);
        assert_eq!(
            a.counter,
            vec![
                s(0, 10.0),
                s(30_000, 50.0),
                s(45_000, 3.0),
                s(60_000, 30.0),
                s(M5 + 1_000, 35.0),
                s(M5 + 16_000, 2.0),
                s(2 * M5 + 5_000, 9.0),
            ]
        );
        assert_eq!(increase(&a.counter), increase(&raw));
        assert_eq!(increase(&raw), 40.0 + 3.0 + 27.0 + 5.0 + 2.0 + 7.0);
        // Re-aggregating to a coarser window keeps the resets too.
        let h = reaggregate(Aggr::Counter, &a.counter, 3_600_000);
        assert_eq!(increase(&h), increase(&raw));
    }

    #[test]
    fn nan_and_stale_markers_are_ignored_and_gaps_leave_no_windows() {
        let raw = vec![
            s(0, 1.0),
            s(15_000, f64::NAN),
            s(30_000, STALE_NAN),
            s(45_000, 2.0),
            // A gap of three windows.
            s(4 * M5 + 10, 7.0),
        ];
        let a = aggregate_raw(&raw, M5);
        assert_eq!(a.count, vec![s(M5 - 1, 2.0), s(4 * M5 + 10, 1.0)]);
        assert_eq!(a.sum, vec![s(M5 - 1, 3.0), s(4 * M5 + 10, 7.0)]);
        assert_eq!(
            a.counter,
            vec![s(0, 1.0), s(45_000, 2.0), s(4 * M5 + 10, 7.0)]
        );
        assert!(aggregate_raw(&[s(0, STALE_NAN)], M5).count.is_empty());
    }

    #[test]
    fn reaggregation_sums_counts_and_sums_and_keeps_extremes() {
        let raw: Vec<Sample> = (0..480).map(|i| s(i * 15_000, (i % 37) as f64)).collect();
        let five = aggregate_raw(&raw, M5);
        let hour = aggregate_raw(&raw, 3_600_000);
        for (aggr, want) in [
            (Aggr::Count, &hour.count),
            (Aggr::Sum, &hour.sum),
            (Aggr::Min, &hour.min),
            (Aggr::Max, &hour.max),
        ] {
            assert_eq!(
                &reaggregate(aggr, five.get(aggr), 3_600_000),
                want,
                "{aggr:?}"
            );
        }
    }

    #[test]
    fn aggr_label_is_added_once() {
        let l = Labels::from_pairs([("__name__", "m"), ("job", "j")]);
        let c = with_aggr(&l, Aggr::Count);
        assert_eq!(c.get(AGGR_LABEL), Some("count"));
        let again = with_aggr(&c, Aggr::Max);
        assert_eq!(again.len(), 3);
        assert_eq!(again.get(AGGR_LABEL), Some("max"));
        assert_eq!(Aggr::parse("counter"), Some(Aggr::Counter));
        assert_eq!(Aggr::parse("avg"), None);
    }
}
