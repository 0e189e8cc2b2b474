//! Integration tests of the store-gateway over a local-filesystem bucket.

use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;
use strata_model::{Labels, Matcher, Sample, TenantId};
use strata_storage::block::synth::node_exporter_like;
use strata_storage::block::{BlockWriter, WriterOptions};
use strata_storage::bucket::{BackendKind, Bucket, BucketConfig, FilesystemConfig};
use strata_storage::index::{mark_for_deletion, BucketIndex};
use strata_storage::Queryable;
use strata_store_gateway::{StoreGateway, StoreGatewayConfig};

const H: i64 = 3_600_000;

fn tenant() -> TenantId {
    TenantId::new("team-a").unwrap()
}

fn bucket(dir: &std::path::Path) -> Bucket {
    Bucket::from_config(&BucketConfig {
        backend: BackendKind::Filesystem,
        filesystem: FilesystemConfig {
            directory: dir.to_owned(),
        },
        ..BucketConfig::default()
    })
    .unwrap()
}

/// Writes the part of `data` inside `[min_t, max_t]` as one block; returns its id.
async fn write_block(
    b: &Bucket,
    data: &[(Labels, Vec<Sample>)],
    min_t: i64,
    max_t: i64,
) -> ulid::Ulid {
    let mut w = BlockWriter::new(tenant(), min_t, max_t, WriterOptions::default()).unwrap();
    for (l, s) in data {
        let part: Vec<Sample> = s
            .iter()
            .copied()
            .filter(|x| x.t >= min_t && x.t <= max_t)
            .collect();
        w.add_series(l.clone(), part).unwrap();
    }
    let files = w.finish().unwrap();
    files.upload(b).await.unwrap();
    files.meta.ulid
}

fn gateway(b: &Bucket, cfg: StoreGatewayConfig) -> Arc<StoreGateway> {
    StoreGateway::new(cfg, b.clone(), &mut Registry::default()).unwrap()
}

fn same_bits(a: &[Sample], b: &[Sample]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.t == y.t && x.v.to_bits() == y.v.to_bits())
}

#[tokio::test]
async fn answers_across_blocks_equal_the_source_data() {
    let dir = tempfile::tempdir().unwrap();
    let b = bucket(dir.path());
    let data = node_exporter_like(3, 0, 6 * H, 7);
    for i in 0..3 {
        write_block(&b, &data, i * 2 * H, (i + 1) * 2 * H - 1).await;
    }
    // No index yet (no compactor ran): the gateway lists the bucket.
    let g = gateway(&b, StoreGatewayConfig::default());
    let got = g.select(&tenant(), &[], 0, 6 * H).await.unwrap();
    let mut want: Vec<_> = data.iter().filter(|(_, s)| !s.is_empty()).collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got.len(), want.len());
    for (g, (l, s)) in got.iter().zip(want) {
        assert_eq!(&g.labels, l);
        assert!(same_bits(&g.samples, s), "{l}");
    }
    // A window inside one block, with a matcher.
    let m = [Matcher::equal("__name__", "up")];
    let got = g.select(&tenant(), &m, 2 * H + 1000, 3 * H).await.unwrap();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|s| s
        .samples
        .iter()
        .all(|x| x.t >= 2 * H + 1000 && x.t <= 3 * H)));
    let names = g
        .label_values(&tenant(), "__name__", &[], 0, 6 * H, 0)
        .await
        .unwrap();
    assert!(names.contains(&"up".to_string()), "{names:?}");
    // Other tenants see nothing.
    let other = TenantId::new("team-b").unwrap();
    assert!(g.select(&other, &[], 0, 6 * H).await.unwrap().is_empty());
}

#[tokio::test]
async fn duplicate_and_overlapping_blocks_give_each_sample_once() {
    let dir = tempfile::tempdir().unwrap();
    let b = bucket(dir.path());
    let data = node_exporter_like(2, 0, 4 * H, 3);
    write_block(&b, &data, 0, 2 * H - 1).await;
    write_block(&b, &data, 0, 2 * H - 1).await; // a replica uploaded the same range
    write_block(&b, &data, H, 4 * H - 1).await; // overlaps the second hour
    let g = gateway(&b, StoreGatewayConfig::default());
    let got = g.select(&tenant(), &[], 0, 4 * H).await.unwrap();
    let total: usize = got.iter().map(|s| s.samples.len()).sum();
    let want: usize = data.iter().map(|(_, s)| s.len()).sum();
    assert_eq!(total, want);
}

