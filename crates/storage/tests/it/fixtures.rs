//! Blocks written by earlier builds stay readable: one fixture block per format version under
//! `tests/fixtures/blocks/v<N>/`, with the exact samples it holds in `expected.json` (values as
//! IEEE-754 bit patterns, so NaN payloads and stale markers are compared exactly).
//!
//! A fixture is written once, by the build that introduced its version:
//! `STRATA_WRITE_BLOCK_FIXTURE=1 cargo test -p strata-storage --test it fixtures` writes the
//! current version's fixture if it does not exist yet. It is never rewritten.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata_model::{Labels, Matcher, Sample, TenantId};
use strata_storage::block::{synth, BlockReader, BlockWriter, WriterOptions, SCHEMA_VERSION};
use strata_storage::bucket::{BackendKind, Bucket, BucketConfig, FilesystemConfig};

const TENANT: &str = "fixture";

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/blocks")
}

fn bucket(dir: &Path) -> Bucket {
    Bucket::from_config(&BucketConfig {
        backend: BackendKind::Filesystem,
        filesystem: FilesystemConfig {
            directory: dir.to_owned(),
        },
        ..BucketConfig::default()
    })
    .unwrap()
}

type Expected = BTreeMap<String, Vec<(i64, String)>>;

fn encode(series: &[(Labels, Vec<Sample>)]) -> Expected {
    series
        .iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(l, s)| {
            (
                l.to_string(),
                s.iter()
                    .map(|x| (x.t, format!("{:016x}", x.v.to_bits())))
                    .collect(),
            )
        })
        .collect()
}

async fn write_fixture(dir: &Path) {
    // One host, 10 minutes: every kind of series synth makes (counters with 2 decimals,
    // integer counters, gauges, constants, stale markers), small enough to commit.
    let start = 1_700_000_000_000;
    let data = synth::node_exporter_like(1, start, 10 * 60_000, 7);
    let ulid: ulid::Ulid = "01JD0000000000000000000001".parse().unwrap();
    let mut w = BlockWriter::new(
        TenantId::new(TENANT).unwrap(),
        start,
        start + 10 * 60_000 - 1,
        // 3-minute time buckets (format v3): four buckets in ten minutes, so the fixture keeps
        // the multi-bucket layout readable, not only the single bucket of a short block.
        WriterOptions {
            time_bucket_ms: Some(3 * 60_000),
            ..WriterOptions::default()
        },
    )
    .unwrap()
    .with_ulid(ulid);
    for (l, s) in &data {
        w.add_series(l.clone(), s.clone()).unwrap();
    }
    let files = w.finish().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    files.upload(&bucket(dir)).await.unwrap();
    let json = serde_json::to_string(&encode(&data)).unwrap();
    std::fs::write(dir.join("expected.json"), json).unwrap();
}

#[tokio::test]
async fn every_format_version_reads_back_exactly() {
    let root = fixtures_root();
    let current = root.join(format!("v{SCHEMA_VERSION}"));
    if std::env::var_os("STRATA_WRITE_BLOCK_FIXTURE").is_some() && !current.exists() {
        write_fixture(&current).await;
    }
    let mut checked = 0;
    for v in 1..=SCHEMA_VERSION {
        let dir = root.join(format!("v{v}"));
        assert!(
            dir.join("expected.json").exists(),
            "no fixture for block format v{v} in {}: write it with STRATA_WRITE_BLOCK_FIXTURE=1",
            dir.display()
        );
        let want: Expected =
            serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        let b = bucket(&dir);
        let tenant = TenantId::new(TENANT).unwrap();
        let ulids = b.list_dirs(&format!("{TENANT}/")).await.unwrap();
        assert_eq!(ulids.len(), 1, "v{v}: one block expected");
        let r = BlockReader::open(&b, &tenant, ulids[0].parse().unwrap())
            .await
            .unwrap_or_else(|e| panic!("v{v}: {e}"));
        assert_eq!(r.meta().schema_version, v);
        let got = r
            .select(
                &[Matcher::new(strata_model::MatchOp::RegexMatch, "__name__", ".+").unwrap()],
                i64::MIN,
                i64::MAX,
            )
            .await
            .unwrap();
        let got: Expected = encode(
            &got.into_iter()
                .map(|s| (s.labels, s.samples))
                .collect::<Vec<_>>(),
        );
        assert_eq!(got.len(), want.len(), "v{v}: series count");
        for (k, w) in &want {
            assert_eq!(got.get(k), Some(w), "v{v}: series {k}");
        }
        checked += 1;
    }
    assert!(checked >= 1);
}
