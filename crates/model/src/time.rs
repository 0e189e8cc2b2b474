//! Timestamps as Prometheus writes and parses them: milliseconds since the epoch, RFC 3339, or
//! (floating) unix seconds.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats milliseconds since the epoch as RFC 3339 in UTC with millisecond precision.
pub fn format_rfc3339_ms(t: i64) -> String {
    match DateTime::<Utc>::from_timestamp_millis(t) {
        Some(d) => d.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => format!("{t}ms"),
    }
}

/// Parses a Prometheus API time parameter: unix seconds (fractions allowed) or RFC 3339.
/// Returns milliseconds since the epoch, rounded like Prometheus.
pub fn parse_time_param(s: &str) -> Option<i64> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() {
            return None;
        }
        let ms = (f * 1000.0).round();
        // Prometheus clamps to the representable range of its minimum/maximum times.
        return Some(ms.clamp(i64::MIN as f64 / 2.0, i64::MAX as f64 / 2.0) as i64);
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// Parses a Prometheus API duration parameter: float seconds or a PromQL duration (`5m`,
/// `1h30m`). Milliseconds.
pub fn parse_duration_param(s: &str) -> Option<i64> {
    if let Ok(f) = s.parse::<f64>() {
        if !f.is_finite() || f * 1000.0 > i64::MAX as f64 {
            return None;
        }
        return Some((f * 1000.0).round() as i64);
    }
    promql_duration_ms(s)
}

/// `1h30m`, `5m`, `250ms`, `1d`, `1w`, `1y` → milliseconds.
pub fn promql_duration_ms(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(ms)?)?;
    }
    Some(total)
}

/// Current time in milliseconds since the epoch.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = parse_duration_param;
        assert_eq!(d("1h30m"), Some(5_400_000));
        assert_eq!(d("250ms"), Some(250));
        assert_eq!(d("15"), Some(15_000));
        assert_eq!(d("0.5"), Some(500));
        assert_eq!(d("5x"), None);
        assert_eq!(d(""), None);
        assert_eq!(d("NaN"), None);
    }

    #[test]
    fn formats_and_parses() {
        assert_eq!(
            format_rfc3339_ms(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(parse_time_param("1700000000.123"), Some(1_700_000_000_123));
        assert_eq!(parse_time_param("1700000000"), Some(1_700_000_000_000));
        assert_eq!(
            parse_time_param("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_time_param("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_time_param("yesterday"), None);
        assert_eq!(parse_time_param("NaN"), None);
    }
}
