//! `query-bench`: range-query latency of Strata, Prometheus and VictoriaMetrics on the same seeded data.
//!
//! Subcommands (benches/query.sh runs them in order against each target in turn):
//! - `end-ms`: prints a timestamp for the last sample (a minute boundary at least two minutes ago), so that
//!   every target of one run receives the very same data.
//! - `load`: generates the data set (see `querydata.rs`) and sends it with remote write 1.0, in time order:
//!   the timeline is cut into slices (default 10 min) and every shard sends its part of a slice before any
//!   shard starts the next one (a barrier), so the targets never see a sample more than one slice behind the
//!   newest; each series belongs to exactly one shard; one request in flight per shard.
//! - `verify`: reads back the number of series and samples of each metric with PromQL.
//! - `time`: runs each range query (warm-up runs, then timed runs), measures wall time on the client until the
//!   whole response body has arrived, saves the last answer.
//! - `compare`: compares saved answers with the reference target's (labels exact, values within 1e-9
//!   relative, timestamps exact).
//! - `report`: prints a markdown table with medians, minima and ratios.
#![allow(clippy::print_stdout)]

mod querydata;
mod querysys;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, Parser, Subcommand};
use prost::Message;
use serde_json::{json, Value};

use querydata::Dataset;
use strata_proto::prometheus::{TimeSeries, WriteRequest};

#[derive(Parser, Debug)]
#[command(
    name = "query-bench",
    about = "Range-query benchmark: Strata vs Prometheus vs VictoriaMetrics on the same data"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print a suitable timestamp (ms) for the last sample: a minute boundary at least 2 minutes ago.
    EndMs,
    /// Send the data set to a remote-write URL.
    Load(LoadArgs),
    /// Count the series and samples a target holds.
    Verify(VerifyArgs),
    /// Time the range queries against a target.
    Time(TimeArgs),
    /// Compare saved answers with the reference target's.
    Compare(CompareArgs),
    /// Print the markdown report of timing and comparison results.
    Report(ReportArgs),
    /// Print the queries (one per line: id, then the query) for a scale.
    Queries(DataArgs),
}

#[derive(Args, Debug, Clone)]
struct DataArgs {
    /// Series per metric (each query selects this many series).
    #[arg(long, default_value_t = 20_000)]
    scale: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Samples per series (1,500 at 15 s = 6 h 15 min, so the first 5 and 10 min windows are full).
    #[arg(long, default_value_t = 1_500)]
    points: usize,
    #[arg(long, default_value_t = 15)]
    interval_secs: i64,
    /// Timestamp of the last sample, ms (see `end-ms`).
    #[arg(long)]
    end_ms: i64,
}

impl DataArgs {
    fn dataset(&self) -> Result<Dataset> {
        let d = Dataset {
            scale: self.scale,
            seed: self.seed,
            points: self.points,
            interval_ms: self.interval_secs * 1000,
            end_ms: self.end_ms,
        };
        d.validate()?;
        Ok(d)
    }
}

