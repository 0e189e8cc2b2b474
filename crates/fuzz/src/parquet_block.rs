//! `parquet_block`: a block whose `series.parquet`, `samples.parquet` or `meta.json` is replaced
//! by the input, opened and read through `BlockReader` from an in-memory bucket the way the
//! store-gateway (selections, label queries) and the compactor (the series cursor) read one.
//!
//! The first byte picks the file (`% 3`: series, samples, meta) and the base block
//! (`/ 3 % BASES`, blocks written by `BlockWriter` with different layouts); the rest is the
//! file. For a replaced Parquet file `meta.json` records the new size, as it would for a block
//! corrupted after it was written, so that reads get past the footer fetch.
//!
//! Every outcome but a panic, a hang or an outsized allocation is acceptable: a corrupt block
//! must come back as an error (or, where corruption cannot be seen, as wrong data).

use crate::fixture::{END_MS, START_MS};
use crate::runtime::block_on;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashSet;
use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;
use strata_model::{MatchOp, Matcher, TenantId};
use strata_storage::block::{
    block_path, BlockFiles, BlockReader, BlockWriter, ValueEncoding, WriterOptions, META_FILE,
    SAMPLES_FILE, SERIES_FILE,
};
use strata_storage::bucket::Bucket;
use ulid::Ulid;

/// Which file of the block an input replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFile {
    /// `series.parquet`.
    Series,
    /// `samples.parquet`.
    Samples,
    /// `meta.json`.
    Meta,
}

impl BlockFile {
    fn from_byte(b: u8) -> Self {
        match b % 3 {
            0 => Self::Series,
            1 => Self::Samples,
            _ => Self::Meta,
        }
    }

    /// The selector byte for this file of base block `base`.
    pub fn selector(self, base: usize) -> u8 {
        let f = match self {
            Self::Series => 0,
            Self::Samples => 1,
            Self::Meta => 2,
        };
        (base * 3 + f) as u8
    }
}

/// Tenant of the base blocks.
const TENANT: &str = "fuzz";

/// Writer settings of the base blocks: the default layout, then ones with small pages and row
/// groups (so that the page index and row selections matter), byte-stream-split floats without
/// the integer column, and every label in the `labels` map.
fn base_options() -> Vec<WriterOptions> {
    vec![
        WriterOptions::default(),
        WriterOptions {
            value_encoding: ValueEncoding::ByteStreamSplit,
            split_integers: false,
            decimal_scaling: false,
            rows_per_page: 64,
            rows_per_row_group: 512,
            ..WriterOptions::default()
        },
        WriterOptions {
            max_label_columns: 0,
            rows_per_page: 16,
            rows_per_row_group: 128,
            ..WriterOptions::default()
        },
    ]
}

/// How many base blocks there are.
pub fn base_count() -> usize {
    base_options().len()
}

/// The base blocks: a subset of the fixture (every series, every fourth sample) so that the
/// files stay a few KiB, libFuzzer-sized.
pub fn base_blocks() -> &'static [BlockFiles] {
    static BLOCKS: OnceLock<Vec<BlockFiles>> = OnceLock::new();
    BLOCKS.get_or_init(|| {
        let tenant = TenantId::new(TENANT).expect("a fixed valid tenant");
        base_options()
            .into_iter()
            .enumerate()
            .map(|(i, opts)| {
                let mut w = BlockWriter::new(tenant.clone(), START_MS, END_MS, opts)
                    .expect("the fixture's range is valid")
                    .with_ulid(Ulid::from_parts(1_700_000_000_000, i as u128));
                for (labels, samples) in crate::fixture::series() {
                    let thin = samples.into_iter().step_by(4).collect();
                    w.add_series(labels, thin)
                        .expect("the fixture's series are valid");
                }
                w.finish().expect("the base block encodes")
            })
            .collect()
    })
}

/// The contents of `file` in base block `base`, as the block writer made it.
pub fn base_file(base: usize, file: BlockFile) -> Vec<u8> {
    let b = &base_blocks()[base];
    match file {
        BlockFile::Series => b.series.to_vec(),
        BlockFile::Samples => b.samples.to_vec(),
        BlockFile::Meta => serde_json::to_vec_pretty(&b.meta).expect("meta serializes"),
    }
}

/// Under libFuzzer every panic aborts in the panic hook, even one that `catch_unwind` would
/// catch. The block reader catches the parquet and arrow crates' panics on malformed files on
/// purpose (they are the decoder's bugs, reported as a corrupt block), so panics raised inside
/// those crates skip the hook and unwind to that guard; one the guard does not catch still
/// aborts in libfuzzer-sys's own check after the target returns. Each distinct place such a
/// panic comes from is printed once, for the run's log.
fn let_decoder_panics_unwind() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        let seen: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
        std::panic::set_hook(Box::new(move |info| {
            let place = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            // `bytes` panics on the out-of-range slices the decoder asks it for.
            let decoder = ["/parquet-", "/arrow-", "/bytes-"];
            if decoder.iter().any(|d| place.contains(d)) {
                if seen.lock().insert(place.clone()) {
                    eprintln!("parquet_block: the decoder panicked at {place}: {info}");
                }
            } else {
                previous(info);
            }
        }));
    });
}

