//! `am-bench`: load generator for comparing Strata's alertmanager with Alertmanager 0.25.
//!
//! `am-bench run` posts alerts to `<url>/api/v2/alerts` (Alertmanager's v2 JSON schema) the way a
//! fleet of Prometheus servers does, and receives the notifications itself (a webhook endpoint on
//! loopback that the target's configuration points at):
//!
//! 1. **initial**: every alert once (N concurrent connections, batches of `--batch` alerts as
//!    Prometheus's notifier sends them), then waits until a notification arrived for every group;
//! 2. **throughput**: re-posts the same alerts for `--duration-secs` as fast as the target
//!    answers (what Prometheus's resends are, without the minute between them): accepted alerts
//!    per second, request latency, errors, the target's CPU time;
//! 3. **latency**: posts `--latency-groups` new groups, one request each, `--latency-interval-ms`
//!    apart, and measures for each group the time from sending its request to its notification
//!    arriving, minus `--group-wait-ms` (the delay the configuration asks for).
//!
//! It prints one JSON line (also appended to `--json-out`). `am-bench report --results FILE`
//! prints the comparison table of such lines (see benches/alertmanager.sh).
#![allow(clippy::print_stdout)]

mod procfs;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser, Debug)]
#[command(
    name = "am-bench",
    about = "Alertmanager API v2 load generator and notification-latency probe"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Post alerts to one target and measure it.
    Run(RunArgs),
    /// Print the comparison table of result lines.
    Report {
        #[arg(long)]
        results: PathBuf,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Base URL of the target, e.g. http://127.0.0.1:9093.
    #[arg(long)]
    url: String,
    /// Name of the target in the output (strata, alertmanager).
    #[arg(long, default_value = "target")]
    target: String,
    /// PID of the target, for its CPU time and memory from /proc.
    #[arg(long)]
    pid: Option<u32>,
    /// Where the webhook receiver listens; the target's configuration must send to it.
    #[arg(long, default_value = "127.0.0.1:19802")]
    webhook_listen: String,
    /// Concurrent connections (requests in flight).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Active alerts.
    #[arg(long, default_value_t = 10_000)]
    alerts: usize,
    /// Groups they fall into (the `group` label; route group_by: [group]).
    #[arg(long, default_value_t = 1_000)]
    groups: usize,
    /// Alerts per request (Prometheus's notifier sends at most 64).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Length of the throughput phase, seconds.
    #[arg(long, default_value_t = 30)]
    duration_secs: u64,
    /// The route's group_wait, milliseconds: subtracted from the notification delays.
    #[arg(long, default_value_t = 1_000)]
    group_wait_ms: u64,
    /// New groups posted in the latency phase.
    #[arg(long, default_value_t = 500)]
    latency_groups: usize,
    /// Alerts in each of them.
    #[arg(long, default_value_t = 10)]
    latency_alerts_per_group: usize,
    /// Time between two of the latency phase's requests, milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_interval_ms: u64,
    /// How long to wait for outstanding notifications after a phase's posts, seconds.
    #[arg(long, default_value_t = 60)]
    notify_timeout_secs: u64,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30)]
    request_timeout_secs: u64,
    /// Tokio worker threads of this process.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Append the JSON result line to this file.
    #[arg(long)]
    json_out: Option<PathBuf>,
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Report { results } => report(&results),
        Cmd::Run(args) => {
            if args.groups == 0 || args.alerts < args.groups || args.batch == 0 {
                bail!("need alerts >= groups > 0 and batch > 0");
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()?;
            let result = rt.block_on(run(&args))?;
            let line = serde_json::to_string(&result)?;
            println!("{line}");
            if let Some(path) = &args.json_out {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                writeln!(f, "{line}")?;
            }
            Ok(())
        }
    }
}

// ------------------------------------------------------------------------------------- alerts

