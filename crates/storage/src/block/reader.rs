//! Reading a block: `meta.json` and the whole (small) series file are loaded once at open, as
//! are the footer and page index of the samples file; a selection then matches series in memory
//! and fetches only the samples pages covering their row ranges.

use super::cache::RangeCache;
use super::meta::{BlockMeta, SCHEMA_VERSION};
use super::scale::unscale;
use super::schema::{
    COL_BUCKET_SAMPLES, COL_FIRST_ROW, COL_LABELS, COL_MAX_TIME, COL_MIN_TIME, COL_NAME,
    COL_NUM_SAMPLES, COL_SERIES_ID, COL_TIMESTAMP, COL_VALUE, COL_VALUE_INT, COL_VALUE_SCALE,
    LABEL_PREFIX,
};
use super::{block_path, BlockError, META_FILE, SAMPLES_FILE, SERIES_FILE};
use crate::bucket::{Bucket, BucketError};
use crate::error::{LimitExceeded, ReadLimit};
use crate::limits::{
    check_count, labels_heap_bytes, samples_heap_bytes, ReadLimits, SharedBytes, NO_LIMIT,
};
use crate::query::Series;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, UInt32Type, UInt64Type, UInt8Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::async_reader::ParquetRecordBatchStream;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::PageLocation;
use std::collections::BTreeSet;
use std::ops::{ControlFlow, Range};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use strata_model::{Label, Labels, MatchOp, Matcher, Sample, TenantId, METRIC_NAME};
use ulid::Ulid;

/// One row of the series file, decoded.
#[derive(Debug)]
struct SeriesEntry {
    labels: Labels,
    min_t: i64,
    max_t: i64,
    /// `first_row` as the file records it (v1/v2: start of the series' one run; v3: row of its
    /// first sample).
    first_row: u64,
    num_samples: u64,
    /// Decimal scale of the series' `value_int` rows (0 in format v1).
    scale: u8,
    /// The series' rows in each time bucket of the samples file (one span in v1/v2).
    spans: Box<[RowSpan]>,
}

/// Rows `[first, first + len)` of the samples file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RowSpan {
    first: u64,
    len: u64,
}

impl RowSpan {
    fn range(self) -> Range<usize> {
        self.first as usize..(self.first + self.len) as usize
    }
}

/// An open block. Holds the block's metadata, its decoded series file and the samples file's
/// footer and page index, so selections cost only the samples pages they need. Cheap to share
/// behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct BlockReader {
    bucket: Bucket,
    meta: BlockMeta,
    samples_path: String,
    samples_size: u64,
    samples_meta: ArrowReaderMetadata,
    series: Vec<SeriesEntry>,
    /// The samples file's time buckets with their row ranges, in file order.
    buckets: Vec<BucketRows>,
    fetched: Arc<AtomicU64>,
    cache: Option<Arc<RangeCache>>,
    /// Series entries examined (see [`BlockReader::series_visited`]).
    visited: AtomicU64,
}

/// A time bucket of the samples file and the rows holding it.
#[derive(Debug, Clone)]
struct BucketRows {
    min_t: i64,
    max_t: i64,
    rows: Range<u64>,
}

/// A samples file in the bucket as Parquet's async reader sees it; counts the bytes it fetches.
struct BucketFile {
    bucket: Bucket,
    path: String,
    size: u64,
    fetched: Arc<AtomicU64>,
    cache: Option<Arc<RangeCache>>,
}

fn external(e: BucketError) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for BucketFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            if let Some(b) = self.cache.as_ref().and_then(|c| c.get(&self.path, &range)) {
                return Ok(b);
            }
            let b = self
                .bucket
                .get_range(&self.path, range.clone())
                .await
                .map_err(external)?;
            self.fetched.fetch_add(b.len() as u64, Ordering::Relaxed);
            if let Some(c) = &self.cache {
                c.put(&self.path, &range, b.clone());
            }
            Ok(b)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move {
            // Served from the cache only when every range is there (the common case of a
            // repeated query); otherwise one coalesced fetch of them all.
            if let Some(c) = &self.cache {
                let hits: Vec<Bytes> = ranges.iter().map_while(|r| c.get(&self.path, r)).collect();
                if hits.len() == ranges.len() {
                    return Ok(hits);
                }
            }
            // object_store coalesces close ranges into one request.
            let v = self
                .bucket
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(external)?;
            let n: u64 = v.iter().map(|b| b.len() as u64).sum();
            self.fetched.fetch_add(n, Ordering::Relaxed);
            if let Some(c) = &self.cache {
                for (r, b) in ranges.iter().zip(&v) {
                    c.put(&self.path, r, b.clone());
                }
            }
            Ok(v)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let md = ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Required)
                // Footer and page index usually sit within the last 64 KiB: one request.
                .with_prefetch_hint(Some(64 << 10))
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(md))
        }
        .boxed()
    }
}

fn corrupt(file: &str, reason: impl Into<String>) -> BlockError {
    BlockError::Corrupt {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

/// The parquet crate still panics on some malformed files instead of returning an error (a page
/// header whose size points before its column chunk, found by the `parquet_block` fuzz
/// target, panics in its in-memory row group). Every decoding step here runs behind
/// `catch_unwind` and reports such a file as corrupt: a damaged block must fail its read, not
/// the store-gateway or compactor thread reading it.
fn decoder_panic(file: &str) -> BlockError {
    corrupt(
        file,
        "the Parquet decoder cannot read this file (it panicked)",
    )
}

fn column<'a>(batch: &'a RecordBatch, file: &str, name: &str) -> Result<&'a ArrayRef, BlockError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| corrupt(file, format!("missing column {name}")))
}

