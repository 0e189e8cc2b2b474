//! The small fixed data set the targets read: what the PromQL target evaluates against, what
//! the remote-read endpoint answers from, and what the seed blocks and WAL hold.

use strata_model::{Labels, Sample, STALE_NAN};

/// First sample time, ms.
pub const START_MS: i64 = 0;
/// Sample spacing, ms (a 15 s scrape interval).
pub const STEP_MS: i64 = 15_000;
/// Samples per series: one hour.
pub const POINTS: i64 = 240;
/// Last sample time, ms.
pub const END_MS: i64 = START_MS + (POINTS - 1) * STEP_MS;

fn at(i: i64) -> i64 {
    START_MS + i * STEP_MS
}

/// About twenty series of the usual shapes: counters (one with a reset), gauges with NaN and a
/// stale marker, classic histogram buckets, an info metric, a series that starts late, label
/// values with non-ASCII text.
pub fn series() -> Vec<(Labels, Vec<Sample>)> {
    let mut out = Vec::new();
    for (instance, rate) in [("a:9100", 1.0), ("b:9100", 2.5)] {
        for code in ["200", "500"] {
            let per_step = if code == "200" { rate } else { rate / 10.0 };
            out.push((
                Labels::from_pairs([
                    ("__name__", "http_requests_total"),
                    ("code", code),
                    ("instance", instance),
                    ("job", "api"),
                ]),
                (0..POINTS)
                    .map(|i| {
                        // A restart a third of the way in resets the counter.
                        let n = if i < POINTS / 3 { i } else { i - POINTS / 3 };
                        Sample::new(at(i), n as f64 * per_step * 15.0)
                    })
                    .collect(),
            ));
        }
        out.push((
            Labels::from_pairs([("__name__", "up"), ("instance", instance), ("job", "api")]),
            (0..POINTS)
                .map(|i| Sample::new(at(i), if i % 50 == 7 { 0.0 } else { 1.0 }))
                .collect(),
        ));
        out.push((
            Labels::from_pairs([
                ("__name__", "build_info"),
                ("instance", instance),
                ("job", "api"),
                ("version", "1.2.3"),
            ]),
            (0..POINTS).map(|i| Sample::new(at(i), 1.0)).collect(),
        ));
    }
    for (room, base) in [("kitchen", 21.5), ("Küche ☕", -3.25)] {
        out.push((
            Labels::from_pairs([("__name__", "temperature_celsius"), ("room", room)]),
            (0..POINTS)
                .map(|i| {
                    let v = match i {
                        100 => f64::NAN,
                        // The series goes away, then comes back.
                        150 => STALE_NAN,
                        _ => base + (i % 17) as f64 * 0.1,
                    };
                    Sample::new(at(i), v)
                })
                .filter(|s| !(151..160).contains(&((s.t - START_MS) / STEP_MS)))
                .collect(),
        ));
    }
    for le in ["0.1", "0.5", "1", "+Inf"] {
        let share = match le {
            "0.1" => 0.3,
            "0.5" => 0.7,
            "1" => 0.9,
            _ => 1.0,
        };
        out.push((
            Labels::from_pairs([
                ("__name__", "request_duration_seconds_bucket"),
                ("job", "api"),
                ("le", le),
            ]),
            (0..POINTS)
                .map(|i| Sample::new(at(i), (i as f64 * 4.0 * share).floor()))
                .collect(),
        ));
    }
    out.push((
        Labels::from_pairs([("__name__", "request_duration_seconds_sum"), ("job", "api")]),
        (0..POINTS)
            .map(|i| Sample::new(at(i), i as f64 * 1.7))
            .collect(),
    ));
    out.push((
        Labels::from_pairs([
            ("__name__", "request_duration_seconds_count"),
            ("job", "api"),
        ]),
        (0..POINTS)
            .map(|i| Sample::new(at(i), i as f64 * 4.0))
            .collect(),
    ));
    // Starts half way, with extreme values.
    out.push((
        Labels::from_pairs([("__name__", "queue_depth"), ("shard", "0")]),
        (POINTS / 2..POINTS)
            .map(|i| {
                let v = match i % 4 {
                    0 => f64::MAX,
                    1 => f64::MIN_POSITIVE,
                    2 => f64::INFINITY,
                    _ => -1e300,
                };
                Sample::new(at(i), v)
            })
            .collect(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_sorted_in_time_distinct_and_in_range() {
        let all = series();
        assert!(all.len() >= 15);
        let mut seen = std::collections::HashSet::new();
        for (l, s) in &all {
            assert!(seen.insert(l.clone()), "{l} twice");
            assert!(!s.is_empty());
            assert!(s.windows(2).all(|w| w[0].t < w[1].t), "{l}");
            assert!(s.iter().all(|x| (START_MS..=END_MS).contains(&x.t)), "{l}");
        }
    }
}
