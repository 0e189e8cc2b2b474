//! Chunk encode/decode throughput on scrape-like data (15 s interval with jitter, counters and
//! gauges). Run: `cargo bench -p strata-storage --bench chunk`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use strata_storage::chunk::{XorAppender, XorIter, SAMPLES_PER_CHUNK};

fn samples(counter: bool) -> Vec<(i64, f64)> {
    let mut t = 1_700_000_000_000i64;
    let mut v = 1000.0f64;
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..SAMPLES_PER_CHUNK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += 15_000 + (x % 7) as i64 - 3;
            if counter {
                v += (x % 100) as f64;
            } else {
                v = ((x % 10_000) as f64) / 100.0;
            }
            (t, v)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for (name, counter) in [("counter", true), ("gauge", false)] {
        let data = samples(counter);
        let mut g = c.benchmark_group(format!("xor_{name}"));
        g.throughput(Throughput::Elements(data.len() as u64));
        g.bench_function("encode", |b| {
            b.iter(|| {
                let mut a = XorAppender::new();
                for &(t, v) in &data {
                    a.append(t, v);
                }
                black_box(a.bytes().len())
            })
        });
        let mut a = XorAppender::new();
        for &(t, v) in &data {
            a.append(t, v);
        }
        let bytes = a.into_bytes();
        eprintln!(
            "{name}: {:.2} bytes/sample",
            bytes.len() as f64 / data.len() as f64
        );
        g.bench_function("decode", |b| {
            b.iter(|| black_box(XorIter::new(&bytes).map(|s| s.v).sum::<f64>()))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
