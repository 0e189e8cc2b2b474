//! Measures bytes per sample of the block format's encoding choices on synthetic
//! node_exporter-like data (`strata_storage::block::synth`).
//!
//! `cargo run -p strata-storage --example block_encodings -- [hosts] [hours] [jitter_ms]`
//! (defaults: 50 hosts, 2 h, 5 ms). Prints one Markdown table row per variant.

use parquet::file::metadata::ParquetMetaDataReader;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use strata_model::Matcher;
use strata_model::TenantId;
use strata_storage::block::BlockReader;
use strata_storage::block::{synth, BlockWriter, ValueEncoding, WriterOptions, RAW_BUCKET_MS};
use strata_storage::bucket::Bucket;

fn column_bytes(file: &bytes::Bytes) -> BTreeMap<String, u64> {
    let md = ParquetMetaDataReader::new()
        .parse_and_finish(file)
        .expect("parse footer");
    let mut out = BTreeMap::new();
    for rg in md.row_groups() {
        for c in rg.columns() {
            *out.entry(c.column_path().string()).or_default() += c.compressed_size() as u64;
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let hosts: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let hours: i64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let jitter: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let span = hours * 3_600_000;
    let start = 1_700_000_000_000;
    let data = synth::node_exporter_like_with_jitter(hosts, start, span, 42, jitter);
    let samples: u64 = data.iter().map(|s| s.1.len() as u64).sum();
    println!(
        "{} series, {} samples ({} hosts, {} h at 15 s, timestamp jitter 0-{} ms)\n",
        data.len(),
        samples,
        hosts,
        hours,
        jitter
    );
    // Baseline: the head's Gorilla/XOR chunks cut at 120 samples like Prometheus's, without
    // Prometheus's per-chunk framing and index.
    let xor: usize = data
        .iter()
        .map(|(_, s)| {
            s.chunks(120)
                .map(|c| {
                    let mut a = strata_storage::chunk::XorAppender::new();
                    for x in c {
                        a.append(x.t, x.v);
                    }
                    a.bytes().len()
                })
                .sum::<usize>()
        })
        .sum();
    println!(
        "baseline: XOR chunks of 120 samples, samples only: {:.3} B/sample\n",
        xor as f64 / samples as f64
    );
    println!("| value layout | rows/page | time buckets | samples.parquet B/sample | series_id | timestamp | value | value_int | series.parquet B/series | all-in B/sample |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    const H: i64 = 3_600_000;
    // Bucket width None = the default (4 h); one bucket = the v2 series-major layout.
    let one = Some(span + 1);
    let variants = [
        (ValueEncoding::Plain, false, 8192, one),
        (ValueEncoding::ByteStreamSplit, false, 8192, one),
        (ValueEncoding::Plain, true, 8192, one),
        (ValueEncoding::ByteStreamSplit, true, 8192, one),
        (ValueEncoding::Plain, true, 2048, one),
        (ValueEncoding::Plain, true, 32768, one),
        (ValueEncoding::Plain, true, 8192, Some(2 * H)),
        (ValueEncoding::Plain, true, 8192, None),
        (ValueEncoding::Plain, true, 8192, Some(6 * H)),
    ];
    for (enc, split, page, bucket_ms) in variants {
        let opts = WriterOptions {
            value_encoding: enc,
            split_integers: split,
            rows_per_page: page,
            time_bucket_ms: bucket_ms,
            ..Default::default()
        };
        let mut w =
            BlockWriter::new(TenantId::new("bench").unwrap(), start, start + span, opts).unwrap();
        for (l, s) in &data {
            w.add_series(l.clone(), s.clone()).unwrap();
        }
        let files = w.finish().unwrap();
        let cols = column_bytes(&files.samples);
        let per = |c: &str| *cols.get(c).unwrap_or(&0) as f64 / samples as f64;
        let layout = format!(
            "{}{}",
            match enc {
                ValueEncoding::Plain => "f64 PLAIN",
                ValueEncoding::ByteStreamSplit => "f64 BYTE_STREAM_SPLIT",
            },
            if split {
                " + integers as int64 DELTA"
            } else {
                ""
            }
        );
        let buckets = match bucket_ms {
            None => format!("{} h (default)", RAW_BUCKET_MS / H),
            Some(w) if w > span => "one".to_owned(),
            Some(w) => format!("{} h", w / H),
        };
        println!(
            "| {layout} | {page} | {buckets} | {:.3} | {:.4} | {:.4} | {:.3} | {:.3} | {:.1} | {:.3} |",
            files.samples.len() as f64 / samples as f64,
            per("series_id"),
            per("timestamp"),
            per("value"),
            per("value_int"),
            files.series.len() as f64 / data.len() as f64,
            files.total_bytes() as f64 / samples as f64,
        );
    }

    // Read granularity of the default layout: bytes of samples.parquet one series costs.
    let mut w = BlockWriter::new(
        TenantId::new("bench").unwrap(),
        start,
        start + span,
        WriterOptions::default(),
    )
    .unwrap();
    for (l, s) in &data {
        w.add_series(l.clone(), s.clone()).unwrap();
    }
    let files = w.finish().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let bucket = Bucket::from_store(
            Arc::new(object_store::memory::InMemory::new()),
            Duration::from_secs(30),
        );
        files.upload(&bucket).await.unwrap();
        let r = BlockReader::open(&bucket, &files.tenant, files.meta.ulid)
            .await
            .unwrap();
        let m = [
            Matcher::equal("__name__", "node_load1"),
            Matcher::equal("instance", "host-0007:9100"),
        ];
        let got = r.select(&m, start, start + span).await.unwrap();
        println!(
            "\ndefault layout: selecting one series ({} samples) fetched {} of {} bytes of samples.parquet",
            got.iter().map(|s| s.samples.len()).sum::<usize>(),
            r.samples_bytes_fetched(),
            files.samples.len()
        );
    });
}
