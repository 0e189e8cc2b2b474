//! Writing a block: series are collected, sorted by metric name then labels, numbered, and
//! encoded into `series.parquet` and `samples.parquet` in memory; [`BlockFiles::upload`] then
//! stores them with `meta.json` last.

use super::meta::{BlockFile, BlockMeta, BlockStats, TimeBucket, SCHEMA_VERSION};
use super::scale;
use super::schema::{self, ValueEncoding};
use super::{block_path, BlockError, META_FILE, RESOLUTION_RAW, SAMPLES_FILE, SERIES_FILE};
use crate::bucket::Bucket;
use crate::query::ChunkedSeries;
use arrow_array::builder::{
    ListBuilder, MapBuilder, StringBuilder, StringDictionaryBuilder, UInt32Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, UInt64Array};
use arrow_schema::Schema;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use strata_model::{Labels, Sample, TenantId, METRIC_NAME};
use ulid::Ulid;

/// Tunables of the writer. The defaults are what format v1 is measured with
/// (`docs/block-format.md`); the others exist to measure alternatives.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// At most this many label names get their own `l_<name>` column (the most frequent ones,
    /// each present in at least 1% of series); the rest go to the `labels` map column. Bounds
    /// the column count however many label names a tenant uses.
    pub max_label_columns: usize,
    /// Encoding of the float `value` column.
    pub value_encoding: ValueEncoding,
    /// Store values that are integers (|v| < 2^53, not -0.0) in an int64 `value_int` column
    /// (DELTA_BINARY_PACKED) and only the others in `value`.
    pub split_integers: bool,
    /// Store short decimals as scaled integers in `value_int` (format v2, see `scale.rs`);
    /// needs `split_integers`.
    pub decimal_scaling: bool,
    /// Rows per data page of `samples.parquet`: the read granularity of one series.
    pub rows_per_page: usize,
    /// Rows per row group of `samples.parquet`.
    pub rows_per_row_group: usize,
    /// zstd level of both files.
    pub zstd_level: i32,
    /// Downsampling resolution recorded in `meta.json`.
    pub resolution: i64,
    /// Compaction level recorded in `meta.json`.
    pub compaction_level: u32,
    /// Source blocks recorded in `meta.json`; empty means "this block itself".
    pub sources: Vec<Ulid>,
    /// Width of the time buckets of `samples.parquet` (format v3), aligned to multiples of it
    /// since the epoch; `None` picks [`default_bucket_ms`] for the resolution. A width at
    /// least the block's range writes one bucket: the v2 series-major layout.
    pub time_bucket_ms: Option<i64>,
}

/// Time buckets of raw blocks: 4 h, so that a compacted 24 h block holds six buckets and a 6 h
/// query decodes two or three of them (8–12 h of data instead of 24). Narrower buckets read
/// less but cost bytes: every run of a series in a bucket restarts the delta encodings of
/// `timestamp` and `value_int`, and a negative jump between runs widens a whole 128-value
/// DELTA_BINARY_PACKED block. Measured on 24 h of synthetic node_exporter data
/// (`examples/block_encodings.rs`): one bucket 1.28 B/sample, 6 h +7%, 4 h +11%, 2 h +36%.
pub const RAW_BUCKET_MS: i64 = 4 * 3_600_000;

/// At most this many buckets per block: a wider block gets wider buckets (doubling), so the
/// per-series bucket lists stay short.
pub const MAX_BUCKETS: i64 = 256;

/// Default bucket width for a resolution: [`RAW_BUCKET_MS`] for raw data; 288 points per series
/// for downsampled data (24 h at 5 m, 12 days at 1 h).
pub fn default_bucket_ms(resolution: i64) -> i64 {
    if resolution <= 0 {
        RAW_BUCKET_MS
    } else {
        resolution.saturating_mul(288)
    }
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_label_columns: 64,
            value_encoding: ValueEncoding::Plain,
            split_integers: true,
            decimal_scaling: true,
            rows_per_page: 8192,
            rows_per_row_group: 1 << 20,
            zstd_level: 3,
            resolution: RESOLUTION_RAW,
            compaction_level: 1,
            sources: Vec::new(),
            time_bucket_ms: None,
        }
    }
}