#[tokio::test]
async fn index_drives_visibility_and_deletion_marks_expire() {
    let dir = tempfile::tempdir().unwrap();
    let b = bucket(dir.path());
    let data = node_exporter_like(1, 0, 4 * H, 5);
    let old = write_block(&b, &data, 0, 2 * H - 1).await;
    let now = strata_model::time::now_ms();
    let (idx, _) = BucketIndex::build(&b, &tenant(), None, now).await.unwrap();
    idx.write(&b, &tenant()).await.unwrap();
    let cfg = StoreGatewayConfig {
        sync_interval: Duration::from_millis(100),
        ignore_deletion_marks_delay: Duration::from_secs(3600),
        ..StoreGatewayConfig::default()
    };
    let g = gateway(&b, cfg);
    assert!(!g.select(&tenant(), &[], 0, 4 * H).await.unwrap().is_empty());
    // A new block is invisible until the index lists it: the gateway never lists the bucket
    // when an index exists.
    write_block(&b, &data, 2 * H, 4 * H - 1).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let got = g.select(&tenant(), &[], 2 * H, 4 * H).await.unwrap();
    assert!(got.is_empty(), "not indexed yet");
    let (idx, _) = BucketIndex::build(&b, &tenant(), Some(&idx), now)
        .await
        .unwrap();
    idx.write(&b, &tenant()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!g
        .select(&tenant(), &[], 2 * H, 4 * H)
        .await
        .unwrap()
        .is_empty());
    // Marked long ago: no longer read. Marked just now: still read.
    mark_for_deletion(&b, &tenant(), &old, now - 2 * H, "test")
        .await
        .unwrap();
    let (idx, _) = BucketIndex::build(&b, &tenant(), Some(&idx), now)
        .await
        .unwrap();
    idx.write(&b, &tenant()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(g
        .select(&tenant(), &[], 0, 2 * H - 1)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn open_blocks_stay_within_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let b = bucket(dir.path());
    let data = node_exporter_like(40, 0, 12 * H, 11);
    for i in 0..6 {
        write_block(&b, &data, i * 2 * H, (i + 1) * 2 * H - 1).await;
    }
    let budget = 1 << 20;
    let g = gateway(
        &b,
        StoreGatewayConfig {
            max_open_blocks_bytes: budget,
            ..StoreGatewayConfig::default()
        },
    );
    let got = g.select(&tenant(), &[], 0, 12 * H).await.unwrap();
    let total: usize = got.iter().map(|s| s.samples.len()).sum();
    assert_eq!(total, data.iter().map(|(_, s)| s.len()).sum::<usize>());
    // One block may exceed the budget on its own; more than that is evicted.
    let one_block = {
        let r = strata_storage::block::BlockReader::open(&b, &tenant(), {
            let (idx, _) = BucketIndex::build(&b, &tenant(), None, 0).await.unwrap();
            idx.blocks[0].ulid
        })
        .await
        .unwrap();
        r.heap_bytes()
    };
    assert!(
        g.open_blocks_bytes() <= budget.max(one_block),
        "{} open bytes, budget {budget}, one block {one_block}",
        g.open_blocks_bytes()
    );
}

#[tokio::test]
async fn step_picks_the_resolution_and_the_function_picks_the_aggregate() {
    use strata_storage::block::RESOLUTION_5M;
    use strata_storage::SelectHints;
    let dir = tempfile::tempdir().unwrap();
    let b = bucket(dir.path());
    // One gauge, 15 s samples over 2 h: value = minute of the hour.
    let labels = Labels::from_pairs([("__name__", "g"), ("job", "x")]);
    let raw: Vec<Sample> = (0..480)
        .map(|i| Sample::new(i * 15_000, ((i / 4) % 60) as f64))
        .collect();
    write_block(&b, &[(labels.clone(), raw.clone())], 0, 2 * H - 1).await;
    // Its 5m aggregates, as the compactor writes them (one series per aggregate).
    let mut w = BlockWriter::new(
        tenant(),
        0,
        2 * H - 1,
        WriterOptions {
            resolution: RESOLUTION_5M,
            ..WriterOptions::default()
        },
    )
    .unwrap();
    let windows: Vec<&[Sample]> = raw.chunks(20).collect();
    for aggr in ["count", "sum", "min", "max", "counter"] {
        let samples = windows
            .iter()
            .map(|win| {
                let t = win.last().unwrap().t;
                let v = match aggr {
                    "count" => win.len() as f64,
                    "sum" => win.iter().map(|s| s.v).sum(),
                    "min" => win.iter().map(|s| s.v).fold(f64::INFINITY, f64::min),
                    "max" => win.iter().map(|s| s.v).fold(f64::NEG_INFINITY, f64::max),
                    _ => win.last().unwrap().v,
                };
                Sample::new(t, v)
            })
            .collect();
        let mut l = labels.clone().into_vec();
        l.push(strata_model::Label::new(
            strata_store_gateway::AGGR_LABEL,
            aggr,
        ));
        l.sort();
        w.add_series(Labels::from_sorted(l), samples).unwrap();
    }
    w.finish().unwrap().upload(&b).await.unwrap();

    let g = gateway(&b, StoreGatewayConfig::default());
    let m = [Matcher::equal("__name__", "g")];
    let get = |res: i64, func: &str| {
        let g = g.clone();
        let m = m.clone();
        let func = func.to_string();
        async move {
            let hints = SelectHints {
                max_resolution_ms: res,
                func: Some(func),
                ..SelectHints::default()
            };
            let got = g
                .select_chunks_hinted(&tenant(), &m, 0, 2 * H, &hints)
                .await
                .unwrap();
            assert_eq!(got.len(), 1);
            // The aggregate label is stripped: the series looks like the raw one.
            assert_eq!(
                got[0].labels(),
                &Labels::from_pairs([("__name__", "g"), ("job", "x")])
            );
            let mut out = Vec::new();
            got[0].decode_into(0, 2 * H, &mut out);
            out
        }
    };
    // Raw only: every sample.
    assert_eq!(get(0, "max_over_time").await.len(), 480);
    // 5m allowed: one point per window, the aggregate the function needs.
    let max = get(RESOLUTION_5M, "max_over_time").await;
    assert_eq!(max.len(), 24);
    assert_eq!(max[0].v, 4.0);
    let min = get(RESOLUTION_5M, "min_over_time").await;
    assert_eq!(min[1].v, 5.0);
    let avg = get(RESOLUTION_5M, "").await;
    assert_eq!(
        avg[0].v,
        (0..20).map(|i| (i / 4) as f64).sum::<f64>() / 20.0
    );
}

/// The value of counter `name` in `registry`'s text exposition.
fn counter(registry: &Registry, name: &str) -> u64 {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}_total ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

#[tokio::test]
async fn limits_stop_reads_before_every_block_is_read() {
    use strata_storage::{LimitExceeded, QueryError, ReadLimit, ReadLimits, SelectHints};
    let dir = tempfile::tempdir().unwrap();
    let b = bucket(dir.path());
    // Ten 1 h blocks of the same 200 series, one sample per series per minute.
    let data: Vec<(Labels, Vec<Sample>)> = (0..200)
        .map(|i| {
            let id = format!("{i:05}");
            (
                Labels::from_pairs([("__name__", "m"), ("id", id.as_str())]),
                (0..600)
                    .map(|k| Sample::new(k * 60_000, k as f64))
                    .collect(),
            )
        })
        .collect();
    for i in 0..10 {
        write_block(&b, &data, i * H, (i + 1) * H - 1).await;
    }
    let cfg = StoreGatewayConfig {
        block_open_concurrency: 1,
        ..StoreGatewayConfig::default()
    };
    let m = [Matcher::equal("__name__", "m")];
    let limited = |max_series, max_samples| SelectHints {
        limits: ReadLimits {
            max_series,
            max_samples,
            max_bytes: 0,
        },
        ..SelectHints::default()
    };

    // Label queries open blocks one by one and stop at the first over the limit.
    for case in ["series", "values", "names"] {
        let mut registry = Registry::default();
        let g = StoreGateway::new(cfg.clone(), b.clone(), &mut registry).unwrap();
        let e = match case {
            "series" => g.series(&tenant(), &m, 0, 10 * H, 50).await.unwrap_err(),
            "values" => g
                .label_values(&tenant(), "id", &m, 0, 10 * H, 50)
                .await
                .unwrap_err(),
            _ => g
                .label_names(&tenant(), &m, 0, 10 * H, 1)
                .await
                .unwrap_err(),
        };
        let want = match case {
            "series" => (ReadLimit::Series, 50),
            "values" => (ReadLimit::LabelValues, 50),
            _ => (ReadLimit::LabelNames, 1),
        };
        assert!(
            matches!(e, QueryError::LimitExceeded(LimitExceeded { limit, max }) if (limit, max) == want),
            "{case}: {e}"
        );
        let opened = counter(&registry, "strata_store_gateway_block_loads");
        assert!(opened <= 2, "{case}: {opened} of 10 blocks opened");
    }
    let mut registry = Registry::default();
    let g = StoreGateway::new(cfg.clone(), b.clone(), &mut registry).unwrap();
    assert_eq!(
        g.series(&tenant(), &m, 0, 10 * H, 200).await.unwrap().len(),
        200
    );
    assert_eq!(counter(&registry, "strata_store_gateway_block_loads"), 10);

    // Selections: too many series in a block is refused before any sample is fetched.
    let e = g
        .select_chunks_hinted(&tenant(), &m, 0, 10 * H, &limited(50, 0))
        .await
        .unwrap_err();
    assert!(
        matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::Series),
        "{e}"
    );
    assert_eq!(g.samples_bytes_fetched(), 0);
    // Too many samples: each block stops once over the limit.
    let e = g
        .select_chunks_hinted(&tenant(), &m, 0, 10 * H, &limited(0, 1000))
        .await
        .unwrap_err();
    assert!(
        matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::Samples),
        "{e}"
    );
    let got = g
        .select_chunks_hinted(&tenant(), &m, 0, 10 * H, &limited(200, 120_000))
        .await
        .unwrap();
    assert_eq!(got.len(), 200);
    assert_eq!(got.iter().map(|s| s.num_samples()).sum::<usize>(), 120_000);
    // Each block's 12,000 samples fit a limit of 100,000; all ten blocks together do not.
    let e = g
        .select_chunks_hinted(&tenant(), &m, 0, 10 * H, &limited(0, 100_000))
        .await
        .unwrap_err();
    assert!(
        matches!(e, QueryError::LimitExceeded(l) if l.limit == ReadLimit::Samples),
        "{e}"
    );
}

