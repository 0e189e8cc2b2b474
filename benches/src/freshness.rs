//! `freshness-bench`: how long after a push a sample is in a block that the bucket index lists
//! (what store-gateways read). Pushes one sample per second for `--series` series to Strata's
//! remote-write endpoint, polls `<bucket-dir>/<tenant>/bucket-index.json` every 100 ms, and
//! reports, per pushed second, the delay from its push to the first index listing a block that
//! covers it: min, median, p90 and max, as one JSON line.
#![allow(clippy::print_stdout)]

use anyhow::{bail, Context, Result};
use clap::Parser;
use prost::Message;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use strata_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};

#[derive(Parser, Debug)]
#[command(name = "freshness-bench")]
struct Cli {
    /// Remote-write URL.
    #[arg(long)]
    url: String,
    /// Directory of the filesystem bucket Strata writes.
    #[arg(long)]
    bucket_dir: PathBuf,
    #[arg(long, default_value = "anonymous")]
    tenant: String,
    #[arg(long, default_value_t = 100)]
    series: usize,
    /// How long to push, seconds.
    #[arg(long, default_value_t = 180)]
    push_secs: u64,
    /// How long to keep polling after the last push, seconds.
    #[arg(long, default_value_t = 240)]
    drain_secs: u64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn request(series: usize, t: i64) -> Vec<u8> {
    let req = WriteRequest {
        timeseries: (0..series)
            .map(|i| TimeSeries {
                labels: vec![
                    Label {
                        name: "__name__".into(),
                        value: "freshness_probe".into(),
                    },
                    Label {
                        name: "i".into(),
                        value: format!("{i:05}"),
                    },
                ],
                samples: vec![Sample {
                    value: t as f64,
                    timestamp: t,
                }],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap_or_default()
}

/// Block time ranges listed by the index, if it exists.
fn listed(path: &std::path::Path) -> Vec<(i64, i64)> {
    let Ok(raw) = std::fs::read(path) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_slice::<Value>(&raw) else {
        return Vec::new();
    };
    v["blocks"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|x| Some((x["minTime"].as_i64()?, x["maxTime"].as_i64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let index = cli.bucket_dir.join(&cli.tenant).join("bucket-index.json");
    // pushed sample time -> wall time of its acknowledged push
    let mut pushed: BTreeMap<i64, Instant> = BTreeMap::new();
    let mut seen: BTreeMap<i64, Duration> = BTreeMap::new();
    let t0 = Instant::now();
    let mut next_push = Instant::now();
    let push_until = t0 + Duration::from_secs(cli.push_secs);
    let stop = push_until + Duration::from_secs(cli.drain_secs);
    rt.block_on(async {
        while Instant::now() < stop {
            if Instant::now() >= next_push && Instant::now() < push_until {
                let t = now_ms();
                let body = request(cli.series, t);
                let r = client
                    .post(&cli.url)
                    .header("Content-Encoding", "snappy")
                    .header("Content-Type", "application/x-protobuf")
                    .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                    .body(body)
                    .send()
                    .await
                    .context("push")?;
                if !r.status().is_success() {
                    bail!("push answered {}", r.status());
                }
                pushed.insert(t, Instant::now());
                next_push += Duration::from_secs(1);
            }
            for (lo, hi) in listed(&index) {
                for (&t, &at) in pushed.range(lo..=hi) {
                    seen.entry(t).or_insert_with(|| at.elapsed());
                }
            }
            if Instant::now() >= push_until && seen.len() == pushed.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    })?;
    let mut d: Vec<f64> = seen.values().map(Duration::as_secs_f64).collect();
    d.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        d.get(((d.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    println!(
        "{}",
        json!({
            "pushed_seconds": pushed.len(),
            "indexed_seconds": seen.len(),
            "min_s": pick(0.0),
            "median_s": pick(0.5),
            "p90_s": pick(0.9),
            "max_s": pick(1.0),
        })
    );
    Ok(())
}
