//! Range-vector function kernels over the float samples of one series in one window.
//!
//! Semantics follow Prometheus 3.x `promql/functions.go` for float samples. Histogram samples,
//! mixed float/histogram windows and their annotations are the engine's business: every kernel
//! here sees only the window's float samples (stale markers removed) and returns `None` where
//! upstream emits no point for a float-only window.
//!
//! Scalar arguments arrive in [`RangeWindow::params`] in call order:
//! `quantile_over_time(q, …)` → `[q]`, `predict_linear(…, t)` → `[t]` (optionally
//! `[t, eval_ts_ms]`, see [`predict_linear`]), `double_exponential_smoothing(…, sf, tf)` →
//! `[sf, tf]`.

use super::histogram::quantile;
use super::{RangeFn, RangeWindow};
use strata_model::Sample;

/// The kernel of the named range function, or `None` if `name` is not a range function
/// implemented here.
pub fn lookup(name: &str) -> Option<RangeFn> {
    let f: RangeFn = match name {
        "rate" => rate,
        "increase" => increase,
        "delta" => delta,
        "irate" => irate,
        "idelta" => idelta,
        "deriv" => deriv,
        "predict_linear" => predict_linear,
        "resets" => resets,
        "changes" => changes,
        "avg_over_time" => avg_over_time,
        "min_over_time" => min_over_time,
        "max_over_time" => max_over_time,
        "sum_over_time" => sum_over_time,
        "count_over_time" => count_over_time,
        "last_over_time" => last_over_time,
        "first_over_time" => first_over_time,
        "present_over_time" => present_over_time,
        "quantile_over_time" => quantile_over_time,
        "stddev_over_time" => stddev_over_time,
        "stdvar_over_time" => stdvar_over_time,
        "mad_over_time" => mad_over_time,
        "ts_of_min_over_time" => ts_of_min_over_time,
        "ts_of_max_over_time" => ts_of_max_over_time,
        "ts_of_last_over_time" => ts_of_last_over_time,
        "ts_of_first_over_time" => ts_of_first_over_time,
        "double_exponential_smoothing" => double_exponential_smoothing,
        _ => return None,
    };
    Some(f)
}

/// One step of Kahan–Neumaier summation (upstream `kahansum.Inc`): adds `inc` to `sum`,
/// accumulating the lost low-order part in `c`. Once the sum overflows, the compensation is
/// reset so that it cannot turn an infinite sum into NaN.
#[inline]
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Milliseconds as seconds, computed as Go's `time.Duration.Seconds` does (whole seconds plus
/// the fractional nanoseconds / 1e9), so the `rate` divisor is bit-identical to upstream's.
fn duration_seconds(ms: i64) -> f64 {
    let secs = ms / 1000;
    let nanos = (ms % 1000) * 1_000_000;
    secs as f64 + nanos as f64 / 1e9
}

// --- rate, increase, delta -------------------------------------------------------------------

