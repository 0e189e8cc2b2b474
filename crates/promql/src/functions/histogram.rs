//! Classic-histogram kernels (`histogram_quantile`, `histogram_fraction` over `le` buckets) and
//! the φ-quantile of plain values shared by the `quantile` aggregation, `quantile_over_time` and
//! `mad_over_time`.
//!
//! Semantics follow Prometheus 3.x `promql/quantile.go` (`BucketQuantile`, `BucketFraction`,
//! `quantile`). Buckets are `(upper bound, cumulative count)` pairs, i.e. the value of the
//! `_bucket{le="…"}` series of one histogram.

use std::cmp::Ordering;

/// Relative difference between neighbouring cumulative bucket counts below which
/// `histogram_quantile` treats the counts as equal (floating-point noise, e.g. from sharded
/// sums), in either direction, without reporting it.
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// The smallest positive normal `f64`.
const MIN_NORMAL: f64 = f64::MIN_POSITIVE;

/// Relative float equality as Prometheus's `util/almost.Equal`: NaN equals NaN, and otherwise
/// `|a-b| / min(|a|+|b|, MAX) < epsilon` (absolute near zero).
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Go's `sort.Search`: the smallest index in `[0, n)` for which `pred` holds, assuming `pred`
/// is false then true; `n` if none. Kept as Go's exact bisection so that inputs where `pred` is
/// not monotonic (NaN counts) land on the same bucket as upstream.
fn go_search(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut i, mut j) = (0usize, n);
    while i < j {
        let h = (i + j) / 2;
        if !pred(h) {
            i = h + 1;
        } else {
            j = h;
        }
    }
    i
}

/// Sorts by upper bound. Bounds are parsed `le` labels and never expected to be NaN; a total
/// order is used anyway so the sort cannot misbehave on them.
fn sort_buckets(buckets: &mut [(f64, f64)]) {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
}

/// Merges neighbouring buckets with the same upper bound (e.g. `le="0.2"` and `le="2e-1"`) by
/// adding their counts. Input must be sorted.
fn coalesce_buckets(buckets: &mut Vec<(f64, f64)>) {
    if buckets.is_empty() {
        return;
    }
    let mut last = buckets[0];
    let mut i = 0;
    for k in 1..buckets.len() {
        let b = buckets[k];
        if b.0 == last.0 {
            last.1 += b.1;
        } else {
            buckets[i] = last;
            last = b;
            i += 1;
        }
    }
    buckets[i] = last;
    buckets.truncate(i + 1);
}

/// Makes cumulative counts non-decreasing: differences within `tolerance` (relative) are
/// silently flattened in either direction; real decreases are replaced by the last accepted
/// count. Returns `(forced_monotonic, fixed_precision)`.
fn ensure_monotonic_and_ignore_small_deltas(
    buckets: &mut [(f64, f64)],
    tolerance: f64,
) -> (bool, bool) {
    let mut forced = false;
    let mut fixed_precision = false;
    let Some(first) = buckets.first() else {
        return (false, false);
    };
    let mut prev = first.1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, tolerance) {
            // Noise: absorb it, and keep comparing against the accepted count.
            b.1 = prev;
            fixed_precision = true;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    (forced, fixed_precision)
}

/// φ-quantile of classic histogram buckets, as `histogram_quantile` computes it for `le`
/// series.
///
/// `buckets` are `(upper bound, cumulative count)` in any order; they are sorted, duplicates
/// merged and counts made monotonic in place. The result is linearly interpolated within the
/// bucket the rank falls into; the lowest bucket interpolates from 0 if its upper bound is
/// positive, otherwise its upper bound is returned; a rank in the `+Inf` bucket returns the
/// second-highest upper bound.
///
/// Special cases: `q` NaN → NaN; `q < 0` → −Inf; `q > 1` → +Inf (the engine adds the
/// "quantile value should be between 0 and 1" warning); no `+Inf` bucket, fewer than two
/// distinct bounds, or zero observations → NaN.
///
/// The `bool` is true when a real decrease in the counts had to be flattened: the caller must
/// then emit the info annotation `PromQL info: input to histogram_quantile needed to be fixed
/// for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)`
/// (plus ` for metric name "<name>"` when a name is known). It is false on every NaN/±Inf early
/// exit. Precision-only fixes are silent.
pub fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    if buckets.is_empty() {
        return (f64::NAN, false);
    }
    sort_buckets(buckets);
    if buckets[buckets.len() - 1].0 != f64::INFINITY {
        return (f64::NAN, false);
    }
    coalesce_buckets(buckets);
    let (forced, _fixed_precision) =
        ensure_monotonic_and_ignore_small_deltas(buckets, SMALL_DELTA_TOLERANCE);

    let n = buckets.len();
    if n < 2 {
        return (f64::NAN, false);
    }
    let observations = buckets[n - 1].1;
    if observations == 0.0 {
        return (f64::NAN, false);
    }
    let mut rank = q * observations;
    let b = go_search(n - 1, |i| buckets[i].1 >= rank);

    if b == n - 1 {
        return (buckets[n - 2].0, forced);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, forced);
    }
    let mut bucket_start = 0.0;
    let bucket_end = buckets[b].0;
    let mut count = buckets[b].1;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (
        bucket_start + (bucket_end - bucket_start) * (rank / count),
        forced,
    )
}

