//! `ingest-bench`: remote write 1.0 load generator for comparing Strata, Prometheus and VictoriaMetrics.
//!
//! Generates node_exporter-like series for a fleet of hosts, shards them like Prometheus's remote-write queue
//! manager (each series in exactly one shard, a shard sends its samples in time order, one request in flight
//! per shard, up to `--max-samples-per-send` samples per request), pre-builds and snappy-compresses every
//! request body before the clock starts, then posts them as fast as the target acknowledges them.
//! With `--pid` it samples the target's RSS from /proc every 200 ms.
//!
//! A target may be several processes: `--url` is repeatable (`--mode spread`: each request to the next URL,
//! as a load balancer in front of several distributors; `--mode quorum --quorum N`: each request to every URL,
//! acknowledged once N answered 2xx, see `send.rs`), and so is `--pid` (`NAME=PID`; RSS and CPU are summed
//! and reported per process too). `--aux-pid` names processes of the same system whose CPU is part of the
//! run (not a disturbance) but whose memory is not summed.
//!
//! Typical use (see benches/ingest.sh): build the payloads once with `--save-payloads FILE`, then run
//! `--payloads FILE --url ... --pid ... --target NAME --json-out results.jsonl` against each target in turn, and
//! print the comparison with `--report results.jsonl`.
#![allow(clippy::print_stdout)]

mod cluster_report;
mod node_exporter;
mod payload;
mod procfs;
mod rng;
mod send;
mod watch;
mod wire;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Value};

use payload::{Params, Payloads, Request};
use send::{Endpoints, Mode};
use watch::Watch;