/// Upstream `extrapolatedRate` for floats: the difference between the last and first sample
/// (plus, for counters, every value seen before a decrease), extrapolated towards the window
/// boundaries. A boundary is extrapolated to when the first/last sample lies within 1.1× the
/// average sample interval of it, otherwise only by half an interval; counters are never
/// extrapolated below zero at the start.
fn extrapolated_rate(w: &RangeWindow<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let first = s[0];
    let last = s[s.len() - 1];
    let mut result = last.v - first.v;
    if is_counter {
        for pair in s.windows(2) {
            if pair[1].v < pair[0].v {
                result += pair[0].v;
            }
        }
    }

    let mut duration_to_start = (first.t - w.start) as f64 / 1000.0;
    let mut duration_to_end = (w.end - last.t) as f64 / 1000.0;
    let sampled_interval = (last.t - first.t) as f64 / 1000.0;
    let average_interval = sampled_interval / (s.len() - 1) as f64;
    let threshold = average_interval * 1.1;

    if duration_to_start >= threshold {
        duration_to_start = average_interval / 2.0;
    }
    if is_counter {
        // Where a straight line through the samples would reach zero, if that is closer.
        let mut duration_to_zero = duration_to_start;
        if result > 0.0 && first.v >= 0.0 {
            duration_to_zero = sampled_interval * (first.v / result);
        }
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    if duration_to_end >= threshold {
        duration_to_end = average_interval / 2.0;
    }

    let mut factor = (sampled_interval + duration_to_start + duration_to_end) / sampled_interval;
    if is_rate {
        factor /= duration_seconds(w.end - w.start);
    }
    Some(result * factor)
}

/// `rate`: per-second increase of a counter over the window, extrapolated; needs 2 samples.
pub fn rate(w: &RangeWindow<'_>) -> Option<f64> {
    extrapolated_rate(w, true, true)
}

/// `increase`: increase of a counter over the window, extrapolated; needs 2 samples.
pub fn increase(w: &RangeWindow<'_>) -> Option<f64> {
    extrapolated_rate(w, true, false)
}

/// `delta`: change of a gauge over the window, extrapolated; needs 2 samples.
pub fn delta(w: &RangeWindow<'_>) -> Option<f64> {
    extrapolated_rate(w, false, false)
}

/// Upstream `instantValue` for floats: the last two samples. For `irate`, a decrease is a
/// counter reset and the last value itself is the increase; a NaN comparison is no reset.
fn instant_value(w: &RangeWindow<'_>, is_rate: bool) -> Option<f64> {
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let prev = s[s.len() - 2];
    let curr = s[s.len() - 1];
    let interval = curr.t - prev.t;
    if interval == 0 {
        return None;
    }
    let mut result = curr.v;
    if !is_rate || curr.v >= prev.v || curr.v.is_nan() || prev.v.is_nan() {
        result = curr.v - prev.v;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// `irate`: per-second rate between the last two samples; needs 2 samples.
pub fn irate(w: &RangeWindow<'_>) -> Option<f64> {
    instant_value(w, true)
}

/// `idelta`: difference between the last two samples; needs 2 samples.
pub fn idelta(w: &RangeWindow<'_>) -> Option<f64> {
    instant_value(w, false)
}

// --- regression ------------------------------------------------------------------------------

/// Least-squares fit `v = slope·x + intercept` with `x` in seconds relative to
/// `intercept_time` (ms), Kahan-compensated sums as upstream `linearRegression`. A constant
/// series has slope 0 (NaN for a constant ±Inf).
fn linear_regression(samples: &[Sample], intercept_time: i64) -> (f64, f64) {
    let mut n = 0.0;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    let init_y = samples[0].v;
    let mut const_y = true;
    for (i, s) in samples.iter().enumerate() {
        if const_y && i > 0 && s.v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.t - intercept_time) as f64 / 1e3;
        (sum_x, c_x) = kahan_inc(x, sum_x, c_x);
        (sum_y, c_y) = kahan_inc(s.v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_inc(x * s.v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_inc(x * x, sum_x2, c_x2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sum_x += c_x;
    sum_y += c_y;
    sum_xy += c_xy;
    sum_x2 += c_x2;

    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `deriv`: per-second slope of the least-squares line; needs 2 samples.
pub fn deriv(w: &RangeWindow<'_>) -> Option<f64> {
    if w.samples.len() < 2 {
        return None;
    }
    // Regress around the first sample's time to keep `x` small (upstream issue 2674).
    Some(linear_regression(w.samples, w.samples[0].t).0)
}

/// `predict_linear(v, t)`: value of the least-squares line `t` seconds after the *evaluation
/// time*; needs 2 samples.
///
/// `params[0]` is `t`. Upstream anchors the prediction at the step's evaluation timestamp, not
/// at the window end: with `offset`/`@` the two differ (functions.test: `predict_linear(x[55m]
/// @ 3000, 3600)` evaluated at 10m predicts for 600 s + 3600 s). The engine therefore passes
/// the evaluation timestamp in milliseconds as `params[1]`; without it, `end` is used, which is
/// only right when there is no `offset`/`@`.
pub fn predict_linear(w: &RangeWindow<'_>) -> Option<f64> {
    let duration = *w.params.first()?;
    if w.samples.len() < 2 {
        return None;
    }
    let eval_ts = w.params.get(1).map_or(w.end, |&t| t as i64);
    let (slope, intercept) = linear_regression(w.samples, eval_ts);
    Some(slope * duration + intercept)
}

// --- counts of events ------------------------------------------------------------------------

/// `resets`: number of decreases between consecutive samples.
pub fn resets(w: &RangeWindow<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    let n = w.samples.windows(2).filter(|p| p[1].v < p[0].v).count();
    Some(n as f64)
}

/// `changes`: number of times the value differs from the previous one (NaN to NaN is no
/// change, NaN to a number is).
pub fn changes(w: &RangeWindow<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    let n = w
        .samples
        .windows(2)
        .filter(|p| p[1].v != p[0].v && !(p[1].v.is_nan() && p[0].v.is_nan()))
        .count();
    Some(n as f64)
}

// --- aggregations over time ------------------------------------------------------------------

/// `avg_over_time`: Kahan-compensated sum divided by the count; once the running sum would
/// overflow, switches to an incremental (Kahan-compensated) mean, as upstream.
pub fn avg_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    let (first, rest) = w.samples.split_first()?;
    let mut sum = first.v;
    let mut count = 1.0;
    let mut mean = 0.0;
    let mut c = 0.0;
    let mut incremental = false;
    for (i, s) in rest.iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan_inc(s.v, sum, c);
            if !new_sum.is_infinite() {
                sum = new_sum;
                c = new_c;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(s.v / count, q * mean, q * c);
    }
    if incremental {
        Some(mean + c)
    } else {
        Some(sum / count + c / count)
    }
}

/// `sum_over_time`: Kahan-compensated sum.
pub fn sum_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for s in w.samples {
        (sum, c) = kahan_inc(s.v, sum, c);
    }
    if sum.is_infinite() {
        Some(sum)
    } else {
        Some(sum + c)
    }
}

/// `count_over_time`: number of samples.
pub fn count_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    Some(w.samples.len() as f64)
}

/// `present_over_time`: 1 for any sample.
pub fn present_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    Some(1.0)
}

/// `last_over_time`: the last value (NaN included).
pub fn last_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    w.samples.last().map(|s| s.v)
}

/// `first_over_time`: the first value (NaN included).
pub fn first_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    w.samples.first().map(|s| s.v)
}

/// `ts_of_last_over_time`: timestamp of the last sample, in seconds.
pub fn ts_of_last_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    w.samples.last().map(|s| s.t as f64 / 1000.0)
}

/// `ts_of_first_over_time`: timestamp of the first sample, in seconds.
pub fn ts_of_first_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    w.samples.first().map(|s| s.t as f64 / 1000.0)
}

/// Upstream `compareOverTime`: keeps the sample for which `replace(candidate, kept)` last held,
/// starting from the first sample. `replace` also holds whenever the kept value is NaN, so NaN
/// only wins when every value is NaN.
fn compare_over_time(
    w: &RangeWindow<'_>,
    replace: fn(f64, f64) -> bool,
    timestamp: bool,
) -> Option<f64> {
    let first = w.samples.first()?;
    let (mut best, mut best_t) = (first.v, first.t);
    for s in w.samples {
        if replace(s.v, best) {
            best = s.v;
            best_t = s.t;
        }
    }
    Some(if timestamp {
        best_t as f64 / 1000.0
    } else {
        best
    })
}

/// `min_over_time`: smallest value; NaNs are ignored unless all values are NaN.
pub fn min_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    compare_over_time(w, |cur, kept| cur < kept || kept.is_nan(), false)
}

/// `max_over_time`: largest value; NaNs are ignored unless all values are NaN.
pub fn max_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    compare_over_time(w, |cur, kept| cur > kept || kept.is_nan(), false)
}

