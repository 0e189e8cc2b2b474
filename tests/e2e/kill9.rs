//! SIGKILL during heavy ingestion loses no acknowledged sample and duplicates none.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_proto::prometheus::label_matcher::Type as MatchType;
use strata_proto::prometheus::read_request::ResponseType;
use strata_proto::prometheus::{
    Label, LabelMatcher, Query, ReadRequest, Sample, TimeSeries, WriteRequest,
};
use strata_tests::{error_chain, http_client, now_ms, push_to, Strata};

use crate::require_environment;

const WRITERS: usize = 4;
const SERIES_PER_REQUEST: usize = 500;
const RUN_BEFORE_KILL: Duration = Duration::from_secs(3);
const METRIC: &str = "e2e_kill9_samples";
/// How many examples of each kind of violation a failure message lists.
const EXAMPLES: usize = 10;

/// The value writer `w` sends for series `s` in its `seq`-th request: finite, never NaN, and with
/// irregular bit patterns (signs, fractions, magnitudes) so that an encoder bug shows up as a
/// bit difference rather than hiding in round numbers.
fn value_for(w: usize, s: usize, seq: u64) -> f64 {
    let base =
        ((seq + 1) as f64).sqrt() * ((s + 2) as f64).ln() + (w as f64) * 1.0e6 + seq as f64 / 3.0;
    match (seq + s as u64) % 4 {
        0 => base,
        1 => -base,
        2 => base * 1.0e-9,
        _ => 1.0 / (base + 1.0),
    }
}

fn request_for(w: usize, seq: u64, ts: i64) -> WriteRequest {
    let timeseries = (0..SERIES_PER_REQUEST)
        .map(|s| TimeSeries {
            // Sorted by name: __name__ < series < writer.
            labels: vec![
                Label {
                    name: "__name__".into(),
                    value: METRIC.into(),
                },
                Label {
                    name: "series".into(),
                    value: s.to_string(),
                },
                Label {
                    name: "writer".into(),
                    value: w.to_string(),
                },
            ],
            samples: vec![Sample {
                value: value_for(w, s, seq),
                timestamp: ts,
            }],
            ..Default::default()
        })
        .collect();
    WriteRequest {
        timeseries,
        ..Default::default()
    }
}