/// Collects the series of one tenant and time range and encodes them as a block.
#[derive(Debug)]
pub struct BlockWriter {
    tenant: TenantId,
    ulid: Ulid,
    min_t: i64,
    max_t: i64,
    opts: WriterOptions,
    series: Vec<PendingSeries>,
    seen: HashSet<Labels>,
}

/// A series added to a writer. Series added from chunks stay compressed until encoding, so
/// cutting a head into a block costs ~1.3 bytes per sample instead of 16.
#[derive(Debug)]
struct PendingSeries {
    labels: Labels,
    data: PendingData,
    count: u64,
    min_t: i64,
    max_t: i64,
}

#[derive(Debug)]
enum PendingData {
    Samples(Vec<Sample>),
    /// Chunks whose samples inside the block's range are the series' samples.
    Chunks(Vec<crate::query::EncodedChunk>),
}

impl PendingSeries {
    /// The series' samples inside `[min_t, max_t]`, into `out` (cleared first).
    fn samples_into(&self, min_t: i64, max_t: i64, out: &mut Vec<Sample>) {
        out.clear();
        if self.max_t < min_t || self.min_t > max_t {
            return;
        }
        match &self.data {
            PendingData::Samples(s) => {
                let lo = s.partition_point(|x| x.t < min_t);
                let hi = s.partition_point(|x| x.t <= max_t);
                out.extend_from_slice(&s[lo..hi]);
            }
            PendingData::Chunks(chunks) => {
                for c in chunks {
                    if c.max_t < min_t || c.min_t > max_t {
                        continue;
                    }
                    out.extend(
                        crate::chunk::XorIter::new(&c.data)
                            .filter(|x| x.t >= min_t && x.t <= max_t),
                    );
                }
            }
        }
    }
}

/// The time buckets of a block covering `[min_t, max_t]` with buckets `width` wide (aligned to
/// multiples of it since the epoch; widened by doubling to at most [`MAX_BUCKETS`]), as
/// inclusive ranges clipped to the block.
fn bucket_ranges(min_t: i64, max_t: i64, width: i64) -> Vec<(i64, i64)> {
    let mut w = width.max(1);
    while (max_t.div_euclid(w) - min_t.div_euclid(w)) >= MAX_BUCKETS {
        w = w.saturating_mul(2);
    }
    let mut out = Vec::new();
    let mut k = min_t.div_euclid(w);
    loop {
        let lo = k.saturating_mul(w).max(min_t);
        let hi = (k.saturating_add(1))
            .saturating_mul(w)
            .saturating_sub(1)
            .min(max_t);
        out.push((lo, hi));
        if hi >= max_t {
            break;
        }
        k += 1;
    }
    out
}

/// The encoded files of a block, ready to upload.
#[derive(Debug, Clone)]
pub struct BlockFiles {
    /// Tenant the block belongs to.
    pub tenant: TenantId,
    /// The block's metadata.
    pub meta: BlockMeta,
    /// Contents of `series.parquet`.
    pub series: Bytes,
    /// Contents of `samples.parquet`.
    pub samples: Bytes,
}

/// Whether `v` is stored exactly as an int64 in `value_int`: integral, within the range where
/// every integer is a float (so the cast back is exact), and not -0.0 (whose sign would be lost).
#[inline]
pub(crate) fn as_exact_int(v: f64) -> Option<i64> {
    const LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53
    if v.fract() == 0.0 && v.abs() < LIMIT && !(v == 0.0 && v.is_sign_negative()) {
        Some(v as i64)
    } else {
        None
    }
}

impl BlockWriter {
    /// A writer for a block of `tenant` covering `[min_t, max_t]` (inclusive, ms).
    pub fn new(
        tenant: TenantId,
        min_t: i64,
        max_t: i64,
        opts: WriterOptions,
    ) -> Result<Self, BlockError> {
        if min_t > max_t {
            return Err(BlockError::InvalidRange { min_t, max_t });
        }
        Ok(Self {
            tenant,
            ulid: Ulid::generate(),
            min_t,
            max_t,
            opts,
            series: Vec::new(),
            seen: HashSet::new(),
        })
    }

    /// Uses a given block id instead of a fresh one (deterministic tests, idempotent retries).
    pub fn with_ulid(mut self, ulid: Ulid) -> Self {
        self.ulid = ulid;
        self
    }

    /// The block id.
    pub fn ulid(&self) -> Ulid {
        self.ulid
    }

