//! The tables of benches/cluster.sh: Strata RF=3 and RF=1 clusters against three
//! VictoriaMetrics nodes written with a 2-of-3 rule, from `ingest-bench` result lines (one per
//! run) and `query-bench time` lines.
//!
//! Targets are recognised by name: `strata-rf3`, `strata-rf1`, `vm-x3`. A process whose name
//! starts with `ingester` holds the data; where there is none (VictoriaMetrics) every measured
//! process does. "RSS per replicated series" = that memory / (series × replication factor).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value;

pub const RF3: &str = "strata-rf3";
pub const RF1: &str = "strata-rf1";
pub const VM3: &str = "vm-x3";

/// The targets: RF=3 ingest at least this many times three VictoriaMetrics nodes...
const TARGET_THROUGHPUT: f64 = 1.0;
/// ...and at most 1.2 KB of ingester RSS per replicated series.
const TARGET_RSS_PER_REPLICA: f64 = 1.2 * 1024.0;

const MIB: f64 = 1024.0 * 1024.0;

/// The figures of one run that the tables use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    pub target: String,
    pub series: u64,
    pub samples: u64,
    pub samples_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub wall_s: f64,
    pub drain_s: f64,
    /// Summed RSS of the measured processes after the run.
    pub rss_after: f64,
    /// The processes that hold the data (ingesters, or every measured one).
    pub storage_rss_after: f64,
    /// Processes named `distributor*`.
    pub distributors_rss_after: f64,
    pub rss_per_replicated_series: f64,
    pub cpu_s: f64,
    pub storage_cpu_s: f64,
    pub distributors_cpu_s: f64,
    pub aux_cpu_s: f64,
    pub errors: u64,
    pub disturbed: bool,
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