#[derive(Args, Debug)]
struct LoadArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Remote-write URL.
    #[arg(long)]
    url: String,
    #[arg(long, default_value = "target")]
    target: String,
    /// Concurrent shards (one request in flight each).
    #[arg(long, default_value_t = 8)]
    shards: usize,
    /// Samples per request, about (whole series slices are never split).
    #[arg(long, default_value_t = 20_000)]
    batch_samples: usize,
    /// Points per series per slice (40 = 10 min at 15 s).
    #[arg(long, default_value_t = 40)]
    slice_points: usize,
    /// Extra request header "Name: value" (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    #[arg(long, default_value_t = 1_800)]
    max_run_secs: u64,
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Base URL of the target's HTTP API, e.g. http://127.0.0.1:9090.
    #[arg(long)]
    base: String,
    #[arg(long)]
    target: String,
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct TimeArgs {
    #[command(flatten)]
    data: DataArgs,
    #[arg(long)]
    base: String,
    #[arg(long)]
    target: String,
    /// PID of the target, to read its CPU time and RSS. Repeatable for a target of several
    /// processes (a cluster's querier and ingesters): CPU and RSS are then summed.
    #[arg(long = "pid")]
    pids: Vec<u32>,
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Range of the query, hours (start = end - range).
    #[arg(long, default_value_t = 6)]
    range_hours: i64,
    #[arg(long, default_value_t = 60)]
    step_secs: i64,
    /// Query end = last sample + this many ms (7,500 = halfway between scrapes, so that no window boundary
    /// falls on a sample: Prometheus 2.42 includes the left boundary, 3.x does not).
    #[arg(long, default_value_t = 7_500)]
    end_offset_ms: i64,
    /// Only these query ids (comma-separated).
    #[arg(long)]
    only: Option<String>,
    /// Directory for the answers (`<dir>/<scale>/<target>/<query id>.json`).
    #[arg(long)]
    answers: Option<PathBuf>,
    /// Time limit per request, seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct CompareArgs {
    /// Answers directory written by `time --answers`.
    #[arg(long)]
    answers: PathBuf,
    #[arg(long, default_value = "prometheus")]
    reference: String,
    #[arg(long, value_delimiter = ',', default_value = "strata,victoriametrics")]
    candidates: Vec<String>,
    /// Relative tolerance for values.
    #[arg(long, default_value_t = 1e-9)]
    tolerance: f64,
    #[arg(long)]
    json_out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// JSON lines written by `time`.
    #[arg(long)]
    timings: PathBuf,
    /// JSON lines written by `compare`.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// JSON lines written by `verify`.
    #[arg(long)]
    verify: Option<PathBuf>,
    /// JSON lines written by `load`.
    #[arg(long)]
    load: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::EndMs => {
            let now = now_ms();
            println!("{}", (now - 120_000) / 60_000 * 60_000);
            Ok(())
        }
        Cmd::Load(a) => load(&a),
        Cmd::Verify(a) => verify(&a),
        Cmd::Time(a) => time(&a),
        Cmd::Compare(a) => compare(&a),
        Cmd::Report(a) => report(&a),
        Cmd::Queries(d) => {
            for q in queries(&d.dataset()?) {
                println!("{}\t{}", q.id, q.promql);
            }
            Ok(())
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn append_json(path: &Option<PathBuf>, v: &Value) -> Result<()> {
    println!("{v}");
    if let Some(p) = path {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .with_context(|| format!("opening {}", p.display()))?;
        writeln!(f, "{v}")?;
    }
    Ok(())
}

fn canonical_target(t: &str) -> String {
    match t {
        "vm" | "victoria-metrics" | "victoriametrics" => "victoriametrics".into(),
        "prom" | "prometheus" => "prometheus".into(),
        other => other.into(),
    }
}

// ------------------------------------------------------------------------------------------------ load

#[derive(Default, Debug)]
struct ShardOutcome {
    samples_ok: u64,
    samples_failed: u64,
    samples_skipped: u64,
    requests: u64,
    retries: u64,
    status_counts: BTreeMap<String, u64>,
    first_error: Option<String>,
}

fn header_map(headers: &[String]) -> Result<reqwest::header::HeaderMap> {
    let mut map = reqwest::header::HeaderMap::new();
    for h in headers {
        let (n, v) = h
            .split_once(':')
            .with_context(|| format!("--header {h:?}: expected NAME: VALUE"))?;
        map.insert(
            reqwest::header::HeaderName::from_bytes(n.trim().as_bytes())?,
            reqwest::header::HeaderValue::from_str(v.trim())?,
        );
    }
    Ok(map)
}

/// Posts one body, retrying 429/5xx/transport errors up to 5 times; returns the final status text or error.
async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &reqwest::header::HeaderMap,
    body: bytes::Bytes,
    out: &mut ShardOutcome,
) -> Result<String, (String, String)> {
    let mut attempt = 0;
    loop {
        let resp = client
            .post(url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .header("User-Agent", "strata-query-bench/0.1")
            .headers(headers.clone())
            .body(body.clone())
            .send()
            .await;
        let (code, err, retry) = match resp {
            Ok(r) => {
                let status = r.status();
                let text = r.bytes().await.unwrap_or_default();
                if status.is_success() {
                    return Ok(status.as_u16().to_string());
                }
                (
                    status.as_u16().to_string(),
                    format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&text[..text.len().min(600)]).trim()
                    ),
                    status.as_u16() == 429 || status.is_server_error(),
                )
            }
            Err(e) => ("transport".to_string(), format!("{e:#}"), true),
        };
        if retry && attempt < 5 {
            attempt += 1;
            out.retries += 1;
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
            continue;
        }
        return Err((code, err));
    }
}

struct Progress {
    sent: std::sync::atomic::AtomicU64,
}