/// Rule names of a node_exporter alerting rule set, so that alerts look like real ones in size.
const RULES: [(&str, &str, &str); 10] = [
    ("HostHighCpuLoad", "warning", "CPU load is > 80%"),
    ("HostOutOfMemory", "warning", "Node memory is filling up (< 10% left)"),
    ("HostOutOfDiskSpace", "critical", "Disk is almost full (< 10% left)"),
    ("HostDiskWillFillIn24Hours", "warning", "Filesystem is predicted to run out of space within the next 24 hours at current write rate"),
    ("HostUnusualNetworkThroughputIn", "warning", "Host network interfaces are probably receiving too much data (> 100 MB/s)"),
    ("HostUnusualDiskReadLatency", "warning", "Disk latency is growing (read operations > 100ms)"),
    ("HostSwapIsFillingUp", "warning", "Swap is filling up (>80%)"),
    ("HostOomKillDetected", "warning", "OOM kill detected"),
    ("HostClockSkew", "warning", "Clock skew detected. Clock is out of sync. Ensure NTP is configured correctly on this host."),
    ("HostNetworkReceiveErrors", "critical", "Host interface has encountered receive errors in the last two minutes."),
];

/// One alert of rule `rule` for host `instance` in group `group`, with the fields Prometheus 2.42's
/// notifier sends.
fn alert(group: &str, rule: usize, instance: usize, starts_at: &str, ends_at: &str) -> Value {
    let (name, severity, text) = RULES[rule % RULES.len()];
    let inst = format!("host-{instance:05}:9100");
    json!({
        "labels": {
            "alertname": name,
            "group": group,
            "instance": inst,
            "job": "node",
            "severity": severity,
        },
        "annotations": {
            "summary": format!("{name} (instance {inst})"),
            "description": format!("{text}\n  VALUE = {}\n  LABELS = map[instance:{inst} job:node]", 80 + instance % 20),
        },
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": format!("http://prometheus-{}:9090/graph?g0.expr={name}&g0.tab=1", instance % 4),
    })
}

/// A request body and the number of alerts in it.
#[derive(Clone)]
struct Batch {
    body: Bytes,
    alerts: u64,
}

/// The steady set: alert `k` belongs to group `k * groups / alerts` (contiguous, so a batch
/// spans a few groups, as a rule's alerts do in Prometheus's queue).
fn steady_batches(a: &RunArgs, starts_at: &str, ends_at: &str) -> Result<Vec<Batch>> {
    let all: Vec<Value> = (0..a.alerts)
        .map(|k| {
            let g = k * a.groups / a.alerts;
            alert(&format!("g{g:04}"), g, k, starts_at, ends_at)
        })
        .collect();
    all.chunks(a.batch)
        .map(|c| {
            Ok(Batch {
                body: Bytes::from(serde_json::to_vec(c)?),
                alerts: c.len() as u64,
            })
        })
        .collect()
}

/// RFC 3339 in UTC with milliseconds, as Go's time.Time marshals.
fn rfc3339(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()) as i64;
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a proleptic Gregorian date, counting in 400-year eras from
    // 0000-03-01 so that leap days fall at the end of each year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

// ------------------------------------------------------------------------------------ webhook

#[derive(Debug)]
struct Notification {
    at: Instant,
    group: String,
    alerts: usize,
}

#[derive(Default)]
struct Hook {
    received: Mutex<Vec<Notification>>,
    bad: AtomicUsize,
}

impl Hook {
    fn record(&self, body: &[u8], at: Instant) {
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            self.bad.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let n = Notification {
            at,
            group: v["groupLabels"]["group"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            alerts: v["alerts"].as_array().map_or(0, Vec::len),
        };
        if let Ok(mut r) = self.received.lock() {
            r.push(n);
        }
    }

    fn len(&self) -> usize {
        self.received.lock().map_or(0, |r| r.len())
    }

    /// First arrival of each group whose name starts with `prefix`, from notification `from` on.
    fn first_arrivals(&self, prefix: &str, from: usize) -> HashMap<String, (Instant, usize)> {
        let mut out = HashMap::new();
        if let Ok(r) = self.received.lock() {
            for n in r.iter().skip(from) {
                if n.group.starts_with(prefix) {
                    out.entry(n.group.clone()).or_insert((n.at, n.alerts));
                }
            }
        }
        out
    }
}

async fn serve_webhook(listener: TcpListener, hook: Arc<Hook>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let hook = hook.clone();
        tokio::spawn(async move {
            let _ = webhook_conn(sock, hook).await;
        });
    }
}