/// Values of a string column that may come back dictionary-encoded or plain.
fn strings(a: &ArrayRef, file: &str) -> Result<Vec<Option<String>>, BlockError> {
    match a.data_type() {
        DataType::Dictionary(_, _) => {
            let d = a
                .as_dictionary_opt::<Int32Type>()
                .ok_or_else(|| corrupt(file, "label column with non-int32 keys"))?;
            let values = d
                .values()
                .as_string_opt::<i32>()
                .ok_or_else(|| corrupt(file, "label dictionary is not utf8"))?;
            Ok(d.keys()
                .iter()
                .map(|k| k.map(|k| values.value(k as usize).to_owned()))
                .collect())
        }
        DataType::Utf8 => Ok(a
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()),
        t => Err(corrupt(file, format!("label column of type {t}"))),
    }
}

fn u64s(a: &ArrayRef, file: &str, name: &str) -> Result<Vec<u64>, BlockError> {
    a.as_primitive_opt::<UInt64Type>()
        .map(|p| p.values().to_vec())
        .ok_or_else(|| corrupt(file, format!("{name} is not uint64")))
}

fn i64s(a: &ArrayRef, file: &str, name: &str) -> Result<Vec<i64>, BlockError> {
    a.as_primitive_opt::<Int64Type>()
        .map(|p| p.values().to_vec())
        .ok_or_else(|| corrupt(file, format!("{name} is not int64")))
}

/// Decoded series file: the entries (spans not yet assigned) and, in v3, each series' rows per
/// time bucket.
type DecodedSeries = (Vec<SeriesEntry>, Option<Vec<Vec<u32>>>);

fn decode_series(data: Bytes) -> Result<DecodedSeries, BlockError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| decode_series_unguarded(data)))
        .unwrap_or_else(|_| Err(decoder_panic(SERIES_FILE)))
}