#[derive(Parser, Debug)]
#[command(
    name = "ingest-bench",
    about = "Remote write 1.0 ingest benchmark (node_exporter-like series)"
)]
struct Args {
    /// Remote-write URL to post to, e.g. http://127.0.0.1:9090/api/v1/write. Repeatable: see --mode.
    #[arg(long)]
    url: Vec<String>,
    /// With several URLs: `spread` sends each request to the next URL in turn (a load balancer in front
    /// of several distributors); `quorum` sends each request to every URL and counts it acknowledged once
    /// --quorum of them answered 2xx (the others finish in the background).
    #[arg(long, value_enum, default_value = "spread")]
    mode: Mode,
    /// 2xx answers that acknowledge a request in quorum mode (default: a majority of the URLs).
    #[arg(long)]
    quorum: Option<usize>,
    /// Extra request header, "Name: value" (repeatable), e.g. "X-Scope-OrgID: bench".
    #[arg(long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Name of the target in the output (strata, prometheus, victoriametrics, ...).
    #[arg(long, default_value = "target")]
    target: String,
    /// PID of a target process, to read VmRSS/VmHWM and CPU time from /proc: `PID` or `NAME=PID`.
    /// Repeatable: RSS and CPU are then summed over the processes and reported per process too.
    #[arg(long = "pid", value_name = "[NAME=]PID")]
    pids: Vec<String>,
    /// A process of the target whose CPU time belongs to the run (not counted as a disturbance) but
    /// whose RSS is not in the sums, e.g. a cluster's meta voters: `NAME=PID`, repeatable.
    #[arg(long = "aux-pid", value_name = "[NAME=]PID")]
    aux_pids: Vec<String>,
    /// Copies of each series the target keeps (recorded in the result line for RSS per stored series).
    #[arg(long, default_value_t = 1)]
    replication_factor: u64,
    /// Number of active series.
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// Number of scrape rounds (one sample per series each).
    #[arg(long, default_value_t = 60)]
    rounds: usize,
    /// Number of remote-write shards (concurrent requests).
    #[arg(long, default_value_t = 16)]
    shards: usize,
    /// Samples per request, at most (Prometheus's max_samples_per_send).
    #[arg(long, default_value_t = 2_000)]
    max_samples_per_send: usize,
    /// Scrape interval in seconds.
    #[arg(long, default_value_t = 15)]
    interval_secs: u64,
    /// Age of the last round's samples when the payloads are built, in seconds.
    #[arg(long, default_value_t = 60)]
    last_round_age_secs: u64,
    /// Seed for series shapes and values.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Threads used to build payloads (before timing starts).
    #[arg(long)]
    build_threads: Option<usize>,
    /// Tokio worker threads used to send requests.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Write the built payloads to this file.
    #[arg(long)]
    save_payloads: Option<PathBuf>,
    /// Load payloads from this file instead of generating them (series/rounds/shards options are then ignored).
    #[arg(long)]
    payloads: Option<PathBuf>,
    /// Seconds to wait after the last response before reading the RSS "after ingest".
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 60)]
    request_timeout_secs: u64,
    /// Stop sending after this many seconds (remaining requests are reported as skipped).
    #[arg(long, default_value_t = 900)]
    max_run_secs: u64,
    /// Append the JSON result line to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
    /// Print statistics of the generated series and every Nth series (N = series / this), then exit.
    #[arg(long)]
    dump_series: Option<usize>,
    /// Print a comparison table of the JSON result lines in this file and exit.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Print the cluster comparison (benches/cluster.sh) of the JSON result lines in this file and exit.
    #[arg(long)]
    cluster_report: Option<PathBuf>,
    /// With --cluster-report: query-bench `time` result lines to add to it.
    #[arg(long)]
    query_timings: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.report {
        return report(path);
    }
    if let Some(path) = &args.cluster_report {
        return cluster_report::print(path, args.query_timings.as_deref());
    }
    if let Some(n) = args.dump_series {
        return dump_series(&args, n);
    }
    if args.url.is_empty() && args.save_payloads.is_none() {
        bail!("nothing to do: give --url (and optionally --pid), --save-payloads or --report");
    }

    let payloads = match &args.payloads {
        Some(path) => {
            let t = Instant::now();
            let p = payload::load(path)?;
            eprintln!(
                "loaded {} requests from {} in {:.1?}",
                p.meta_u64("requests"),
                path.display(),
                t.elapsed()
            );
            p
        }
        None => generate(&args)?,
    };
    eprintln!(
        "payloads: {} series on {} hosts, {} rounds, {} shards, {} samples in {} requests, {:.1} MiB raw / {:.1} MiB snappy ({:.1} B/sample on the wire)",
        payloads.meta_u64("series"),
        payloads.meta_u64("hosts"),
        payloads.meta_u64("rounds"),
        payloads.meta_u64("shards"),
        payloads.meta_u64("samples"),
        payloads.meta_u64("requests"),
        payloads.meta_u64("uncompressed_bytes") as f64 / MIB,
        payloads.meta_u64("compressed_bytes") as f64 / MIB,
        payloads.meta_u64("compressed_bytes") as f64 / payloads.meta_u64("samples").max(1) as f64,
    );
    if let Some(path) = &args.save_payloads {
        payload::save(&payloads, path)?;
        eprintln!("saved payloads to {}", path.display());
    }
    if args.url.is_empty() {
        return Ok(());
    }
    let quorum = args.quorum.unwrap_or(args.url.len() / 2 + 1);
    let endpoints = Arc::new(Endpoints::new(args.url.clone(), args.mode, quorum)?);

    let age_min = (now_ms() - payloads.meta_i64("first_ts_ms")) as f64 / 60_000.0;
    if age_min > 58.0 {
        eprintln!(
            "WARNING: the oldest samples are {age_min:.0} minutes old: a target that rejects samples older than an hour (Prometheus once its head holds newer samples) may refuse them. Rebuild the payloads."
        );
    }

    let result = run_target(&args, endpoints, payloads)?;
    let line = serde_json::to_string(&result)?;
    println!("{line}");
    println!("{}", human_line(&result));
    if let Some(path) = &args.json_out {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{line}")?;
    }
    if result["errors"].as_u64().unwrap_or(0) > 0
        || result["skipped_requests"].as_u64().unwrap_or(0) > 0
    {
        std::process::exit(3);
    }
    Ok(())
}

