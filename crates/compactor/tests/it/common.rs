//! Shared helpers: buckets, blocks from synthetic data, reading everything back as a querier
//! would, and an object store wrapper that injects faults.

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use std::time::Duration;
use strata_compactor::{Compactor, CompactorConfig};
use strata_model::{Labels, Overrides, Sample, TenantId};
use strata_storage::block::{BlockReader, BlockWriter, WriterOptions};
use strata_storage::bucket::{Bucket, BucketConfig};
use strata_storage::index::BucketIndex;
use strata_storage::merge::merge_series;
use strata_storage::Series;
use ulid::Ulid;

pub const H: i64 = 3_600_000;
/// A 2-day-aligned start (epoch-aligned ranges of every level start here).
pub const BASE: i64 = 19_676 * 86_400_000;

pub fn tenant(name: &str) -> TenantId {
    TenantId::new(name).unwrap()
}

/// A local-filesystem bucket under `dir`.
pub fn local_bucket(dir: &std::path::Path) -> Bucket {
    let mut cfg = BucketConfig::default();
    cfg.filesystem.directory = dir.to_path_buf();
    Bucket::from_config(&cfg).unwrap()
}

pub fn compactor(bucket: Bucket, cfg: CompactorConfig, overrides: Overrides) -> Arc<Compactor> {
    let mut reg = prometheus_client::registry::Registry::default();
    Compactor::new(cfg, bucket, Arc::new(RwLock::new(overrides)), &mut reg).unwrap()
}

/// Writes and uploads a block of `data` covering `[min_t, max_t]`.
pub async fn write_block(
    bucket: &Bucket,
    t: &TenantId,
    min_t: i64,
    max_t: i64,
    data: &[(Labels, Vec<Sample>)],
    opts: WriterOptions,
) -> Ulid {
    let mut w = BlockWriter::new(t.clone(), min_t, max_t, opts).unwrap();
    for (l, s) in data {
        w.add_series(l.clone(), s.clone()).unwrap();
    }
    let files = w.finish().unwrap();
    files.upload(bucket).await.unwrap();
    files.meta.ulid
}

/// Deterministic node_exporter-like data in `[start, start + dur)`, regular 15 s scrapes.
pub fn synth(start: i64, dur: i64, seed: u64) -> Vec<(Labels, Vec<Sample>)> {
    strata_storage::block::synth::node_exporter_like_with_jitter(1, start, dur, seed, 0)
}

/// What the blocks hold together, as queries see it: series merged by labels, equal
/// timestamps once.
pub fn union(parts: &[&[(Labels, Vec<Sample>)]]) -> Vec<Series> {
    let lists = parts
        .iter()
        .map(|p| {
            let mut v: Vec<Series> = p
                .iter()
                .filter(|(_, s)| !s.is_empty())
                .map(|(l, s)| Series {
                    labels: l.clone(),
                    samples: s.clone(),
                })
                .collect();
            v.sort_by(|a, b| a.labels.cmp(&b.labels));
            v
        })
        .collect();
    merge_series(lists)
}

/// Everything a querier reading the tenant's bucket index at `now_ms` gets (every block it
/// would query, merged), with no matchers.
pub async fn query_all(bucket: &Bucket, t: &TenantId, now_ms: i64) -> Vec<Series> {
    let idx = BucketIndex::read(bucket, t).await.unwrap().expect("index");
    let mut readers = Vec::new();
    // Queriers keep reading marked blocks for a while; an hour covers every test's clock.
    for b in idx.queryable_blocks(now_ms, H) {
        readers.push(Arc::new(
            BlockReader::open(bucket, t, b.ulid).await.unwrap(),
        ));
    }
    strata_storage::block_set::select(&readers, &[], i64::MIN, i64::MAX)
        .await
        .unwrap()
}

/// Everything one block holds.
pub async fn read_block(bucket: &Bucket, t: &TenantId, ulid: Ulid) -> (BlockReader, Vec<Series>) {
    let r = BlockReader::open(bucket, t, ulid).await.unwrap();
    let s = r.select(&[], i64::MIN, i64::MAX).await.unwrap();
    (r, s)
}