async fn read_more(s: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut tmp = [0u8; 16 * 1024];
    loop {
        s.readable().await?;
        match s.try_read(&mut tmp) {
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn write_all(s: &TcpStream, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        s.writable().await?;
        match s.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A complete chunked body at the start of `buf`: (body, bytes consumed), or None if more is needed.
fn dechunk(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = pos + find(&buf[pos..], b"\r\n")?;
        let size_text = std::str::from_utf8(&buf[pos..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            let end = pos + find(&buf[pos..], b"\r\n")?;
            return Some((body, end + 2));
        }
        if buf.len() < pos + size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

/// A minimal HTTP/1.1 server side for webhook POSTs (keep-alive, Content-Length or chunked):
/// the bench needs nothing more, and the workspace's HTTP server stack is not a dependency of
/// this package.
async fn webhook_conn(s: TcpStream, hook: Arc<Hook>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p + 4;
            }
            if read_more(&s, &mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let close = header("connection:").is_some_and(|v| v == "close");
        let chunked = header("transfer-encoding:").is_some_and(|v| v.contains("chunked"));
        let (body, consumed) = if chunked {
            loop {
                if let Some((b, n)) = dechunk(&buf[head_end..]) {
                    break (b, head_end + n);
                }
                if read_more(&s, &mut buf).await? == 0 {
                    return Ok(());
                }
            }
        } else {
            let len: usize = header("content-length:")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + len {
                if read_more(&s, &mut buf).await? == 0 {
                    return Ok(());
                }
            }
            (buf[head_end..head_end + len].to_vec(), head_end + len)
        };
        hook.record(&body, Instant::now());
        write_all(&s, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await?;
        buf.drain(..consumed);
        if close {
            return Ok(());
        }
    }
}

// -------------------------------------------------------------------------------------- posts

#[derive(Default)]
struct PostStats {
    ok_requests: u64,
    ok_alerts: u64,
    errors: u64,
    statuses: BTreeMap<String, u64>,
    first_error: Option<String>,
    latencies_us: Vec<u64>,
}

impl PostStats {
    fn merge(&mut self, o: PostStats) {
        self.ok_requests += o.ok_requests;
        self.ok_alerts += o.ok_alerts;
        self.errors += o.errors;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.latencies_us.extend(o.latencies_us);
    }
}

async fn post(client: &reqwest::Client, url: &str, b: &Batch, st: &mut PostStats) {
    let t0 = Instant::now();
    let r = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "Prometheus/2.42.0")
        .body(b.body.clone())
        .send()
        .await;
    let outcome = match r {
        Ok(resp) => {
            let status = resp.status();
            match resp.bytes().await {
                Ok(_) if status.is_success() => Ok(status.as_u16()),
                Ok(body) => Err((
                    status.as_u16().to_string(),
                    format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(500)]).trim()
                    ),
                )),
                Err(e) => Err(("body-error".into(), format!("HTTP {status}, body: {e}"))),
            }
        }
        Err(e) => Err(("transport-error".into(), format!("{e:#}"))),
    };
    st.latencies_us.push(t0.elapsed().as_micros() as u64);
    match outcome {
        Ok(code) => {
            st.ok_requests += 1;
            st.ok_alerts += b.alerts;
            *st.statuses.entry(code.to_string()).or_default() += 1;
        }
        Err((code, msg)) => {
            st.errors += 1;
            *st.statuses.entry(code).or_default() += 1;
            st.first_error.get_or_insert(msg);
        }
    }
}

/// Posts batches from `connections` tasks, each with one request in flight: every batch once
/// (`until` None), or round and round until `until`. Returns the stats and the wall time to the
/// last response.
async fn blast(
    client: &reqwest::Client,
    url: &str,
    batches: &Arc<Vec<Batch>>,
    connections: usize,
    until: Option<Instant>,
) -> (PostStats, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, batches, next) = (
                client.clone(),
                url.to_string(),
                batches.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let mut st = PostStats::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    match until {
                        None if i >= batches.len() => break,
                        Some(t) if Instant::now() >= t => break,
                        _ => {}
                    }
                    post(&client, &url, &batches[i % batches.len()], &mut st).await;
                }
                st
            })
        })
        .collect();
    let mut all = PostStats::default();
    for t in tasks {
        if let Ok(st) = t.await {
            all.merge(st);
        }
    }
    (all, t0.elapsed())
}

fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied()
}