/// Fraction of observations in `[lower, upper]` of classic histogram buckets, as
/// `histogram_fraction` computes it for `le` series (upstream `BucketFraction`, Prometheus
/// 3.x).
///
/// `buckets` are `(upper bound, cumulative count)` in any order; they are sorted and duplicates
/// merged in place (counts are *not* made monotonic, as upstream). The lowest bucket starts at
/// 0 if its upper bound is positive, else at −Inf. Within a finite bucket the rank is
/// interpolated linearly; a bound inside the −Inf-based first bucket counts that whole bucket
/// as below the bound, a bound inside the `+Inf` bucket counts none of it.
///
/// Special cases: no buckets, no `+Inf` bucket, zero observations, or a NaN bound → NaN;
/// `lower >= upper` → 0.
pub fn bucket_fraction(lower: f64, upper: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    if buckets.is_empty() {
        return f64::NAN;
    }
    sort_buckets(buckets);
    if buckets[buckets.len() - 1].0 != f64::INFINITY {
        return f64::NAN;
    }
    coalesce_buckets(buckets);

    let count = buckets[buckets.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }

    let mut rank = 0.0;
    let mut lower_rank = 0.0;
    let mut upper_rank = 0.0;
    let mut lower_set = false;
    let mut upper_set = false;
    let mut lower_bound = if buckets[0].0 <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };

    for (i, &(upper_bound, cum)) in buckets.iter().enumerate() {
        if i > 0 {
            lower_bound = buckets[i - 1].0;
        }
        // `rank` is the cumulative count below this bucket, so the bucket holds `cum - rank`.
        let interpolate = |v: f64| -> f64 {
            if lower_bound == f64::NEG_INFINITY {
                return cum;
            }
            rank + (cum - rank) * (v - lower_bound) / (upper_bound - lower_bound)
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = cum;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// NaN sorts before every number (it is "the smallest value"), numbers ascending.
fn nan_first(a: &f64, b: &f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    }
}

/// φ-quantile of `values` (sorted in place, NaN first), as the `quantile` aggregation and
/// `quantile_over_time` compute it: rank `q·(n−1)`, linear interpolation between the two
/// neighbouring values (so a quantile between a NaN and a number is NaN).
///
/// Special cases: no values or `q` NaN → NaN; `q < 0` → −Inf; `q > 1` → +Inf (the engine adds
/// the "quantile value should be between 0 and 1" warning).
pub fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_unstable_by(nan_first);
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower_index = rank.floor().max(0.0);
    let upper_index = (n - 1.0).min(lower_index + 1.0);
    let weight = rank - rank.floor();
    values[lower_index as usize] * (1.0 - weight) + values[upper_index as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        almost_equal(a, b, 1e-9)
    }

    fn assert_close(got: f64, want: f64) {
        assert!(close(got, want), "got {got}, want {want}");
    }

    /// `testhistogram_bucket` at 50m (histograms.test:8-16): values are 10 × the increments.
    fn testhistogram_positive() -> Vec<(f64, f64)> {
        vec![
            (0.1, 50.0),
            (0.2, 70.0),
            (1.0, 110.0),
            (f64::INFINITY, 120.0),
        ]
    }
    fn testhistogram_negative() -> Vec<(f64, f64)> {
        vec![
            (-0.2, 10.0),
            (-0.1, 20.0),
            (0.3, 20.0),
            (f64::INFINITY, 30.0),
        ]
    }
    /// `testhistogram3_bucket` at 50m (histograms.test:29-41).
    fn testhistogram3_positive() -> Vec<(f64, f64)> {
        vec![
            (0.0, 0.0),
            (0.1, 50.0),
            (0.2, 70.0),
            (1.0, 110.0),
            (f64::INFINITY, 110.0),
        ]
    }
    fn testhistogram3_negative() -> Vec<(f64, f64)> {
        vec![
            (-0.25, 0.0),
            (-0.2, 10.0),
            (-0.1, 20.0),
            (0.3, 20.0),
            (f64::INFINITY, 20.0),
        ]
    }

    fn bq(q: f64, mut b: Vec<(f64, f64)>) -> (f64, bool) {
        bucket_quantile(q, &mut b)
    }

    #[test]
    fn bucket_quantile_testhistogram3() {
        // histograms.test:551-599
        for (q, pos, neg) in [
            (0.0, 0.0, -0.25),
            (0.25, 0.055, -0.225),
            (0.5, 0.125, -0.2),
            (0.75, 0.45, -0.15),
            (1.0, 1.0, -0.1),
        ] {
            let (v, forced) = bq(q, testhistogram3_positive());
            assert_close(v, pos);
            assert!(!forced);
            let (v, forced) = bq(q, testhistogram3_negative());
            assert_close(v, neg);
            assert!(!forced);
        }
    }

    #[test]
    fn bucket_quantile_lowest_highest_and_middle() {
        // histograms.test:694-741: q=0 lowest bucket, q=1 highest bucket, then 0.2/0.5/0.8.
        for (q, pos, neg) in [
            (0.0, 0.0, -0.2),
            (1.0, 1.0, 0.3),
            (0.2, 0.048, -0.2),
            (0.5, 0.15, -0.15),
            (0.8, 0.72, 0.3),
        ] {
            assert_close(bq(q, testhistogram_positive()).0, pos);
            assert_close(bq(q, testhistogram_negative()).0, neg);
        }
    }

    #[test]
    fn bucket_quantile_out_of_range_q() {
        // histograms.test:637-689
        assert_eq!(bq(-0.1, testhistogram_positive()).0, f64::NEG_INFINITY);
        assert_eq!(bq(1.01, testhistogram_negative()).0, f64::INFINITY);
        assert!(bq(f64::NAN, testhistogram_positive()).0.is_nan());
        // q checks come before bucket checks, as upstream.
        assert_eq!(bq(-1.0, vec![]).0, f64::NEG_INFINITY);
    }

    #[test]
    fn bucket_quantile_unsorted_input_and_bucket_middles() {
        // testhistogram2 at 7m (histograms.test:20-25, 769-785): q(1/6)=1, q(1/2)=3, q(5/6)=5.
        let h = vec![
            (6.0, 3.0),
            (f64::INFINITY, 3.0),
            (0.0, 0.0),
            (4.0, 2.0),
            (2.0, 1.0),
        ];
        assert_close(bq(1. / 6., h.clone()).0, 1.0);
        assert_close(bq(0.5, h.clone()).0, 3.0);
        assert_close(bq(5. / 6., h).0, 5.0);
    }

    #[test]
    fn bucket_quantile_aggregated() {
        // sum by (le) of rate(request_duration_seconds_bucket[10m]) at 50m
        // (histograms.test:43-56, 841-849): rates are increments/300.
        let r = |x: f64| x / 300.0;
        let h = vec![(0.1, r(10.0)), (0.2, r(19.0)), (f64::INFINITY, r(25.0))];
        assert_close(bq(0.3, h.clone()).0, 0.075);
        assert_close(bq(0.5, h).0, 0.1277777777777778);
    }

    #[test]
    fn bucket_quantile_nonmonotonic() {
        // histograms.test:1011-1034 at 50m: forced monotonicity, info annotation.
        let h = vec![
            (0.1, 20.0),
            (1.0, 10.0),
            (10.0, 50.0),
            (100.0, 40.0),
            (1000.0, 90.0),
            (f64::INFINITY, 80.0),
        ];
        for (q, want) in [(0.01, 0.0045), (0.5, 8.5), (0.99, 979.75)] {
            let (v, forced) = bq(q, h.clone());
            assert_close(v, want);
            assert!(forced);
        }
    }

    #[test]
    fn bucket_quantile_duplicate_bounds_are_coalesced() {
        // mixed_bucket, rate over 10m at 50m (histograms.test:58-65, 1037-1052): le 0.2, 2e-1 and
        // 2.0e-1 are the same bound; their counts add up.
        let r = |x: f64| x / 300.0;
        let ins1 = vec![
            (0.1, r(1.0)),
            (0.2, r(1.0)),
            (0.2, r(1.0)),
            (0.2, r(1.0)),
            (f64::INFINITY, r(4.0)),
        ];
        assert_close(bq(0.5, ins1.clone()).0, 0.15);
        assert_close(bq(0.75, ins1.clone()).0, 0.2);
        assert_close(bq(1.0, ins1).0, 0.2);
        // ins2: two +Inf buckets with zero observations → NaN.
        let ins2 = vec![(f64::INFINITY, 0.0), (f64::INFINITY, 0.0)];
        assert!(bq(0.5, ins2).0.is_nan());
    }

    #[test]
    fn bucket_quantile_nan_cases() {
        // Missing +Inf bucket.
        assert!(bq(0.5, vec![(1.0, 1.0), (2.0, 2.0)]).0.is_nan());
        // Fewer than two buckets.
        assert!(bq(0.5, vec![(f64::INFINITY, 5.0)]).0.is_nan());
        // Zero observations (histograms.test:1058-1063, 1085-1086).
        assert!(bq(0.2, vec![(0.1, 0.0), (0.2, 0.0), (f64::INFINITY, 0.0)])
            .0
            .is_nan());
        // Empty.
        assert!(bq(0.5, vec![]).0.is_nan());
    }

    #[test]
    fn bucket_quantile_small_deltas_are_silent() {
        // A relative dip of 1e-15 is noise: fixed without the monotonicity flag.
        let h = vec![(1.0, 1e3), (2.0, 1e3 * (1.0 - 1e-15)), (f64::INFINITY, 2e3)];
        let (v, forced) = bq(0.25, h);
        assert_close(v, 0.5);
        assert!(!forced);
        // A real dip is forced and flagged.
        let (_, forced) = bq(0.25, vec![(1.0, 10.0), (2.0, 9.0), (f64::INFINITY, 20.0)]);
        assert!(forced);
    }

    #[test]
    fn bucket_quantile_rank_in_inf_bucket() {
        // Rank above the second-highest bucket's count → second-highest bound.
        assert_eq!(
            bq(0.99, vec![(1.0, 1.0), (2.0, 2.0), (f64::INFINITY, 10.0)]).0,
            2.0
        );
    }

    fn bf(lower: f64, upper: f64, mut b: Vec<(f64, f64)>) -> f64 {
        bucket_fraction(lower, upper, &mut b)
    }

    #[test]
    fn bucket_fraction_upstream_cases() {
        let inf = f64::INFINITY;
        // testhistogram2 at 50m (histograms.test:20-25, 115-137).
        let h2 = vec![
            (0.0, 0.0),
            (2.0, 10.0),
            (4.0, 20.0),
            (6.0, 30.0),
            (inf, 30.0),
        ];
        assert_close(bf(0.0, 4.0, h2.clone()), 0.6666666666666666);
        assert_close(bf(0.0, 6.0, h2.clone()), 1.0);
        assert_close(bf(0.0, 3.5, h2), 0.5833333333333334);
        // testhistogram3 (histograms.test:145-148).
        assert_close(bf(0.0, 0.2, testhistogram3_positive()), 0.6363636363636364);
        assert_close(bf(0.0, 0.2, testhistogram3_negative()), 0.0);

        let pos = vec![(1.0, 1.0), (2.0, 3.0), (3.0, 6.0), (inf, 100.0)];
        let neg = vec![(-3.0, 10.0), (-2.0, 12.0), (-1.0, 15.0), (inf, 100.0)];
        // histograms.test:172, 191, 211, 228, 245, 263, 281, 300, 318, 335, 350, 399, 418, 437.
        assert_close(bf(0.0, 1.5, pos.clone()), 0.02);
        assert_close(bf(-4.0, -2.0, neg.clone()), 0.02);
        assert_close(bf(-inf, -1.5, neg.clone()), 0.135);
        assert_close(bf(-inf, inf, pos.clone()), 1.0);
        assert_close(bf(-inf, inf, neg.clone()), 1.0);
        assert_close(bf(4.0, 5.0, pos.clone()), 0.0);
        assert_close(bf(0.0, 1.0, neg), 0.0);
        assert_close(bf(2.0, 5.0, pos.clone()), 0.03);
        assert_close(bf(400.0, inf, pos.clone()), 0.94);
        assert_close(bf(2.0, 2.0, pos.clone()), 0.0);
        assert_close(bf(3.0, 2.0, pos.clone()), 0.0);
        assert_close(bf(2.0, 3.5, pos.clone()), 0.03);
        assert_close(bf(0.5, 2.0, pos.clone()), 0.025);
        assert_close(bf(1.0, 3.0, pos.clone()), 0.05);
        // histograms.test:365 single bucket, 380 all zero counts.
        assert_close(bf(0.0, 1.0, vec![(inf, 100.0)]), 0.0);
        assert!(bf(
            0.0,
            5.0,
            vec![(1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (inf, 0.0)]
        )
        .is_nan());
        // histograms.test:455 fractional bounds, 475 range crossing zero.
        assert_close(
            bf(0.1, 0.75, vec![(0.5, 2.5), (1.0, 7.5), (inf, 100.0)]),
            0.045,
        );
        let crosses = vec![
            (-2.0, 5.0),
            (-1.0, 10.0),
            (0.0, 15.0),
            (1.0, 20.0),
            (inf, 100.0),
        ];
        assert_close(bf(-1.0, 1.0, crosses), 0.1);
        // histograms.test:488, 501 NaN bounds; 515, 529 ranges outside all buckets.
        assert!(bf(f64::NAN, 1.0, vec![(1.0, 1.0), (inf, 100.0)]).is_nan());
        assert!(bf(0.0, f64::NAN, vec![(1.0, 1.0), (inf, 100.0)]).is_nan());
        let small = vec![(1.0, 1.0), (2.0, 3.0), (inf, 10.0)];
        assert_close(bf(-10.0, -5.0, small.clone()), 0.0);
        assert_close(bf(5.0, 10.0, small), 0.0);
        // No +Inf bucket, empty.
        assert!(bf(0.0, 1.0, vec![(1.0, 1.0)]).is_nan());
        assert!(bf(0.0, 1.0, vec![]).is_nan());
    }

    #[test]
    fn quantile_upstream_cases() {
        // aggregators.test:487-549
        let q = |q: f64, v: &[f64]| quantile(q, &mut v.to_vec());
        assert_close(q(0.8, &[0.0, 1.0]), 0.8);
        assert_close(q(0.8, &[0.0, 1.0, 2.0]), 1.6);
        assert_close(q(0.8, &[0.0, 1.0, 4.0]), 2.8);
        // NaN is the smallest value: 0.8 lands between 0 and 1, 0.2 between NaN and 0.
        assert_close(q(0.8, &[0.0, 1.0, f64::NAN]), 0.6);
        assert!(q(0.2, &[0.0, 1.0, f64::NAN]).is_nan());
        assert_close(q(0.2, &[0.0, 1.0]), 0.2);
        assert_close(q(0.2, &[2.0, 1.0, 0.0]), 0.4);
        assert!(q(f64::NAN, &[0.0, 1.0]).is_nan());
        assert_eq!(q(-1.0, &[0.0, 1.0]), f64::NEG_INFINITY);
        assert_eq!(q(2.0, &[0.0, 1.0]), f64::INFINITY);
        assert!(q(0.5, &[]).is_nan());
        // functions.test:1385-1405 (quantile_over_time data).
        assert_close(q(0.75, &[0.0, 1.0, 4.0]), 2.5);
        assert_close(q(1.0, &[0.0, 1.0, 4.0]), 4.0);
        assert_close(q(0.0, &[4.0, 1.0, 0.0]), 0.0);
        assert_close(q(0.5, &[7.0]), 7.0);
    }

    #[test]
    fn almost_equal_matches_upstream() {
        assert!(almost_equal(f64::NAN, f64::NAN, 1e-12));
        assert!(almost_equal(1.0, 1.0 + 1e-15, 1e-12));
        assert!(!almost_equal(1.0, 1.0 + 1e-9, 1e-12));
        assert!(!almost_equal(0.0, 1e-300, 1e-12));
    }
}
