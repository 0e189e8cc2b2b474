//! Reading a 6 h window out of a 24 h block, by block layout: one series-major bucket (the v2
//! layout) against time buckets of 2, 4 (the v3 default) and 6 h. The window is the block's
//! last 6 h: aligned to the 2 h and 6 h buckets (3 and 1 buckets read), not to the 4 h ones
//! (2 buckets, 8 h). Data: `synth::node_exporter_like`, 20 hosts
//! (1,480 series) at 15 s; the block sits on the local filesystem (page cache warm), so this
//! measures decoding, not I/O. Run: `cargo bench -p strata-storage --bench block_read`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use strata_model::{MatchOp, Matcher, TenantId};
use strata_storage::block::{synth, BlockReader, BlockWriter, WriterOptions};
use strata_storage::bucket::{BackendKind, Bucket, BucketConfig, FilesystemConfig};

const DAY: i64 = 86_400_000;
// 2026-11-30T00:00:00Z: bucket-aligned, like a compacted day.
const START: i64 = 1_764_460_800_000;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::from_config(&BucketConfig {
        backend: BackendKind::Filesystem,
        filesystem: FilesystemConfig {
            directory: dir.path().to_owned(),
        },
        ..BucketConfig::default()
    })
    .unwrap();
    let tenant = TenantId::new("bench").unwrap();
    let data = synth::node_exporter_like(20, START, DAY, 1);
    let cpu = [Matcher::new(MatchOp::Equal, "__name__", "node_cpu_seconds_total").unwrap()];
    let (start, end) = (START + DAY - 6 * 3_600_000, START + DAY - 1);
    let mut g = c.benchmark_group("select_6h_of_24h_block");
    g.sample_size(20);
    const H: i64 = 3_600_000;
    for (name, width) in [
        ("one_bucket_v2_layout", Some(2 * DAY)),
        ("buckets_2h", Some(2 * H)),
        ("buckets_4h", Some(4 * H)),
        ("buckets_6h", Some(6 * H)),
    ] {
        let mut w = BlockWriter::new(
            tenant.clone(),
            START,
            START + DAY - 1,
            WriterOptions {
                time_bucket_ms: width,
                ..WriterOptions::default()
            },
        )
        .unwrap();
        for (l, s) in &data {
            w.add_series(l.clone(), s.clone()).unwrap();
        }
        let files = w.finish().unwrap();
        let ulid = files.meta.ulid;
        rt.block_on(files.upload(&bucket)).unwrap();
        let r = rt
            .block_on(BlockReader::open(&bucket, &tenant, ulid))
            .unwrap();
        let got = rt.block_on(r.select(&cpu, start, end)).unwrap();
        let samples: usize = got.iter().map(|s| s.samples.len()).sum();
        let before = r.samples_bytes_fetched();
        rt.block_on(r.select(&cpu, start, end)).unwrap();
        eprintln!(
            "{name}: {} series, {samples} samples in the window, {} of {} bytes fetched",
            got.len(),
            r.samples_bytes_fetched() - before,
            files.samples.len()
        );
        g.throughput(Throughput::Elements(samples as u64));
        g.bench_function(name, |b| {
            b.iter(|| black_box(rt.block_on(r.select(&cpu, start, end)).unwrap().len()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
