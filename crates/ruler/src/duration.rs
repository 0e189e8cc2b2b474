//! Prometheus's duration syntax (`model.Duration`): `1h30m`, `5m`, `250ms`, `1d`, `0`; units
//! `y w d h m s ms` in decreasing order, each at most once, integers only.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration written in Prometheus's syntax; prints back in that syntax (`1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PromDuration(pub Duration);

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
];

/// Why a duration does not parse; the message is Prometheus's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid duration string: {0:?}")]
pub struct DurationError(pub String);

impl PromDuration {
    /// Parses Prometheus's duration syntax.
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        let bad = || DurationError(s.to_string());
        if s == "0" {
            return Ok(Self(Duration::ZERO));
        }
        if s.is_empty() {
            return Err(bad());
        }
        let mut rest = s;
        let mut total: u64 = 0;
        // Index into UNITS of the last unit seen: each unit must come after the previous.
        let mut last: Option<usize> = None;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            // `ms` before `m` so that "5ms" is not read as minutes followed by garbage.
            let unit = ["ms", "y", "w", "d", "h", "m", "s"]
                .into_iter()
                .find(|u| rest.starts_with(u))
                .ok_or_else(bad)?;
            let idx = UNITS.iter().position(|(u, _)| *u == unit).ok_or_else(bad)?;
            if last.is_some_and(|l| idx <= l) {
                return Err(bad());
            }
            last = Some(idx);
            rest = &rest[unit.len()..];
            total = n
                .checked_mul(UNITS[idx].1)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        Ok(Self(Duration::from_millis(total)))
    }

    /// Milliseconds, saturating.
    pub fn as_millis(&self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for PromDuration {
    /// Prometheus's `Duration.String()`: the largest units first, `0s` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX);
        if ms == 0 {
            return f.write_str("0s");
        }
        for (u, len) in UNITS {
            // Prometheus prints weeks only as a whole multiple of them, never mixed with days.
            if u == "w" && ms % len != 0 {
                continue;
            }
            let n = ms / len;
            if n > 0 {
                write!(f, "{n}{u}")?;
                ms -= n * len;
            }
        }
        Ok(())
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = crate::rulefmt::scalar_string(d)?;
        PromDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_prometheus_durations() {
        for (text, ms, back) in [
            ("0", 0, "0s"),
            ("0s", 0, "0s"),
            ("5m", 300_000, "5m"),
            ("1h30m", 5_400_000, "1h30m"),
            ("90m", 5_400_000, "1h30m"),
            ("250ms", 250, "250ms"),
            ("1d", 86_400_000, "1d"),
            ("2w", 14 * 86_400_000, "2w"),
            ("1y", 365 * 86_400_000, "1y"),
        ] {
            let d = PromDuration::parse(text).unwrap();
            assert_eq!(d.as_millis(), ms, "{text}");
            assert_eq!(d.to_string(), back, "{text}");
        }
    }

    #[test]
    fn refuses_what_prometheus_refuses() {
        for bad in [
            "",
            "5",
            "1.5m",
            "5 minutes",
            "-5m",
            "5m1h",
            "5m5m",
            "m",
            "1x",
        ] {
            let e = PromDuration::parse(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("not a valid duration string: {bad:?}")
            );
        }
    }
}