/// `ts_of_min_over_time`: timestamp (s) of the *last* occurrence of the minimum.
pub fn ts_of_min_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    compare_over_time(w, |cur, kept| cur <= kept || kept.is_nan(), true)
}

/// `ts_of_max_over_time`: timestamp (s) of the *last* occurrence of the maximum.
pub fn ts_of_max_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    compare_over_time(w, |cur, kept| cur >= kept || kept.is_nan(), true)
}

/// `quantile_over_time(q, …)`: φ-quantile of the values, `params[0]` = `q`; see
/// [`quantile`] for NaN/out-of-range `q`. The engine emits the "quantile value should be
/// between 0 and 1, got <q>" warning for `q` NaN or outside [0, 1] when the window has floats.
pub fn quantile_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    let q = *w.params.first()?;
    if w.samples.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = w.samples.iter().map(|s| s.v).collect();
    Some(quantile(q, &mut values))
}

/// Population variance by Welford's method with Kahan-compensated mean and sum of squares,
/// as upstream `varianceOverTime`.
fn variance(samples: &[Sample]) -> f64 {
    let mut count = 0.0;
    let (mut mean, mut c_mean) = (0.0, 0.0);
    let (mut aux, mut c_aux) = (0.0, 0.0);
    for s in samples {
        count += 1.0;
        let delta = s.v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (s.v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `stdvar_over_time`: population variance.
pub fn stdvar_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    Some(variance(w.samples))
}

/// `stddev_over_time`: population standard deviation.
pub fn stddev_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    Some(variance(w.samples).sqrt())
}

/// `mad_over_time`: median of the absolute deviations from the median. Any NaN sample makes
/// the result NaN (Prometheus ≥ 3.14, functions.test "A NaN sample makes the result NaN").
pub fn mad_over_time(w: &RangeWindow<'_>) -> Option<f64> {
    if w.samples.is_empty() {
        return None;
    }
    if w.samples.iter().any(|s| s.v.is_nan()) {
        return Some(f64::NAN);
    }
    let mut values: Vec<f64> = w.samples.iter().map(|s| s.v).collect();
    let median = quantile(0.5, &mut values);
    for v in &mut values {
        *v = (*v - median).abs();
    }
    Some(quantile(0.5, &mut values))
}

// --- smoothing -------------------------------------------------------------------------------

/// Validates `double_exponential_smoothing`'s factors as upstream, which aborts the query with
/// this message (`%f` formatting) when `sf` or `tf` is ≤ 0 or ≥ 1. NaN passes, as upstream
/// (the result is then NaN). Upstream checks this whenever it evaluates the function on a
/// series at a step, before looking at the sample count.
pub fn double_exponential_smoothing_arg_error(sf: f64, tf: f64) -> Option<String> {
    if sf <= 0.0 || sf >= 1.0 {
        return Some(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {}",
            go_percent_f(sf)
        ));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Some(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {}",
            go_percent_f(tf)
        ));
    }
    None
}

/// Go's `%f`: six decimals, `+Inf`/`-Inf`/`NaN` spelled as Go does.
fn go_percent_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{v:.6}")
    }
}