/// Store-gateway `sg-a` of a two-instance ring with replication factor 1.
async fn sharded_gateway(b: &Bucket) -> (Arc<StoreGateway>, Arc<strata_ring::RingWatcher>) {
    use strata_meta::{KvStore, MemoryKv};
    use strata_ring::{instance_key, InstanceDesc, InstanceState, RingOptions, WatcherOptions};
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    for (i, id) in ["sg-a", "sg-b"].iter().enumerate() {
        let d = InstanceDesc {
            id: (*id).into(),
            addr: format!("{id}:9095"),
            http_addr: String::new(),
            zone: String::new(),
            state: InstanceState::Active,
            tokens: (0..8u32)
                .map(|k| k * 536_870_912 + i as u32 * 268_435_456)
                .collect(),
            heartbeat_ms: strata_model::time::now_ms(),
            registered_ms: 0,
        };
        kv.cas(&instance_key("ring/store-gateway", id), 0, d.encode())
            .await
            .unwrap();
    }
    let opts = RingOptions {
        replication_factor: 1,
        ..RingOptions::default()
    };
    let ring = strata_ring::RingWatcher::start(
        kv,
        "ring/store-gateway",
        WatcherOptions::new("store-gateway", opts),
    );
    ring.wait_for(|r| r.len() == 2).await;
    let g = StoreGateway::with_sharding(
        StoreGatewayConfig::default(),
        b.clone(),
        Some(strata_store_gateway::BlockSharding::new(
            ring.clone(),
            "sg-a",
        )),
        &mut Registry::default(),
    )
    .unwrap();
    (g, ring)
}