impl Run {
    /// Reads one `ingest-bench` result line.
    pub fn from_line(v: &Value) -> Self {
        let pids = v["pids"].as_array().cloned().unwrap_or_default();
        let sum = |prefix: &str, key: &str| -> f64 {
            pids.iter()
                .filter(|p| p["name"].as_str().unwrap_or("").starts_with(prefix))
                .map(|p| f(&p[key]))
                .sum()
        };
        let has_ingesters = pids
            .iter()
            .any(|p| p["name"].as_str().unwrap_or("").starts_with("ingester"));
        let storage_prefix = if has_ingesters { "ingester" } else { "" };
        let series = v["series"].as_u64().unwrap_or(0);
        let rf = v["replication_factor"].as_u64().unwrap_or(1).max(1);
        let storage_rss_after = sum(storage_prefix, "rss_after_bytes");
        Run {
            target: v["target"].as_str().unwrap_or("?").to_string(),
            series,
            samples: v["samples_ok"].as_u64().unwrap_or(0),
            samples_per_s: f(&v["samples_per_s"]),
            p50_ms: f(&v["p50_ms"]),
            p99_ms: f(&v["p99_ms"]),
            wall_s: f(&v["wall_s"]),
            drain_s: v["drain_s"].as_f64().unwrap_or(f(&v["wall_s"])),
            rss_after: f(&v["rss_after_bytes"]),
            storage_rss_after,
            distributors_rss_after: sum("distributor", "rss_after_bytes"),
            rss_per_replicated_series: storage_rss_after / (series.max(1) * rf) as f64,
            cpu_s: f(&v["target_cpu_s_run"]),
            storage_cpu_s: sum(storage_prefix, "cpu_s_run"),
            distributors_cpu_s: sum("distributor", "cpu_s_run"),
            aux_cpu_s: v["aux_cpu_s_run"].as_f64().unwrap_or(0.0),
            errors: v["errors"].as_u64().unwrap_or(0) + v["skipped_requests"].as_u64().unwrap_or(0),
            disturbed: v["disturbed"].as_bool().unwrap_or(false),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| !x.is_nan());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One row per target: medians over the undisturbed runs (over all runs if every one was
/// disturbed, then marked so); errors summed. Returns the row and how many runs it covers.
pub fn summarize(runs: &[Run]) -> (Run, usize) {
    let clean: Vec<&Run> = runs.iter().filter(|r| !r.disturbed).collect();
    let used: Vec<&Run> = if clean.is_empty() {
        runs.iter().collect()
    } else {
        clean
    };
    let m = |g: fn(&Run) -> f64| median(used.iter().map(|r| g(r)).collect());
    let row = Run {
        target: used[0].target.clone(),
        series: used[0].series,
        samples: used[0].samples,
        samples_per_s: m(|r| r.samples_per_s),
        p50_ms: m(|r| r.p50_ms),
        p99_ms: m(|r| r.p99_ms),
        wall_s: m(|r| r.wall_s),
        drain_s: m(|r| r.drain_s),
        rss_after: m(|r| r.rss_after),
        storage_rss_after: m(|r| r.storage_rss_after),
        distributors_rss_after: m(|r| r.distributors_rss_after),
        rss_per_replicated_series: m(|r| r.rss_per_replicated_series),
        cpu_s: m(|r| r.cpu_s),
        storage_cpu_s: m(|r| r.storage_cpu_s),
        distributors_cpu_s: m(|r| r.distributors_cpu_s),
        aux_cpu_s: m(|r| r.aux_cpu_s),
        errors: runs.iter().map(|r| r.errors).sum(),
        disturbed: used.iter().all(|r| r.disturbed),
    };
    (row, used.len())
}

/// `a / b`, if both are numbers and `b` is not zero.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (a.is_finite() && b.is_finite() && b != 0.0).then_some(a / b)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("-".into(), |x| format!("{x:.2}×"))
}

fn fmt_int(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let s = format!("{:.0}", v);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn label(target: &str) -> &str {
    match target {
        RF3 => "Strata RF=3 (2 distributors, 3 ingesters)",
        RF1 => "Strata RF=1 (2 distributors, 3 ingesters)",
        VM3 => "VictoriaMetrics ×3 (2-of-3 writes)",
        other => other,
    }
}

fn order(target: &str) -> usize {
    [RF3, RF1, VM3]
        .iter()
        .position(|t| *t == target)
        .unwrap_or(3)
}

fn print_runs(rows: &[(Run, usize)]) {
    println!(
        "| target | runs | samples/s | p50 ms | p99 ms | RSS MiB (summed) | data holders MiB | distributors MiB | RSS / replicated series B | CPU s | of which data holders | of which distributors | other cluster CPU s | CPU µs/sample | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (r, n) in rows {
        let mib = |b: f64| {
            if b.is_finite() {
                format!("{:.1}", b / MIB)
            } else {
                "-".into()
            }
        };
        println!(
            "| {}{} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {} |",
            label(&r.target),
            if r.disturbed { " (disturbed)" } else { "" },
            n,
            fmt_int(r.samples_per_s),
            r.p50_ms,
            r.p99_ms,
            mib(r.rss_after),
            mib(r.storage_rss_after),
            if r.target == VM3 { "-".into() } else { mib(r.distributors_rss_after) },
            fmt_int(r.rss_per_replicated_series),
            r.cpu_s,
            r.storage_cpu_s,
            r.distributors_cpu_s,
            r.aux_cpu_s,
            1e6 * r.cpu_s / r.samples.max(1) as f64,
            r.errors,
        );
    }
}

/// Latency of one query at one target: p50 and p99 (nearest rank) of the timed runs, seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryTiming {
    pub query: String,
    pub runs: usize,
    pub p50_s: f64,
    pub p99_s: f64,
    pub disturbed: bool,
    pub error: Option<String>,
}

/// Nearest-rank percentile of unsorted values.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let idx = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[idx]
}

/// The last attempt of each (target, query id) in `query-bench time` lines.
pub fn query_timings(text: &str) -> Result<BTreeMap<(String, String), QueryTiming>> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let v: Value = serde_json::from_str(line)?;
        if v["kind"] != "time" {
            continue;
        }
        let runs: Vec<f64> = v["runs_s"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        out.insert(
            (
                v["target"].as_str().unwrap_or("?").to_string(),
                v["query_id"].as_str().unwrap_or("?").to_string(),
            ),
            QueryTiming {
                query: v["query"].as_str().unwrap_or("?").to_string(),
                runs: runs.len(),
                p50_s: percentile(&runs, 0.5),
                p99_s: percentile(&runs, 0.99),
                disturbed: v["disturbed"].as_bool().unwrap_or(false),
                error: v["error"].as_str().map(str::to_string),
            },
        );
    }
    Ok(out)
}

