//! Decimal scaling of values (format v2): most scraped floats are short decimals (CPU seconds
//! with 2 decimals, load averages, ratios). A series' values are stored as integers
//! `m = v × 10^scale` in the DELTA-encoded `value_int` column when `m / 10^scale` gives back the
//! very same bits, with one `scale` per series in the series file. Values that do not
//! round-trip (NaN, ±Inf, -0.0, full-precision floats) stay in the float column, row by row.
//!
//! Exactness: the powers of ten up to 10^22 are exact doubles and IEEE division is correctly
//! rounded, so the reader's `m as f64 / POW10[scale]` is the same computation the writer
//! checked, bit for bit.

/// Largest scale tried: 9 decimals covers nanosecond-resolution seconds.
pub(crate) const MAX_SCALE: u8 = 9;

const POW10: [f64; MAX_SCALE as usize + 1] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/// Below 2^53 every integer is a double, so the cast back from i64 is exact.
const INT_LIMIT: f64 = 9_007_199_254_740_992.0;

/// `v × 10^scale` as an integer, if dividing it back gives exactly `v`.
#[inline]
pub(crate) fn scaled(v: f64, scale: u8) -> Option<i64> {
    if !v.is_finite() || (v == 0.0 && v.is_sign_negative()) {
        return None;
    }
    let p = POW10[scale as usize];
    let m = (v * p).round();
    if m.abs() >= INT_LIMIT {
        return None;
    }
    ((m / p).to_bits() == v.to_bits()).then_some(m as i64)
}

/// The value an integer of `value_int` stands for in a series of the given scale.
#[inline]
pub(crate) fn unscale(m: i64, scale: u8) -> f64 {
    let s = (scale as usize).min(MAX_SCALE as usize);
    m as f64 / POW10[s]
}

/// The scale of a series: the smallest one at which 99% of the values that have any scale are
/// exact (one odd value must not multiply every other by a billion).
pub(crate) fn choose_scale(values: impl Iterator<Item = f64>) -> u8 {
    let mut by_scale = [0usize; MAX_SCALE as usize + 1];
    let mut total = 0usize;
    for v in values {
        if let Some(s) = (0..=MAX_SCALE).find(|&s| scaled(v, s).is_some()) {
            by_scale[s as usize] += 1;
            total += 1;
        }
    }
    if total == 0 {
        return 0;
    }
    let need = total - total / 100;
    let mut acc = 0;
    for (s, n) in by_scale.iter().enumerate() {
        acc += n;
        if acc >= need {
            return s as u8;
        }
    }
    MAX_SCALE
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_decimals_scale_and_round_trip() {
        assert_eq!(scaled(12345.67, 2), Some(1_234_567));
        assert_eq!(unscale(1_234_567, 2).to_bits(), 12345.67f64.to_bits());
        assert_eq!(scaled(0.1, 0), None);
        assert_eq!(scaled(0.1, 1), Some(1));
        assert_eq!(scaled(f64::NAN, 2), None);
        assert_eq!(scaled(-0.0, 0), None);
        assert_eq!(scaled(f64::INFINITY, 0), None);
        assert_eq!(scaled(std::f64::consts::PI, 9), None);
        assert_eq!(choose_scale([1.5, 2.25, 3.0].into_iter()), 2);
        assert_eq!(choose_scale([1.0, 2.0, f64::NAN].into_iter()), 0);
        // One value in a thousand needing 9 decimals does not raise the scale.
        let mostly: Vec<f64> = (0..1000)
            .map(|i| {
                if i == 0 {
                    0.123456789
                } else {
                    i as f64 / 100.0
                }
            })
            .collect();
        assert_eq!(choose_scale(mostly.into_iter()), 2);
    }

    proptest! {
        #[test]
        fn whatever_scales_comes_back_bit_exact(v in any::<f64>(), s in 0u8..=MAX_SCALE) {
            if let Some(m) = scaled(v, s) {
                prop_assert_eq!(unscale(m, s).to_bits(), v.to_bits());
            }
        }

        #[test]
        fn decimals_with_few_digits_always_scale(m in -1_000_000_000_000i64..1_000_000_000_000, s in 0u8..=6) {
            // The double nearest to m / 10^s, as parsing "<m with s decimals>" gives.
            let v: f64 = format!("{}e-{}", m, s).parse().unwrap();
            prop_assert!((0..=s).any(|k| scaled(v, k).is_some()) || v == 0.0 && v.is_sign_negative());
        }
    }
}
