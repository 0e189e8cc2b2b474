//! Timestamps and durations in the formats Alertmanager reads and writes, plus the clock.

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

/// A point in time. Upstream uses Go's zero time (`0001-01-01T00:00:00Z`) for "unset"; so do we,
/// because it is visible on the wire (a firing alert's `endsAt` in a webhook payload).
pub type Timestamp = DateTime<Utc>;

/// Go's zero `time.Time`.
pub fn zero_time() -> Timestamp {
    NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn is_zero(t: &Timestamp) -> bool {
    *t == zero_time()
}

/// Adds a std duration, saturating instead of panicking.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Subtracts a std duration, saturating.
pub fn sub(t: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Go's `time.RFC3339Nano` rendering (what `time.Time.MarshalJSON` writes): fraction with trailing
/// zeros removed, no fraction at all when it is zero.
pub fn format_rfc3339_nano(t: &Timestamp) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// go-openapi `strfmt.DateTime` rendering used by API v2: always three fractional digits.
pub fn format_rfc3339_millis(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses an RFC 3339 timestamp (any fraction length, any offset) into UTC.
pub fn parse_rfc3339(s: &str) -> Result<Timestamp, chrono::ParseError> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
}

/// Where "now" comes from. The dispatcher, the stores and the API read time only through this,
/// so timer behaviour is testable without sleeping.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Utc::now()
    }
}

/// A manually advanced clock for tests.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<Mutex<Timestamp>>);

impl FakeClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock();
        *t = add(*t, d);
    }
    pub fn set(&self, t: Timestamp) {
        *self.0.lock() = t;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self.0.lock()
    }
}

/// A Prometheus-format duration (`1d2h30m`, `500ms`, `0`), as `model.Duration` in upstream
/// configs. Stored with millisecond precision like upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct PromDuration(pub Duration);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid duration string: {0:?}")]
pub struct DurationParseError(pub String);

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3600 * 1000),
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

impl PromDuration {
    pub fn parse(s: &str) -> Result<Self, DurationParseError> {
        let err = || DurationParseError(s.to_string());
        if s == "0" {
            return Ok(Self(Duration::ZERO));
        }
        if s.is_empty() {
            return Err(err());
        }
        let bytes = s.as_bytes();
        let mut pos = 0;
        let mut next_unit = 0; // units must appear in order, each at most once
        let mut total: u64 = 0;
        while pos < bytes.len() {
            let start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            if start == pos {
                return Err(err());
            }
            let n: u64 = s[start..pos].parse().map_err(|_| err())?;
            let rest = &s[pos..];
            // "ms" must be tried before "m".
            let (idx, unit) = UNITS
                .iter()
                .enumerate()
                .filter(|(_, (u, _))| rest.starts_with(u))
                .max_by_key(|(_, (u, _))| u.len())
                .ok_or_else(err)?;
            if idx < next_unit {
                return Err(err());
            }
            next_unit = idx + 1;
            pos += unit.0.len();
            total = n
                .checked_mul(unit.1)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(err)?;
        }
        Ok(Self(Duration::from_millis(total)))
    }
}

impl std::fmt::Display for PromDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (i, (unit, mult)) in UNITS.iter().enumerate() {
            // Years and weeks only when exact, like upstream ("90d" rather than "12w6d").
            if i < 2 && !ms.is_multiple_of(*mult) {
                continue;
            }
            let v = ms / mult;
            if v > 0 {
                write!(f, "{v}{unit}")?;
                ms -= v * mult;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for PromDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PromDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prom_durations() {
        let ok = [
            ("0", 0),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("1d", 86_400_000),
            ("1y", 31_536_000_000),
            ("2w1d", 1_296_000_000),
            ("1s500ms", 1500),
        ];
        for (s, ms) in ok {
            assert_eq!(
                PromDuration::parse(s).unwrap().0.as_millis() as u64,
                ms,
                "{s}"
            );
        }
        for bad in ["", "5", "m", "1.5h", "5m1h", "1h1h", "-1s", "1 h", "5M"] {
            assert!(PromDuration::parse(bad).is_err(), "{bad}");
        }
        let rt = |s: &str| PromDuration::parse(s).unwrap().to_string();
        assert_eq!(rt("0"), "0s");
        assert_eq!(rt("90m"), "1h30m");
        assert_eq!(rt("4h"), "4h");
        assert_eq!(rt("8d"), "8d");
        assert_eq!(rt("14d"), "2w");
        assert_eq!(rt("9d"), "9d");
        assert_eq!(rt("1500ms"), "1s500ms");
    }

    #[test]
    fn go_time_rendering() {
        assert_eq!(format_rfc3339_nano(&zero_time()), "0001-01-01T00:00:00Z");
        let t = parse_rfc3339("2026-11-24T23:30:45.730905661Z").unwrap();
        assert_eq!(format_rfc3339_nano(&t), "2026-11-24T23:30:45.730905661Z");
        let t = parse_rfc3339("2026-11-24T23:35:55.500+01:00").unwrap();
        assert_eq!(format_rfc3339_nano(&t), "2026-11-24T22:35:55.5Z");
        assert_eq!(format_rfc3339_millis(&t), "2026-11-24T22:35:55.500Z");
        assert!(is_zero(&parse_rfc3339("0001-01-01T00:00:00.000Z").unwrap()));
    }
}