    /// Adds a series. Samples must be strictly increasing in time and inside the block's range;
    /// a series without samples is skipped.
    pub fn add_series(&mut self, labels: Labels, samples: Vec<Sample>) -> Result<(), BlockError> {
        let mut prev = i64::MIN;
        for (i, s) in samples.iter().enumerate() {
            if s.t < self.min_t || s.t > self.max_t {
                return Err(BlockError::SampleOutOfRange {
                    labels: labels.to_string(),
                    t: s.t,
                    min_t: self.min_t,
                    max_t: self.max_t,
                });
            }
            if i > 0 && s.t <= prev {
                return Err(BlockError::Unsorted {
                    labels: labels.to_string(),
                    t: s.t,
                });
            }
            prev = s.t;
        }
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            return Ok(());
        };
        let (min_t, max_t) = (first.t, last.t);
        self.push(
            labels,
            samples.len() as u64,
            min_t,
            max_t,
            PendingData::Samples(samples),
        )
    }

    fn push(
        &mut self,
        labels: Labels,
        count: u64,
        min_t: i64,
        max_t: i64,
        data: PendingData,
    ) -> Result<(), BlockError> {
        if !self.seen.insert(labels.clone()) {
            return Err(BlockError::DuplicateSeries {
                labels: labels.to_string(),
            });
        }
        self.series.push(PendingSeries {
            labels,
            data,
            count,
            min_t,
            max_t,
        });
        Ok(())
    }

    /// Adds a series from the query interface, keeping the samples inside the block's range.
    /// Chunked series stay compressed until [`BlockWriter::finish`].
    pub fn add_chunked(&mut self, s: &ChunkedSeries) -> Result<(), BlockError> {
        match s {
            ChunkedSeries::Samples(_) | ChunkedSeries::Parts { .. } => {
                let mut samples = Vec::new();
                s.decode_into(self.min_t, self.max_t, &mut samples);
                self.add_series(s.labels().clone(), samples)
            }
            ChunkedSeries::Chunks { labels, chunks } => {
                let chunks: Vec<_> = chunks
                    .iter()
                    .filter(|c| c.max_t >= self.min_t && c.min_t <= self.max_t)
                    .cloned()
                    .collect();
                // One decoding pass to validate order and count; the samples are not kept.
                let (mut count, mut min_t, mut max_t) = (0u64, i64::MAX, i64::MIN);
                for c in &chunks {
                    for x in crate::chunk::XorIter::new(&c.data) {
                        if x.t < self.min_t || x.t > self.max_t {
                            continue;
                        }
                        if count > 0 && x.t <= max_t {
                            return Err(BlockError::Unsorted {
                                labels: labels.to_string(),
                                t: x.t,
                            });
                        }
                        count += 1;
                        min_t = min_t.min(x.t);
                        max_t = x.t;
                    }
                }
                if count == 0 {
                    return Ok(());
                }
                self.push(
                    labels.clone(),
                    count,
                    min_t,
                    max_t,
                    PendingData::Chunks(chunks),
                )
            }
        }
    }

    /// Number of series added so far.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Encodes the block.
    pub fn finish(mut self) -> Result<BlockFiles, BlockError> {
        // Metric name first, then the whole label set: `Labels`' own order compares names
        // byte-wise, where e.g. "A" sorts before "__name__".
        self.series
            .sort_by(|a, b| super::series_order(&a.labels, &b.labels));
        let label_columns = choose_label_columns(&self.series, self.opts.max_label_columns);
        let num_samples: u64 = self.series.iter().map(|s| s.count).sum();

        let encoded = self.encode_samples()?;
        let series = encode_series(&self.series, &encoded, &label_columns)?;
        let samples = encoded.file;

        let sources = if self.opts.sources.is_empty() {
            vec![self.ulid]
        } else {
            self.opts.sources.clone()
        };
        let meta = BlockMeta {
            ulid: self.ulid,
            schema_version: SCHEMA_VERSION,
            min_time: self.min_t,
            max_time: self.max_t,
            resolution: self.opts.resolution,
            compaction_level: self.opts.compaction_level,
            sources,
            stats: BlockStats {
                num_series: self.series.len() as u64,
                num_samples,
            },
            label_columns,
            files: vec![
                BlockFile {
                    rel_path: SERIES_FILE.into(),
                    size_bytes: series.len() as u64,
                },
                BlockFile {
                    rel_path: SAMPLES_FILE.into(),
                    size_bytes: samples.len() as u64,
                },
            ],
            time_buckets: encoded.buckets,
        };
        Ok(BlockFiles {
            tenant: self.tenant,
            meta,
            series,
            samples,
        })
    }

    /// Encodes the samples file bucket after bucket (see [`WriterOptions::time_bucket_ms`]),
    /// each bucket sorted by series id then time and closed by its own row group.
    fn encode_samples(&self) -> Result<EncodedSamples, BlockError> {
        let o = &self.opts;
        let schema = schema::samples_schema(o.split_integers);
        let props = schema::samples_props(
            o.zstd_level,
            o.rows_per_page,
            o.rows_per_row_group,
            o.value_encoding,
            o.split_integers,
        );
        let width = o
            .time_bucket_ms
            .unwrap_or_else(|| default_bucket_ms(o.resolution));
        let ranges = bucket_ranges(self.min_t, self.max_t, width);
        let nb = ranges.len();
        let mut samples = Vec::new();
        // One scale per series over all its samples, chosen before any bucket is written.
        let scales: Vec<u8> = self
            .series
            .iter()
            .map(|series| {
                if o.split_integers && o.decimal_scaling {
                    series.samples_into(self.min_t, self.max_t, &mut samples);
                    scale::choose_scale(samples.iter().map(|s| s.v))
                } else {
                    0
                }
            })
            .collect();
        let mut counts = vec![0u32; self.series.len() * nb];
        let mut buckets = Vec::with_capacity(nb);
        // Batches up to ~64k rows keep memory bounded next to the input.
        const BATCH_ROWS: usize = 65_536;
        let file = write_parquet(SAMPLES_FILE, schema.clone(), props, |w| {
            let mut batch = SamplesBatch::with_capacity(BATCH_ROWS);
            for (b, &(lo, hi)) in ranges.iter().enumerate() {
                let mut rows = 0u64;
                for (id, series) in self.series.iter().enumerate() {
                    series.samples_into(lo, hi, &mut samples);
                    if samples.is_empty() {
                        continue;
                    }
                    let n = u32::try_from(samples.len()).map_err(|_| {
                        corrupt_input(&series.labels, "more than 2^32 samples in one bucket")
                    })?;
                    counts[id * nb + b] = n;
                    rows += u64::from(n);
                    batch.push_series(id as u64, &samples, scales[id], o.split_integers);
                    if batch.len() >= BATCH_ROWS {
                        batch.flush(&schema, o.split_integers, w)?;
                    }
                }
                batch.flush(&schema, o.split_integers, w)?;
                // A bucket starts its own row group: readers skip whole row groups by time, and
                // a cursor reading one bucket never decodes another's pages.
                w.flush().map_err(|source| BlockError::Parquet {
                    file: SAMPLES_FILE.into(),
                    source,
                })?;
                buckets.push(TimeBucket {
                    min_time: lo,
                    max_time: hi,
                    num_samples: rows,
                });
            }
            Ok(())
        })?;
        Ok(EncodedSamples {
            file,
            scales,
            buckets,
            counts,
        })
    }
}