#[tokio::test]
async fn a_sharded_gateway_reads_only_the_named_blocks_it_owns() {
    use strata_storage::{BlockQueryable, BlockSelection, SelectHints};
    let dir = tempfile::tempdir().unwrap();
    let b = bucket(dir.path());
    let data = node_exporter_like(2, 0, 16 * H, 3);
    let mut blocks = Vec::new();
    for i in 0..8u64 {
        // Fixed ids, so that which instance owns which block is the same on every run.
        let (lo, hi) = (i as i64 * 2 * H, (i as i64 + 1) * 2 * H - 1);
        let mut w = BlockWriter::new(tenant(), lo, hi, WriterOptions::default())
            .unwrap()
            .with_ulid(ulid::Ulid::from_parts(
                1_700_000_000_000 + i,
                u128::from(i) * 7_919,
            ));
        for (l, s) in &data {
            let part: Vec<Sample> = s
                .iter()
                .copied()
                .filter(|x| x.t >= lo && x.t <= hi)
                .collect();
            w.add_series(l.clone(), part).unwrap();
        }
        let files = w.finish().unwrap();
        files.upload(&b).await.unwrap();
        blocks.push(files.meta.ulid);
    }
    let (g, ring) = sharded_gateway(&b).await;
    let owned: Vec<ulid::Ulid> = blocks
        .iter()
        .filter(|u| ring.ring().block_owners(&u.to_string())[0].id == "sg-a")
        .copied()
        .collect();
    assert!(
        !owned.is_empty() && owned.len() < blocks.len(),
        "both instances should own blocks: {owned:?}"
    );
    let t = tenant();
    let up = [Matcher::equal("__name__", "up")];
    let sel = BlockSelection {
        tenant: &t,
        blocks: &blocks,
        matchers: &up,
        start: 0,
        end: 16 * H,
    };
    let a = g.select_blocks(sel, &SelectHints::default()).await.unwrap();
    assert_eq!(a.queried, owned);
    // Samples come from the owned blocks' time ranges only.
    let owned_ranges: Vec<(i64, i64)> = blocks
        .iter()
        .enumerate()
        .filter(|(_, u)| owned.contains(u))
        .map(|(i, _)| (i as i64 * 2 * H, (i as i64 + 1) * 2 * H - 1))
        .collect();
    let mut samples = 0;
    for s in &a.value {
        let mut v = Vec::new();
        s.decode_into(0, 16 * H, &mut v);
        for x in &v {
            assert!(
                owned_ranges.iter().any(|&(lo, hi)| x.t >= lo && x.t <= hi),
                "sample at {} is from a block sg-a does not own",
                x.t
            );
        }
        samples += v.len();
    }
    assert!(samples > 0);
    assert_eq!(g.series_blocks(sel, 0).await.unwrap().queried, owned);
    assert_eq!(g.label_names_blocks(sel, 0).await.unwrap().queried, owned);
    let lv = g.label_values_blocks(sel, "instance", 0).await.unwrap();
    assert_eq!(lv.queried, owned);
    assert!(!lv.value.is_empty());
    // Asked only for blocks it does not own: nothing read, nothing opened.
    let others: Vec<ulid::Ulid> = blocks
        .iter()
        .filter(|u| !owned.contains(u))
        .copied()
        .collect();
    let fresh = sharded_gateway(&b).await.0;
    let a = fresh
        .select_blocks(
            BlockSelection {
                blocks: &others,
                ..sel
            },
            &SelectHints::default(),
        )
        .await
        .unwrap();
    assert!(a.queried.is_empty() && a.value.is_empty());
    assert_eq!(fresh.open_blocks_bytes(), 0);
}