/// Prints the ingest table, the ratios against the targets and, with `timings`, the query table.
pub fn print(results: &Path, timings: Option<&Path>) -> Result<()> {
    let text = std::fs::read_to_string(results)
        .with_context(|| format!("reading {}", results.display()))?;
    let mut by_target: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    let mut all = Vec::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let run = Run::from_line(&serde_json::from_str(line)?);
        all.push((run.clone(), 1));
        by_target.entry(run.target.clone()).or_default().push(run);
    }
    if by_target.is_empty() {
        bail!("no results in {}", results.display());
    }
    let mut rows: Vec<(Run, usize)> = by_target.values().map(|r| summarize(r)).collect();
    rows.sort_by_key(|(r, _)| order(&r.target));
    let first = &rows[0].0;
    println!(
        "{} active series, {} samples per target; medians of the undisturbed runs",
        fmt_int(first.series as f64),
        fmt_int(first.samples as f64)
    );
    println!();
    print_runs(&rows);
    if all.len() > rows.len() {
        println!();
        println!("All runs, in order:");
        println!();
        print_runs(&all);
    }
    let get = |t: &str| rows.iter().find(|(r, _)| r.target == t).map(|(r, _)| r);
    println!();
    for (a, b) in [(RF3, VM3), (RF3, RF1)] {
        let (Some(x), Some(y)) = (get(a), get(b)) else {
            continue;
        };
        println!(
            "- {a} / {b}: samples/s {}, p99 {}, summed RSS {}, RSS per replicated series {}{}",
            fmt_ratio(ratio(x.samples_per_s, y.samples_per_s)),
            fmt_ratio(ratio(x.p99_ms, y.p99_ms)),
            fmt_ratio(ratio(x.rss_after, y.rss_after)),
            fmt_ratio(ratio(
                x.rss_per_replicated_series,
                y.rss_per_replicated_series
            )),
            if x.disturbed || y.disturbed {
                " (from disturbed runs)"
            } else {
                ""
            }
        );
    }
    if let Some(x) = get(RF3) {
        let t = get(VM3)
            .and_then(|y| ratio(x.samples_per_s, y.samples_per_s))
            .map_or("n/a (no VictoriaMetrics result)".to_string(), |r| {
                format!(
                    "{} ({r:.2}×)",
                    if r >= TARGET_THROUGHPUT {
                        "MET"
                    } else {
                        "NOT MET"
                    }
                )
            });
        println!("- target RF=3 samples/s >= {TARGET_THROUGHPUT:.1}× VictoriaMetrics ×3: {t}");
        let b = x.rss_per_replicated_series;
        println!(
            "- target RF=3 ingester RSS per replicated series <= 1.2 KB ({TARGET_RSS_PER_REPLICA:.0} B): {}",
            if b.is_finite() {
                format!(
                    "{} ({} B)",
                    if b <= TARGET_RSS_PER_REPLICA { "MET" } else { "NOT MET" },
                    fmt_int(b)
                )
            } else {
                "n/a".into()
            }
        );
    }
    for (r, _) in &rows {
        if r.errors > 0 {
            println!("- {}: {} failed or skipped requests", r.target, r.errors);
        }
    }
    if let Some(path) = timings {
        let t = query_timings(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )?;
        print_queries(&t);
    }
    Ok(())
}