fn corrupt_input(labels: &Labels, reason: &str) -> BlockError {
    BlockError::Corrupt {
        file: format!("series {labels}"),
        reason: reason.to_owned(),
    }
}

/// The encoded samples file with what the series file records about it.
struct EncodedSamples {
    file: Bytes,
    /// Decimal scale of each series.
    scales: Vec<u8>,
    buckets: Vec<TimeBucket>,
    /// Rows per series per bucket: `counts[series * buckets.len() + bucket]`.
    counts: Vec<u32>,
}

impl EncodedSamples {
    fn series_counts(&self, id: usize) -> &[u32] {
        let nb = self.buckets.len();
        &self.counts[id * nb..(id + 1) * nb]
    }
}

/// Columns of `samples.parquet` being collected for one record batch.
struct SamplesBatch {
    ids: Vec<u64>,
    ts: Vec<i64>,
    fl: Vec<Option<f64>>,
    it: Vec<Option<i64>>,
}

impl SamplesBatch {
    fn with_capacity(n: usize) -> Self {
        Self {
            ids: Vec::with_capacity(n),
            ts: Vec::with_capacity(n),
            fl: Vec::with_capacity(n),
            it: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn push_series(&mut self, id: u64, samples: &[Sample], scale: u8, split_integers: bool) {
        for s in samples {
            self.ids.push(id);
            self.ts.push(s.t);
            let int = if scale == 0 {
                as_exact_int(s.v)
            } else {
                scale::scaled(s.v, scale)
            };
            match (split_integers, int) {
                (true, Some(i)) => {
                    self.fl.push(None);
                    self.it.push(Some(i));
                }
                _ => {
                    self.fl.push(Some(s.v));
                    self.it.push(None);
                }
            }
        }
    }

    fn flush(
        &mut self,
        schema: &Arc<Schema>,
        split_integers: bool,
        w: &mut ArrowWriter<Vec<u8>>,
    ) -> Result<(), BlockError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(std::mem::take(&mut self.ids))),
            Arc::new(Int64Array::from(std::mem::take(&mut self.ts))),
        ];
        if split_integers {
            cols.push(Arc::new(Float64Array::from(std::mem::take(&mut self.fl))));
            cols.push(Arc::new(Int64Array::from(std::mem::take(&mut self.it))));
        } else {
            let vals: Vec<f64> = self.fl.drain(..).map(|v| v.unwrap_or_default()).collect();
            self.it.clear();
            cols.push(Arc::new(Float64Array::from(vals)));
        }
        let batch =
            RecordBatch::try_new(schema.clone(), cols).map_err(|source| BlockError::Arrow {
                context: "samples batch",
                source,
            })?;
        w.write(&batch).map_err(|source| BlockError::Parquet {
            file: SAMPLES_FILE.into(),
            source,
        })
    }
}