#[allow(clippy::too_many_arguments)]
async fn load_shard(
    ds: Arc<Dataset>,
    mut units: Vec<querydata::Unit>,
    client: reqwest::Client,
    url: String,
    headers: reqwest::header::HeaderMap,
    batch_samples: usize,
    slice_points: usize,
    barrier: Arc<tokio::sync::Barrier>,
    deadline: Instant,
    progress: Arc<Progress>,
) -> ShardOutcome {
    let mut out = ShardOutcome::default();
    let mut encoder = snap::raw::Encoder::new();
    let mut raw = Vec::new();
    let slices = ds.points.div_ceil(slice_points);
    for s in 0..slices {
        let until = ((s + 1) * slice_points).min(ds.points);
        let mut pending: Vec<TimeSeries> = Vec::new();
        let mut pending_samples = 0usize;
        let mut i = 0;
        while i < units.len() || !pending.is_empty() {
            if i < units.len() {
                pending_samples += units[i].emit(&ds, until, &mut pending);
                i += 1;
                if pending_samples < batch_samples && i < units.len() {
                    continue;
                }
            }
            if pending.is_empty() {
                continue;
            }
            let n = pending_samples as u64;
            let req = WriteRequest {
                timeseries: std::mem::take(&mut pending),
                ..Default::default()
            };
            pending_samples = 0;
            if Instant::now() >= deadline {
                out.samples_skipped += n;
                continue;
            }
            raw.clear();
            req.encode(&mut raw).expect("encoding into a Vec");
            let body = bytes::Bytes::from(encoder.compress_vec(&raw).expect("snappy"));
            out.requests += 1;
            match post(&client, &url, &headers, body, &mut out).await {
                Ok(code) => {
                    out.samples_ok += n;
                    *out.status_counts.entry(code).or_default() += 1;
                }
                Err((code, msg)) => {
                    out.samples_failed += n;
                    *out.status_counts.entry(code).or_default() += 1;
                    if out.first_error.is_none() {
                        out.first_error = Some(msg);
                    }
                }
            }
            progress
                .sent
                .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
        barrier.wait().await;
    }
    out
}

fn load(a: &LoadArgs) -> Result<()> {
    let ds = Arc::new(a.data.dataset()?);
    ensure!(a.shards > 0 && a.slice_points > 0 && a.batch_samples > 0);
    let t_gen = Instant::now();
    let units = ds.units();
    let mut shards: Vec<Vec<querydata::Unit>> = (0..a.shards).map(|_| Vec::new()).collect();
    for (i, u) in units.into_iter().enumerate() {
        shards[i % a.shards].push(u);
    }
    eprintln!(
        "{}: {} series x {} points = {} samples ({} .. {}), {} shards, ~{} samples/request, slices of {} points; set up in {:.1?}",
        a.target,
        ds.series_total(),
        ds.points,
        ds.samples_total(),
        ds.first_ms(),
        ds.end_ms,
        a.shards,
        a.batch_samples,
        a.slice_points,
        t_gen.elapsed()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(a.shards)
        .timeout(Duration::from_secs(300))
        .build()?;
    let headers = header_map(&a.headers)?;
    let total = ds.samples_total();
    let progress = Arc::new(Progress {
        sent: Default::default(),
    });
    let start = Instant::now();
    let deadline = start + Duration::from_secs(a.max_run_secs);
    let outcomes = rt.block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(a.shards));
        let tasks: Vec<_> = shards
            .into_iter()
            .map(|units| {
                tokio::spawn(load_shard(
                    ds.clone(),
                    units,
                    client.clone(),
                    a.url.clone(),
                    headers.clone(),
                    a.batch_samples,
                    a.slice_points,
                    barrier.clone(),
                    deadline,
                    progress.clone(),
                ))
            })
            .collect();
        let p = progress.clone();
        let ticker = tokio::spawn(async move {
            let mut last = 0u64;
            loop {
                tokio::time::sleep(Duration::from_secs(15)).await;
                let s = p.sent.load(std::sync::atomic::Ordering::Relaxed);
                eprintln!(
                    "  {:>5.0} s: {:>5.1}% sent, {:.2} M samples/s over the last 15 s",
                    start.elapsed().as_secs_f64(),
                    100.0 * s as f64 / total as f64,
                    (s - last) as f64 / 15e6
                );
                last = s;
            }
        });
        let mut outs = Vec::new();
        for t in tasks {
            outs.push(t.await.expect("shard task panicked"));
        }
        ticker.abort();
        outs
    });
    let wall = start.elapsed().as_secs_f64();
    let mut sum = ShardOutcome::default();
    for o in outcomes {
        sum.samples_ok += o.samples_ok;
        sum.samples_failed += o.samples_failed;
        sum.samples_skipped += o.samples_skipped;
        sum.requests += o.requests;
        sum.retries += o.retries;
        for (k, v) in o.status_counts {
            *sum.status_counts.entry(k).or_default() += v;
        }
        if sum.first_error.is_none() {
            sum.first_error = o.first_error;
        }
    }
    let v = json!({
        "kind": "load",
        "target": canonical_target(&a.target),
        "scale": ds.scale,
        "series": ds.series_total(),
        "samples": total,
        "samples_ok": sum.samples_ok,
        "samples_failed": sum.samples_failed,
        "samples_skipped": sum.samples_skipped,
        "requests": sum.requests,
        "retries": sum.retries,
        "status_counts": sum.status_counts,
        "first_error": sum.first_error,
        "wall_s": (wall * 100.0).round() / 100.0,
        "samples_per_s": (sum.samples_ok as f64 / wall).round(),
        "first_ts_ms": ds.first_ms(),
        "end_ms": ds.end_ms,
        "seed": ds.seed,
    });
    append_json(&a.json_out, &v)?;
    if sum.samples_failed + sum.samples_skipped > 0 {
        eprintln!(
            "{}: {} samples failed, {} skipped (time limit); first error: {:?}",
            a.target, sum.samples_failed, sum.samples_skipped, sum.first_error
        );
        std::process::exit(3);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ http

fn is_vm(target: &str) -> bool {
    canonical_target(target) == "victoriametrics"
}

fn fmt_secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

async fn get_json(
    client: &reqwest::Client,
    url: &str,
    params: &[(&str, String)],
) -> Result<(Value, usize, Duration)> {
    let t0 = Instant::now();
    let resp = client.get(url).query(params).send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    let took = t0.elapsed();
    let v: Value = serde_json::from_slice(&body).with_context(|| {
        format!(
            "HTTP {status}, not JSON: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )
    })?;
    if v["status"] != "success" {
        bail!(
            "HTTP {status}: {} {}",
            v["errorType"].as_str().unwrap_or(""),
            v["error"].as_str().unwrap_or("")
        );
    }
    Ok((v, body.len(), took))
}

// ------------------------------------------------------------------------------------------------ verify

fn verify(a: &VerifyArgs) -> Result<()> {
    let ds = a.data.dataset()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(600))
        .build()?;
    let url = format!("{}/api/v1/query", a.base.trim_end_matches('/'));
    // One second after the last sample; the window covers all samples with a minute to spare.
    let t = fmt_secs(ds.end_ms + 1000);
    let window_s = (ds.points as i64 * ds.interval_ms) / 1000 + 60;
    let mut out = json!({
        "kind": "verify",
        "target": canonical_target(&a.target),
        "scale": ds.scale,
        "expected_series_per_metric": ds.scale,
        "expected_samples_per_metric": ds.scale * ds.points,
    });
    let mut ok = true;
    rt.block_on(async {
        for metric in [ds.x(), ds.y(), ds.z()] {
            let mut got = json!({});
            for (key, q) in [
                ("series", format!("count({metric})")),
                (
                    "samples",
                    format!("sum(count_over_time({metric}[{window_s}s]))"),
                ),
            ] {
                let mut params = vec![("query", q.clone()), ("time", t.clone())];
                if is_vm(&a.target) {
                    params.push(("nocache", "1".into()));
                }
                let v = match get_json(&client, &url, &params).await {
                    Ok((v, _, _)) => v["data"]["result"][0]["value"][1]
                        .as_str()
                        .and_then(|s| s.parse::<f64>().ok())
                        .map_or(Value::Null, |x| json!(x as u64)),
                    Err(e) => {
                        eprintln!("{}: {q}: {e:#}", a.target);
                        Value::Null
                    }
                };
                let want = if key == "series" {
                    ds.scale
                } else {
                    ds.scale * ds.points
                };
                if v.as_u64() != Some(want as u64) {
                    ok = false;
                }
                got[key] = v;
            }
            out[metric] = got;
        }
        // Counters of rejected samples, where the target exports them.
        if let Ok(r) = client
            .get(format!("{}/metrics", a.base.trim_end_matches('/')))
            .send()
            .await
        {
            if let Ok(text) = r.text().await {
                let mut m = serde_json::Map::new();
                for line in text.lines() {
                    if line.starts_with('#') {
                        continue;
                    }
                    if [
                        "out_of_bound",
                        "out_of_order",
                        "too_old",
                        "too_small_timestamp",
                        "too_big_timestamp",
                        "head_samples_appended_total",
                        "vm_rows_inserted_total",
                        "rejected",
                        "discarded",
                    ]
                    .iter()
                    .any(|k| line.contains(k))
                    {
                        if let Some((k, v)) = line.rsplit_once(' ') {
                            m.insert(k.to_string(), json!(v));
                        }
                    }
                }
                out["counters"] = Value::Object(m);
            }
        }
    });
    out["ok"] = json!(ok);
    append_json(&a.json_out, &out)?;
    if !ok {
        eprintln!("{}: read-back does not match the data set", a.target);
        std::process::exit(4);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ time

struct Query {
    id: &'static str,
    promql: String,
}

fn queries(ds: &Dataset) -> Vec<Query> {
    vec![
        Query {
            id: "sum_rate",
            promql: format!("sum by (instance) (rate({}[5m]))", ds.x()),
        },
        Query {
            id: "hq_p99",
            promql: format!(
                "histogram_quantile(0.99, sum by (le) (rate({}[5m])))",
                ds.y()
            ),
        },
        Query {
            id: "topk_max",
            promql: format!("topk(5, max_over_time({}[10m]))", ds.z()),
        },
    ]
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    }
}

fn time(a: &TimeArgs) -> Result<()> {
    let ds = a.data.dataset()?;
    let target = canonical_target(&a.target);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(a.timeout_secs))
        .build()?;
    let url = format!("{}/api/v1/query_range", a.base.trim_end_matches('/'));
    let end = ds.end_ms + a.end_offset_ms;
    let start = end - a.range_hours * 3_600_000;
    let only: Option<Vec<&str>> = a.only.as_deref().map(|s| s.split(',').collect());
    let pids: Vec<String> = a.pids.iter().map(u32::to_string).collect();
    // Summed over the target's processes; None if one of them cannot be read.
    let target_cpu = || -> Option<f64> {
        if pids.is_empty() {
            return None;
        }
        pids.iter().map(|p| querysys::process_cpu_s(p)).sum()
    };
    for q in queries(&ds) {
        if only.as_ref().is_some_and(|o| !o.contains(&q.id)) {
            continue;
        }
        let mut params = vec![
            ("query", q.promql.clone()),
            ("start", fmt_secs(start)),
            ("end", fmt_secs(end)),
            ("step", format!("{}s", a.step_secs)),
        ];
        if is_vm(&target) {
            params.push(("nocache", "1".into()));
        }
        let mut error = None;
        for _ in 0..a.warmup {
            if let Err(e) = rt.block_on(get_json(&client, &url, &params)) {
                error = Some(format!("{e:#}"));
                break;
            }
        }
        let mut walls = Vec::new();
        let mut last: Option<(Value, usize)> = None;
        let cpu0 = target_cpu();
        let self0 = querysys::process_cpu_s("self");
        let mach0 = querysys::machine_busy_s();
        let t_all = Instant::now();
        if error.is_none() {
            for _ in 0..a.runs {
                match rt.block_on(get_json(&client, &url, &params)) {
                    Ok((v, bytes, took)) => {
                        walls.push(took.as_secs_f64());
                        last = Some((v, bytes));
                    }
                    Err(e) => {
                        error = Some(format!("{e:#}"));
                        break;
                    }
                }
            }
        }
        let span = t_all.elapsed().as_secs_f64();
        let cpu = cpu0.zip(target_cpu()).map(|(x, y)| y - x);
        let self_cpu = self0
            .zip(querysys::process_cpu_s("self"))
            .map(|(x, y)| y - x);
        let other = mach0
            .zip(querysys::machine_busy_s())
            .map(|(x, y)| (y - x - cpu.unwrap_or(0.0) - self_cpu.unwrap_or(0.0)).max(0.0));
        let (series, points, bytes) = match &last {
            Some((v, bytes)) => {
                let res = v["data"]["result"].as_array();
                let series = res.map_or(0, Vec::len);
                let points: usize = res.map_or(0, |r| {
                    r.iter()
                        .map(|s| s["values"].as_array().map_or(0, Vec::len))
                        .sum()
                });
                (series, points, *bytes)
            }
            None => (0, 0, 0),
        };
        if let (Some(dir), Some((v, _))) = (&a.answers, &last) {
            let d = dir.join(querydata::scale_tag(ds.scale)).join(&target);
            std::fs::create_dir_all(&d)?;
            std::fs::write(d.join(format!("{}.json", q.id)), serde_json::to_vec(v)?)?;
        }
        let runs_n = walls.len().max(1) as f64;
        let r = json!({
            "kind": "time",
            "target": target,
            "scale": ds.scale,
            "query_id": q.id,
            "query": q.promql,
            "start": fmt_secs(start),
            "end": fmt_secs(end),
            "step_s": a.step_secs,
            "warmup": a.warmup,
            "runs_s": walls.iter().map(|w| (w * 1e4).round() / 1e4).collect::<Vec<_>>(),
            "median_s": if walls.is_empty() { Value::Null } else { json!(median(&walls)) },
            "min_s": walls.iter().copied().reduce(f64::min),
            "max_s": walls.iter().copied().reduce(f64::max),
            "target_cpu_s_per_run": cpu.filter(|_| !walls.is_empty()).map(|c| c / runs_n),
            "other_cpu_s": other,
            "disturbed": other.is_some_and(|o| o > 0.1 * span.max(1.0)),
            "result_series": series,
            "result_points": points,
            "response_bytes": bytes,
            "rss_bytes": if a.pids.is_empty() { None } else { a.pids.iter().map(|&p| querysys::rss_bytes(p)).sum::<Option<u64>>() },
            "error": error,
        });
        eprintln!(
            "{target} {} {}: median {} s, min {} s, runs {:?}, {} series / {} points / {} bytes{}",
            querydata::scale_tag(ds.scale),
            q.id,
            r["median_s"],
            r["min_s"],
            r["runs_s"],
            series,
            points,
            bytes,
            r["error"]
                .as_str()
                .map_or(String::new(), |e| format!(", ERROR {e}"))
        );
        append_json(&a.json_out, &r)?;
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------ compare

type Answer = BTreeMap<String, Vec<(i64, f64)>>;

fn parse_value(s: &str) -> f64 {
    match s {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

fn label_key(metric: &Value, drop_name: bool) -> String {
    let mut pairs: Vec<(String, String)> = metric
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !(drop_name && k.as_str() == "__name__"))
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", body.join(", "))
}

fn parse_answer(v: &Value, drop_name: bool) -> Result<Answer> {
    ensure!(
        v["data"]["resultType"] == "matrix",
        "result type {} (expected matrix)",
        v["data"]["resultType"]
    );
    let mut out = Answer::new();
    for s in v["data"]["result"].as_array().context("no result array")? {
        let key = label_key(&s["metric"], drop_name);
        let pts = s["values"]
            .as_array()
            .map(|vals| {
                vals.iter()
                    .map(|p| {
                        let ts = p[0].as_f64().unwrap_or(f64::NAN);
                        (
                            (ts * 1000.0).round() as i64,
                            parse_value(p[1].as_str().unwrap_or("")),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        ensure!(
            out.insert(key.clone(), pts).is_none(),
            "duplicate series {key}"
        );
    }
    Ok(out)
}

fn same(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * a.abs().max(b.abs())
}

fn compare_answers(reference: &Answer, cand: &Answer, tol: f64) -> Value {
    let (mut missing_series, mut extra_series) = (0u64, 0u64);
    let (mut missing_points, mut extra_points, mut mismatched, mut matched) =
        (0u64, 0u64, 0u64, 0u64);
    let mut max_rel = 0.0f64;
    let mut examples: Vec<Value> = Vec::new();
    let example = |e: Value, examples: &mut Vec<Value>| {
        if examples.len() < 8 {
            examples.push(e);
        }
    };
    for (key, rp) in reference {
        let Some(cp) = cand.get(key) else {
            missing_series += 1;
            missing_points += rp.len() as u64;
            example(
                json!({"missing_series": key, "points": rp.len()}),
                &mut examples,
            );
            continue;
        };
        let cm: HashMap<i64, f64> = cp.iter().copied().collect();
        let rm: HashMap<i64, f64> = rp.iter().copied().collect();
        for &(t, rv) in rp {
            match cm.get(&t) {
                None => {
                    missing_points += 1;
                    example(
                        json!({"series": key, "t": t, "missing_point": rv.to_string()}),
                        &mut examples,
                    );
                }
                Some(&cv) => {
                    if same(rv, cv, tol) {
                        matched += 1;
                    } else {
                        mismatched += 1;
                        let rel = (rv - cv).abs() / rv.abs().max(cv.abs());
                        if rel.is_finite() {
                            max_rel = max_rel.max(rel);
                        } else {
                            max_rel = f64::INFINITY;
                        }
                        example(
                            json!({"series": key, "t": t, "reference": rv.to_string(), "candidate": cv.to_string()}),
                            &mut examples,
                        );
                    }
                }
            }
        }
        for &(t, cv) in cp {
            if !rm.contains_key(&t) {
                extra_points += 1;
                example(
                    json!({"series": key, "t": t, "extra_point": cv.to_string()}),
                    &mut examples,
                );
            }
        }
    }
    for (key, cp) in cand {
        if !reference.contains_key(key) {
            extra_series += 1;
            extra_points += cp.len() as u64;
            example(
                json!({"extra_series": key, "points": cp.len()}),
                &mut examples,
            );
        }
    }
    let exact = missing_series + extra_series + missing_points + extra_points + mismatched == 0;
    json!({
        "reference_series": reference.len(),
        "candidate_series": cand.len(),
        "reference_points": reference.values().map(Vec::len).sum::<usize>(),
        "candidate_points": cand.values().map(Vec::len).sum::<usize>(),
        "matched_points": matched,
        "missing_series": missing_series,
        "extra_series": extra_series,
        "missing_points": missing_points,
        "extra_points": extra_points,
        "value_mismatches": mismatched,
        "max_rel_err": if max_rel.is_finite() { json!(max_rel) } else { json!("inf") },
        "match": exact,
        "examples": examples,
    })
}

fn compare(a: &CompareArgs) -> Result<()> {
    let reference = canonical_target(&a.reference);
    let mut scales: Vec<PathBuf> = std::fs::read_dir(&a.answers)
        .with_context(|| format!("reading {}", a.answers.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    scales.sort();
    for dir in scales {
        let scale = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let ref_dir = dir.join(&reference);
        let Ok(entries) = std::fs::read_dir(&ref_dir) else {
            eprintln!("{scale}: no {reference} answers");
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let qid = f
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let rj = read_json(&f)?;
            for c in &a.candidates {
                let c = canonical_target(c);
                // VictoriaMetrics keeps the metric name where PromQL drops it (e.g. max_over_time): compare its
                // answers without names, to see the differences in values.
                let drop_name = c == "victoriametrics";
                let rv =
                    parse_answer(&rj, drop_name).with_context(|| format!("{}", f.display()))?;
                let cf = dir.join(&c).join(format!("{qid}.json"));
                if !cf.exists() {
                    continue;
                }
                let mut r = match parse_answer(&read_json(&cf)?, drop_name) {
                    Ok(cv) => compare_answers(&rv, &cv, a.tolerance),
                    Err(e) => json!({"match": false, "error": format!("{e:#}")}),
                };
                r["kind"] = json!("compare");
                r["scale"] = json!(scale);
                r["query_id"] = json!(qid);
                r["reference"] = json!(reference);
                r["candidate"] = json!(c);
                r["tolerance"] = json!(a.tolerance);
                r["metric_names_ignored"] = json!(drop_name);
                append_json(&a.json_out, &r)?;
            }
        }
    }
    Ok(())
}

fn read_json(p: &Path) -> Result<Value> {
    let b = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    Ok(serde_json::from_slice(&b)?)
}

// ------------------------------------------------------------------------------------------------ report

fn read_lines(p: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
    text.lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

fn secs(v: &Value) -> String {
    v.as_f64().map_or("–".into(), |x| {
        if x < 1.0 {
            format!("{x:.3}")
        } else {
            format!("{x:.2}")
        }
    })
}

fn ratio(a: &Value, b: &Value) -> String {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if y > 0.0 => format!("{:.2}×", x / y),
        _ => "–".into(),
    }
}

fn report(a: &ReportArgs) -> Result<()> {
    let timings = read_lines(&a.timings)?;
    let compares = match &a.compare {
        Some(p) if p.exists() => read_lines(p)?,
        _ => Vec::new(),
    };
    // Last line wins for each (scale, query, target).
    let mut t: BTreeMap<(u64, String, String), Value> = BTreeMap::new();
    let mut qtext: BTreeMap<(u64, String), String> = BTreeMap::new();
    for v in timings {
        let scale = v["scale"].as_u64().unwrap_or(0);
        let qid = v["query_id"].as_str().unwrap_or("?").to_string();
        qtext.insert(
            (scale, qid.clone()),
            v["query"].as_str().unwrap_or("").to_string(),
        );
        t.insert(
            (scale, qid, v["target"].as_str().unwrap_or("?").to_string()),
            v,
        );
    }
    let mut c: BTreeMap<(String, String, String), Value> = BTreeMap::new();
    for v in compares {
        c.insert(
            (
                v["scale"].as_str().unwrap_or("").to_string(),
                v["query_id"].as_str().unwrap_or("").to_string(),
                v["candidate"].as_str().unwrap_or("").to_string(),
            ),
            v,
        );
    }
    let order = ["sum_rate", "hq_p99", "topk_max"];
    let mut keys: Vec<(u64, String)> = qtext.keys().cloned().collect();
    keys.sort_by_key(|(s, q)| {
        (
            *s,
            order.iter().position(|o| o == q).unwrap_or(9),
            q.clone(),
        )
    });
    println!("Wall time per range query measured on the client (median of the timed runs; minimum in parentheses), seconds:");
    println!();
    println!("| series | query | Strata | VictoriaMetrics | Prometheus | Strata/VM | Strata/Prom | VM/Prom | Strata = Prometheus |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---|");
    let null = Value::Null;
    for (scale, qid) in &keys {
        let get = |target: &str| t.get(&(*scale, qid.clone(), target.to_string()));
        let cell = |target: &str| match get(target) {
            Some(v) if v["error"].is_string() => "error".to_string(),
            Some(v) => format!(
                "{} ({}){}",
                secs(&v["median_s"]),
                secs(&v["min_s"]),
                if v["disturbed"].as_bool() == Some(true) {
                    "*"
                } else {
                    ""
                }
            ),
            None => "–".into(),
        };
        let med = |target: &str| get(target).map_or(&null, |v| &v["median_s"]);
        let verdict = match c.get(&(querydata::scale_tag(*scale as usize), qid.clone(), "strata".into())) {
            Some(v) if v["match"].as_bool() == Some(true) => format!(
                "yes ({} points)",
                v["matched_points"].as_u64().unwrap_or(0)
            ),
            Some(v) if v["error"].is_string() => format!("no: {}", v["error"].as_str().unwrap_or("")),
            Some(v) => format!(
                "**no**: {} missing / {} extra series, {} missing / {} extra points, {} values differ (max rel. {})",
                v["missing_series"], v["extra_series"], v["missing_points"], v["extra_points"], v["value_mismatches"], v["max_rel_err"]
            ),
            None => "–".into(),
        };
        println!(
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} |",
            querydata::scale_tag(*scale as usize),
            qtext[&(*scale, qid.clone())],
            cell("strata"),
            cell("victoriametrics"),
            cell("prometheus"),
            ratio(med("strata"), med("victoriametrics")),
            ratio(med("strata"), med("prometheus")),
            ratio(med("victoriametrics"), med("prometheus")),
            verdict
        );
    }
    println!();
    println!("Server CPU seconds per query (all threads, from /proc) and result size:");
    println!();
    println!("| series | query | Strata CPU s | VM CPU s | Prometheus CPU s | result series / points | Prometheus response bytes |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for (scale, qid) in &keys {
        let get = |target: &str| t.get(&(*scale, qid.clone(), target.to_string()));
        let cpu =
            |target: &str| get(target).map_or("–".into(), |v| secs(&v["target_cpu_s_per_run"]));
        let size = get("prometheus")
            .or_else(|| get("strata"))
            .map_or("–".into(), |v| {
                format!("{} / {}", v["result_series"], v["result_points"])
            });
        let bytes = get("prometheus").map_or("–".into(), |v| v["response_bytes"].to_string());
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            querydata::scale_tag(*scale as usize),
            qid,
            cpu("strata"),
            cpu("victoriametrics"),
            cpu("prometheus"),
            size,
            bytes
        );
    }
    let disturbed: Vec<String> = t
        .iter()
        .filter(|(_, v)| v["disturbed"].as_bool() == Some(true))
        .map(|((s, q, tg), v)| {
            format!(
                "{tg} {} {q} (other CPU {} s)",
                querydata::scale_tag(*s as usize),
                secs(&v["other_cpu_s"])
            )
        })
        .collect();
    if !disturbed.is_empty() {
        println!();
        println!(
            "\\* other processes used more than 10% of a core during these runs: {}",
            disturbed.join("; ")
        );
    }
    let errors: Vec<String> = t
        .iter()
        .filter_map(|((s, q, tg), v)| {
            v["error"]
                .as_str()
                .map(|e| format!("{tg} {} {q}: {e}", querydata::scale_tag(*s as usize)))
        })
        .collect();
    if !errors.is_empty() {
        println!();
        println!("Errors:");
        for e in errors {
            println!("- {e}");
        }
    }
    for (who, title) in [
        (
            "strata",
            "Strata answers that differ from Prometheus's (labels exact, values within the relative tolerance):",
        ),
        (
            "victoriametrics",
            "VictoriaMetrics answers that differ from Prometheus's, for information: MetricsQL differs from PromQL \
             by design (e.g. its `rate` uses the last sample before the window and does not extrapolate); metric \
             names are ignored for it (it keeps `__name__` after `max_over_time`):",
        ),
    ] {
        let mismatches: Vec<&Value> = c
            .values()
            .filter(|v| v["candidate"] == who && v["match"].as_bool() != Some(true))
            .collect();
        if mismatches.is_empty() {
            continue;
        }
        println!();
        println!("{title}");
        println!();
        for v in mismatches {
            println!(
                "- {} {}: {} series vs {}, {} points matched, {} missing / {} extra series, {} missing / {} extra points, {} values differ, max rel. error {}{}",
                v["scale"].as_str().unwrap_or("?"),
                v["query_id"].as_str().unwrap_or("?"),
                v["candidate_series"],
                v["reference_series"],
                v["matched_points"],
                v["missing_series"],
                v["extra_series"],
                v["missing_points"],
                v["extra_points"],
                v["value_mismatches"],
                v["max_rel_err"],
                v["error"].as_str().map_or(String::new(), |e| format!(" ({e})"))
            );
            if let Some(ex) = v["examples"].as_array() {
                for e in ex.iter().take(3) {
                    println!("  - e.g. {e}");
                }
            }
        }
    }
    if let Some(p) = &a.load {
        if p.exists() {
            println!();
            println!(
                "Loading (remote write in 10-minute slices, 8 shards; not the ingest benchmark):"
            );
            println!();
            println!("| series | target | samples | seconds | samples/s | failed |");
            println!("|---:|---|---:|---:|---:|---:|");
            for v in read_lines(p)? {
                println!(
                    "| {} | {} | {} | {} | {:.2} M | {} |",
                    querydata::scale_tag(v["scale"].as_u64().unwrap_or(0) as usize),
                    v["target"].as_str().unwrap_or("?"),
                    v["samples_ok"],
                    v["wall_s"],
                    v["samples_per_s"].as_f64().unwrap_or(0.0) / 1e6,
                    v["samples_failed"].as_u64().unwrap_or(0)
                        + v["samples_skipped"].as_u64().unwrap_or(0)
                );
            }
        }
    }
    if let Some(p) = &a.verify {
        if p.exists() {
            println!();
            println!("Read-back before timing (series and samples per metric):");
            println!();
            for v in read_lines(p)? {
                let mut parts = Vec::new();
                if let Some(o) = v.as_object() {
                    for (k, m) in o {
                        if m.get("series").is_some() {
                            parts.push(format!(
                                "{k}: {} series, {} samples",
                                m["series"], m["samples"]
                            ));
                        }
                    }
                }
                println!(
                    "- {} {}: {} ({})",
                    v["target"].as_str().unwrap_or("?"),
                    querydata::scale_tag(v["scale"].as_u64().unwrap_or(0) as usize),
                    parts.join("; "),
                    if v["ok"].as_bool() == Some(true) {
                        "as generated"
                    } else {
                        "**differs from the data set**"
                    }
                );
            }
        }
    }
    Ok(())
}
