//! `time_intervals`: validated with upstream's rules and messages when the configuration loads,
//! compiled into [`TimeInterval`]s, and evaluated at flush time by the routes'
//! `mute_time_intervals` / `active_time_intervals` (Alertmanager 0.25 semantics).

use crate::amconfig::{AmConfigError, TimeIntervalSpec};
use crate::time::Timestamp;
use chrono::{Datelike, NaiveDate, Timelike};

fn invalid(field: String, message: String) -> AmConfigError {
    AmConfigError::Invalid { field, message }
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Minutes since midnight of `HH:MM` (24:00 allowed as an end).
fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 60 + m)
}

fn split_range(s: &str) -> (&str, &str) {
    match s.split_once(':') {
        Some((a, b)) => (a, b),
        None => (s, s),
    }
}

fn named_or_number(s: &str, names: &[&str], first: i64) -> Option<i64> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| *n == lower) {
        return Some(i as i64 + first);
    }
    if first == 1 {
        // months may be numbers
        let n: i64 = s.parse().ok()?;
        return (1..=12).contains(&n).then_some(n);
    }
    None
}

/// Where an interval's clock times are read: upstream's `location` (Go's `time.LoadLocation`
/// names: `UTC`, `Local`, or an IANA zone from the tz database compiled into `chrono-tz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Utc,
    Local,
    Zone(chrono_tz::Tz),
}

/// One compiled entry of a named time interval. Every non-empty list must match (AND); within a
/// list any range may match (OR). Ranges are inclusive except `times`, whose end is exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeInterval {
    /// Minutes since midnight, `[start, end)`.
    pub times: Vec<(u32, u32)>,
    /// Days from Sunday (0) to Saturday (6).
    pub weekdays: Vec<(u32, u32)>,
    /// 1..=31, or negative to count from the end of the month (-1 is the last day).
    pub days_of_month: Vec<(i64, i64)>,
    /// 1..=12.
    pub months: Vec<(u32, u32)>,
    pub years: Vec<(i32, i32)>,
    pub location: Location,
}

fn days_in_month(year: i32, month: u32) -> i64 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    match (
        NaiveDate::from_ymd_opt(year, month, 1),
        NaiveDate::from_ymd_opt(ny, nm, 1),
    ) {
        (Some(a), Some(b)) => (b - a).num_days(),
        _ => 31,
    }
}

impl TimeInterval {
    /// Whether `t` falls inside this interval, read in the interval's location.
    pub fn contains(&self, t: Timestamp) -> bool {
        match self.location {
            Location::Utc => self.contains_local(&t),
            Location::Local => self.contains_local(&t.with_timezone(&chrono::Local)),
            Location::Zone(tz) => self.contains_local(&t.with_timezone(&tz)),
        }
    }

    fn contains_local<T: Datelike + Timelike>(&self, t: &T) -> bool {
        let minute = t.hour() * 60 + t.minute();
        if !self.times.is_empty() && !self.times.iter().any(|&(s, e)| minute >= s && minute < e) {
            return false;
        }
        if !self.days_of_month.is_empty() {
            let dim = days_in_month(t.year(), t.month());
            let day = i64::from(t.day());
            let hit = self.days_of_month.iter().any(|&(b, e)| {
                let b = if b < 0 { dim + b + 1 } else { b };
                let e = if e < 0 { dim + e + 1 } else { e };
                // A range starting past the end of a short month (30:31 in February) matches
                // nothing that month rather than spilling into the last days.
                if b > dim {
                    return false;
                }
                let (b, e) = (b.clamp(-dim, dim), e.clamp(-dim, dim));
                day >= b && day <= e
            });
            if !hit {
                return false;
            }
        }
        let within = |ranges: &[(u32, u32)], v: u32| ranges.iter().any(|&(b, e)| v >= b && v <= e);
        if !self.months.is_empty() && !within(&self.months, t.month()) {
            return false;
        }
        if !self.weekdays.is_empty() && !within(&self.weekdays, t.weekday().num_days_from_sunday())
        {
            return false;
        }
        if !self.years.is_empty()
            && !self
                .years
                .iter()
                .any(|&(b, e)| t.year() >= b && t.year() <= e)
        {
            return false;
        }
        true
    }
}

