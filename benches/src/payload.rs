//! Pre-built, snappy-compressed remote-write request bodies, sharded like Prometheus's queue manager, and a
//! simple file format so that every target of one benchmark run receives byte-identical payloads.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use prost::Message;
use serde_json::{json, Value};

use crate::node_exporter::{Host, SeriesSpec, ValueState};
use crate::wire::{Label, Sample, TimeSeries, WriteRequest};

/// One HTTP request body (snappy block format) and the number of samples it carries.
#[derive(Clone, Debug)]
pub struct Request {
    pub body: Bytes,
    pub samples: u32,
}

#[derive(Clone, Debug)]
pub struct Params {
    pub series: usize,
    pub rounds: usize,
    pub shards: usize,
    pub max_samples_per_send: usize,
    pub interval_ms: i64,
    /// Timestamp of round 0 before the per-host scrape offset (ms since the epoch).
    pub start_ms: i64,
    pub seed: u64,
}

#[derive(Debug)]
pub struct Payloads {
    /// Parameters and totals, also written to the payload file and into each result line.
    pub meta: Value,
    /// `shards[i]` is sent in order by shard `i`.
    pub shards: Vec<Vec<Request>>,
}

impl Payloads {
    pub fn meta_u64(&self, key: &str) -> u64 {
        self.meta.get(key).and_then(Value::as_u64).unwrap_or(0)
    }
    pub fn meta_i64(&self, key: &str) -> i64 {
        self.meta.get(key).and_then(Value::as_i64).unwrap_or(0)
    }
}

/// FNV-1a over the label pairs: the shard of a series depends only on its labels (Prometheus uses its series
/// reference modulo the shard count, which is just as arbitrary and just as stable).
fn shard_of(labels: &[(String, String)], shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    (h % shards as u64) as usize
}