fn print_queries(t: &BTreeMap<(String, String), QueryTiming>) {
    let mut ids: Vec<&String> = t.keys().map(|(_, q)| q).collect();
    ids.dedup();
    ids.sort();
    ids.dedup();
    println!();
    println!("Queries (wall time on the client, seconds; p50 and p99 by nearest rank):");
    println!();
    println!(
        "| query | runs | Strata RF=3 p50 | p99 | VictoriaMetrics p50 | p99 | RF3/VM p50 | RF3/VM p99 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for id in ids {
        let s = t.get(&(RF3.to_string(), id.clone()));
        let v = t.get(&("victoriametrics".to_string(), id.clone()));
        let cell = |q: Option<&QueryTiming>, p99: bool| {
            q.map_or("-".to_string(), |q| {
                if let Some(e) = &q.error {
                    return format!("error: {e}");
                }
                format!(
                    "{:.3}{}",
                    if p99 { q.p99_s } else { q.p50_s },
                    if q.disturbed { " (disturbed)" } else { "" }
                )
            })
        };
        let query = s.or(v).map_or(id.as_str(), |q| q.query.as_str());
        println!(
            "| `{query}` | {} | {} | {} | {} | {} | {} | {} |",
            s.or(v).map_or(0, |q| q.runs),
            cell(s, false),
            cell(s, true),
            cell(v, false),
            cell(v, true),
            fmt_ratio(s.zip(v).and_then(|(a, b)| ratio(a.p50_s, b.p50_s))),
            fmt_ratio(s.zip(v).and_then(|(a, b)| ratio(a.p99_s, b.p99_s))),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(target: &str, sps: f64, disturbed: bool) -> Value {
        json!({
            "target": target,
            "series": 1000,
            "samples_ok": 60000,
            "samples_per_s": sps,
            "p50_ms": 10.0,
            "p99_ms": 40.0,
            "wall_s": 1.0,
            "rss_after_bytes": 7000,
            "replication_factor": 3,
            "target_cpu_s_run": 6.0,
            "errors": 0,
            "disturbed": disturbed,
            "pids": [
                {"name": "ingester-1", "rss_after_bytes": 1000, "cpu_s_run": 1.0},
                {"name": "ingester-2", "rss_after_bytes": 1100, "cpu_s_run": 1.0},
                {"name": "ingester-3", "rss_after_bytes": 1200, "cpu_s_run": 1.0},
                {"name": "distributor-1", "rss_after_bytes": 1800, "cpu_s_run": 1.5},
                {"name": "distributor-2", "rss_after_bytes": 1900, "cpu_s_run": 1.5},
            ],
        })
    }

    #[test]
    fn ingesters_hold_the_data_of_a_strata_run() {
        let r = Run::from_line(&line(RF3, 100.0, false));
        assert_eq!(r.storage_rss_after, 3300.0);
        assert_eq!(r.distributors_rss_after, 3700.0);
        assert_eq!(r.rss_after, 7000.0);
        // 3,300 B over 1,000 series × 3 replicas.
        assert_eq!(r.rss_per_replicated_series, 1.1);
        assert_eq!((r.storage_cpu_s, r.distributors_cpu_s), (3.0, 3.0));
    }

    #[test]
    fn every_process_holds_the_data_without_ingesters() {
        let v = json!({
            "target": VM3, "series": 100, "replication_factor": 3, "rss_after_bytes": 600,
            "pids": [{"name": "vm-1", "rss_after_bytes": 200}, {"name": "vm-2", "rss_after_bytes": 400}],
        });
        let r = Run::from_line(&v);
        assert_eq!(r.storage_rss_after, 600.0);
        assert_eq!(r.rss_per_replicated_series, 2.0);
        assert_eq!(r.distributors_rss_after, 0.0);
    }

    #[test]
    fn summaries_leave_disturbed_runs_out_unless_all_are() {
        let runs: Vec<Run> = [(100.0, false), (900.0, true), (300.0, false)]
            .iter()
            .map(|(s, d)| Run::from_line(&line(RF3, *s, *d)))
            .collect();
        let (row, n) = summarize(&runs);
        assert_eq!((row.samples_per_s, n, row.disturbed), (200.0, 2, false));
        let (row, n) = summarize(&runs[1..2]);
        assert_eq!((row.samples_per_s, n, row.disturbed), (900.0, 1, true));
    }

    #[test]
    fn nearest_rank_percentiles_and_ratios() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 10.0);
        assert_eq!(percentile(&v, 0.99), 20.0);
        assert!(percentile(&[], 0.5).is_nan());
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn the_last_attempt_of_a_query_counts() {
        let text = [
            json!({"kind": "time", "target": RF3, "query_id": "q", "query": "up", "runs_s": [9.0], "disturbed": true}),
            json!({"kind": "verify", "target": RF3}),
            json!({"kind": "time", "target": RF3, "query_id": "q", "query": "up", "runs_s": [1.0, 2.0, 3.0], "disturbed": false}),
        ]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
        let t = query_timings(&text).unwrap();
        let q = &t[&(RF3.to_string(), "q".to_string())];
        assert_eq!(
            (q.runs, q.p50_s, q.p99_s, q.disturbed),
            (3, 2.0, 3.0, false)
        );
    }
}
