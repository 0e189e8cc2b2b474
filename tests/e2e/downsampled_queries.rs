//! PromQL over downsampled blocks answers like over the raw data (in process: blocks written to
//! a filesystem bucket, the compactor's real cycle, the store-gateway and the engine).
//!
//! Samples sit 7.5 s off the 15 s grid so that no sample falls on a query window's (excluded)
//! left boundary: a window then holds whole 5m aggregation windows, and min/max/sum/count over
//! time are exact; rate and avg agree within the aggregation tolerance.

use std::sync::Arc;
use strata_compactor::{Compactor, CompactorConfig};
use strata_model::{Labels, Overrides, Sample, TenantId};
use strata_promql::{Engine, EngineOptions, QueryValue, SourceResolution};
use strata_storage::block::{BlockWriter, WriterOptions};
use strata_storage::bucket::{BackendKind, Bucket, BucketConfig, FilesystemConfig};
use strata_store_gateway::{StoreGateway, StoreGatewayConfig};

const H: i64 = 3_600_000;

fn dataset(start: i64, end: i64) -> Vec<(Labels, Vec<Sample>)> {
    let mut out = Vec::new();
    for s in 0..20u64 {
        let (mut c, mut counter, mut gauge) = (0.0f64, Vec::new(), Vec::new());
        let mut t = start + 7_500;
        let mut i = 0u64;
        while t < end {
            i += 1;
            c += ((i * (s + 3)) % 11) as f64 + 0.25;
            if i % 3001 == s * 97 {
                c = 0.0; // a reset now and then
            }
            counter.push(Sample::new(t, c));
            gauge.push(Sample::new(t, ((i * 7919 + s * 31) % 1000) as f64 / 10.0));
            t += 15_000;
        }
        let id = format!("{s:02}");
        out.push((
            Labels::from_pairs([("__name__", "work_total"), ("series", id.as_str())]),
            counter,
        ));
        out.push((
            Labels::from_pairs([("__name__", "temperature"), ("series", id.as_str())]),
            gauge,
        ));
    }
    out
}

async fn range(
    engine: &Engine,
    store: &StoreGateway,
    q: &str,
    start: i64,
    end: i64,
    res: i64,
) -> Vec<(Labels, Vec<Sample>)> {
    let tenant = TenantId::new("ds").unwrap();
    let r = engine
        .range_with_resolution(store, &tenant, q, start, end, H, SourceResolution::Max(res))
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    match r.value {
        QueryValue::Matrix(m) => m.into_iter().map(|s| (s.labels, s.samples)).collect(),
        other => panic!("{q}: not a matrix: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downsampled_answers_match_raw_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Bucket::from_config(&BucketConfig {
        backend: BackendKind::Filesystem,
        filesystem: FilesystemConfig {
            directory: dir.path().to_owned(),
        },
        ..BucketConfig::default()
    })
    .unwrap();
    let tenant = TenantId::new("ds").unwrap();
    // Two whole days plus two hours (so both days are complete), as 2h blocks.
    let day0 = 20_000 * 24 * H;
    let end = day0 + 50 * H;
    let data = dataset(day0, end);
    let mut t = day0;
    while t < end {
        let mut w =
            BlockWriter::new(tenant.clone(), t, t + 2 * H - 1, WriterOptions::default()).unwrap();
        for (l, s) in &data {
            let part: Vec<Sample> = s
                .iter()
                .copied()
                .filter(|x| x.t >= t && x.t < t + 2 * H)
                .collect();
            w.add_series(l.clone(), part).unwrap();
        }
        w.finish().unwrap().upload(&bucket).await.unwrap();
        t += 2 * H;
    }
    let mut reg = prometheus_client::registry::Registry::default();
    let compactor = Compactor::new(
        CompactorConfig::default(),
        bucket.clone(),
        Arc::new(parking_lot::RwLock::new(Overrides::default())),
        &mut reg,
    )
    .unwrap();
    // Cycles until nothing changes: 2h → 12h → 24h, then 5m and 1h copies of the days.
    let mut downsampled = 0;
    for _ in 0..6 {
        let r = compactor.run_once(end + H).await.unwrap();
        downsampled += r.downsampled.len();
    }
    assert!(
        downsampled >= 2,
        "expected 5m blocks for both days, got {downsampled}"
    );
    let store = StoreGateway::new(StoreGatewayConfig::default(), bucket.clone(), &mut reg).unwrap();
    let engine = Engine::new(EngineOptions::default());
    let (qs, qe) = (day0 + 2 * H, day0 + 46 * H);
    // count_over_time is not in the list: like Thanos, a 5m block answers it with the number of
    // aggregated points, not of raw samples (docs/architecture.md, store-gateway).
    let checks: [(&str, f64); 5] = [
        ("max_over_time(temperature[1h])", 0.0),
        ("min_over_time(temperature[1h])", 0.0),
        ("sum_over_time(temperature[1h])", 1e-9),
        ("avg_over_time(temperature[1h])", 1e-9),
        // rate extrapolates to the window edges from the first and last point it sees; from 5m
        // points the first is up to 5 m in, and right after a counter reset the extrapolation
        // is cut at zero at a different place: a few percent apart there, < 1% elsewhere.
        ("rate(work_total[1h])", 0.06),
    ];
    for (q, tol) in checks {
        let raw = range(&engine, &store, q, qs, qe, 0).await;
        let ds = range(&engine, &store, q, qs, qe, 300_000).await;
        assert_eq!(raw.len(), 20, "{q}");
        assert_eq!(ds.len(), raw.len(), "{q}: series");
        for ((rl, rs), (dl, dsm)) in raw.iter().zip(&ds) {
            assert_eq!(rl, dl, "{q}");
            assert_eq!(rs.len(), dsm.len(), "{q} {rl}: points");
            for (a, b) in rs.iter().zip(dsm) {
                assert_eq!(a.t, b.t);
                let rel = (a.v - b.v).abs() / a.v.abs().max(1e-12);
                assert!(
                    rel <= tol,
                    "{q} {rl} at {}: raw {} vs 5m {} (relative {rel}, tolerance {tol})",
                    a.t,
                    a.v,
                    b.v
                );
            }
        }
    }
}
