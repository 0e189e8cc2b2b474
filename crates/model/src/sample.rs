//! Float samples and Prometheus's staleness marker.

/// The bit pattern Prometheus writes as a stale marker: a signalling NaN distinct from the NaN
/// that arithmetic produces, so "series ended" survives storage and is never mistaken for data.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker as an `f64`. Compare with [`is_stale_nan`], never with `==`.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// Whether `v` is Prometheus's stale marker (bit-exact; an ordinary NaN is not stale).
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: milliseconds since the Unix epoch and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

impl Sample {
    pub const fn new(t: i64, v: f64) -> Self {
        Self { t, v }
    }

    /// Bit-exact equality: NaN equals NaN of the same payload, which is what duplicate detection
    /// and round-trip tests need.
    pub fn bit_eq(&self, other: &Sample) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_not_ordinary_nan() {
        assert!(is_stale_nan(STALE_NAN));
        assert!(STALE_NAN.is_nan());
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(0.0));
    }

    #[test]
    fn bit_eq_distinguishes_nan_payloads() {
        let a = Sample::new(1, f64::NAN);
        assert!(a.bit_eq(&Sample::new(1, f64::NAN)));
        assert!(!a.bit_eq(&Sample::new(1, STALE_NAN)));
        assert!(!a.bit_eq(&Sample::new(2, f64::NAN)));
    }
}
