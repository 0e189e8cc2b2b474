//! `time_intervals` validation with upstream's rules. Evaluation (muting at flush time) is not
//! implemented yet: routes referencing intervals are never muted/always active.

use crate::amconfig::{AmConfigError, TimeIntervalSpec};

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

pub fn validate(field: &str, spec: &TimeIntervalSpec) -> Result<(), AmConfigError> {
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
    }
    for (i, y) in spec.years.iter().enumerate() {
        let f = format!("{field}.years[{i}]");
        let (a, b) = split_range(y);
        let parse = |s: &str| -> Result<u32, AmConfigError> {
            s.parse()
                .map_err(|_| invalid(f.clone(), format!("invalid year {s:?}")))
        };
        if parse(a)? > parse(b)? {
            return Err(invalid(f, "end year cannot be before start year".into()));
        }
    }
    if let Some(loc) = &spec.location {
        // Go's time.LoadLocation reads the system zoneinfo database; so do we.
        let known = loc == "UTC"
            || loc == "Local"
            || (!loc.contains("..")
                && std::path::Path::new("/usr/share/zoneinfo")
                    .join(loc)
                    .is_file());
        if !known {
            return Err(invalid(
                format!("{field}.location"),
                format!("unknown time zone {loc}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::amconfig::AmConfig;

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