/// `double_exponential_smoothing(v, sf, tf)` (Holt linear smoothing), `params = [sf, tf]`;
/// needs 2 samples. Returns `None` for factors upstream rejects with a query error: the engine
/// must check [`double_exponential_smoothing_arg_error`] and fail the query instead.
pub fn double_exponential_smoothing(w: &RangeWindow<'_>) -> Option<f64> {
    let (&sf, &tf) = (w.params.first()?, w.params.get(1)?);
    if double_exponential_smoothing_arg_error(sf, tf).is_some() {
        return None;
    }
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, s[0].v);
    let mut trend = s[1].v - s[0].v;
    for (i, smp) in s.iter().enumerate().skip(1) {
        let x = sf * smp.v;
        // The trend at i-1; the first one is the initial difference.
        if i > 1 {
            trend = tf * (s1 - s0) + (1.0 - tf) * trend;
        }
        let y = (1.0 - sf) * (s1 + trend);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;
    const M: i64 = 60 * S;

    /// A series as a promqltest `load <step>` line writes it: values at 0, step, 2·step, …;
    /// `None` is `_` (no sample).
    fn load(step: i64, values: &[Option<f64>]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| Sample::new(i as i64 * step, v)))
            .collect()
    }

    /// promqltest's `a+bxN`: N+1 values a, a+b, …
    fn seq(start: f64, inc: f64, times: usize) -> Vec<Option<f64>> {
        (0..=times).map(|i| Some(start + inc * i as f64)).collect()
    }

    fn vals(v: &[f64]) -> Vec<Option<f64>> {
        v.iter().map(|&x| Some(x)).collect()
    }

    /// Evaluates `name(series[range])` at `at` (ms) with the window `(at-range, at]`.
    fn eval_p(name: &str, series: &[Sample], at: i64, range: i64, params: &[f64]) -> Option<f64> {
        let start = at - range;
        let samples: Vec<Sample> = series
            .iter()
            .copied()
            .filter(|s| s.t > start && s.t <= at)
            .collect();
        let w = RangeWindow {
            samples: &samples,
            start,
            end: at,
            params,
        };
        lookup(name).expect("function exists")(&w)
    }

    fn eval(name: &str, series: &[Sample], at: i64, range: i64) -> Option<f64> {
        eval_p(name, series, at, range, &[])
    }

    fn assert_close(got: Option<f64>, want: f64) {
        let got = got.unwrap_or_else(|| panic!("no result, want {want}"));
        if want.is_nan() {
            assert!(got.is_nan(), "got {got}, want NaN");
            return;
        }
        if got == want {
            return;
        }
        let rel = (got - want).abs() / (got.abs() + want.abs());
        assert!(rel < 1e-9, "got {got}, want {want}");
    }

    #[test]
    fn lookup_knows_all_and_only_range_functions() {
        for name in [
            "rate",
            "increase",
            "delta",
            "irate",
            "idelta",
            "deriv",
            "predict_linear",
            "resets",
            "changes",
            "avg_over_time",
            "min_over_time",
            "max_over_time",
            "sum_over_time",
            "count_over_time",
            "last_over_time",
            "first_over_time",
            "present_over_time",
            "quantile_over_time",
            "stddev_over_time",
            "stdvar_over_time",
            "mad_over_time",
            "ts_of_min_over_time",
            "ts_of_max_over_time",
            "ts_of_last_over_time",
            "ts_of_first_over_time",
            "double_exponential_smoothing",
        ] {
            assert!(lookup(name).is_some(), "{name}");
        }
        assert!(lookup("abs").is_none());
        assert!(lookup("absent_over_time").is_none());
    }

    #[test]
    fn resets_and_changes() {
        // functions.test:2-101
        let foo = load(5 * M, &vals(&[1., 2., 3., 0., 1., 0., 0., 1., 2., 0.]));
        let bar = load(5 * M, &vals(&[1., 2., 3., 4., 5., 1., 2., 3., 4., 5.]));
        let biz = load(5 * M, &vals(&[0., 0., 0., 0., 0., 1., 1., 1., 1., 1.]));
        let at = 50 * M;
        assert_eq!(eval("resets", &foo, at, 5 * M), None);
        for (range, f, b) in [
            (10 * M, 0., 0.),
            (20 * M, 1., 0.),
            (30 * M, 1., 0.),
            (32 * M, 2., 1.),
            (50 * M, 3., 1.),
        ] {
            assert_eq!(eval("resets", &foo, at, range), Some(f), "foo {range}");
            assert_eq!(eval("resets", &bar, at, range), Some(b), "bar {range}");
            assert_eq!(eval("resets", &biz, at, range), Some(0.));
        }
        assert_eq!(eval("changes", &foo, at, 5 * M), None);
        for (range, f, b, z) in [
            (6 * M, 0., 0., 0.),
            (20 * M, 2., 2., 0.),
            (30 * M, 3., 4., 0.),
            (50 * M, 7., 8., 1.),
        ] {
            assert_eq!(eval("changes", &foo, at, range), Some(f));
            assert_eq!(eval("changes", &bar, at, range), Some(b));
            assert_eq!(eval("changes", &biz, at, range), Some(z));
        }
        // functions.test:103-110: NaN→NaN is no change, 0→NaN→0 are two.
        let nan = f64::NAN;
        assert_eq!(
            eval(
                "changes",
                &load(5 * M, &vals(&[nan, nan, nan])),
                15 * M,
                20 * M
            ),
            Some(0.)
        );
        assert_eq!(
            eval(
                "changes",
                &load(5 * M, &vals(&[0., nan, 0.])),
                15 * M,
                20 * M
            ),
            Some(2.)
        );
    }

    #[test]
    fn increase_extrapolation() {
        // functions.test:114-141
        let foo = load(5 * M, &seq(0., 10., 10));
        let mut bar_v = seq(0., 18., 5);
        bar_v.extend(seq(0., 18., 5));
        let bar = load(5 * M, &bar_v);
        let dings = load(5 * M, &seq(10., 10., 10));
        let bumms = load(5 * M, &seq(1., 10., 10));
        let at = 50 * M;
        assert_close(eval("increase", &foo, at, 50 * M), 100.);
        assert_close(eval("increase", &bar, at, 50 * M), 160.);
        assert_close(eval("increase", &dings, at, 50 * M), 100.);
        assert_close(eval("increase", &bumms, at, 50 * M), 100.);
        assert_close(eval("increase", &foo, at, 100 * M), 100.);
        assert_close(eval("increase", &bar, at, 100 * M), 162.);
        assert_close(eval("increase", &dings, at, 100 * M), 105.);
        assert_close(eval("increase", &bumms, at, 100 * M), 101.);
        // functions.test:147-151: 3 2 is a reset.
        let reset = load(5 * M, &vals(&[0., 1., 2., 3., 2., 3., 4.]));
        assert_close(eval("increase", &reset, 30 * M, 30 * M), 7.);
    }

    #[test]
    fn rate_cases() {
        // functions.test:155-213
        let mut middle = seq(0., 27., 4);
        middle.extend(seq(0., 27., 5));
        let middle = load(5 * M, &middle);
        let mut end_v = seq(0., 10., 9);
        end_v.extend(vals(&[0., 10.]));
        let end_reset = load(5 * M, &end_v);
        assert_close(eval("rate", &middle, 50 * M, 50 * M), 0.08);
        assert_eq!(eval("rate", &end_reset, 50 * M, 5 * M), None);
        assert_close(eval("rate", &end_reset, 50 * M, 6 * M), 0.);

        let window = load(5 * M, &seq(0., 80., 10));
        assert_close(eval("rate", &window, 50 * M, 50 * M), 0.26666666666666666);
        // rate(x[10m] offset 5m) at 50m is the window (35m, 45m].
        let a = load(5 * M, &seq(0., 10., 10));
        let b = load(5 * M, &seq(0., 20., 10));
        assert_close(eval("rate", &a, 45 * M, 10 * M), 0.03333333333333333);
        assert_close(eval("rate", &b, 45 * M, 10 * M), 0.06666666666666667);

        for (start, want10, want50) in [
            (0., 0.5, 0.6),
            (60., 0.55, 0.6),
            (120., 0.6, 0.6),
            (180., 0.6, 0.6),
            (240., 0.6, 0.6),
            (300., 0.6, 0.6),
        ] {
            let s = load(4 * M, &seq(start, 240., 10));
            assert_close(eval("rate", &s, 10 * M, 20 * M), want10);
            assert_close(eval("rate", &s, 50 * M, 20 * M), want50);
        }
    }

    #[test]
    fn rate_needs_two_samples_and_uses_window_length() {
        let one = [Sample::new(10 * S, 5.)];
        assert_eq!(eval("rate", &one, 60 * S, 60 * S), None);
        assert_eq!(eval("delta", &[], 60 * S, 60 * S), None);
        // A fractional-second range: extrapolated by 1 ms at the start, divided by 1.001 s.
        let s = [
            Sample::new(0, 10.),
            Sample::new(500, 11.),
            Sample::new(1000, 12.),
        ];
        assert_close(eval("rate", &s, 1000, 1001), 2.);
        assert_close(eval("increase", &s, 1000, 1001), 2.002);
        assert_close(eval("delta", &s, 1000, 1001), 2.002);
        // A counter is not extrapolated below zero: it would reach 0 at t = -0.5 s.
        let z = [Sample::new(0, 1.), Sample::new(1000, 3.)];
        assert_close(eval("increase", &z, 1000, 2000), 3.);
        assert_close(eval("delta", &z, 1000, 2000), 4.);
        let z = [Sample::new(0, 1.), Sample::new(1000, 5.)];
        assert_close(eval("increase", &z, 1000, 2000), 5.);
        assert_close(eval("delta", &z, 1000, 2000), 8.);
    }

    #[test]
    fn irate_and_idelta() {
        // functions.test:217-243
        let foo = load(5 * M, &seq(0., 10., 10));
        let mut bar_v = seq(0., 10., 5);
        bar_v.extend(seq(0., 10., 5));
        let bar = load(5 * M, &bar_v);
        assert_close(eval("irate", &foo, 50 * M, 50 * M), 0.03333333333333333);
        assert_close(eval("irate", &bar, 50 * M, 50 * M), 0.03333333333333333);
        assert_close(eval("irate", &foo, 30 * M, 50 * M), 0.03333333333333333);
        assert_close(eval("irate", &bar, 30 * M, 50 * M), 0.);
        let nan = load(5 * M, &vals(&[1., f64::NAN, f64::NAN, 5., 11.]));
        let r = 15 * M + S;
        assert_eq!(eval("irate", &nan, 0, r), None);
        for at in [5 * M, 10 * M, 15 * M] {
            assert!(eval("irate", &nan, at, r).unwrap().is_nan());
            assert!(eval("idelta", &nan, at, r).unwrap().is_nan());
        }
        assert_close(eval("irate", &nan, 20 * M, r), 0.02);
        // functions.test:289-333
        assert_close(eval("idelta", &nan, 20 * M, r), 6.);
        let ifoo = load(5 * M, &vals(&[0., 50., 100., 150.]));
        let ibar = load(5 * M, &vals(&[0., 50., 100., 50.]));
        assert_close(eval("idelta", &ifoo, 20 * M, 20 * M), 50.);
        assert_close(eval("idelta", &ibar, 20 * M, 20 * M), -50.);
    }

    #[test]
    fn delta_gauge() {
        // functions.test:275-289
        let foo = load(5 * M, &vals(&[0., 50., 100., 150., 200.]));
        let bar = load(5 * M, &vals(&[200., 150., 100., 50., 0.]));
        assert_close(eval("delta", &foo, 20 * M, 20 * M), 200.);
        assert_close(eval("delta", &bar, 20 * M, 20 * M), -200.);
    }

    #[test]
    fn deriv_and_predict_linear() {
        // functions.test:361-464
        let mut middle_v = seq(0., 10., 4);
        middle_v.extend(seq(0., 10., 5));
        let middle = load(5 * M, &middle_v);
        let total = load(5 * M, &seq(0., 80., 10));
        assert_close(eval("deriv", &total, 50 * M, 50 * M), 0.26666666666666666);
        assert_close(
            eval("deriv", &middle, 50 * M, 100 * M),
            0.010606060606060607,
        );

        assert_close(
            eval_p("predict_linear", &middle, 50 * M, 50 * M, &[3600.]),
            70.,
        );
        // `@ 3000`: the window ends at 3000 s, the prediction is anchored at the eval time.
        let at3000 = 3000 * S;
        for (eval_at, want) in [
            (50 * M, 76.81818181818181),
            (10 * M, 51.36363636363637),
            (70 * M, 89.54545454545455),
        ] {
            let got = {
                let start = at3000 - 55 * M;
                let samples: Vec<Sample> = middle
                    .iter()
                    .copied()
                    .filter(|s| s.t > start && s.t <= at3000)
                    .collect();
                let params = [3600., eval_at as f64];
                predict_linear(&RangeWindow {
                    samples: &samples,
                    start,
                    end: at3000,
                    params: &params,
                })
            };
            assert_close(got, want);
        }

        // ±Inf in the range → NaN (functions.test:367, 400-403, 438-440).
        let mut inf_v = vec![Some(f64::NEG_INFINITY)];
        inf_v.extend(seq(0., 80., 10));
        inf_v.push(Some(f64::INFINITY));
        let inf = load(5 * M, &inf_v);
        assert!(eval("deriv", &inf, 100 * M, 100 * M).unwrap().is_nan());
        assert!(eval_p("predict_linear", &inf, 100 * M, 100 * M, &[6000.])
            .unwrap()
            .is_nan());

        // A constant series: slope 0; a constant infinite one: NaN.
        let c = load(S, &vals(&[3., 3., 3.]));
        assert_eq!(eval("deriv", &c, 2 * S, 10 * S), Some(0.));
        assert_eq!(
            eval_p("predict_linear", &c, 2 * S, 10 * S, &[100.]),
            Some(3.)
        );
        let ci = load(S, &vals(&[f64::INFINITY, f64::INFINITY]));
        assert!(eval("deriv", &ci, 2 * S, 10 * S).unwrap().is_nan());
        // Fewer than two samples: nothing.
        assert_eq!(eval("deriv", &c[..1], 0, 10 * S), None);
        assert_eq!(eval_p("predict_linear", &c[..1], 0, 10 * S, &[1.]), None);
    }

    #[test]
    fn predict_linear_emulated_with_deriv() {
        // functions.test:459-464: a sample exactly at the end on the line.
        let total = load(5 * M, &seq(0., 80., 10));
        let p = eval_p("predict_linear", &total, 50 * M, 50 * M, &[3600.]).unwrap();
        let d = eval("deriv", &total, 50 * M, 50 * M).unwrap();
        assert!((p - (800. + d * 3600.)).abs() < 1e-9);
    }

    #[test]
    fn double_exponential_smoothing_cases() {
        // functions.test:886-930: windows of 1m over 10s samples at 8000s.
        let series = |a: (f64, f64, usize), b: Option<(f64, f64, usize)>| {
            let mut v = seq(a.0, a.1, a.2);
            if let Some(b) = b {
                v.extend(seq(b.0, b.1, b.2));
            }
            load(10 * S, &v)
        };
        let at = 8000 * S;
        let p = [0.01, 0.1];
        for (s, want) in [
            (series((0., 10., 1000), Some((100., 30., 1000))), 8000.),
            (series((0., 20., 1000), Some((200., 30., 1000))), 16000.),
            (series((0., 30., 1000), Some((300., 80., 1000))), 24000.),
            (series((0., 40., 2000), None), 32000.),
            (series((8000., -10., 1000), None), 0.),
            (series((0., -20., 1000), None), -16000.),
            (series((0., 30., 1000), Some((300., -80., 1000))), 24000.),
            (series((0., -40., 1000), Some((0., 40., 1000))), -32000.),
        ] {
            assert_close(eval_p("double_exponential_smoothing", &s, at, M, &p), want);
        }
        // At 20010s the 1m window holds only samples of the second part (functions.test:906).
        let s = series((0., 10., 1000), Some((100., 30., 1000)));
        assert_close(
            eval_p("double_exponential_smoothing", &s, 20010 * S, M, &p),
            30100.,
        );
    }

    #[test]
    fn double_exponential_smoothing_args() {
        let s = load(S, &vals(&[1., 2., 3.]));
        assert_eq!(
            eval_p(
                "double_exponential_smoothing",
                &s,
                2 * S,
                10 * S,
                &[1.0, 0.5]
            ),
            None
        );
        assert_eq!(
            eval_p(
                "double_exponential_smoothing",
                &s,
                2 * S,
                10 * S,
                &[0.5, 0.0]
            ),
            None
        );
        assert_eq!(
            eval_p("double_exponential_smoothing", &s, 2 * S, 10 * S, &[0.5]),
            None
        );
        assert_eq!(
            eval_p(
                "double_exponential_smoothing",
                &s[..1],
                0,
                10 * S,
                &[0.5, 0.5]
            ),
            None
        );
        assert!(eval_p(
            "double_exponential_smoothing",
            &s,
            2 * S,
            10 * S,
            &[f64::NAN, 0.5]
        )
        .unwrap()
        .is_nan());
        assert_eq!(
            double_exponential_smoothing_arg_error(1.0, 0.5).as_deref(),
            Some("invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000")
        );
        assert_eq!(
            double_exponential_smoothing_arg_error(0.5, -0.25).as_deref(),
            Some("invalid trend factor. Expected: 0 < tf < 1, got: -0.250000")
        );
        assert_eq!(
            double_exponential_smoothing_arg_error(f64::INFINITY, 0.5).as_deref(),
            Some("invalid smoothing factor. Expected: 0 < sf < 1, got: +Inf")
        );
        assert_eq!(double_exponential_smoothing_arg_error(0.5, 0.5), None);
        assert_eq!(
            double_exponential_smoothing_arg_error(f64::NAN, f64::NAN),
            None
        );
    }

    #[test]
    #[allow(clippy::excessive_precision)] // Values as written in functions.test.
    fn avg_and_sum_over_time_special_values() {
        // functions.test:934-1079, all evaluated at 55s over [1m] of 10s samples.
        let inf = f64::INFINITY;
        let nan = f64::NAN;
        let big = 9.988465674311579e+307;
        let cases: &[(&[f64], f64)] = &[
            (&[1., 2., 3., 4., 5.], 3.),
            (&[1., 2., 3., 4., inf], inf),
            (&[1., 2., 3., 4., -inf], -inf),
            (&[1., 2., 3., inf, -inf], nan),
            (&[inf, 0., inf], inf),
            (&[inf, inf, inf, -inf], nan),
            (&[1., 2., 3., -inf, -inf], -inf),
            (&[-inf, 0., -inf], -inf),
            (&[-inf, -inf, -inf, inf], nan),
            (&[1., 2., -inf, -inf, inf], nan),
            (&[big, big], big),
            (&[-big, -big, -big], -big),
            (&[-big, big], 0.),
            (&[1., 2., 3., nan, nan], nan),
        ];
        for (v, want) in cases {
            let s = load(10 * S, &vals(v));
            assert_close(eval("avg_over_time", &s, 55 * S, M), *want);
        }
        let s = load(10 * S, &vals(&[1., 2., 3., 4., 5.]));
        assert_eq!(eval("avg_over_time", &s, 55 * S, 10 * S), None);
        assert_close(eval("avg_over_time", &s, 55 * S, 20 * S), 5.);
        let s = load(10 * S, &vals(&[1., 2., 3., f64::NAN, f64::NAN]));
        assert_close(eval("avg_over_time", &s, 20 * S, M), 2.);
        // Overflowing sums (functions.test:1027-1039).
        assert_close(
            eval(
                "sum_over_time",
                &load(10 * S, &vals(&[big, big])),
                55 * S,
                M,
            ),
            inf,
        );
        // Kahan keeps the small parts (functions.test:1080-1088).
        let s = load(10 * S, &vals(&[1., 1e100, 1., -1e100]));
        assert_close(eval("sum_over_time", &s, M, 2 * M), 2.);
        assert_close(eval("avg_over_time", &s, M, 2 * M), 0.5);
    }

    #[test]
    fn avg_over_time_extreme_values() {
        // functions.test:1090-1152, at 55s over [1m] of 5s samples.
        let cases: &[(&[f64], f64)] = &[
            (
                &[1e10, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6],
                1.6666666666666675e+09,
            ),
            (
                &[
                    5.30921651659898,
                    0.961118537914768,
                    1.62091361305318,
                    0.865089463758091,
                    0.323055185914577,
                    0.951811357687154,
                ],
                1.67186744582113,
            ),
            (
                &[1.78264e50, 0.76342771, 1.9592258, 7.69805412, 458.90154],
                3.56528E+49,
            ),
            (
                &[0.76342771, 1.9592258, 7.69805412, 1.78264e50, 458.90154],
                3.56528E+49,
            ),
            (
                &[
                    1.78264E+50,
                    0.76342771,
                    1.9592258,
                    2.258E+220,
                    7.69805412,
                    458.90154,
                ],
                3.76333333333333E+219,
            ),
            (
                &[
                    -1.78264E+50,
                    0.76342771,
                    1.9592258,
                    2.258E+220,
                    7.69805412,
                    -458.90154,
                ],
                3.76333333333333E+219,
            ),
            (
                &[
                    -1.78264E+50,
                    0.76342771,
                    1.9592258,
                    -2.258E+220,
                    7.69805412,
                    -458.90154,
                ],
                -3.76333333333333E+219,
            ),
            (
                &[
                    -1.78264E+215,
                    0.76342771,
                    1.9592258,
                    2.258E+220,
                    7.69805412,
                    -458.90154,
                ],
                3.76330362266667E+219,
            ),
            (
                &[
                    -1.78264E+215,
                    0.76342771,
                    1.9592258,
                    2.258E+220,
                    7.69805412,
                    1.78264E+215,
                    -458.90154,
                ],
                3.225714285714286e+219,
            ),
            (
                &[
                    -1.78264E+219,
                    0.76342771,
                    1.9592258,
                    2.3757689E+217,
                    -2.3757689E+217,
                    2.258E+220,
                    7.69805412,
                    1.78264E+219,
                    -458.90154,
                ],
                2.5088888888888888e+219,
            ),
            (
                &[
                    -2.258E+220,
                    -1.78264E+219,
                    0.76342771,
                    1.9592258,
                    2.3757689E+217,
                    -2.3757689E+217,
                    2.258E+220,
                    7.69805412,
                    1.78264E+219,
                    -458.90154,
                ],
                0.,
            ),
        ];
        for (v, want) in cases {
            let s = load(5 * S, &vals(v));
            let got = eval("avg_over_time", &s, 55 * S, M).unwrap();
            // Upstream's test tolerance is 1e-6 relative; several expectations are rounded.
            let ok = if *want == 0. {
                got == 0.
            } else {
                ((got - want) / want).abs() < 1e-6
            };
            assert!(ok, "{v:?}: got {got}, want {want}");
        }
    }

    #[test]
    fn avg_over_time_exact_for_constant_series() {
        // functions.test:1154-1190: must be exactly 52, compared with ==.
        let s = load(10 * S, &seq(52., 0., 100));
        for r in [100 * S, 110 * S, 120 * S, 130 * S] {
            assert_eq!(eval("avg_over_time", &s, 10 * M, r), Some(52.));
        }
    }

    #[test]
    fn sum_over_time_dense() {
        // functions.test:1192-1231
        let s = load(1, &seq(1., 0., 4000));
        for r in [
            1000, 1001, 1002, 1003, 2000, 2001, 2002, 2003, 3000, 3001, 3002, 3003,
        ] {
            assert_eq!(eval("sum_over_time", &s, 4 * S, r), Some(r as f64));
            assert_eq!(eval("count_over_time", &s, 4 * S, r), Some(r as f64));
        }
    }

    #[test]
    fn variance_over_time() {
        // functions.test:1233-1274
        let s = load(10 * S, &vals(&[0., 8., 8., 2., 3.]));
        assert_close(eval("stdvar_over_time", &s, M, 2 * M), 10.56);
        let sd = eval("stddev_over_time", &s, M, 2 * M).unwrap();
        assert!((sd - 3.249615).abs() < 1e-6);
        let c = load(10 * S, &vals(&[1.5990505637277868; 3]));
        assert_eq!(eval("stdvar_over_time", &c, 55 * S, M), Some(0.));
        assert_eq!(eval("stddev_over_time", &c, 55 * S, M), Some(0.));
        assert_eq!(eval("stddev_over_time", &c, 55 * S, 1), None);
        // functions.test:1253-1263: the float part of a mixed range.
        let f = load(10 * S, &vals(&[1., 1., 1.]));
        assert_eq!(eval("stddev_over_time", &f, M, 2 * M), Some(0.));
        assert!(
            eval("stdvar_over_time", &load(S, &vals(&[1., f64::NAN])), S, M)
                .unwrap()
                .is_nan()
        );
    }

    #[test]
    fn mad_over_time_cases() {
        // functions.test:1276-1315
        let m = load(10 * S, &vals(&[4., 6., 2., 1., 999., 1., 2.]));
        assert_close(eval("mad_over_time", &m, 70 * S, 70 * S), 1.);
        let odd = load(10 * S, &vals(&[1., 2., 3., 4., 5.]));
        assert_close(eval("mad_over_time", &odd, 40 * S, 50 * S), 1.);
        let eq = load(10 * S, &vals(&[7.; 5]));
        assert_close(eval("mad_over_time", &eq, 40 * S, 50 * S), 0.);
        let single = load(10 * S, &vals(&[5.]));
        assert_close(eval("mad_over_time", &single, 0, 10 * S), 0.);
        let nan = load(10 * S, &vals(&[1., 2., f64::NAN, 4.]));
        assert!(eval("mad_over_time", &nan, 30 * S, 40 * S)
            .unwrap()
            .is_nan());
        let mixed = load(10 * S, &vals(&[1., 1., 1.]));
        assert_close(eval("mad_over_time", &mixed, 70 * S, 70 * S), 0.);
    }

    #[test]
    fn ts_of_functions() {
        // functions.test:1317-1366, load 10s53ms.
        let step = 10 * S + 53;
        let m = load(step, &vals(&[1., 2., 3., 0., 5., 6., 2., 1., 4.]));
        assert_close(eval("ts_of_min_over_time", &m, 90 * S, 90 * S), 30.159);
        assert_close(eval("ts_of_max_over_time", &m, 90 * S, 90 * S), 50.265);
        let last = load(step, &[Some(1.), Some(2.), Some(3.), None, None]);
        assert_close(eval("ts_of_last_over_time", &last, 90 * S, 90 * S), 20.106);
        assert_close(eval("ts_of_last_over_time", &last, 95 * S, 90 * S), 20.106);
        let first = load(
            step,
            &[None, None, Some(1.), Some(2.), Some(3.), None, None],
        );
        assert_close(
            eval("ts_of_first_over_time", &first, 90 * S, 90 * S),
            20.106,
        );
        assert_close(
            eval("ts_of_first_over_time", &first, 95 * S, 90 * S),
            20.106,
        );
        assert_eq!(eval("ts_of_first_over_time", &first, 15 * S, 90 * S), None);
        // Ties: the last occurrence of the extreme wins.
        let ties = load(S, &vals(&[1., 0., 1., 0.]));
        assert_close(eval("ts_of_max_over_time", &ties, 3 * S, 10 * S), 2.);
        assert_close(eval("ts_of_min_over_time", &ties, 3 * S, 10 * S), 3.);
        // NaN only wins when alone.
        let n = load(S, &vals(&[f64::NAN, 5., f64::NAN]));
        assert_close(eval("ts_of_max_over_time", &n, 2 * S, 10 * S), 1.);
    }

    #[test]
    fn quantile_over_time_cases() {
        // functions.test:1368-1441
        let two = load(10 * S, &vals(&[0., 1.]));
        let three = load(10 * S, &vals(&[0., 1., 2.]));
        let uneven = load(10 * S, &vals(&[0., 1., 4.]));
        let q = |q: f64, s: &[Sample]| eval_p("quantile_over_time", s, M, 2 * M, &[q]);
        for (qq, a, b, c) in [
            (0., 0., 0., 0.),
            (0.5, 0.5, 1., 1.),
            (0.75, 0.75, 1.5, 2.5),
            (0.8, 0.8, 1.6, 2.8),
            (1., 1., 2., 4.),
            (-1., f64::NEG_INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY),
            (2., f64::INFINITY, f64::INFINITY, f64::INFINITY),
        ] {
            assert_close(q(qq, &two), a);
            assert_close(q(qq, &three), b);
            assert_close(q(qq, &uneven), c);
        }
        assert!(q(f64::NAN, &two).unwrap().is_nan());
        assert_eq!(q(0.5, &[]), None);
    }

    #[test]
    fn min_max_first_last_count_over_time() {
        // functions.test:1563-1663
        let nan = f64::NAN;
        let data: &[(&[f64], f64, f64, f64, f64)] = &[
            // values, min, max, last, first
            (&[2., 0., 3.], 0., 3., 3., 2.),
            (&[2., 0., nan], 0., 2., nan, 2.),
            (&[2., nan, 1.], 1., 2., 1., 2.),
            (&[nan, 0., 1.], 0., 1., 1., nan),
            (&[nan, nan, nan], nan, nan, nan, nan),
        ];
        for (v, mn, mx, last, first) in data {
            let s = load(10 * S, &vals(v));
            assert_close(eval("min_over_time", &s, M, 2 * M), *mn);
            assert_close(eval("max_over_time", &s, M, 2 * M), *mx);
            assert_close(eval("last_over_time", &s, M, 2 * M), *last);
            assert_close(eval("first_over_time", &s, M, 2 * M), *first);
            assert_eq!(eval("count_over_time", &s, M, 2 * M), Some(3.));
            assert_eq!(eval("present_over_time", &s, M, 2 * M), Some(1.));
        }
        let sparse = load(10 * S, &[None, Some(5.), Some(2.), None, Some(4.), None]);
        assert_close(eval("min_over_time", &sparse, M, 2 * M), 2.);
        assert_close(eval("max_over_time", &sparse, M, 2 * M), 5.);
        assert_close(eval("last_over_time", &sparse, M, 2 * M), 4.);
        assert_close(eval("first_over_time", &sparse, M, 2 * M), 5.);
        assert_eq!(eval("count_over_time", &sparse, M, 2 * M), Some(3.));
        for name in [
            "min_over_time",
            "max_over_time",
            "last_over_time",
            "count_over_time",
            "present_over_time",
        ] {
            assert_eq!(eval(name, &[], M, 2 * M), None, "{name}");
        }
    }

    #[test]
    fn window_is_left_open() {
        // present_over_time(httpd_log_lines_total[30s]) at 1m: the only sample is at 0
        // (functions.test:1876-1880) — and a sample exactly at the start is excluded.
        let s = load(M, &vals(&[1.]));
        assert_eq!(eval("present_over_time", &s, 0, 30 * S), Some(1.));
        assert_eq!(eval("present_over_time", &s, M, 30 * S), None);
        assert_eq!(eval("present_over_time", &s, 30 * S, 30 * S), None);
    }

    #[test]
    fn kahan_inc_matches_upstream() {
        let (s, c) = kahan_inc(1e100, 1., 0.);
        let (s, c) = kahan_inc(1., s, c);
        let (s, c) = kahan_inc(-1e100, s, c);
        assert_eq!(s + c, 2.);
        assert_eq!(kahan_inc(f64::INFINITY, 1., 5.), (f64::INFINITY, 0.));
    }
}