pub fn build(specs: &[SeriesSpec], hosts: &[Host], p: &Params, threads: usize) -> Result<Payloads> {
    ensure!(
        p.shards > 0 && p.max_samples_per_send > 0 && p.rounds > 0,
        "shards, max samples per send and rounds must be > 0"
    );
    let mut shard_series: Vec<Vec<usize>> = vec![Vec::new(); p.shards];
    for (i, s) in specs.iter().enumerate() {
        shard_series[shard_of(&s.labels, p.shards)].push(i);
    }
    let threads = threads.clamp(1, p.shards);
    let mut results: Vec<Option<(Vec<Request>, u64)>> = (0..p.shards).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let shard_series = &shard_series;
                scope.spawn(move || {
                    (t..p.shards)
                        .step_by(threads)
                        .map(|s| (s, build_shard(specs, hosts, &shard_series[s], p)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (s, r) in h.join().expect("payload builder thread panicked") {
                results[s] = Some(r);
            }
        }
    });
    let mut shards = Vec::with_capacity(p.shards);
    let (mut uncompressed, mut compressed, mut requests, mut samples) = (0u64, 0u64, 0u64, 0u64);
    for r in results {
        let (reqs, raw) = r.context("missing shard")?;
        uncompressed += raw;
        compressed += reqs.iter().map(|r| r.body.len() as u64).sum::<u64>();
        samples += reqs.iter().map(|r| u64::from(r.samples)).sum::<u64>();
        requests += reqs.len() as u64;
        shards.push(reqs);
    }
    let max_offset = hosts.iter().map(|h| h.offset_ms).max().unwrap_or(0);
    let meta = json!({
        "format": 1,
        "series": specs.len(),
        "hosts": hosts.len(),
        "rounds": p.rounds,
        "shards": p.shards,
        "max_samples_per_send": p.max_samples_per_send,
        "interval_ms": p.interval_ms,
        "seed": p.seed,
        "first_ts_ms": p.start_ms,
        "last_ts_ms": p.start_ms + (p.rounds as i64 - 1) * p.interval_ms + max_offset,
        "samples": samples,
        "requests": requests,
        "uncompressed_bytes": uncompressed,
        "compressed_bytes": compressed,
    });
    Ok(Payloads { meta, shards })
}

/// Requests of one shard: round 0 of all its series, then round 1, ..., cut every `max_samples_per_send` samples.
/// Like Prometheus's remote write, each sample is its own `TimeSeries` with the full label set.
fn build_shard(
    specs: &[SeriesSpec],
    hosts: &[Host],
    idxs: &[usize],
    p: &Params,
) -> (Vec<Request>, u64) {
    let labels: Vec<Vec<Label>> = idxs
        .iter()
        .map(|&i| {
            specs[i]
                .labels
                .iter()
                .map(|(n, v)| Label {
                    name: n.clone(),
                    value: v.clone(),
                })
                .collect()
        })
        .collect();
    let mut states: Vec<ValueState> = idxs
        .iter()
        .map(|&i| ValueState::new(&specs[i], p.seed, i as u64))
        .collect();
    let offsets: Vec<i64> = idxs
        .iter()
        .map(|&i| hosts[specs[i].host as usize].offset_ms)
        .collect();
    let dt_s = p.interval_ms as f64 / 1000.0;

    let mut out = Vec::new();
    let mut raw_total = 0u64;
    let mut buf = Vec::new();
    let mut encoder = snap::raw::Encoder::new();
    let mut pending: Vec<TimeSeries> = Vec::with_capacity(p.max_samples_per_send);
    let mut flush = |pending: &mut Vec<TimeSeries>, out: &mut Vec<Request>| {
        if pending.is_empty() {
            return;
        }
        let samples = pending.len() as u32;
        let req = WriteRequest {
            timeseries: std::mem::take(pending),
            ..Default::default()
        };
        buf.clear();
        req.encode(&mut buf).expect("Vec<u8> grows as needed");
        raw_total += buf.len() as u64;
        let body = encoder
            .compress_vec(&buf)
            .expect("snappy compression of an in-memory buffer");
        out.push(Request {
            body: Bytes::from(body),
            samples,
        });
    };
    for round in 0..p.rounds {
        let base = p.start_ms + round as i64 * p.interval_ms;
        for k in 0..idxs.len() {
            let value = states[k].next(dt_s, round == 0);
            pending.push(TimeSeries {
                labels: labels[k].clone(),
                samples: vec![Sample {
                    value,
                    timestamp: base + offsets[k],
                }],
                ..Default::default()
            });
            if pending.len() == p.max_samples_per_send {
                flush(&mut pending, &mut out);
            }
        }
    }
    flush(&mut pending, &mut out);
    (out, raw_total)
}

const MAGIC: &[u8; 24] = b"strata-ingest-payloads1\n";

pub fn save(payloads: &Payloads, path: &Path) -> Result<()> {
    let tmp = path.with_extension("partial");
    let mut w =
        BufWriter::new(File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
    w.write_all(MAGIC)?;
    let meta = serde_json::to_vec(&payloads.meta)?;
    w.write_all(&(meta.len() as u64).to_le_bytes())?;
    w.write_all(&meta)?;
    w.write_all(&(payloads.shards.len() as u64).to_le_bytes())?;
    for shard in &payloads.shards {
        w.write_all(&(shard.len() as u64).to_le_bytes())?;
        for r in shard {
            w.write_all(&r.samples.to_le_bytes())?;
            w.write_all(&(r.body.len() as u64).to_le_bytes())?;
            w.write_all(&r.body)?;
        }
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

pub fn load(path: &Path) -> Result<Payloads> {
    let mut data = Vec::new();
    File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .read_to_end(&mut data)?;
    let data = Bytes::from(data);
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Result<Bytes> {
        ensure!(*pos + n <= data.len(), "payload file truncated");
        let b = data.slice(*pos..*pos + n);
        *pos += n;
        Ok(b)
    };
    let u64_at =
        |pos: &mut usize| -> Result<u64> { Ok(u64::from_le_bytes(take(pos, 8)?[..].try_into()?)) };
    if take(&mut pos, MAGIC.len())?[..] != MAGIC[..] {
        bail!("{} is not an ingest-bench payload file", path.display());
    }
    let meta_len = u64_at(&mut pos)? as usize;
    let meta: Value = serde_json::from_slice(&take(&mut pos, meta_len)?)?;
    let nshards = u64_at(&mut pos)? as usize;
    let mut shards = Vec::with_capacity(nshards);
    for _ in 0..nshards {
        let n = u64_at(&mut pos)? as usize;
        let mut reqs = Vec::with_capacity(n);
        for _ in 0..n {
            let samples = u32::from_le_bytes(take(&mut pos, 4)?[..].try_into()?);
            let len = u64_at(&mut pos)? as usize;
            reqs.push(Request {
                body: take(&mut pos, len)?,
                samples,
            });
        }
        shards.push(reqs);
    }
    ensure!(pos == data.len(), "trailing bytes in payload file");
    Ok(Payloads { meta, shards })
}
