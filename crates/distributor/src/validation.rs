//! Series validation with Mimir's rules. Invalid series (or samples) are removed from the batch
//! and recorded as rejections; the valid rest of the request is still stored.

use std::time::Duration;
use strata_model::labels::fmt_series;
use strata_model::time::format_rfc3339_ms;
use strata_model::{Limits, WriteBatch, METRIC_NAME};
use strata_storage::{PushOutcome, Rejection, RejectionKind};

/// Legacy Prometheus metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn is_valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b':')
}

/// Legacy Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn series_string(labels: &[(&str, &str)]) -> String {
    let mut s = String::new();
    let _ = fmt_series(&mut s, labels.iter().copied());
    s
}

fn truncated(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Validates one series' labels; returns `(reason, message)` for the first problem.
fn check_labels(labels: &[(&str, &str)], limits: &Limits) -> Option<(&'static str, String)> {
    let series = || series_string(labels);
    if labels.len() > limits.max_label_names_per_series {
        return Some((
            "max-label-names-per-series",
            format!(
                "series has {} labels, more than the limit of {} (limits.max_label_names_per_series): {}",
                labels.len(),
                limits.max_label_names_per_series,
                truncated(&series(), 512)
            ),
        ));
    }
    let mut name = None;
    for (i, (n, v)) in labels.iter().enumerate() {
        if *n == METRIC_NAME {
            name = Some(*v);
        } else if !is_valid_label_name(n) {
            return Some((
                "label-invalid",
                format!("invalid label name {n:?} in series {}", series()),
            ));
        }
        if n.len() > limits.max_label_name_length {
            return Some((
                "label-name-too-long",
                format!(
                    "label name {:?} is longer than the limit of {} bytes (limits.max_label_name_length) in series {}",
                    truncated(n, 64),
                    limits.max_label_name_length,
                    truncated(&series(), 512)
                ),
            ));
        }
        if v.len() > limits.max_label_value_length {
            return Some((
                "label-value-too-long",
                format!(
                    "value of label {n:?} is {} bytes, longer than the limit of {} bytes (limits.max_label_value_length): {:?}",
                    v.len(),
                    limits.max_label_value_length,
                    truncated(v, 128)
                ),
            ));
        }
        if i > 0 {
            let prev = labels[i - 1].0;
            if prev == *n {
                return Some((
                    "duplicate-label-names",
                    format!("duplicate label name {n:?} in series {}", series()),
                ));
            }
            if prev > *n {
                return Some((
                    "labels-not-sorted",
                    format!(
                        "label names are not sorted ({prev:?} comes before {n:?}) in series {}",
                        series()
                    ),
                ));
            }
        }
    }
    match name {
        None => Some((
            "missing-metric-name",
            format!("series has no metric name (__name__): {}", series()),
        )),
        Some(m) if !is_valid_metric_name(m) => Some((
            "metric-name-invalid",
            format!("invalid metric name {m:?} in series {}", series()),
        )),
        _ => None,
    }
}

/// Validates every series of `batch` in place. Invalid series lose their samples (so that the
/// ingester skips them); invalid samples are removed from their series. Calls `discard` with
/// each reason and count for metrics.
pub fn validate_batch(
    batch: &mut WriteBatch<'_>,
    limits: &Limits,
    now_ms: i64,
    outcome: &mut PushOutcome,
    mut discard: impl FnMut(&'static str, u64),
) {
    let max_t = now_ms.saturating_add(dur_ms(limits.creation_grace_period));
    let min_t = if limits.past_grace_period.is_zero() {
        i64::MIN
    } else {
        now_ms.saturating_sub(dur_ms(limits.past_grace_period))
    };
    let mut reject = |outcome: &mut PushOutcome, reason: &'static str, n: u64, message: String| {
        discard(reason, n);
        outcome.reject(n, || Rejection {
            kind: RejectionKind::BadData,
            reason,
            message,
        });
    };
    for i in 0..batch.series.len() {
        // Prometheus treats an empty label value as an absent label: drop such pairs.
        let lr = batch.series[i].labels.clone();
        let range = lr.start as usize..lr.end as usize;
        if batch.labels[range.clone()]
            .iter()
            .any(|(_, v)| v.is_empty())
        {
            let mut w = range.start;
            for r in range.clone() {
                if !batch.labels[r].1.is_empty() {
                    batch.labels[w] = batch.labels[r];
                    w += 1;
                }
            }
            batch.series[i].labels.end = w as u32;
        }
        let histograms = batch.series[i].histograms;
        if histograms > 0 {
            reject(
                outcome,
                "native-histogram-unsupported",
                u64::from(histograms),
                format!(
                    "native histogram samples are not supported yet; {histograms} dropped for series {}",
                    series_string(batch.series_labels(i))
                ),
            );
        }
        let n = batch.series_samples(i).len() as u64;
        if n == 0 {
            continue;
        }
        if let Some((reason, message)) = check_labels(batch.series_labels(i), limits) {
            reject(outcome, reason, n, message);
            let s = &mut batch.series[i].samples;
            s.end = s.start;
            continue;
        }
        let sr = batch.series[i].samples.clone();
        let samples = &batch.samples[sr.start as usize..sr.end as usize];
        if samples.iter().all(|s| s.t >= min_t && s.t <= max_t) {
            continue;
        }
        let mut w = sr.start as usize;
        for r in sr.start as usize..sr.end as usize {
            let s = batch.samples[r];
            if s.t > max_t {
                reject(
                    outcome,
                    "too-far-in-future",
                    1,
                    format!(
                        "sample timestamp {} is too far in the future (more than {} after the receiver's clock, limits.creation_grace_period) for series {}",
                        format_rfc3339_ms(s.t),
                        humantime::format_duration(limits.creation_grace_period),
                        series_string(batch.series_labels(i))
                    ),
                );
            } else if s.t < min_t {
                reject(
                    outcome,
                    "too-far-in-past",
                    1,
                    format!(
                        "sample timestamp {} is too old (more than {} before the receiver's clock, limits.past_grace_period) for series {}",
                        format_rfc3339_ms(s.t),
                        humantime::format_duration(limits.past_grace_period),
                        series_string(batch.series_labels(i))
                    ),
                );
            } else {
                batch.samples[w] = s;
                w += 1;
            }
        }
        batch.series[i].samples.end = w as u32;
    }
}

fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::Sample;

    const NOW: i64 = 1_700_000_000_000;

    type SeriesSpec<'a> = (&'a [(&'static str, &'static str)], &'a [i64]);

    fn run(series: &[SeriesSpec<'_>]) -> (WriteBatch<'static>, PushOutcome, Vec<&'static str>) {
        let mut b = WriteBatch::default();
        for (labels, ts) in series {
            let samples: Vec<Sample> = ts.iter().map(|&t| Sample::new(t, 1.0)).collect();
            b.push_series(labels, &samples);
        }
        let mut o = PushOutcome::default();
        let mut reasons = Vec::new();
        validate_batch(&mut b, &Limits::default(), NOW, &mut o, |r, _| {
            reasons.push(r)
        });
        (b, o, reasons)
    }

    #[test]
    fn valid_series_pass_untouched() {
        let (b, o, r) = run(&[(&[("__name__", "up"), ("job", "x")], &[NOW])]);
        assert!(r.is_empty());
        assert_eq!(o.samples_rejected, 0);
        assert_eq!(b.series_samples(0).len(), 1);
    }

    #[test]
    fn each_failure_has_its_reason_and_keeps_the_rest() {
        let long_value: &'static str = Box::leak("v".repeat(3000).into_boxed_str());
        let too_long: &'static [(&str, &str)] =
            Box::leak(Box::new([("__name__", "up"), ("a", long_value)]));
        let cases: Vec<(&[(&str, &str)], &str)> = vec![
            (&[("job", "x")], "missing-metric-name"),
            (&[("__name__", "1up")], "metric-name-invalid"),
            (&[("__name__", "up"), ("bad-name", "x")], "label-invalid"),
            (
                &[("__name__", "up"), ("b", "x"), ("a", "y")],
                "labels-not-sorted",
            ),
            (
                &[("__name__", "up"), ("a", "x"), ("a", "y")],
                "duplicate-label-names",
            ),
            (too_long, "label-value-too-long"),
        ];
        for (labels, want) in cases {
            let (b, o, r) = run(&[(labels, &[NOW]), (&[("__name__", "ok")], &[NOW])]);
            assert_eq!(r, vec![want], "labels {labels:?}");
            let rej = o.first_rejection.expect("rejection");
            assert_eq!(rej.kind, RejectionKind::BadData);
            assert_eq!(rej.reason, want);
            assert_eq!(b.series_samples(0).len(), 0);
            assert_eq!(b.series_samples(1).len(), 1, "valid series kept");
        }
    }

    #[test]
    fn too_many_labels() {
        let names: Vec<String> = (0..40).map(|i| format!("l{i:02}")).collect();
        let mut labels: Vec<(&str, &str)> = vec![("__name__", "m")];
        labels.extend(names.iter().map(|n| (n.as_str(), "v")));
        let mut b = WriteBatch::default();
        b.push_series(&labels, &[Sample::new(NOW, 1.0)]);
        let mut o = PushOutcome::default();
        validate_batch(&mut b, &Limits::default(), NOW, &mut o, |_, _| {});
        assert_eq!(
            o.first_rejection.unwrap().reason,
            "max-label-names-per-series"
        );
    }

    #[test]
    fn future_samples_are_dropped_individually() {
        let (b, o, r) = run(&[(&[("__name__", "up")], &[NOW - 1000, NOW + 3_600_000, NOW])]);
        assert_eq!(r, vec!["too-far-in-future"]);
        assert_eq!(o.samples_rejected, 1);
        let ts: Vec<i64> = b.series_samples(0).iter().map(|s| s.t).collect();
        assert_eq!(ts, vec![NOW - 1000, NOW]);
        assert!(o.first_rejection.unwrap().message.contains("up{}"));
    }

    #[test]
    fn empty_label_values_are_dropped() {
        let (b, o, _) = run(&[(&[("__name__", "up"), ("a", ""), ("b", "x")], &[NOW])]);
        assert_eq!(o.samples_rejected, 0);
        assert_eq!(b.series_labels(0), &[("__name__", "up"), ("b", "x")]);
    }

    #[test]
    fn names() {
        assert!(is_valid_metric_name("a:b_c9"));
        assert!(!is_valid_metric_name("9a"));
        assert!(!is_valid_metric_name(""));
        assert!(is_valid_label_name("_a9"));
        assert!(!is_valid_label_name("a:b"));
    }
}