impl BlockFiles {
    /// Uploads the block: data files first, `meta.json` last, so that a block whose meta exists
    /// is complete. Large files go through multipart uploads.
    pub async fn upload(&self, bucket: &Bucket) -> Result<(), BlockError> {
        let t = self.tenant.as_str();
        let u = &self.meta.ulid;
        for (name, data) in [(SERIES_FILE, &self.series), (SAMPLES_FILE, &self.samples)] {
            let path = block_path(t, u, name);
            // One PUT is atomic and cheapest; above 64 MiB a multipart upload avoids resending
            // everything when one request fails.
            if data.len() > 64 << 20 {
                let chunks = (0..data.len())
                    .step_by(8 << 20)
                    .map(|o| data.slice(o..(o + (8 << 20)).min(data.len())))
                    .collect::<Vec<_>>();
                bucket
                    .put_multipart(&path, futures::stream::iter(chunks))
                    .await?;
            } else {
                bucket.put(&path, data.clone()).await?;
            }
        }
        let meta_path = block_path(t, u, META_FILE);
        let json = serde_json::to_vec_pretty(&self.meta).map_err(|source| BlockError::Meta {
            path: meta_path.clone(),
            source,
        })?;
        bucket.put(&meta_path, Bytes::from(json)).await?;
        Ok(())
    }

    /// Total bytes of the block's objects, `meta.json` included.
    pub fn total_bytes(&self) -> u64 {
        let meta = serde_json::to_vec_pretty(&self.meta).map_or(0, |v| v.len());
        (self.series.len() + self.samples.len() + meta) as u64
    }
}

/// The label names to give their own column: the most frequent, present in ≥ 1% of series,
/// at most `max`. `__name__` always has its own column and is not counted.
fn choose_label_columns(series: &[PendingSeries], max: usize) -> Vec<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in series {
        for lab in &s.labels {
            if lab.name != METRIC_NAME {
                *counts.entry(lab.name.as_str()).or_default() += 1;
            }
        }
    }
    let min = series.len().div_ceil(100).max(1);
    let mut v: Vec<(&str, usize)> = counts.into_iter().filter(|(_, c)| *c >= min).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.truncate(max);
    let mut names: Vec<String> = v.into_iter().map(|(n, _)| n.to_owned()).collect();
    // Column order by name, so schemas of blocks with the same label names are identical.
    names.sort();
    names
}