/// Validates one `time_intervals` entry (errors name `field`) and compiles it.
pub fn compile(field: &str, spec: &TimeIntervalSpec) -> Result<TimeInterval, AmConfigError> {
    let mut out = TimeInterval {
        times: Vec::new(),
        weekdays: Vec::new(),
        days_of_month: Vec::new(),
        months: Vec::new(),
        years: Vec::new(),
        location: Location::Utc,
    };
    for (i, t) in spec.times.iter().enumerate() {
        let f = format!("{field}.times[{i}]");
        let start = parse_clock(&t.start_time)
            .filter(|m| *m < 24 * 60)
            .ok_or_else(|| {
                invalid(
                    format!("{f}.start_time"),
                    format!("couldn't parse timestamp {}, invalid format", t.start_time),
                )
            })?;
        let end = parse_clock(&t.end_time).ok_or_else(|| {
            invalid(
                format!("{f}.end_time"),
                format!("couldn't parse timestamp {}, invalid format", t.end_time),
            )
        })?;
        if start >= end {
            return Err(invalid(
                f,
                "start time cannot be equal or greater than end time".into(),
            ));
        }
        out.times.push((start, end));
    }
    for (i, w) in spec.weekdays.iter().enumerate() {
        let f = format!("{field}.weekdays[{i}]");
        let (a, b) = split_range(w);
        let a = named_or_number(a, &WEEKDAYS, 0)
            .ok_or_else(|| invalid(f.clone(), format!("{a:?} is not a valid weekday")))?;
        let b = named_or_number(b, &WEEKDAYS, 0)
            .ok_or_else(|| invalid(f.clone(), format!("{b:?} is not a valid weekday")))?;
        if a > b {
            return Err(invalid(f, "start day cannot be before end day".into()));
        }
        out.weekdays.push((a as u32, b as u32));
    }
    for (i, d) in spec.days_of_month.iter().enumerate() {
        let f = format!("{field}.days_of_month[{i}]");
        let (a, b) = split_range(d);
        let parse = |s: &str| -> Result<i64, AmConfigError> {
            let n: i64 = s
                .parse()
                .map_err(|_| invalid(f.clone(), format!("invalid day of month {s:?}")))?;
            if n == 0 || !(-31..=31).contains(&n) {
                return Err(invalid(
                    f.clone(),
                    format!("{n} is not a valid day of the month: out of range"),
                ));
            }
            Ok(n)
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if (a > 0) == (b > 0) && a > b {
            return Err(invalid(f, "start day cannot be after end day".into()));
        }
        if a < 0 && b > 0 {
            return Err(invalid(
                f,
                "end day must be negative if start day is negative".into(),
            ));
        }
        out.days_of_month.push((a, b));
    }
    for (i, m) in spec.months.iter().enumerate() {
        let f = format!("{field}.months[{i}]");
        let (a, b) = split_range(m);
        let a = named_or_number(a, &MONTHS, 1)
            .ok_or_else(|| invalid(f.clone(), format!("{a:?} is not a valid month")))?;
        let b = named_or_number(b, &MONTHS, 1)
            .ok_or_else(|| invalid(f.clone(), format!("{b:?} is not a valid month")))?;
        if a > b {
            return Err(invalid(f, "end month is before start month".into()));
        }
        out.months.push((a as u32, b as u32));
    }
    for (i, y) in spec.years.iter().enumerate() {
        let f = format!("{field}.years[{i}]");
        let (a, b) = split_range(y);
        let parse = |s: &str| -> Result<i32, AmConfigError> {
            s.parse::<u16>()
                .map(i32::from)
                .map_err(|_| invalid(f.clone(), format!("invalid year {s:?}")))
        };
        let (a, b) = (parse(a)?, parse(b)?);
        if a > b {
            return Err(invalid(f, "end year cannot be before start year".into()));
        }
        out.years.push((a, b));
    }
    if let Some(loc) = &spec.location {
        out.location = match loc.as_str() {
            "UTC" | "" => Location::Utc,
            "Local" => Location::Local,
            name => Location::Zone(name.parse::<chrono_tz::Tz>().map_err(|_| {
                invalid(
                    format!("{field}.location"),
                    format!("unknown time zone {name}"),
                )
            })?),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{Location, TimeInterval};
    use crate::amconfig::AmConfig;
    use crate::time::parse_rfc3339;

    /// The compiled first entry of an interval written as one YAML flow mapping.
    fn interval(ti: &str) -> TimeInterval {
        let text = format!("route: {{receiver: a}}\nreceivers: [{{name: a}}]\ntime_intervals:\n- name: t\n  time_intervals:\n  - {ti}\n");
        let c = AmConfig::load(&text).unwrap_or_else(|e| panic!("{ti}: {e}"));
        c.time_intervals["t"][0].clone()
    }

    fn at(ti: &TimeInterval, t: &str) -> bool {
        ti.contains(parse_rfc3339(t).unwrap())
    }

    #[test]
    fn times_weekdays_months_years() {
        // Business hours: Monday-Friday 09:00-17:00 (end exclusive).
        let ti = interval(
            "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday:friday']}",
        );
        // 2026-01-05 is a Monday, 2026-01-04 a Sunday.
        assert!(at(&ti, "2026-01-05T09:00:00Z"));
        assert!(at(&ti, "2026-01-05T16:59:59Z"));
        assert!(!at(&ti, "2026-01-05T17:00:00Z"));
        assert!(!at(&ti, "2026-01-05T08:59:59Z"));
        assert!(!at(&ti, "2026-01-04T12:00:00Z"));
        let ti = interval("{months: ['november:december', '2'], years: ['2025:2026']}");
        assert!(at(&ti, "2026-02-10T00:00:00Z"));
        assert!(at(&ti, "2025-11-01T00:00:00Z"));
        assert!(!at(&ti, "2026-03-01T00:00:00Z"));
        assert!(!at(&ti, "2027-12-01T00:00:00Z"));
        let ti = interval("{times: [{start_time: '23:00', end_time: '24:00'}]}");
        assert!(at(&ti, "2026-01-05T23:59:59Z"));
        assert!(!at(&ti, "2026-01-06T00:00:00Z"));
    }

    #[test]
    fn days_of_month_count_from_the_end() {
        // The last two days of every month.
        let ti = interval("{days_of_month: ['-2:-1']}");
        assert!(at(&ti, "2026-01-30T00:00:00Z"));
        assert!(at(&ti, "2026-01-31T23:59:00Z"));
        assert!(!at(&ti, "2026-01-29T00:00:00Z"));
        assert!(at(&ti, "2026-02-27T00:00:00Z"));
        assert!(!at(&ti, "2026-02-26T00:00:00Z"));
        assert!(at(&ti, "2024-02-28T00:00:00Z"), "leap year: 28 and 29");
        assert!(!at(&ti, "2024-02-27T00:00:00Z"));
        // From the 1st to the last day: the whole month.
        let ti = interval("{days_of_month: ['1:-1']}");
        assert!(at(&ti, "2026-02-28T00:00:00Z"));
        // 30:31 does not spill into February's last days.
        let ti = interval("{days_of_month: ['30:31']}");
        assert!(at(&ti, "2026-01-30T00:00:00Z"));
        assert!(!at(&ti, "2026-02-28T00:00:00Z"));
        let ti = interval("{days_of_month: ['1', '15']}");
        assert!(at(&ti, "2026-03-15T10:00:00Z"));
        assert!(!at(&ti, "2026-03-14T10:00:00Z"));
    }

    #[test]
    fn location_shifts_the_clock() {
        let ti = interval(
            "{times: [{start_time: '09:00', end_time: '17:00'}], weekdays: ['monday'], location: 'Australia/Sydney'}",
        );
        assert_eq!(ti.location, Location::Zone(chrono_tz::Australia::Sydney));
        // Monday 09:30 in Sydney (UTC+11 in January) is Sunday 22:30 UTC.
        assert!(at(&ti, "2026-01-04T22:30:00Z"));
        assert!(!at(&ti, "2026-01-05T09:30:00Z"), "Monday 20:30 in Sydney");
        // Daylight saving: in July Sydney is UTC+10.
        assert!(at(&ti, "2026-07-05T23:30:00Z"));
        assert!(!at(&ti, "2026-07-05T22:30:00Z"));
        assert_eq!(interval("{location: UTC}").location, Location::Utc);
        assert_eq!(interval("{location: Local}").location, Location::Local);
        // An interval with no constraints contains every instant.
        assert!(at(&interval("{location: Local}"), "2026-01-04T22:30:00Z"));
    }

    fn load(ti: &str) -> Result<(), String> {
        let text = format!("route: {{receiver: a}}\nreceivers: [{{name: a}}]\ntime_intervals:\n- name: t\n  time_intervals:\n  - {ti}\n");
        AmConfig::load(&text).map(|_| ()).map_err(|e| e.to_string())
    }

    #[test]
    fn time_interval_validation() {
        for ok in [
            "times: [{start_time: '17:00', end_time: '24:00'}]",
            "weekdays: ['monday:friday', 'sunday']",
            "days_of_month: ['1:5', '-3:-1']",
            "months: ['1:3', 'may:august']",
            "years: ['2020:2022']",
            "location: UTC",
        ] {
            load(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, want) in [
            (
                "times: [{start_time: '18:00', end_time: '17:00'}]",
                "times[0]",
            ),
            (
                "times: [{start_time: '25:00', end_time: '26:00'}]",
                "start_time",
            ),
            ("weekdays: ['friday:monday']", "weekdays[0]"),
            ("weekdays: ['funday']", "not a valid weekday"),
            ("days_of_month: ['0']", "days_of_month[0]"),
            ("months: ['13']", "months[0]"),
            ("years: ['2022:2020']", "years[0]"),
            ("location: 'Mars/Olympus'", "location"),
            ("hours: []", "unknown field `hours`"),
        ] {
            let e = load(bad).expect_err(bad);
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