const MIB: f64 = 1024.0 * 1024.0;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn generate(args: &Args) -> Result<Payloads> {
    let interval_ms = (args.interval_secs * 1000) as i64;
    let span_s = args.rounds as u64 * args.interval_secs + args.last_round_age_secs;
    if span_s > 55 * 60 {
        bail!(
            "{} rounds every {} s ending {} s ago span {} min: samples older than an hour are rejected by Prometheus; use fewer rounds",
            args.rounds,
            args.interval_secs,
            args.last_round_age_secs,
            span_s / 60
        );
    }
    let t = Instant::now();
    let (specs, hosts) = node_exporter::generate(args.series, args.seed, interval_ms);
    let params = Params {
        series: args.series,
        rounds: args.rounds,
        shards: args.shards,
        max_samples_per_send: args.max_samples_per_send,
        interval_ms,
        // Last round's timestamps fall in [now - age - interval, now - age).
        start_ms: now_ms()
            - (args.last_round_age_secs as i64) * 1000
            - args.rounds as i64 * interval_ms,
        seed: args.seed,
    };
    let threads = args
        .build_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let p = payload::build(&specs, &hosts, &params, threads)?;
    debug_assert_eq!(params.series, specs.len());
    eprintln!("built payloads in {:.1?}", t.elapsed());
    Ok(p)
}