/// Body of the `parquet_block` target.
pub fn run(data: &[u8]) {
    let_decoder_panics_unwind();
    let Some((&sel, file)) = data.split_first() else {
        return;
    };
    let which = BlockFile::from_byte(sel);
    let base = &base_blocks()[(sel / 3) as usize % base_count()];
    let mut meta = base.meta.clone();
    let (mut series, mut samples) = (base.series.clone(), base.samples.clone());
    let replaced = Bytes::copy_from_slice(file);
    let mut meta_json = None;
    match which {
        BlockFile::Series => series = replaced,
        BlockFile::Samples => {
            samples = replaced;
            for f in &mut meta.files {
                if f.rel_path == SAMPLES_FILE {
                    f.size_bytes = samples.len() as u64;
                }
            }
        }
        BlockFile::Meta => meta_json = Some(replaced),
    }
    let meta_json = match meta_json {
        Some(m) => m,
        None => Bytes::from(serde_json::to_vec(&meta).expect("meta serializes")),
    };
    block_on(read_block(meta.ulid, meta_json, series, samples));
}

/// The matchers the target selects with, compiled once (a regex per input would dominate).
fn matchers() -> (&'static [Matcher], &'static [Matcher]) {
    static M: OnceLock<(Vec<Matcher>, Vec<Matcher>)> = OnceLock::new();
    let (all, job) = M.get_or_init(|| {
        (
            vec![Matcher::new(MatchOp::RegexMatch, "__name__", ".+").expect("a valid regex")],
            vec![
                Matcher::equal("__name__", "http_requests_total"),
                Matcher::new(MatchOp::NotEqual, "code", "500").expect("a valid matcher"),
            ],
        )
    });
    (all, job)
}

async fn read_block(ulid: Ulid, meta: Bytes, series: Bytes, samples: Bytes) {
    let bucket = Bucket::from_store(
        Arc::new(object_store::memory::InMemory::new()),
        Duration::from_secs(10),
    );
    let tenant = TenantId::new(TENANT).expect("a fixed valid tenant");
    for (name, data) in [
        (SERIES_FILE, series),
        (SAMPLES_FILE, samples),
        (META_FILE, meta),
    ] {
        bucket
            .put(&block_path(TENANT, &ulid, name), data)
            .await
            .expect("the in-memory bucket stores");
    }
    let Ok(reader) = BlockReader::open(&bucket, &tenant, ulid).await else {
        return;
    };
    let _ = reader.heap_bytes();
    let (all, job) = matchers();
    let meta = reader.meta().clone();
    let _ = reader.series_labels(all, i64::MIN, i64::MAX);
    let _ = reader.label_names(&[], meta.min_time, meta.max_time);
    let _ = reader.label_values("job", all, i64::MIN, i64::MAX);
    // Everything, then a window of a few pages of one metric (row selections, page skipping).
    for (m, start, end) in [
        (all, i64::MIN, i64::MAX),
        (job, START_MS + 600_000, START_MS + 1_200_000),
    ] {
        if let Ok(got) = reader.select(m, start, end).await {
            for s in &got {
                assert!(
                    s.samples.iter().all(|x| x.t >= start && x.t <= end),
                    "select returned samples outside [{start}, {end}]"
                );
            }
        }
    }
    let mut cursor = reader.series_cursor();
    while let Ok(Some(_)) = cursor.next_series().await {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_blocks_are_small_and_read_back_whole() {
        for base in 0..base_count() {
            for f in [BlockFile::Series, BlockFile::Samples, BlockFile::Meta] {
                let bytes = base_file(base, f);
                assert!(
                    bytes.len() < 24 << 10,
                    "{f:?} of base {base}: {} bytes",
                    bytes.len()
                );
                let mut input = vec![f.selector(base)];
                input.extend_from_slice(&bytes);
                run(&input);
            }
            let b = &base_blocks()[base];
            let n = block_on(async {
                let bucket = Bucket::from_store(
                    Arc::new(object_store::memory::InMemory::new()),
                    Duration::from_secs(10),
                );
                b.upload(&bucket).await.unwrap();
                let r = BlockReader::open(&bucket, &b.tenant, b.meta.ulid)
                    .await
                    .unwrap();
                let all = [Matcher::new(MatchOp::RegexMatch, "__name__", ".+").unwrap()];
                r.select(&all, i64::MIN, i64::MAX).await.unwrap().len()
            });
            assert_eq!(n, crate::fixture::series().len(), "base {base}");
        }
    }

    #[test]
    fn selectors_round_trip() {
        for base in 0..base_count() {
            for f in [BlockFile::Series, BlockFile::Samples, BlockFile::Meta] {
                let s = f.selector(base);
                assert_eq!(BlockFile::from_byte(s), f);
                assert_eq!((s / 3) as usize % base_count(), base);
            }
        }
    }
}