fn ms_quantiles(us: &[u64]) -> (Option<f64>, Option<f64>, Option<f64>) {
    let mut v: Vec<f64> = us.iter().map(|&x| x as f64 / 1000.0).collect();
    v.sort_by(f64::total_cmp);
    (quantile(&v, 0.5), quantile(&v, 0.99), v.last().copied())
}

/// Waits until `want` groups with `prefix` have been notified (counting from notification
/// `from`), or until `timeout`.
async fn wait_notified(hook: &Hook, prefix: &str, from: usize, want: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && hook.first_arrivals(prefix, from).len() < want {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const MIB: f64 = 1024.0 * 1024.0;

async fn run(a: &RunArgs) -> Result<Value> {
    let hook = Arc::new(Hook::default());
    let listener = TcpListener::bind(&a.webhook_listen)
        .await
        .with_context(|| format!("webhook receiver cannot listen on {}", a.webhook_listen))?;
    tokio::spawn(serve_webhook(listener, hook.clone()));

    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(a.connections * 2)
        .timeout(Duration::from_secs(a.request_timeout_secs))
        .build()?;
    let url = format!("{}/api/v2/alerts", a.url.trim_end_matches('/'));
    let pid = a.pid.map(|p| p.to_string());
    let target_cpu = || pid.as_deref().and_then(procfs::cpu_seconds);
    let mem = || a.pid.and_then(procfs::mem);
    let group_wait = Duration::from_millis(a.group_wait_ms);
    let notify_timeout = Duration::from_secs(a.notify_timeout_secs);

    // Prometheus sends endsAt a few evaluation intervals ahead and moves it forward on every
    // resend; here it lies beyond the whole run so that no alert resolves while it lasts.
    // startsAt is now: an alert that started more than group_wait before it reaches a new group
    // flushes that group at once (upstream behaviour), which would hide group_wait.
    let now = SystemTime::now();
    let starts_at = rfc3339(now);
    let ends_at = rfc3339(now + Duration::from_secs(a.duration_secs + 1800));
    let batches = Arc::new(steady_batches(a, &starts_at, &ends_at)?);
    let body_bytes: usize = batches.iter().map(|b| b.body.len()).sum();
    eprintln!(
        "{}: {} alerts in {} groups, {} requests of up to {} alerts ({:.1} KiB per round, {:.0} B per alert)",
        a.target,
        a.alerts,
        a.groups,
        batches.len(),
        a.batch,
        body_bytes as f64 / 1024.0,
        body_bytes as f64 / a.alerts as f64
    );
    let mem_idle = mem();

    // 1. initial: every alert once; each group then notifies after group_wait.
    let (init, init_wall) = blast(&client, &url, &batches, a.connections, None).await;
    let init_posted = Instant::now();
    wait_notified(&hook, "g", 0, a.groups, group_wait + notify_timeout).await;
    let notified = hook.first_arrivals("g", 0);
    let init_last_notify = notified
        .values()
        .map(|(t, _)| t.saturating_duration_since(init_posted))
        .max();
    let notified_alerts: usize = notified.values().map(|(_, n)| n).sum();
    eprintln!(
        "{}: initial posting {:.2} s ({} errors), {} of {} groups notified ({} alerts)",
        a.target,
        init_wall.as_secs_f64(),
        init.errors,
        notified.len(),
        a.groups,
        notified_alerts
    );
    // Let the target finish the notification burst before the clock starts.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 2. throughput: resend the same alerts continuously.
    let hook_before = hook.len();
    let (cpu0, self0, machine0, steal0) = (
        target_cpu(),
        procfs::cpu_seconds("self"),
        procfs::machine_cpu_seconds(),
        procfs::machine_steal_seconds(),
    );
    let until = Instant::now() + Duration::from_secs(a.duration_secs);
    let (load, wall) = blast(&client, &url, &batches, a.connections, Some(until)).await;
    let (cpu1, self1, machine1, steal1) = (
        target_cpu(),
        procfs::cpu_seconds("self"),
        procfs::machine_cpu_seconds(),
        procfs::machine_steal_seconds(),
    );
    let mem_load = mem();
    let notifications_during_load = hook.len() - hook_before;
    let target_cpu_s = cpu0.zip(cpu1).map(|(x, y)| y - x);
    let bench_cpu_s = self0.zip(self1).map(|(x, y)| y - x);
    let other_cpu_s = machine0.zip(machine1).map(|((t0, _), (t1, _))| {
        t1 - t0 - target_cpu_s.unwrap_or(0.0) - bench_cpu_s.unwrap_or(0.0)
    });
    let alerts_per_s = load.ok_alerts as f64 / wall.as_secs_f64();
    let (p50, p99, max) = ms_quantiles(&load.latencies_us);
    eprintln!(
        "{}: {:.0} alerts/s over {:.1} s ({} requests, {} errors), request p50 {:.1} ms p99 {:.1} ms, target CPU {:.1} s",
        a.target,
        alerts_per_s,
        wall.as_secs_f64(),
        load.ok_requests,
        load.errors,
        p50.unwrap_or(f64::NAN),
        p99.unwrap_or(f64::NAN),
        target_cpu_s.unwrap_or(f64::NAN)
    );
    if let Some(e) = &load.first_error {
        eprintln!("{}: first error: {e}", a.target);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 3. latency: new groups, one request each, spaced out so that each is handled alone. Each
    // body is built just before it is sent, with startsAt = now as for a newly firing alert.
    let hook_from = hook.len();
    let mut sent: Vec<Instant> = Vec::with_capacity(a.latency_groups);
    let mut posts = Vec::with_capacity(a.latency_groups);
    let mut tick = tokio::time::interval(Duration::from_millis(a.latency_interval_ms.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for j in 0..a.latency_groups {
        tick.tick().await;
        let firing = rfc3339(SystemTime::now());
        let alerts: Vec<Value> = (0..a.latency_alerts_per_group)
            .map(|i| {
                alert(
                    &format!("l{j:04}"),
                    j,
                    a.alerts + j * a.latency_alerts_per_group + i,
                    &firing,
                    &ends_at,
                )
            })
            .collect();
        let b = Batch {
            body: Bytes::from(serde_json::to_vec(&alerts)?),
            alerts: alerts.len() as u64,
        };
        sent.push(Instant::now());
        let (client, url) = (client.clone(), url.clone());
        posts.push(tokio::spawn(async move {
            let mut st = PostStats::default();
            post(&client, &url, &b, &mut st).await;
            st
        }));
    }
    let mut lat_posts = PostStats::default();
    for p in posts {
        if let Ok(st) = p.await {
            lat_posts.merge(st);
        }
    }
    wait_notified(
        &hook,
        "l",
        hook_from,
        a.latency_groups,
        group_wait + notify_timeout,
    )
    .await;
    let arrivals = hook.first_arrivals("l", hook_from);
    let mut delays: Vec<f64> = Vec::with_capacity(arrivals.len());
    let mut incomplete = 0;
    for (j, t) in sent.iter().enumerate() {
        if let Some((at, n)) = arrivals.get(&format!("l{j:04}")) {
            let d = at.saturating_duration_since(*t).as_secs_f64() - group_wait.as_secs_f64();
            delays.push(d * 1000.0);
            if *n != a.latency_alerts_per_group {
                incomplete += 1;
            }
        }
    }
    delays.sort_by(f64::total_cmp);
    eprintln!(
        "{}: notification delay beyond group_wait: median {:.1} ms, p99 {:.1} ms ({} of {} groups notified)",
        a.target,
        quantile(&delays, 0.5).unwrap_or(f64::NAN),
        quantile(&delays, 0.99).unwrap_or(f64::NAN),
        delays.len(),
        a.latency_groups
    );

    let mib = |b: u64| (b as f64 / MIB * 10.0).round() / 10.0;
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    Ok(json!({
        "target": a.target,
        "alerts": a.alerts,
        "groups": a.groups,
        "batch": a.batch,
        "connections": a.connections,
        "requests_per_round": batches.len(),
        "bytes_per_round": body_bytes,
        "initial": {
            "wall_s": r3(init_wall.as_secs_f64()),
            "ok_alerts": init.ok_alerts,
            "errors": init.errors,
            "first_error": init.first_error,
            "groups_notified": notified.len(),
            "alerts_notified": notified_alerts,
            "last_notification_after_s": init_last_notify.map(|d| r3(d.as_secs_f64())),
        },
        "duration_s": r3(wall.as_secs_f64()),
        "requests": load.ok_requests + load.errors,
        "ok_requests": load.ok_requests,
        "alerts_accepted": load.ok_alerts,
        "alerts_per_s": alerts_per_s.round(),
        "errors": load.errors,
        "statuses": load.statuses,
        "first_error": load.first_error,
        "request_p50_ms": p50.map(r3),
        "request_p99_ms": p99.map(r3),
        "request_max_ms": max.map(r3),
        "target_cpu_s": target_cpu_s.map(r3),
        "cpu_us_per_alert": target_cpu_s.map(|c| r3(c * 1e6 / load.ok_alerts.max(1) as f64)),
        "bench_cpu_s": bench_cpu_s.map(r3),
        "other_cpu_s": other_cpu_s.map(r3),
        "steal_s": steal0.zip(steal1).map(|(x, y)| r3(y - x)),
        "notifications_during_load": notifications_during_load,
        "rss_idle_mib": mem_idle.map(|m| mib(m.rss)),
        "rss_after_load_mib": mem_load.map(|m| mib(m.rss)),
        "hwm_after_load_mib": mem_load.map(|m| mib(m.hwm)),
        "latency": {
            "groups": a.latency_groups,
            "alerts_per_group": a.latency_alerts_per_group,
            "interval_ms": a.latency_interval_ms,
            "group_wait_ms": a.group_wait_ms,
            "post_errors": lat_posts.errors,
            "first_error": lat_posts.first_error,
            "notified": delays.len(),
            "incomplete_groups": incomplete,
            "p50_ms": quantile(&delays, 0.5).map(r3),
            "p99_ms": quantile(&delays, 0.99).map(r3),
            "min_ms": delays.first().copied().map(r3),
            "max_ms": delays.last().copied().map(r3),
        },
        "webhook_unparsed": hook.bad.load(Ordering::Relaxed),
    }))
}

// ------------------------------------------------------------------------------------- report

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Value at a `/`-separated path of a result line.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('/').fold(v, |v, k| &v[k])
}

fn fmt_num(x: Option<f64>, decimals: usize) -> String {
    let Some(x) = x else {
        return "-".into();
    };
    if decimals > 0 {
        return format!("{x:.decimals$}");
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0.0 {
        out.insert(0, '-');
    }
    out
}

const COLUMNS: [(&str, &str, usize); 11] = [
    ("alerts/s", "alerts_per_s", 0),
    ("req p50 ms", "request_p50_ms", 2),
    ("req p99 ms", "request_p99_ms", 2),
    ("errors", "errors", 0),
    ("CPU s (load)", "target_cpu_s", 1),
    ("CPU µs/alert", "cpu_us_per_alert", 1),
    ("CPU s (whole run)", "total_cpu_s", 1),
    ("RSS idle MiB", "rss_idle_mib", 1),
    ("peak RSS MiB", "peak_rss_mib", 1),
    ("notify p50 ms", "latency/p50_ms", 1),
    ("notify p99 ms", "latency/p99_ms", 1),
];

fn report(path: &PathBuf) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    if lines.is_empty() {
        bail!("no results in {}", path.display());
    }
    let mut names: Vec<String> = Vec::new();
    for l in &lines {
        let n = l["target"].as_str().unwrap_or("?").to_string();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    // Runs during which other processes used more than 10% of a core are left out of the
    // medians, unless a target has no other run.
    let disturbed = |l: &Value| {
        let other = l["other_cpu_s"].as_f64().unwrap_or(0.0);
        other > 0.1 * l["duration_s"].as_f64().unwrap_or(0.0)
    };
    let counted = |l: &Value| {
        !disturbed(l)
            || lines
                .iter()
                .filter(|m| m["target"] == l["target"])
                .all(disturbed)
    };
    let med = |name: &str, key: &str| {
        median(
            lines
                .iter()
                .filter(|l| l["target"] == name && counted(l))
                .filter_map(|l| at(l, key).as_f64())
                .collect(),
        )
    };
    let runs_counted = |name: &str| {
        lines
            .iter()
            .filter(|l| l["target"] == name && counted(l))
            .count()
    };
    let first = &lines[0];
    println!(
        "{} active alerts in {} groups, {} alerts per request, {} connections, {} s of resends; latency: {} new groups of {} alerts, {} ms apart, group_wait {} ms; medians of the undisturbed runs ({})",
        fmt_num(first["alerts"].as_f64(), 0),
        fmt_num(first["groups"].as_f64(), 0),
        first["batch"],
        first["connections"],
        fmt_num(first["duration_s"].as_f64(), 0),
        first["latency"]["groups"],
        first["latency"]["alerts_per_group"],
        first["latency"]["interval_ms"],
        first["latency"]["group_wait_ms"],
        names
            .iter()
            .map(|n| format!("{n}: {}", runs_counted(n)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    println!();
    println!(
        "| target | {} |",
        COLUMNS.iter().map(|c| c.0).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|{}", "---:|".repeat(COLUMNS.len()));
    for n in &names {
        let cells: Vec<String> = COLUMNS
            .iter()
            .map(|(_, key, d)| fmt_num(med(n, key), *d))
            .collect();
        println!("| {n} | {} |", cells.join(" | "));
    }
    if lines.len() > names.len() {
        println!();
        println!("All runs, in order (other CPU: used by other processes during the load phase):");
        println!();
        println!(
            "| run | target | {} | other CPU s |",
            COLUMNS.iter().map(|c| c.0).collect::<Vec<_>>().join(" | ")
        );
        println!("|---:|---|{}---:|", "---:|".repeat(COLUMNS.len()));
        for (i, l) in lines.iter().enumerate() {
            let cells: Vec<String> = COLUMNS
                .iter()
                .map(|(_, key, d)| fmt_num(at(l, key).as_f64(), *d))
                .collect();
            println!(
                "| {} | {} | {} | {}{} |",
                i + 1,
                l["target"].as_str().unwrap_or("?"),
                cells.join(" | "),
                fmt_num(l["other_cpu_s"].as_f64(), 1),
                if disturbed(l) { " (disturbed)" } else { "" }
            );
        }
    }
    println!();
    println!("Checks per run (initial round: groups notified / alerts in them; latency phase: groups notified, post errors; other CPU during the load phase):");
    println!();
    for l in &lines {
        println!(
            "- {}: initial {} / {} groups, {} alerts, {} errors, last notification {} s after the last post; load: {} requests, statuses {}, notifications {}, other CPU {} s, am-bench CPU {} s; latency: {} / {} groups notified, {} post errors{}",
            l["target"].as_str().unwrap_or("?"),
            l["initial"]["groups_notified"],
            l["groups"],
            l["initial"]["alerts_notified"],
            l["initial"]["errors"],
            l["initial"]["last_notification_after_s"],
            l["requests"],
            l["statuses"],
            l["notifications_during_load"],
            l["other_cpu_s"],
            l["bench_cpu_s"],
            l["latency"]["notified"],
            l["latency"]["groups"],
            l["latency"]["post_errors"],
            l["first_error"]
                .as_str()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default(),
        );
    }
    let (Some(s), Some(p)) = (
        names.iter().find(|n| n.as_str() == "strata"),
        names.iter().find(|n| n.as_str() == "alertmanager"),
    ) else {
        return Ok(());
    };
    let ratio = |key: &str| {
        med(s, key)
            .zip(med(p, key))
            .and_then(|(x, y)| (y > 0.0).then_some(x / y))
    };
    let fr = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}×"));
    println!();
    println!("Strata / Alertmanager 0.25 (medians):");
    println!();
    println!("| alerts/s | CPU µs/alert | peak RSS | notify p50 | notify p99 |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {} |",
        fr(ratio("alerts_per_s")),
        fr(ratio("cpu_us_per_alert")),
        fr(ratio("peak_rss_mib")),
        fr(ratio("latency/p50_ms")),
        fr(ratio("latency/p99_ms")),
    );
    let verdict = |ok: Option<bool>| match ok {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "n/a",
    };
    println!();
    println!(
        "Targets: throughput ≥ 2× Alertmanager: {} ({}); peak memory ≤ 0.5× Alertmanager: {} ({})",
        verdict(ratio("alerts_per_s").map(|x| x >= 2.0)),
        fr(ratio("alerts_per_s")),
        verdict(ratio("peak_rss_mib").map(|x| x <= 0.5)),
        fr(ratio("peak_rss_mib")),
    );
    Ok(())
}