fn dump_series(args: &Args, n: usize) -> Result<()> {
    let (specs, hosts) =
        node_exporter::generate(args.series, args.seed, (args.interval_secs * 1000) as i64);
    let label_bytes: usize = specs
        .iter()
        .map(|s| {
            s.labels
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
        })
        .sum();
    let labels: usize = specs.iter().map(|s| s.labels.len()).sum();
    let mut names: Vec<&str> = specs.iter().map(|s| s.labels[0].1.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let constant = specs
        .iter()
        .filter(|s| matches!(s.kind, node_exporter::Kind::Constant))
        .count();
    let counters = specs
        .iter()
        .filter(|s| matches!(s.kind, node_exporter::Kind::Counter { .. }))
        .count();
    println!(
        "{} series, {} hosts ({:.0} series/host), {} metric names, {:.1} labels/series, {:.0} B of label names+values/series, {} counters, {} gauges, {} constant",
        specs.len(),
        hosts.len(),
        specs.len() as f64 / hosts.len().max(1) as f64,
        names.len(),
        labels as f64 / specs.len().max(1) as f64,
        label_bytes as f64 / specs.len().max(1) as f64,
        counters,
        specs.len() - counters - constant,
        constant
    );
    let step = (specs.len() / n.max(1)).max(1);
    for s in specs.iter().step_by(step) {
        let name = &s.labels[0].1;
        let rest: Vec<String> = s.labels[1..]
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        println!("{name}{{{}}} {} {:?}", rest.join(","), s.initial, s.kind);
    }
    Ok(())
}

#[derive(Default)]
struct ShardResult {
    latencies_us: Vec<u64>,
    ok_samples: u64,
    failed_samples: u64,
    errors: u64,
    skipped_requests: u64,
    skipped_samples: u64,
    status_counts: BTreeMap<String, u64>,
    first_error: Option<String>,
    /// Quorum mode: sends still running when their request was decided.
    background: Vec<tokio::task::JoinHandle<()>>,
}

async fn send_shard(
    client: reqwest::Client,
    headers: reqwest::header::HeaderMap,
    endpoints: Arc<Endpoints>,
    reqs: Vec<Request>,
    deadline: Instant,
) -> ShardResult {
    let mut r = ShardResult {
        latencies_us: Vec::with_capacity(reqs.len()),
        ..Default::default()
    };
    for req in reqs {
        if Instant::now() >= deadline {
            r.skipped_requests += 1;
            r.skipped_samples += u64::from(req.samples);
            continue;
        }
        let t0 = Instant::now();
        let outcome = endpoints
            .send(&client, &headers, req.body, &mut r.background)
            .await;
        r.latencies_us.push(t0.elapsed().as_micros() as u64);
        match outcome {
            Ok(code) => {
                r.ok_samples += u64::from(req.samples);
                *r.status_counts.entry(code).or_default() += 1;
            }
            Err((code, msg)) => {
                r.errors += 1;
                r.failed_samples += u64::from(req.samples);
                *r.status_counts.entry(code).or_default() += 1;
                if r.first_error.is_none() {
                    r.first_error = Some(msg);
                }
            }
        }
    }
    r
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[idx] as f64 / 1000.0
}

fn run_target(args: &Args, endpoints: Arc<Endpoints>, payloads: Payloads) -> Result<Value> {
    let series = payloads.meta_u64("series");
    let specs = |list: &[String]| -> Result<Vec<(String, u32)>> {
        list.iter().map(|s| watch::parse_spec(s)).collect()
    };
    let watch = Arc::new(Watch::start(&specs(&args.pids)?, &specs(&args.aux_pids)?)?);
    let watching = !watch.is_empty();
    let self_cpu_before = procfs::cpu_seconds("self");
    let machine_before = procfs::machine_cpu_seconds();
    let steal_before = procfs::machine_steal_seconds();

    let sampler = watching.then(|| watch.sampler());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let nshards = payloads.shards.len();
    let mut headers = reqwest::header::HeaderMap::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .with_context(|| format!("--header {h:?}: expected NAME: VALUE"))?;
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())?,
            reqwest::header::HeaderValue::from_str(value.trim())?,
        );
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(nshards)
        .timeout(Duration::from_secs(args.request_timeout_secs))
        .build()?;
    let (wall, drain, results) = rt.block_on(async {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(args.max_run_secs);
        let tasks: Vec<_> = payloads
            .shards
            .into_iter()
            .map(|reqs| {
                tokio::spawn(send_shard(
                    client.clone(),
                    headers.clone(),
                    endpoints.clone(),
                    reqs,
                    deadline,
                ))
            })
            .collect();
        let mut results = Vec::with_capacity(tasks.len());
        for t in tasks {
            results.push(t.await.expect("shard task panicked"));
        }
        // The last request was acknowledged: the run's time. Then the stragglers of quorum mode.
        let wall = start.elapsed();
        for r in &mut results {
            for h in r.background.drain(..) {
                let _ = h.await;
            }
        }
        (wall, start.elapsed(), results)
    });
    watch.mark_run_end();
    let (target_cpu, aux_cpu) = watch.cpu_since_start();
    let self_cpu_after = procfs::cpu_seconds("self");
    let machine_after = procfs::machine_cpu_seconds();
    let steal_after = procfs::machine_steal_seconds();

    std::thread::sleep(Duration::from_secs(args.settle_secs));
    if let Some((stop, handle)) = sampler {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = handle.join();
    }
    let figures = watch.finish();
    for gone in &figures.gone {
        eprintln!("WARNING: target process {gone} is gone after the run");
    }
    let (target_cpu_incl_settle, aux_cpu_incl_settle) = watch.cpu_since_start();

    let mut lat: Vec<u64> = Vec::new();
    let (mut ok, mut failed, mut errors, mut skipped_req, mut skipped_samples) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut status_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_error = None;
    for r in results {
        lat.extend(r.latencies_us);
        ok += r.ok_samples;
        failed += r.failed_samples;
        errors += r.errors;
        skipped_req += r.skipped_requests;
        skipped_samples += r.skipped_samples;
        for (k, v) in r.status_counts {
            *status_counts.entry(k).or_default() += v;
        }
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    lat.sort_unstable();
    let wall_s = wall.as_secs_f64();
    if let Some(e) = &first_error {
        eprintln!(
            "{}: {errors} failed requests; first error: {e}",
            args.target
        );
    }
    let self_cpu = self_cpu_before.zip(self_cpu_after).map(|(a, b)| b - a);
    let machine_cpu = machine_before.zip(machine_after).map(|(a, b)| b.0 - a.0);
    let irq_cpu = machine_before.zip(machine_after).map(|(a, b)| b.1 - a.1);
    // CPU used during the run (until the last straggler) by anything but the target's processes and
    // the generator (other builds, daemons...).
    let other_cpu = machine_cpu.map(|m| {
        (m - target_cpu.unwrap_or(0.0) - aux_cpu.unwrap_or(0.0) - self_cpu.unwrap_or(0.0)).max(0.0)
    });
    let busy_s = drain.as_secs_f64();
    if let Some(o) = other_cpu {
        if o > 0.1 * busy_s.max(1.0) {
            eprintln!(
                "WARNING: other processes used {o:.1} CPU s during the {busy_s:.1} s run ({:.0}% of one core): the figures are disturbed",
                100.0 * o / busy_s
            );
        }
    }
    let opt = |v: Option<u64>| v.map_or(Value::Null, Value::from);
    let optf = |v: Option<f64>| v.map_or(Value::Null, |x| json!((x * 1000.0).round() / 1000.0));
    let replicated = endpoints.urls().len() > 1;
    let mut v = json!({
        "target": args.target,
        "url": endpoints.urls()[0],
        "series": series,
        "hosts": payloads.meta["hosts"],
        "rounds": payloads.meta["rounds"],
        "shards": nshards,
        "max_samples_per_send": payloads.meta["max_samples_per_send"],
        "requests": lat.len() as u64 + skipped_req,
        "samples": payloads.meta["samples"],
        "samples_ok": ok,
        "samples_failed": failed,
        "errors": errors,
        "skipped_requests": skipped_req,
        "skipped_samples": skipped_samples,
        "status_counts": status_counts,
        "first_error": first_error,
        "wall_s": (wall_s * 1000.0).round() / 1000.0,
        "samples_per_s": (ok as f64 / wall_s).round(),
        "p50_ms": percentile(&lat, 0.50),
        "p99_ms": percentile(&lat, 0.99),
        "max_ms": percentile(&lat, 1.0),
        "rss_before_bytes": if watching { opt(figures.rss_before) } else { Value::Null },
        "rss_peak_bytes": if watching { Value::from(figures.rss_peak) } else { Value::Null },
        "rss_after_bytes": if watching { opt(figures.rss_after) } else { Value::Null },
        "rss_per_series_bytes": if watching { opt(figures.rss_after.map(|m| m / series.max(1))) } else { Value::Null },
        "settle_s": args.settle_secs,
        "target_cpu_s_run": if watching { optf(target_cpu) } else { Value::Null },
        "target_cpu_s_incl_settle": if watching { optf(target_cpu_incl_settle) } else { Value::Null },
        "generator_cpu_s_run": optf(self_cpu),
        "machine_cpu_s_run": optf(machine_cpu),
        "irq_cpu_s_run": optf(irq_cpu),
        "steal_cpu_s_run": optf(steal_before.zip(steal_after).map(|(a, b)| b - a)),
        "other_cpu_s_run": optf(other_cpu),
        // Something else used more than 10% of a core during the run (same test as the warning above).
        "disturbed": other_cpu.is_some_and(|o| o > 0.1 * busy_s.max(1.0)),
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "wire_bytes": payloads.meta["compressed_bytes"],
        "first_ts_ms": payloads.meta["first_ts_ms"],
        "last_ts_ms": payloads.meta["last_ts_ms"],
        "seed": payloads.meta["seed"],
    });
    v["urls"] = json!(endpoints.urls());
    v["mode"] = if replicated {
        Value::from(endpoints.mode().name())
    } else {
        Value::Null
    };
    v["quorum"] = if replicated && endpoints.mode() == Mode::Quorum {
        Value::from(endpoints.quorum())
    } else {
        Value::Null
    };
    v["replication_factor"] = json!(args.replication_factor);
    // Quorum mode: until the last background send finished (= wall_s otherwise).
    v["drain_s"] = json!((busy_s * 1000.0).round() / 1000.0);
    v["rss_peak_sum_sampled_bytes"] = if watching {
        Value::from(figures.rss_peak_sum_sampled)
    } else {
        Value::Null
    };
    v["aux_cpu_s_run"] = optf(aux_cpu);
    v["aux_cpu_s_incl_settle"] = optf(aux_cpu_incl_settle);
    v["pids"] = json!(figures.per_pid);
    v["aux_pids"] = json!(figures.aux);
    v["endpoints"] = endpoints.report();
    Ok(v)
}
fn fmt_int(v: f64) -> String {
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

fn mib(v: &Value) -> String {
    v.as_f64()
        .map_or("-".to_string(), |b| format!("{:.1}", b / MIB))
}

fn human_line(r: &Value) -> String {
    format!(
        "{}: {} samples/s ({} of {} samples in {:.2} s), latency p50 {:.1} ms p99 {:.1} ms, peak RSS {} MiB, RSS after {} MiB = {} B/series, target CPU {} s, errors {}{}",
        r["target"].as_str().unwrap_or("?"),
        fmt_int(r["samples_per_s"].as_f64().unwrap_or(0.0)),
        fmt_int(r["samples_ok"].as_f64().unwrap_or(0.0)),
        fmt_int(r["samples"].as_f64().unwrap_or(0.0)),
        r["wall_s"].as_f64().unwrap_or(0.0),
        r["p50_ms"].as_f64().unwrap_or(0.0),
        r["p99_ms"].as_f64().unwrap_or(0.0),
        mib(&r["rss_peak_bytes"]),
        mib(&r["rss_after_bytes"]),
        r["rss_per_series_bytes"].as_u64().map_or("-".to_string(), |b| fmt_int(b as f64)),
        r["target_cpu_s_run"].as_f64().map_or("-".to_string(), |c| format!("{c:.1}")),
        r["errors"].as_u64().unwrap_or(0),
        match r["skipped_requests"].as_u64() {
            Some(n) if n > 0 => format!(", {n} requests skipped (time limit)"),
            _ => String::new(),
        }
    )
}

fn canonical(target: &str) -> &str {
    match target {
        "vm" | "victoria-metrics" | "victoriametrics" => "victoriametrics",
        "prom" | "prometheus" => "prometheus",
        other => other,
    }
}

const MEDIAN_FIELDS: &[&str] = &[
    "samples_per_s",
    "wall_s",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "rss_before_bytes",
    "rss_peak_bytes",
    "rss_after_bytes",
    "rss_per_series_bytes",
    "target_cpu_s_run",
    "other_cpu_s_run",
    "generator_cpu_s_run",
];
const SUM_FIELDS: &[&str] = &["errors", "skipped_requests", "samples_failed"];

/// One row per target: the median of each figure over its runs (errors summed).
fn summarize(runs: &[Value]) -> Value {
    let mut out = runs[runs.len() - 1].clone();
    for key in MEDIAN_FIELDS {
        let mut v: Vec<f64> = runs.iter().filter_map(|r| r[*key].as_f64()).collect();
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        let m = if v.len() % 2 == 1 {
            v[v.len() / 2]
        } else {
            (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
        };
        out[*key] = if key.ends_with("_bytes") || *key == "samples_per_s" {
            json!(m.round() as u64)
        } else {
            json!(m)
        };
    }
    for key in SUM_FIELDS {
        out[*key] = json!(runs.iter().filter_map(|r| r[*key].as_u64()).sum::<u64>());
    }
    out["runs"] = json!(runs.len());
    // True only if every run was disturbed.
    out["disturbed"] = json!(runs.iter().all(is_disturbed));
    out
}

fn is_disturbed(r: &Value) -> bool {
    r["disturbed"].as_bool().unwrap_or(false)
}

fn print_table(rows: &[(String, Value)]) {
    println!(
        "| target | runs | samples/s | p50 ms | p99 ms | peak RSS MiB | RSS after MiB | RSS/series B | target CPU s | other CPU s | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, r) in rows {
        let cpu = |k: &str| r[k].as_f64().map_or("-".to_string(), |c| format!("{c:.1}"));
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} |",
            if is_disturbed(r) {
                format!("{name} (disturbed)")
            } else {
                name.clone()
            },
            r["runs"].as_u64().unwrap_or(1),
            fmt_int(r["samples_per_s"].as_f64().unwrap_or(0.0)),
            r["p50_ms"].as_f64().unwrap_or(0.0),
            r["p99_ms"].as_f64().unwrap_or(0.0),
            mib(&r["rss_peak_bytes"]),
            mib(&r["rss_after_bytes"]),
            r["rss_per_series_bytes"]
                .as_u64()
                .map_or("-".to_string(), |b| fmt_int(b as f64)),
            cpu("target_cpu_s_run"),
            cpu("other_cpu_s_run"),
            r["errors"].as_u64().unwrap_or(0) + r["skipped_requests"].as_u64().unwrap_or(0),
        );
    }
}