fn decode_series_unguarded(data: Bytes) -> Result<DecodedSeries, BlockError> {
    let f = SERIES_FILE;
    let perr = |source| BlockError::Parquet {
        file: f.into(),
        source,
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(perr)?
        .with_batch_size(65_536)
        .build()
        .map_err(perr)?;
    let mut out = Vec::new();
    let mut bucket_counts: Option<Vec<Vec<u32>>> = None;
    for batch in reader {
        let batch = batch.map_err(|source| BlockError::Arrow {
            context: "reading series file",
            source,
        })?;
        let ids = u64s(column(&batch, f, COL_SERIES_ID)?, f, COL_SERIES_ID)?;
        let mut label_cols: Vec<(String, Vec<Option<String>>)> = Vec::new();
        for (i, field) in batch.schema().fields().iter().enumerate() {
            let name = field.name();
            if name == COL_NAME {
                label_cols.push((METRIC_NAME.to_owned(), strings(batch.column(i), f)?));
            } else if let Some(label) = name.strip_prefix(LABEL_PREFIX) {
                label_cols.push((label.to_owned(), strings(batch.column(i), f)?));
            }
        }
        let rest = column(&batch, f, COL_LABELS)?
            .as_map_opt()
            .ok_or_else(|| corrupt(f, "labels is not a map"))?;
        let mins = i64s(column(&batch, f, COL_MIN_TIME)?, f, COL_MIN_TIME)?;
        let maxs = i64s(column(&batch, f, COL_MAX_TIME)?, f, COL_MAX_TIME)?;
        let counts = u64s(column(&batch, f, COL_NUM_SAMPLES)?, f, COL_NUM_SAMPLES)?;
        let firsts = u64s(column(&batch, f, COL_FIRST_ROW)?, f, COL_FIRST_ROW)?;
        let scales: Option<Vec<u8>> = match batch.column_by_name(COL_VALUE_SCALE) {
            None => None,
            Some(a) => Some(
                a.as_primitive_opt::<UInt8Type>()
                    .map(|p| p.values().to_vec())
                    .ok_or_else(|| corrupt(f, "value_scale is not uint8"))?,
            ),
        };
        if let Some(a) = batch.column_by_name(COL_BUCKET_SAMPLES) {
            let list = a
                .as_list_opt::<i32>()
                .ok_or_else(|| corrupt(f, "bucket_num_samples is not a list"))?;
            let values = list
                .values()
                .as_primitive_opt::<UInt32Type>()
                .ok_or_else(|| corrupt(f, "bucket_num_samples items are not uint32"))?;
            let counts = bucket_counts.get_or_insert_with(Vec::new);
            let offsets = list.value_offsets();
            for row in 0..list.len() {
                let (lo, hi) = (offsets[row] as usize, offsets[row + 1] as usize);
                counts.push(values.values()[lo..hi].to_vec());
            }
        } else if bucket_counts.is_some() {
            return Err(corrupt(f, "bucket_num_samples missing from a batch"));
        }
        for (row, id) in ids.iter().enumerate() {
            if *id != out.len() as u64 {
                return Err(corrupt(f, format!("series_id {id} at row {}", out.len())));
            }
            let mut labels: Vec<Label> = label_cols
                .iter()
                .filter_map(|(n, vals)| vals[row].as_ref().map(|v| Label::new(n, v)))
                .collect();
            let entries = rest.value(row);
            let keys = entries.column(0).as_string::<i32>();
            let values = entries.column(1).as_string::<i32>();
            for j in 0..entries.len() {
                labels.push(Label::new(keys.value(j), values.value(j)));
            }
            labels.sort();
            out.push(SeriesEntry {
                labels: Labels::from_sorted(labels),
                min_t: mins[row],
                max_t: maxs[row],
                first_row: firsts[row],
                num_samples: counts[row],
                scale: scales.as_ref().map_or(0, |s| s[row]),
                spans: Box::default(),
            });
        }
    }
    Ok((out, bucket_counts))
}

/// Assigns each series its row spans, checking that they tile the samples file as the format
/// prescribes: selections turn them into a Parquet row selection, which panics on unordered or
/// overlong ranges, and the cursor reads each bucket series by series.
///
/// v1/v2 (`counts` is `None`): one bucket, the series' `first_row`/`num_samples` runs in order.
/// v3: within bucket `b`, series follow each other by id, from the bucket's first row.
fn assign_spans(
    series: &mut [SeriesEntry],
    counts: Option<Vec<Vec<u32>>>,
    meta: &BlockMeta,
) -> Result<Vec<BucketRows>, BlockError> {
    let counts = match counts {
        Some(c) => Some(c),
        // A series file without rows has no batch to carry the column.
        None if meta.schema_version >= 3 && series.is_empty() => Some(Vec::new()),
        None if meta.schema_version >= 3 => {
            return Err(corrupt(
                SERIES_FILE,
                "bucket_num_samples missing (format v3)",
            ))
        }
        None => None,
    };
    let Some(counts) = counts else {
        check_row_ranges(series, meta.stats.num_samples)?;
        for e in series.iter_mut() {
            e.spans = Box::new([RowSpan {
                first: e.first_row,
                len: e.num_samples,
            }]);
        }
        return Ok(vec![BucketRows {
            min_t: meta.min_time,
            max_t: meta.max_time,
            rows: 0..meta.stats.num_samples,
        }]);
    };
    let listed = &meta.time_buckets;
    if listed.is_empty() {
        return Err(corrupt(META_FILE, "format v3 without timeBuckets"));
    }
    let mut buckets = Vec::with_capacity(listed.len());
    let mut row = 0u64;
    let mut prev_max = i64::MIN;
    for (b, tb) in listed.iter().enumerate() {
        if tb.min_time > tb.max_time
            || (b > 0 && tb.min_time <= prev_max)
            || tb.min_time < meta.min_time
            || tb.max_time > meta.max_time
        {
            return Err(corrupt(
                META_FILE,
                format!(
                    "time bucket {b} [{}, {}] is not ordered inside the block",
                    tb.min_time, tb.max_time
                ),
            ));
        }
        prev_max = tb.max_time;
        let end = row
            .checked_add(tb.num_samples)
            .ok_or_else(|| corrupt(META_FILE, "time bucket row counts overflow"))?;
        buckets.push(BucketRows {
            min_t: tb.min_time,
            max_t: tb.max_time,
            rows: row..end,
        });
        row = end;
    }
    if row != meta.stats.num_samples {
        return Err(corrupt(
            META_FILE,
            format!(
                "time buckets hold {row} rows, stats say {}",
                meta.stats.num_samples
            ),
        ));
    }
    let nb = buckets.len();
    if counts.len() != series.len() {
        return Err(corrupt(SERIES_FILE, "bucket_num_samples rows missing"));
    }
    let mut spans: Vec<Vec<RowSpan>> = vec![Vec::with_capacity(nb); series.len()];
    for (b, bucket) in buckets.iter().enumerate() {
        let mut next = bucket.rows.start;
        for (i, c) in counts.iter().enumerate() {
            let Some(&n) = c.get(b).filter(|_| c.len() == nb) else {
                return Err(corrupt(
                    SERIES_FILE,
                    format!("series {i} lists {} buckets, meta.json {nb}", c.len()),
                ));
            };
            spans[i].push(RowSpan {
                first: next,
                len: u64::from(n),
            });
            next += u64::from(n);
        }
        if next != bucket.rows.end {
            return Err(corrupt(
                SERIES_FILE,
                format!(
                    "bucket {b}: the series hold {} rows, meta.json says {}",
                    next - bucket.rows.start,
                    bucket.rows.end - bucket.rows.start
                ),
            ));
        }
    }
    for (i, (e, sp)) in series.iter_mut().zip(spans).enumerate() {
        let total: u64 = sp.iter().map(|s| s.len).sum();
        if total != e.num_samples {
            return Err(corrupt(
                SERIES_FILE,
                format!(
                    "series {i}: buckets hold {total} rows, num_samples says {}",
                    e.num_samples
                ),
            ));
        }
        e.spans = sp.into_boxed_slice();
    }
    Ok(buckets)
}

/// Checks that the series' row ranges tile the samples file in series order, as the format
/// prescribes: selections turn them into a Parquet row selection, which panics on unordered or
/// overlong ranges, and the cursor reads the file series by series.
fn check_row_ranges(series: &[SeriesEntry], num_samples: u64) -> Result<(), BlockError> {
    let mut next = 0u64;
    for (i, e) in series.iter().enumerate() {
        if e.first_row != next {
            return Err(corrupt(
                SERIES_FILE,
                format!("series {i} starts at row {}, not {next}", e.first_row),
            ));
        }
        next = next
            .checked_add(e.num_samples)
            .ok_or_else(|| corrupt(SERIES_FILE, format!("series {i}: row count overflows")))?;
    }
    if next != num_samples {
        return Err(corrupt(
            SERIES_FILE,
            format!("the series hold {next} rows, meta.json says {num_samples}"),
        ));
    }
    Ok(())
}

/// Checks the samples file's footer against `meta.json` and itself: the row groups hold
/// `num_samples` rows, and every column's page locations (which the Parquet reader follows to
/// skip pages, and [`BlockReader::rows_outside`] to exclude rows) are ordered rows of their row
/// group inside the file. A corrupt footer is refused here, before any read relies on it.
fn check_samples_layout(
    md: &ParquetMetaData,
    num_samples: u64,
    file_size: u64,
) -> Result<(), BlockError> {
    let mut rows_total: i128 = 0;
    for rg in 0..md.num_row_groups() {
        let group = md.row_group(rg);
        let rows = group.num_rows();
        if rows < 0 {
            return Err(corrupt(
                SAMPLES_FILE,
                format!("row group {rg} has {rows} rows"),
            ));
        }
        rows_total += i128::from(rows);
        let pi = md.page_index_for_row_group(rg);
        for col in 0..group.num_columns() {
            if let Some(locs) = pi.page_locations(col) {
                check_pages(locs, rows, file_size).map_err(|reason| {
                    corrupt(
                        SAMPLES_FILE,
                        format!("row group {rg}, column {col}: {reason}"),
                    )
                })?;
            }
        }
    }
    if rows_total != i128::from(num_samples) {
        return Err(corrupt(
            SAMPLES_FILE,
            format!("{rows_total} rows, meta.json says {num_samples}"),
        ));
    }
    Ok(())
}

/// One column chunk's page locations: the first page starts the row group, first rows strictly
/// increase and stay below `rows`, and every page lies inside the file.
fn check_pages(locs: &[PageLocation], rows: i64, file_size: u64) -> Result<(), String> {
    let mut prev: Option<i64> = None;
    for (p, loc) in locs.iter().enumerate() {
        let first = loc.first_row_index;
        let ordered = match prev {
            None => first == 0,
            Some(prev) => first > prev,
        };
        if !ordered || (first >= rows && rows > 0) {
            return Err(format!("page {p} starts at row {first}"));
        }
        let end = u64::try_from(loc.offset)
            .ok()
            .zip(u64::try_from(loc.compressed_page_size).ok())
            .and_then(|(o, n)| o.checked_add(n));
        if end.is_none_or(|e| e > file_size) {
            return Err(format!(
                "page {p} at offset {} ({} bytes) is outside the file",
                loc.offset, loc.compressed_page_size
            ));
        }
        prev = Some(first);
    }
    Ok(())
}

impl BlockReader {
    /// Opens block `ulid` of `tenant`: reads `meta.json`, the series file, and the samples
    /// file's footer and page index.
    pub async fn open(bucket: &Bucket, tenant: &TenantId, ulid: Ulid) -> Result<Self, BlockError> {
        let t = tenant.as_str();
        let meta_path = block_path(t, &ulid, META_FILE);
        let raw = bucket.get(&meta_path).await?;
        let meta: BlockMeta = serde_json::from_slice(&raw).map_err(|source| BlockError::Meta {
            path: meta_path.clone(),
            source,
        })?;
        if meta.schema_version > SCHEMA_VERSION {
            return Err(BlockError::UnsupportedVersion {
                path: meta_path,
                found: meta.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        let series_path = block_path(t, &ulid, SERIES_FILE);
        let (mut series, counts) = decode_series(bucket.get(&series_path).await?)?;
        if series.len() as u64 != meta.stats.num_series {
            return Err(corrupt(
                SERIES_FILE,
                format!(
                    "{} series, meta.json says {}",
                    series.len(),
                    meta.stats.num_series
                ),
            ));
        }
        let buckets = assign_spans(&mut series, counts, &meta)?;
        let samples_path = block_path(t, &ulid, SAMPLES_FILE);
        let samples_size = match meta.file_size(SAMPLES_FILE) {
            Some(s) => s,
            None => bucket.size(&samples_path).await?,
        };
        let fetched = Arc::new(AtomicU64::new(0));
        let mut file = BucketFile {
            bucket: bucket.clone(),
            path: samples_path.clone(),
            size: samples_size,
            fetched: fetched.clone(),
            cache: None,
        };
        let perr = |source| BlockError::Parquet {
            file: samples_path.clone(),
            source,
        };
        let md = AssertUnwindSafe(file.get_metadata(None))
            .catch_unwind()
            .await
            .map_err(|_| decoder_panic(SAMPLES_FILE))?
            .map_err(perr)?;
        let samples_meta = std::panic::catch_unwind(AssertUnwindSafe(|| {
            ArrowReaderMetadata::try_new(md, ArrowReaderOptions::new())
        }))
        .map_err(|_| decoder_panic(SAMPLES_FILE))?
        .map_err(|source| BlockError::Parquet {
            file: samples_path.clone(),
            source,
        })?;
        check_samples_layout(
            samples_meta.metadata(),
            meta.stats.num_samples,
            samples_size,
        )?;
        // Footer bytes are an open-time cost; report only what selections fetch.
        fetched.store(0, Ordering::Relaxed);
        Ok(Self {
            bucket: bucket.clone(),
            meta,
            samples_path,
            samples_size,
            samples_meta,
            series,
            buckets,
            fetched,
            cache: None,
            visited: AtomicU64::new(0),
        })
    }

    /// Serves repeated samples-file reads from `cache` (shared between blocks).
    pub fn with_cache(mut self, cache: Arc<RangeCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The block's metadata.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// Approximate memory held by this open block (series file, samples footer and page
    /// index), for caches with a byte budget.
    pub fn heap_bytes(&self) -> u64 {
        let series: usize = self
            .series
            .iter()
            .map(|e| {
                std::mem::size_of::<SeriesEntry>()
                    + std::mem::size_of_val(&*e.spans)
                    + e.labels
                        .iter()
                        .map(|l| l.name.len() + l.value.len() + std::mem::size_of::<Label>())
                        .sum::<usize>()
            })
            .sum();
        (series + self.samples_meta.metadata().memory_size()) as u64
    }

    /// Bytes of `samples.parquet` fetched by selections since the block was opened.
    pub fn samples_bytes_fetched(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// Series entries examined by selections and label queries since the block was opened (a
    /// cost measure: a read stopped by a limit examines fewer).
    pub fn series_visited(&self) -> u64 {
        self.visited.load(Ordering::Relaxed)
    }

    /// The index range of series that may match: series are sorted by metric name first, so an
    /// equality on the name narrows the scan to one contiguous run by binary search.
    fn candidates(&self, matchers: &[Matcher], start: i64, end: i64) -> Range<usize> {
        if start > self.meta.max_time || end < self.meta.min_time || start > end {
            return 0..0;
        }
        let mut range = 0..self.series.len();
        if let Some(m) = matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal)
        {
            fn name(e: &SeriesEntry) -> &str {
                e.labels.metric_name().unwrap_or("")
            }
            let lo = self.series.partition_point(|e| name(e) < m.value.as_str());
            let hi = self.series.partition_point(|e| name(e) <= m.value.as_str());
            range = lo..hi;
        }
        range
    }

    fn entry_matches(e: &SeriesEntry, matchers: &[Matcher], start: i64, end: i64) -> bool {
        e.max_t >= start
            && e.min_t <= end
            && matchers
                .iter()
                .all(|m| m.matches(e.labels.get(&m.name).unwrap_or("")))
    }

    /// Calls `f` with the index of each series matching all `matchers` with samples in
    /// `[start, end]`, in order, until it breaks.
    fn visit_matching(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        mut f: impl FnMut(usize) -> ControlFlow<()>,
    ) {
        let range = self.candidates(matchers, start, end);
        let mut visited = 0u64;
        for i in range {
            visited += 1;
            if Self::entry_matches(&self.series[i], matchers, start, end) && f(i).is_break() {
                break;
            }
        }
        self.visited.fetch_add(visited, Ordering::Relaxed);
    }

    /// Indexes of the series matching all `matchers` with samples in `[start, end]`.
    fn matching(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<usize> {
        let mut out = Vec::new();
        self.visit_matching(matchers, start, end, |i| {
            out.push(i);
            ControlFlow::Continue(())
        });
        out
    }

    /// Adds the label sets of the matching series to `out`; stops as soon as `out` holds more
    /// than `limit` ([`ReadLimit::Series`]; [`NO_LIMIT`] is none).
    pub fn collect_series(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
        out: &mut BTreeSet<Labels>,
    ) -> Result<(), LimitExceeded> {
        let mut res = Ok(());
        self.visit_matching(matchers, start, end, |i| {
            let l = &self.series[i].labels;
            if !out.contains(l) {
                out.insert(l.clone());
                res = check_count(out.len(), limit, ReadLimit::Series);
            }
            if res.is_err() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        res
    }

    /// Adds the label names of the matching series (all series when `matchers` is empty) to
    /// `out`; stops as soon as `out` holds more than `limit` ([`ReadLimit::LabelNames`]).
    pub fn collect_label_names(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
        out: &mut BTreeSet<String>,
    ) -> Result<(), LimitExceeded> {
        let mut res = Ok(());
        self.visit_matching(matchers, start, end, |i| {
            for l in &self.series[i].labels {
                if !out.contains(&l.name) {
                    out.insert(l.name.clone());
                    res = check_count(out.len(), limit, ReadLimit::LabelNames);
                    if res.is_err() {
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        });
        res
    }

    /// Adds the values of label `name` among the matching series to `out`; stops as soon as
    /// `out` holds more than `limit` ([`ReadLimit::LabelValues`]).
    pub fn collect_label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
        out: &mut BTreeSet<String>,
    ) -> Result<(), LimitExceeded> {
        let mut res = Ok(());
        self.visit_matching(matchers, start, end, |i| {
            if let Some(v) = self.series[i].labels.get(name) {
                if !out.contains(v) {
                    out.insert(v.to_owned());
                    res = check_count(out.len(), limit, ReadLimit::LabelValues);
                    if res.is_err() {
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        });
        res
    }

    /// Label sets of the matching series with samples in `[start, end]`, sorted.
    pub fn series_labels(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<Labels> {
        let mut out = BTreeSet::new();
        // Without a limit nothing can fail.
        let _ = self.collect_series(matchers, start, end, NO_LIMIT, &mut out);
        out.into_iter().collect()
    }

    /// Sorted label names of the matching series (all series when `matchers` is empty).
    pub fn label_names(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<String> {
        let mut out = BTreeSet::new();
        let _ = self.collect_label_names(matchers, start, end, NO_LIMIT, &mut out);
        out.into_iter().collect()
    }

    /// Sorted values of label `name` among the matching series.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Vec<String> {
        let mut out = BTreeSet::new();
        let _ = self.collect_label_values(name, matchers, start, end, NO_LIMIT, &mut out);
        out.into_iter().collect()
    }

    /// Row ranges of `samples.parquet` whose timestamp pages lie wholly outside `[start, end]`
    /// (by the column index's per-page min/max), sorted and disjoint (page locations were
    /// checked at open). Such rows hold no sample in the range whatever series they belong to,
    /// so a long series queried for a short window reads only the pages of that window.
    fn rows_outside(&self, start: i64, end: i64) -> Vec<Range<usize>> {
        let md = self.samples_meta.metadata();
        let Some(ts_col) = md
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.name() == COL_TIMESTAMP)
        else {
            return Vec::new();
        };
        let mut out: Vec<Range<usize>> = Vec::new();
        let mut rg_start = 0usize;
        for rg in 0..md.num_row_groups() {
            let rows = md.row_group(rg).num_rows() as usize;
            let pi = md.page_index_for_row_group(rg);
            if let (Some(ColumnIndexMetaData::INT64(ci)), Some(locs)) =
                (pi.column_index(ts_col), pi.page_locations(ts_col))
            {
                for (p, loc) in locs.iter().enumerate() {
                    let (Some(&lo), Some(&hi)) = (ci.min_value(p), ci.max_value(p)) else {
                        continue;
                    };
                    if hi >= start && lo <= end {
                        continue;
                    }
                    let first = rg_start + loc.first_row_index as usize;
                    let last =
                        rg_start + locs.get(p + 1).map_or(rows, |n| n.first_row_index as usize);
                    match out.last_mut() {
                        Some(prev) if prev.end == first => prev.end = last,
                        _ => out.push(first..last),
                    }
                }
            }
            rg_start += rows;
        }
        out
    }

    /// Series matching every matcher, with their samples in `[start, end]`, sorted by labels.
    /// Series without samples in the range are left out.
    pub async fn select(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, BlockError> {
        self.select_limited(matchers, start, end, &ReadLimits::default())
            .await
    }

    /// [`BlockReader::select`] under `limits`: more matching series than allowed fails before
    /// any sample is fetched, and samples and bytes are counted batch by batch as pages
    /// arrive, so the read stops at the first batch over a limit without fetching the rest
    /// (fetches go a row group at a time).
    pub async fn select_limited(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limits: &ReadLimits,
    ) -> Result<Vec<Series>, BlockError> {
        self.select_shared(matchers, start, end, limits, &SharedBytes::default())
            .await
    }

    /// [`BlockReader::select_limited`] charging its bytes to `bytes`, a budget shared with
    /// reads of other blocks running at the same time (`limits.max_bytes` bounds their sum).
    pub async fn select_shared(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limits: &ReadLimits,
        bytes: &SharedBytes,
    ) -> Result<Vec<Series>, BlockError> {
        let ids = self.matching(matchers, start, end);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // A block holds each series once: its matches alone may exceed the series limit.
        check_count(ids.len(), limits.max_series, ReadLimit::Series)?;
        let total_rows = self.meta.stats.num_samples as usize;
        let excluded = self.rows_outside(start, end);
        // Bucket after bucket (file order), the matching series' rows in each bucket the window
        // overlaps: a 6 h window over a 24 h block reads two or three 4 h buckets of six.
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(ids.len());
        // Rows each series may yield: its outputs are sized once, when its first sample arrives.
        let mut expected = vec![0usize; ids.len()];
        for (b, bucket) in self.buckets.iter().enumerate() {
            if bucket.max_t < start || bucket.min_t > end {
                continue;
            }
            for (slot, &i) in ids.iter().enumerate() {
                let span = self.series[i].spans[b];
                if span.len > 0 {
                    let before = ranges.len();
                    subtract(span.range(), &excluded, &mut ranges);
                    expected[slot] += ranges[before..].iter().map(|r| r.len()).sum::<usize>();
                }
            }
        }
        if ranges.is_empty() {
            return Ok(Vec::new());
        }
        // With the offset index loaded, the reader fetches only the pages overlapping these
        // row ranges, in every column.
        let selection = RowSelection::from_consecutive_ranges(ranges.into_iter(), total_rows);
        let file = BucketFile {
            bucket: self.bucket.clone(),
            path: self.samples_path.clone(),
            size: self.samples_size,
            fetched: self.fetched.clone(),
            cache: self.cache.clone(),
        };
        let perr = |source| BlockError::Parquet {
            file: self.samples_path.clone(),
            source,
        };
        let mut stream =
            ParquetRecordBatchStreamBuilder::new_with_metadata(file, self.samples_meta.clone())
                .with_row_selection(selection)
                .with_batch_size(8192)
                .build()
                .map_err(perr)?;

        // One output per matching series, filled bucket by bucket (so in time order).
        let mut outs: Vec<Vec<Sample>> = vec![Vec::new(); ids.len()];
        // Series and samples are counted here (a block holds each series once); bytes go to the
        // shared budget.
        let mut tally = ReadLimits {
            max_bytes: NO_LIMIT,
            ..*limits
        }
        .tally();
        let f = SAMPLES_FILE;
        // The series of the row being decoded and its output slot.
        let mut cur: Option<(u64, usize)> = None;
        // The Parquet decoder can panic on a damaged file: that read fails, the process lives.
        loop {
            let next = AssertUnwindSafe(stream.next())
                .catch_unwind()
                .await
                .map_err(|_| decoder_panic(SAMPLES_FILE))?;
            let Some(b) = next else { break };
            let b = b.map_err(perr)?;
            let cols = SamplesColumns::of(&b)?;
            let (mut new_series, mut new_samples, mut new_bytes) = (0usize, 0usize, 0usize);
            let n = b.num_rows();
            let mut row = 0;
            // Run by run: the rows of one series in one bucket are contiguous and time-sorted.
            while row < n {
                let id = cols.ids[row];
                let run_end = row + cols.ids[row..].iter().take_while(|&&x| x == id).count();
                let slot = match cur {
                    Some((cid, slot)) if cid == id => slot,
                    _ => {
                        let slot = ids
                            .binary_search(&(id as usize))
                            .map_err(|_| corrupt(f, format!("row of unselected series {id}")))?;
                        cur = Some((id, slot));
                        slot
                    }
                };
                let ts = &cols.ts[row..run_end];
                let lo = row + ts.partition_point(|&t| t < start);
                let hi = row + ts.partition_point(|&t| t <= end);
                if lo < hi {
                    let entry = &self.series[ids[slot]];
                    let samples = &mut outs[slot];
                    // A series counts once it has a sample in the range (only those are kept).
                    if samples.is_empty() {
                        new_series += 1;
                        new_bytes += labels_heap_bytes(&entry.labels);
                        samples.reserve_exact(expected[slot]);
                    }
                    cols.extend(lo..hi, entry.scale, samples)?;
                    new_samples += hi - lo;
                }
                row = run_end;
            }
            // Checked once per batch: the next pages are fetched only if this one fit.
            tally.add(new_series, new_samples, 0)?;
            bytes.charge(
                new_bytes + samples_heap_bytes(new_samples),
                limits.max_bytes,
            )?;
        }
        let mut out: Vec<Series> = ids
            .iter()
            .zip(outs)
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(&i, samples)| Series {
                labels: self.series[i].labels.clone(),
                samples,
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

/// The columns of a decoded `samples.parquet` batch.
struct SamplesColumns<'a> {
    ids: &'a [u64],
    ts: &'a [i64],
    fl: &'a arrow_array::Float64Array,
    int: Option<&'a arrow_array::Int64Array>,
}

impl<'a> SamplesColumns<'a> {
    fn of(b: &'a RecordBatch) -> Result<Self, BlockError> {
        let f = SAMPLES_FILE;
        let ids = column(b, f, COL_SERIES_ID)?
            .as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| corrupt(f, "series_id is not uint64"))?;
        let ts = column(b, f, COL_TIMESTAMP)?
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| corrupt(f, "timestamp is not int64"))?;
        let fl = column(b, f, COL_VALUE)?
            .as_primitive_opt::<Float64Type>()
            .ok_or_else(|| corrupt(f, "value is not float64"))?;
        let int = match b.column_by_name(COL_VALUE_INT) {
            Some(a) => Some(
                a.as_primitive_opt::<Int64Type>()
                    .ok_or_else(|| corrupt(f, "value_int is not int64"))?,
            ),
            None => None,
        };
        Ok(Self {
            ids: ids.values(),
            ts: ts.values(),
            fl,
            int,
        })
    }

    /// Appends the samples of `rows` (one series, decimal scale `scale`) to `out`; runs whose
    /// values all sit in one column take a branch-free path.
    fn extend(
        &self,
        rows: Range<usize>,
        scale: u8,
        out: &mut Vec<Sample>,
    ) -> Result<(), BlockError> {
        let len = rows.len();
        let ts = &self.ts[rows.clone()];
        let nulls_in = |a: &dyn Array| {
            a.logical_nulls()
                .map_or(0, |n| n.slice(rows.start, len).null_count())
        };
        let float_nulls = nulls_in(self.fl);
        if float_nulls == 0 {
            let vs = &self.fl.values()[rows.clone()];
            out.extend(ts.iter().zip(vs).map(|(&t, &v)| Sample::new(t, v)));
            return Ok(());
        }
        if let Some(int) = self.int {
            if float_nulls == len && nulls_in(int) == 0 {
                let vs = &int.values()[rows];
                out.extend(
                    ts.iter()
                        .zip(vs)
                        .map(|(&t, &m)| Sample::new(t, unscale(m, scale))),
                );
                return Ok(());
            }
        }
        for row in rows {
            out.push(Sample::new(self.ts[row], self.value(row, scale)?));
        }
        Ok(())
    }

    /// The value of `row`: `value` when set, else `value_int` at the series' decimal scale.
    #[inline]
    fn value(&self, row: usize, scale: u8) -> Result<f64, BlockError> {
        if self.fl.is_valid(row) {
            return Ok(self.fl.value(row));
        }
        match self.int {
            Some(i) if i.is_valid(row) => Ok(unscale(i.value(row), scale)),
            _ => Err(corrupt(
                SAMPLES_FILE,
                format!("row of series {} has no value", self.ids[row]),
            )),
        }
    }
}

impl BlockReader {
    /// Every series of the block with all its samples, one at a time in the block's row order
    /// ([`super::series_order`]). Each time bucket of the samples file is read sequentially, a
    /// row group at a time, so memory stays at one row group per bucket plus one series however
    /// large the block is: this is how the compactor merges blocks without decoding them whole.
    pub fn series_cursor(&self) -> SeriesCursor<'_> {
        SeriesCursor {
            reader: self,
            buckets: self
                .buckets
                .iter()
                .map(|b| BucketCursor {
                    rows: b.rows.clone(),
                    stream: None,
                    ids: Vec::new(),
                    ts: Vec::new(),
                    vs: Vec::new(),
                    pos: 0,
                })
                .collect(),
            next_series: 0,
            broken: false,
        }
    }
}

/// Sequential reader of a block's series, from [`BlockReader::series_cursor`].
pub struct SeriesCursor<'a> {
    reader: &'a BlockReader,
    /// One sequential reader per time bucket.
    buckets: Vec<BucketCursor>,
    next_series: usize,
    /// The decoder panicked: the streams cannot be polled again.
    broken: bool,
}

/// Sequential reader of one time bucket's rows.
struct BucketCursor {
    rows: Range<u64>,
    stream: Option<ParquetRecordBatchStream<BucketFile>>,
    /// The current batch, decoded; `pos` is the next unread row in it.
    ids: Vec<u64>,
    ts: Vec<i64>,
    vs: Vec<f64>,
    pos: usize,
}

impl std::fmt::Debug for SeriesCursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeriesCursor")
            .field("block", &self.reader.meta.ulid)
            .field("next_series", &self.next_series)
            .finish()
    }
}

impl SeriesCursor<'_> {
    /// The next series with all its samples; `None` after the last one.
    pub async fn next_series(&mut self) -> Result<Option<Series>, BlockError> {
        let r = self.reader;
        let Some(entry) = r.series.get(self.next_series) else {
            return Ok(None);
        };
        let id = self.next_series as u64;
        self.next_series += 1;
        // Reserved up to one batch: the count comes from the file, the rows may not be there.
        let mut samples = Vec::with_capacity((entry.num_samples as usize).min(8192));
        for (b, span) in entry.spans.iter().enumerate() {
            let mut left = span.len;
            while left > 0 {
                if self.broken {
                    return Err(decoder_panic(SAMPLES_FILE));
                }
                let bc = &mut self.buckets[b];
                if bc.pos == bc.ids.len() {
                    match bc.fill(r).await {
                        Ok(true) => {}
                        Ok(false) => {
                            return Err(corrupt(
                                SAMPLES_FILE,
                                format!(
                                    "series {id} has {} rows in bucket {b}, series file says {}",
                                    span.len - left,
                                    span.len
                                ),
                            ))
                        }
                        Err(e) => {
                            if matches!(e, BlockError::Corrupt { .. }) {
                                self.broken = true;
                            }
                            return Err(e);
                        }
                    }
                }
                let bc = &mut self.buckets[b];
                let take = (left as usize).min(bc.ids.len() - bc.pos);
                let rows = bc.pos..bc.pos + take;
                if let Some(other) = bc.ids[rows.clone()].iter().find(|&&x| x != id) {
                    return Err(corrupt(
                        SAMPLES_FILE,
                        format!("row of series {other} where series {id} was due"),
                    ));
                }
                samples.extend(
                    bc.ts[rows.clone()]
                        .iter()
                        .zip(&bc.vs[rows])
                        .map(|(&t, &v)| Sample::new(t, v)),
                );
                bc.pos += take;
                left -= take as u64;
            }
        }
        Ok(Some(Series {
            labels: entry.labels.clone(),
            samples,
        }))
    }
}

impl BucketCursor {
    /// Decodes the next batch of this bucket's rows; `false` at its end.
    async fn fill(&mut self, r: &BlockReader) -> Result<bool, BlockError> {
        let perr = |source| BlockError::Parquet {
            file: r.samples_path.clone(),
            source,
        };
        if self.stream.is_none() {
            let file = BucketFile {
                bucket: r.bucket.clone(),
                path: r.samples_path.clone(),
                size: r.samples_size,
                fetched: r.fetched.clone(),
                // A compaction reads each page once: caching would only evict useful pages.
                cache: None,
            };
            let total = r.meta.stats.num_samples as usize;
            let selection = RowSelection::from_consecutive_ranges(
                std::iter::once(self.rows.start as usize..self.rows.end as usize),
                total,
            );
            self.stream = Some(
                ParquetRecordBatchStreamBuilder::new_with_metadata(file, r.samples_meta.clone())
                    .with_row_selection(selection)
                    .with_batch_size(8192)
                    .build()
                    .map_err(perr)?,
            );
        }
        let Some(stream) = self.stream.as_mut() else {
            return Ok(false);
        };
        let next = AssertUnwindSafe(stream.next())
            .catch_unwind()
            .await
            // The stream is unusable after a panic: the cursor refuses every later call.
            .map_err(|_| decoder_panic(SAMPLES_FILE))?;
        let Some(b) = next.transpose().map_err(perr)? else {
            return Ok(false);
        };
        self.ids.clear();
        self.ts.clear();
        self.vs.clear();
        self.pos = 0;
        let cols = SamplesColumns::of(&b)?;
        for row in 0..b.num_rows() {
            let id = cols.ids[row];
            let scale = r.series.get(id as usize).map_or(0, |e| e.scale);
            self.vs.push(cols.value(row, scale)?);
        }
        self.ids.extend_from_slice(cols.ids);
        self.ts.extend_from_slice(cols.ts);
        Ok(true)
    }
}

/// Appends `r` minus the sorted, disjoint `excluded` ranges to `out`.
fn subtract(r: Range<usize>, excluded: &[Range<usize>], out: &mut Vec<Range<usize>>) {
    let mut pos = r.start;
    let mut j = excluded.partition_point(|e| e.end <= r.start);
    while pos < r.end {
        match excluded.get(j) {
            Some(e) if e.start < r.end => {
                if e.start > pos {
                    out.push(pos..e.start);
                }
                pos = pos.max(e.end);
                j += 1;
            }
            _ => {
                out.push(pos..r.end);
                break;
            }
        }
    }
}

#[cfg(test)]
pub(super) fn subtract_for_tests(
    r: Range<usize>,
    excluded: &[Range<usize>],
    out: &mut Vec<Range<usize>>,
) {
    subtract(r, excluded, out)
}

#[cfg(test)]
pub(super) fn check_pages_for_tests(
    locs: &[PageLocation],
    rows: i64,
    file_size: u64,
) -> Result<(), String> {
    check_pages(locs, rows, file_size)
}