fn encode_series(
    series: &[PendingSeries],
    encoded: &EncodedSamples,
    label_columns: &[String],
) -> Result<Bytes, BlockError> {
    let scales = &encoded.scales;
    let first_rows = first_rows(encoded, series.len());
    let schema = schema::series_schema(label_columns);
    let props = schema::series_props(9, 1024);
    let col_index: HashMap<&str, usize> = label_columns
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    write_parquet(SERIES_FILE, schema.clone(), props, |w| {
        // Series files are small (tens of bytes per series): batches of 64k series bound memory
        // without measurable cost.
        for (chunk_no, chunk) in series.chunks(65_536).enumerate() {
            let base = (chunk_no * 65_536) as u64;
            let mut name = StringDictionaryBuilder::<Int32Type>::new();
            let mut cols: Vec<StringDictionaryBuilder<Int32Type>> = label_columns
                .iter()
                .map(|_| StringDictionaryBuilder::new())
                .collect();
            let mut rest = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
            let (mut mins, mut maxs, mut counts, mut firsts) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut bucket_counts =
                ListBuilder::new(UInt32Builder::new()).with_field(schema::bucket_item_field());
            for (k, s) in chunk.iter().enumerate() {
                let id = chunk_no * 65_536 + k;
                bucket_counts
                    .values()
                    .append_slice(encoded.series_counts(id));
                bucket_counts.append(true);
                let labels = &s.labels;
                let mut row: Vec<Option<&str>> = vec![None; label_columns.len()];
                let mut metric = None;
                for l in labels {
                    if l.name == METRIC_NAME {
                        metric = Some(l.value.as_str());
                    } else if let Some(&i) = col_index.get(l.name.as_str()) {
                        row[i] = Some(l.value.as_str());
                    } else {
                        rest.keys().append_value(&l.name);
                        rest.values().append_value(&l.value);
                    }
                }
                rest.append(true).map_err(|source| BlockError::Arrow {
                    context: "labels map",
                    source,
                })?;
                name.append_option(metric);
                for (b, v) in cols.iter_mut().zip(row) {
                    b.append_option(v);
                }
                mins.push(s.min_t);
                maxs.push(s.max_t);
                counts.push(s.count);
                firsts.push(first_rows[id]);
            }
            let n = chunk.len() as u64;
            let mut arrays: Vec<ArrayRef> = vec![
                Arc::new(UInt64Array::from_iter_values(base..base + n)),
                Arc::new(name.finish()),
            ];
            for mut b in cols {
                arrays.push(Arc::new(b.finish()));
            }
            arrays.push(Arc::new(rest.finish()));
            arrays.push(Arc::new(Int64Array::from(mins)));
            arrays.push(Arc::new(Int64Array::from(maxs)));
            arrays.push(Arc::new(UInt64Array::from(counts)));
            arrays.push(Arc::new(UInt64Array::from(firsts)));
            let lo = chunk_no * 65_536;
            arrays.push(Arc::new(arrow_array::UInt8Array::from(
                scales[lo..lo + chunk.len()].to_vec(),
            )));
            arrays.push(Arc::new(bucket_counts.finish()));
            let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(|source| {
                BlockError::Arrow {
                    context: "series batch",
                    source,
                }
            })?;
            w.write(&batch).map_err(|source| BlockError::Parquet {
                file: SERIES_FILE.into(),
                source,
            })?;
        }
        Ok(())
    })
}

/// Row of each series' first sample: in the first bucket where it has samples, after the rows
/// of the earlier buckets and of the lower series ids in that bucket.
fn first_rows(encoded: &EncodedSamples, num_series: usize) -> Vec<u64> {
    let nb = encoded.buckets.len();
    let mut out = vec![u64::MAX; num_series];
    let mut row = 0u64;
    for b in 0..nb {
        for (id, first) in out.iter_mut().enumerate() {
            let n = u64::from(encoded.counts[id * nb + b]);
            if n > 0 && *first == u64::MAX {
                *first = row;
            }
            row += n;
        }
    }
    // Every series has samples (empty ones are never added); keep the value defined anyway.
    out.iter_mut().for_each(|f| {
        if *f == u64::MAX {
            *f = row;
        }
    });
    out
}

fn write_parquet(
    file: &str,
    schema: Arc<Schema>,
    props: WriterProperties,
    body: impl FnOnce(&mut ArrowWriter<Vec<u8>>) -> Result<(), BlockError>,
) -> Result<Bytes, BlockError> {
    let perr = |source| BlockError::Parquet {
        file: file.to_owned(),
        source,
    };
    let mut w = ArrowWriter::try_new(Vec::new(), schema, Some(props)).map_err(perr)?;
    body(&mut w)?;
    let buf = w.into_inner().map_err(perr)?;
    Ok(Bytes::from(buf))
}