/// Prints a markdown table of the results per target in a JSON-lines file (median over repeated runs), and
/// Strata's ratios to the peers.
fn report(path: &PathBuf) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut runs: Vec<(String, Vec<Value>)> = Vec::new();
    let mut all: Vec<(String, Value)> = Vec::new();
    for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
        let v: Value = serde_json::from_str(line)?;
        let name = canonical(v["target"].as_str().unwrap_or("?")).to_string();
        all.push((name.clone(), v.clone()));
        match runs.iter_mut().find(|(n, _)| *n == name) {
            Some((_, list)) => list.push(v),
            None => runs.push((name, vec![v])),
        }
    }
    if runs.is_empty() {
        bail!("no results in {}", path.display());
    }
    let order = |n: &str| match n {
        "strata" => 0,
        "victoriametrics" => 1,
        "prometheus" => 2,
        _ => 3,
    };
    // Medians over the runs nothing else disturbed, if there are any.
    let mut by_target: Vec<(String, Value)> = runs
        .iter()
        .map(|(n, list)| {
            let clean: Vec<Value> = list.iter().filter(|r| !is_disturbed(r)).cloned().collect();
            if clean.is_empty() {
                (n.clone(), summarize(list))
            } else {
                (n.clone(), summarize(&clean))
            }
        })
        .collect();
    by_target.sort_by_key(|(n, _)| order(n));
    let first = &by_target[0].1;
    println!(
        "{} active series ({} hosts), {} rounds, {} samples, {} shards x {} samples/request max",
        fmt_int(first["series"].as_f64().unwrap_or(0.0)),
        first["hosts"],
        first["rounds"],
        fmt_int(first["samples"].as_f64().unwrap_or(0.0)),
        first["shards"],
        first["max_samples_per_send"]
    );
    println!();
    print_table(&by_target);
    if all.len() > by_target.len() {
        println!();
        println!("All runs, in order (disturbed runs are left out of the medians above when others exist):");
        println!();
        print_table(&all);
    }
    let get = |n: &str| by_target.iter().find(|(name, _)| name == n).map(|(_, v)| v);
    let ratio = |a: &Value, b: &Value, key: &str| -> Option<f64> {
        let (x, y) = (a[key].as_f64()?, b[key].as_f64()?);
        (y > 0.0).then_some(x / y)
    };
    println!();
    if let Some(s) = get("strata") {
        for peer in ["victoriametrics", "prometheus"] {
            if let Some(p) = get(peer) {
                let tput =
                    ratio(s, p, "samples_per_s").map_or("-".to_string(), |x| format!("{x:.2}x"));
                let rss = ratio(s, p, "rss_per_series_bytes")
                    .map_or("-".to_string(), |x| format!("{x:.2}x"));
                let p99 = ratio(s, p, "p99_ms").map_or("-".to_string(), |x| format!("{x:.2}x"));
                let caveat = if is_disturbed(s) || is_disturbed(p) {
                    " (from disturbed runs: not a fair comparison)"
                } else {
                    ""
                };
                println!(
                    "- strata / {peer}: samples/s {tput}, RSS per series {rss}, p99 latency {p99}{caveat}"
                );
            }
        }
        let vm_ok = get("victoriametrics")
            .and_then(|vm| ratio(s, vm, "samples_per_s"))
            .map_or("n/a (no VictoriaMetrics result)".to_string(), |x| {
                let verdict = if x >= 1.2 { "PASS" } else { "FAIL" };
                let caveat = if is_disturbed(s) {
                    ", disturbed runs"
                } else {
                    ""
                };
                format!("{verdict} ({x:.2}x{caveat})")
            });
        println!("- target strata >= 1.2x VictoriaMetrics samples/s: {vm_ok}");
        let rss = s["rss_per_series_bytes"]
            .as_u64()
            .map_or("n/a (no --pid)".to_string(), |b| {
                format!("{} ({b} B)", if b <= 1024 { "PASS" } else { "FAIL" })
            });
        println!("- target strata <= 1 KB RSS per active series: {rss}");
        let errs = s["errors"].as_u64().unwrap_or(0);
        if errs > 0 {
            println!("- strata had {errs} failed requests: {}", s["first_error"]);
        }
    } else {
        println!("- no strata result: ratios not computed");
        if let (Some(vm), Some(p)) = (get("victoriametrics"), get("prometheus")) {
            let t = ratio(vm, p, "samples_per_s").map_or("-".to_string(), |x| format!("{x:.2}x"));
            let m = ratio(vm, p, "rss_per_series_bytes")
                .map_or("-".to_string(), |x| format!("{x:.2}x"));
            println!("- victoriametrics / prometheus: samples/s {t}, RSS per series {m}");
        }
    }
    for (name, r) in &by_target {
        if r["errors"].as_u64().unwrap_or(0) > 0 {
            println!(
                "- {name}: {} failed requests, statuses {}, first error: {}",
                r["errors"], r["status_counts"], r["first_error"]
            );
        }
    }
    Ok(())
}