/// Keeps the first [`EXAMPLES`] messages of each kind of violation.
fn note(examples: &mut BTreeMap<&'static str, Vec<String>>, kind: &'static str, s: String) {
    let v = examples.entry(kind).or_default();
    if v.len() < EXAMPLES {
        v.push(s);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// 2xx: every sample of the request must survive.
    Acked,
    /// An HTTP error status: the samples may or may not be stored.
    Rejected(u16),
    /// No response (connection refused or reset, e.g. by the kill): may or may not be stored.
    NoResponse,
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    seq: u64,
    ts: i64,
    outcome: Outcome,
    after_kill: bool,
}

#[derive(Debug, Default)]
struct WriterLog {
    attempts: Vec<Attempt>,
    first_error: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_loses_no_acknowledged_sample() {
    require_environment();
    let strata = Strata::start().await;
    let url = strata.url("/api/v1/push");
    let client = http_client();
    let killed = Arc::new(AtomicBool::new(false));

    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let client = client.clone();
        let url = url.clone();
        let killed = killed.clone();
        handles.push(tokio::spawn(async move {
            let mut log = WriterLog::default();
            let mut last_ts = i64::MIN;
            let deadline = Instant::now() + Duration::from_secs(60);
            for seq in 0u64.. {
                // Bounded even if strata never dies.
                if Instant::now() >= deadline {
                    log.first_error
                        .get_or_insert_with(|| "writer hit its 60 s safety deadline".into());
                    break;
                }
                let ts = now_ms().max(last_ts + 1);
                last_ts = ts;
                let req = request_for(w, seq, ts);
                let result = push_to(&client, &url, &req).await;
                // Read after the response: a request that was in flight when strata died counts
                // as "after kill" only if its outcome arrived after the kill.
                let after_kill = killed.load(Ordering::SeqCst);
                let outcome = match result {
                    Ok(r) if r.status.is_success() => Outcome::Acked,
                    Ok(r) => {
                        log.first_error.get_or_insert_with(|| {
                            format!("seq {seq}: HTTP {}: {}", r.status, r.body)
                        });
                        Outcome::Rejected(r.status.as_u16())
                    }
                    Err(e) => {
                        if !after_kill {
                            log.first_error
                                .get_or_insert_with(|| format!("seq {seq}: {}", error_chain(&e)));
                        }
                        Outcome::NoResponse
                    }
                };
                log.attempts.push(Attempt {
                    seq,
                    ts,
                    outcome,
                    after_kill,
                });
                if after_kill && outcome != Outcome::Acked {
                    break;
                }
            }
            log
        }));
    }

    tokio::time::sleep(RUN_BEFORE_KILL).await;
    let pid = strata.pid();
    let log_before_kill = strata.log_tail();
    // Strata must still be running: a crash under load would invalidate the test.
    let dir = {
        let alive = reqwest::Client::new()
            .get(strata.url("/ready"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        assert!(alive, "strata (pid {pid:?}) is not ready after {RUN_BEFORE_KILL:?} of writes, before the kill\n{}", strata.log_tail());
        // Set before the kill: an error that races with the SIGKILL must not count as a failure
        // before it. (A 2xx read after this point still counts as acknowledged.)
        killed.store(true, Ordering::SeqCst);
        strata.kill()
    };

    let mut logs = Vec::new();
    for (w, h) in handles.into_iter().enumerate() {
        let log = tokio::time::timeout(Duration::from_secs(90), h)
            .await
            .unwrap_or_else(|_| panic!("writer {w} did not stop within 90 s of the kill"))
            .unwrap_or_else(|e| panic!("writer {w} panicked: {e}"));
        logs.push(log);
    }

    // Summary of what was sent.
    let acked_requests: usize = logs
        .iter()
        .map(|l| {
            l.attempts
                .iter()
                .filter(|a| a.outcome == Outcome::Acked)
                .count()
        })
        .sum();
    let total_requests: usize = logs.iter().map(|l| l.attempts.len()).sum();
    let in_flight_at_kill = logs
        .iter()
        .filter(|l| {
            l.attempts
                .last()
                .is_some_and(|a| a.after_kill && a.outcome == Outcome::NoResponse)
        })
        .count();
    let bad_statuses: Vec<(usize, u64, u16)> = logs
        .iter()
        .enumerate()
        .flat_map(|(w, l)| {
            l.attempts.iter().filter_map(move |a| match a.outcome {
                Outcome::Rejected(code) => Some((w, a.seq, code)),
                _ => None,
            })
        })
        .collect();
    let pre_kill_no_response: usize = logs
        .iter()
        .map(|l| {
            l.attempts
                .iter()
                .filter(|a| !a.after_kill && a.outcome == Outcome::NoResponse)
                .count()
        })
        .sum();
    let summary = format!(
        "{WRITERS} writers × {SERIES_PER_REQUEST} series/request: {total_requests} requests sent, {acked_requests} acknowledged \
         ({} samples), {} answered with an error status, {pre_kill_no_response} without response before the kill, \
         {in_flight_at_kill} writers had a request in flight at the kill; first errors: {:?}",
        acked_requests * SERIES_PER_REQUEST,
        bad_statuses.len(),
        logs.iter().map(|l| l.first_error.clone()).collect::<Vec<_>>()
    );
    eprintln!("kill9: {summary}");
    assert!(acked_requests > 0, "no push was acknowledged in {RUN_BEFORE_KILL:?}, the test proves nothing: {summary}\n{log_before_kill}");
    // The requests are valid, so the only acceptable error statuses are backpressure.
    let invalid_rejections: Vec<_> = bad_statuses
        .iter()
        .filter(|(_, _, c)| !matches!(c, 429 | 503))
        .collect();
    assert!(
        invalid_rejections.is_empty(),
        "valid pushes were rejected with a non-backpressure status (writer, seq, status): {:?}; {summary}",
        &invalid_rejections[..invalid_rejections.len().min(EXAMPLES)]
    );
    assert_eq!(
        pre_kill_no_response, 0,
        "pushes failed without an HTTP response before the kill: {summary}"
    );

    // Restart on the same data and read everything back, one writer at a time.
    let strata = Strata::start_in(dir).await;
    let mut missing_total = 0usize;
    let mut duplicate_total = 0usize;
    let mut unexpected_total = 0usize;
    let mut wrong_value_total = 0usize;
    let mut unsorted_total = 0usize;
    let mut split_series_total = 0usize;
    let mut found_total = 0usize;
    let mut found_unacked = 0usize;
    let mut examples: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();

    for (w, log) in logs.iter().enumerate() {
        let Some(first) = log.attempts.first() else {
            continue;
        };
        let last = log.attempts.last().expect("non-empty");
        let by_ts: HashMap<i64, &Attempt> = log.attempts.iter().map(|a| (a.ts, a)).collect();
        let read = ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: first.ts,
                end_timestamp_ms: last.ts,
                matchers: vec![
                    LabelMatcher {
                        r#type: MatchType::Eq as i32,
                        name: "__name__".into(),
                        value: METRIC.into(),
                    },
                    LabelMatcher {
                        r#type: MatchType::Eq as i32,
                        name: "writer".into(),
                        value: w.to_string(),
                    },
                ],
                ..Default::default()
            }],
            accepted_response_types: vec![ResponseType::Samples as i32],
        };
        let resp = strata.remote_read(&read).await;
        assert_eq!(
            resp.results.len(),
            1,
            "remote read with 1 query returned {} results",
            resp.results.len()
        );

        // Series index → samples in response order; each series must come back exactly once.
        let mut per_series: BTreeMap<usize, Vec<(i64, f64)>> = BTreeMap::new();
        for ts in &resp.results[0].timeseries {
            let get = |n: &str| {
                ts.labels
                    .iter()
                    .find(|l| l.name == n)
                    .map(|l| l.value.clone())
            };
            let labels_ok = ts.labels.len() == 3
                && get("__name__").as_deref() == Some(METRIC)
                && get("writer") == Some(w.to_string());
            let s: Option<usize> = get("series")
                .and_then(|v| v.parse().ok())
                .filter(|s| *s < SERIES_PER_REQUEST);
            let (true, Some(s)) = (labels_ok, s) else {
                panic!(
                    "remote read for writer {w} returned a series with unexpected labels: {:?}",
                    ts.labels
                );
            };
            let entry = per_series.entry(s).or_default();
            if !entry.is_empty() {
                split_series_total += 1;
                note(
                    &mut examples,
                    "split",
                    format!("writer {w} series {s} returned in more than one TimeSeries entry"),
                );
            }
            entry.extend(ts.samples.iter().map(|x| (x.timestamp, x.value)));
        }

        for s in 0..SERIES_PER_REQUEST {
            let samples = per_series.get(&s).map(Vec::as_slice).unwrap_or(&[]);
            let mut seen: HashMap<i64, usize> = HashMap::new();
            for (i, &(ts, v)) in samples.iter().enumerate() {
                found_total += 1;
                if i > 0 && ts < samples[i - 1].0 {
                    unsorted_total += 1;
                    note(
                        &mut examples,
                        "unsorted",
                        format!(
                            "writer {w} series {s}: timestamp {ts} after {} (not sorted)",
                            samples[i - 1].0
                        ),
                    );
                }
                let n = seen.entry(ts).or_default();
                *n += 1;
                if *n == 2 {
                    duplicate_total += 1;
                    note(
                        &mut examples,
                        "duplicate",
                        format!("writer {w} series {s}: timestamp {ts} returned more than once"),
                    );
                }
                match by_ts.get(&ts) {
                    None => {
                        unexpected_total += 1;
                        note(
                            &mut examples,
                            "never sent",
                            format!("writer {w} series {s}: sample at {ts} = {v} was never sent"),
                        );
                    }
                    Some(a) => {
                        if a.outcome != Outcome::Acked {
                            found_unacked += 1;
                        }
                        let want = value_for(w, s, a.seq);
                        if want.to_bits() != v.to_bits() {
                            wrong_value_total += 1;
                            note(
                                &mut examples,
                                "wrong value",
                                format!("writer {w} series {s} ts {ts}: value {v:e} ({:#018x}), sent {want:e} ({:#018x})", v.to_bits(), want.to_bits()),
                            );
                        }
                    }
                }
            }
            for a in log.attempts.iter().filter(|a| a.outcome == Outcome::Acked) {
                if !seen.contains_key(&a.ts) {
                    missing_total += 1;
                    note(
                        &mut examples,
                        "missing",
                        format!(
                            "writer {w} series {s}: acknowledged sample seq {} ts {} is missing",
                            a.seq, a.ts
                        ),
                    );
                }
            }
        }
    }

    let report = format!(
        "{summary}\nafter restart: {found_total} samples read ({found_unacked} of them from unacknowledged requests), \
         {missing_total} acknowledged samples missing, {duplicate_total} duplicated timestamps, \
         {wrong_value_total} wrong values, {unexpected_total} never-sent samples, {unsorted_total} out-of-order, \
         {split_series_total} series split over several entries; examples:\n  {}",
        examples.values().flatten().cloned().collect::<Vec<_>>().join("\n  ")
    );
    eprintln!("kill9: {report}");
    assert_eq!(
        missing_total,
        0,
        "acknowledged samples lost across SIGKILL: {report}\n{}",
        strata.log_tail()
    );
    assert_eq!(
        duplicate_total, 0,
        "samples duplicated across SIGKILL: {report}"
    );
    assert_eq!(
        wrong_value_total, 0,
        "samples with wrong values after SIGKILL: {report}"
    );
    assert_eq!(
        unexpected_total, 0,
        "samples that were never sent appeared: {report}"
    );
    assert_eq!(
        unsorted_total, 0,
        "remote read returned samples out of timestamp order: {report}"
    );
    assert_eq!(
        split_series_total, 0,
        "remote read returned a series in several entries: {report}"
    );
    let acked_samples = acked_requests * SERIES_PER_REQUEST;
    assert!(
        found_total >= acked_samples,
        "read back {found_total} samples but {acked_samples} were acknowledged: {report}"
    );
}