/// Asserts bit-exact equality of two series lists, naming the first difference.
pub fn assert_same_series(got: &[Series], want: &[Series]) {
    assert_eq!(got.len(), want.len(), "series count");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.labels, w.labels);
        assert_eq!(g.samples.len(), w.samples.len(), "samples of {}", g.labels);
        for (a, b) in g.samples.iter().zip(&w.samples) {
            assert!(a.bit_eq(b), "{}: {a:?} != {b:?}", g.labels);
        }
    }
}

/// Complete blocks of a tenant (with meta.json), read by listing the bucket.
pub async fn complete_blocks(bucket: &Bucket, t: &TenantId) -> Vec<Ulid> {
    let (idx, _) = BucketIndex::build(bucket, t, None, 0).await.unwrap();
    idx.blocks.iter().map(|b| b.ulid).collect()
}

/// Complete blocks without a deletion mark.
pub async fn live_blocks(bucket: &Bucket, t: &TenantId) -> Vec<Ulid> {
    let (idx, _) = BucketIndex::build(bucket, t, None, 0).await.unwrap();
    idx.blocks
        .iter()
        .filter(|b| idx.deletion_mark(&b.ulid).is_none())
        .map(|b| b.ulid)
        .collect()
}

/// An object store that fails selected writes and can give each user its own lock object.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    /// Puts to paths ending with this fail (while the count lasts; `usize::MAX` = forever).
    fail_puts: Mutex<Option<(String, usize)>>,
    /// Rewrites `compactor.lock` to `compactor.lock.<suffix>`: each user then "holds" its own
    /// lock, which simulates a lock that failed to exclude anyone.
    lock_suffix: Option<String>,
}

impl std::fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    /// Wraps the local bucket directory `dir`.
    pub fn new(dir: &std::path::Path, lock_suffix: Option<&str>) -> Arc<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let inner = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .unwrap()
            .with_automatic_cleanup(true);
        Arc::new(Self {
            inner: Arc::new(inner),
            fail_puts: Mutex::new(None),
            lock_suffix: lock_suffix.map(str::to_owned),
        })
    }

    pub fn fail_puts_ending_with(&self, suffix: &str, times: usize) {
        *self.fail_puts.lock() = Some((suffix.to_owned(), times));
    }

    pub fn heal(&self) {
        *self.fail_puts.lock() = None;
    }

    pub fn bucket(self: &Arc<Self>) -> Bucket {
        Bucket::from_store(self.clone(), Duration::from_secs(30))
    }

    fn map(&self, p: &Path) -> Path {
        match &self.lock_suffix {
            Some(s) if p.as_ref().ends_with(strata_compactor::lock::LOCK_FILE) => {
                Path::from(format!("{}.{s}", p.as_ref()))
            }
            _ => p.clone(),
        }
    }

    fn should_fail(&self, p: &Path) -> bool {
        let mut g = self.fail_puts.lock();
        match g.as_mut() {
            Some((suffix, n)) if *n > 0 && p.as_ref().ends_with(suffix.as_str()) => {
                *n = n.saturating_sub(1);
                true
            }
            _ => false,
        }
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if self.should_fail(location) {
            return Err(object_store::Error::Generic {
                store: "FaultyStore",
                source: format!("injected failure writing {location}").into(),
            });
        }
        self.inner
            .put_opts(&self.map(location), payload, opts)
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner
            .put_multipart_opts(&self.map(location), opts)
            .await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(&self.map(location), options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let suffix = self.lock_suffix.clone();
        let mapped = locations
            .map(move |r| {
                r.map(|p| match &suffix {
                    Some(s) if p.as_ref().ends_with(strata_compactor::lock::LOCK_FILE) => {
                        Path::from(format!("{}.{s}", p.as_ref()))
                    }
                    _ => p,
                })
            })
            .boxed();
        self.inner.delete_stream(mapped)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
