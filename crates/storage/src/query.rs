//! Reading series back.

use crate::limits::{chunk_heap_bytes, labels_heap_bytes, samples_heap_bytes, ReadLimits};
use crate::QueryError;
use async_trait::async_trait;
use strata_model::{Labels, Matcher, MetricType, Sample, TenantId};

/// A series and its samples in a time range, samples sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// A compressed chunk of one series (Gorilla/XOR encoding, see [`crate::chunk`]) with its time
/// range, so that readers can skip it without decoding.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedChunk {
    pub min_t: i64,
    pub max_t: i64,
    pub data: std::sync::Arc<[u8]>,
}

impl EncodedChunk {
    /// Samples in the chunk, from its header.
    pub fn num_samples(&self) -> usize {
        usize::from(crate::chunk::chunk_len(&self.data))
    }
}

/// Chunked series decoded within `[start, end]`, those left without samples dropped: `select`
/// for stores whose natural answer is chunks.
pub fn decode_all(chunked: Vec<ChunkedSeries>, start: i64, end: i64) -> Vec<Series> {
    chunked
        .into_iter()
        .map(|c| {
            let mut samples = Vec::new();
            c.decode_into(start, end, &mut samples);
            Series {
                labels: c.labels().clone(),
                samples,
            }
        })
        .filter(|s| !s.samples.is_empty())
        .collect()
}

/// A series whose samples stay compressed until a reader decodes them, which keeps a query over
/// many series at ~1.3 bytes per sample instead of 16.
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkedSeries {
    Chunks {
        labels: Labels,
        chunks: Vec<EncodedChunk>,
    },
    Samples(Series),
    /// Pieces from several sources, time-disjoint and in time order: e.g. the samples a block
    /// decoded followed by the head's chunks, so that merging two stores' answers does not
    /// decode the chunks (see [`crate::merge::merge_chunked`]).
    Parts {
        labels: Labels,
        parts: Vec<SeriesPart>,
    },
}

/// One time-contiguous piece of a series: a compressed chunk or a run of decoded samples.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesPart {
    Chunk(EncodedChunk),
    /// Sorted by time, not empty.
    Samples(Vec<Sample>),
}

impl SeriesPart {
    pub fn min_t(&self) -> i64 {
        match self {
            Self::Chunk(c) => c.min_t,
            Self::Samples(s) => s.first().map_or(i64::MAX, |x| x.t),
        }
    }

    pub fn max_t(&self) -> i64 {
        match self {
            Self::Chunk(c) => c.max_t,
            Self::Samples(s) => s.last().map_or(i64::MIN, |x| x.t),
        }
    }

    pub fn num_samples(&self) -> usize {
        match self {
            Self::Chunk(c) => c.num_samples(),
            Self::Samples(s) => s.len(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Self::Chunk(c) => chunk_heap_bytes(c),
            Self::Samples(s) => samples_heap_bytes(s.len()),
        }
    }

    /// Appends the samples in `[start, end]` to `out`, in time order.
    pub fn decode_into(&self, start: i64, end: i64, out: &mut Vec<Sample>) {
        match self {
            Self::Samples(s) => {
                if s.first().is_some_and(|x| x.t >= start) && s.last().is_some_and(|x| x.t <= end) {
                    out.extend_from_slice(s);
                } else {
                    let from = s.partition_point(|x| x.t < start);
                    let to = s.partition_point(|x| x.t <= end);
                    out.extend_from_slice(&s[from..to.max(from)]);
                }
            }
            Self::Chunk(c) => {
                if c.max_t < start || c.min_t > end {
                } else if c.min_t >= start && c.max_t <= end {
                    out.extend(crate::chunk::XorIter::new(&c.data));
                } else {
                    out.extend(
                        crate::chunk::XorIter::new(&c.data).filter(|x| x.t >= start && x.t <= end),
                    );
                }
            }
        }
    }
}

impl ChunkedSeries {
    pub fn labels(&self) -> &Labels {
        match self {
            Self::Chunks { labels, .. } | Self::Parts { labels, .. } => labels,
            Self::Samples(s) => &s.labels,
        }
    }

    /// The labels, to rewrite them (federation adds `__tenant_id__`, dedup drops replica
    /// labels) without touching the samples.
    pub fn labels_mut(&mut self) -> &mut Labels {
        match self {
            Self::Chunks { labels, .. } | Self::Parts { labels, .. } => labels,
            Self::Samples(s) => &mut s.labels,
        }
    }

    /// Samples held: whole chunks counted from their headers, so a chunk reaching past the
    /// selected range counts all its samples.
    pub fn num_samples(&self) -> usize {
        match self {
            Self::Chunks { chunks, .. } => chunks.iter().map(EncodedChunk::num_samples).sum(),
            Self::Samples(s) => s.samples.len(),
            Self::Parts { parts, .. } => parts.iter().map(SeriesPart::num_samples).sum(),
        }
    }

    /// Estimated heap bytes held: labels plus compressed chunks or decoded samples.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Self::Chunks { labels, chunks } => {
                labels_heap_bytes(labels) + chunks.iter().map(chunk_heap_bytes).sum::<usize>()
            }
            Self::Samples(s) => labels_heap_bytes(&s.labels) + samples_heap_bytes(s.samples.len()),
            Self::Parts { labels, parts } => {
                labels_heap_bytes(labels) + parts.iter().map(SeriesPart::heap_bytes).sum::<usize>()
            }
        }
    }

    /// Appends the samples in `[start, end]` to `out`, in time order.
    pub fn decode_into(&self, start: i64, end: i64, out: &mut Vec<Sample>) {
        match self {
            Self::Samples(s) => out.extend(
                s.samples
                    .iter()
                    .copied()
                    .filter(|x| x.t >= start && x.t <= end),
            ),
            Self::Chunks { chunks, .. } => {
                for c in chunks {
                    if c.max_t < start || c.min_t > end {
                        continue;
                    }
                    if c.min_t >= start && c.max_t <= end {
                        out.extend(crate::chunk::XorIter::new(&c.data));
                    } else {
                        out.extend(
                            crate::chunk::XorIter::new(&c.data)
                                .filter(|x| x.t >= start && x.t <= end),
                        );
                    }
                }
            }
            Self::Parts { parts, .. } => {
                for p in parts {
                    p.decode_into(start, end, out);
                }
            }
        }
    }

    /// The labels and the pieces, in time order (a `Chunks` series' chunks as they are, a
    /// `Samples` series as one piece, none if it has no samples).
    pub fn into_parts(self) -> (Labels, Vec<SeriesPart>) {
        match self {
            Self::Chunks { labels, chunks } => {
                (labels, chunks.into_iter().map(SeriesPart::Chunk).collect())
            }
            Self::Samples(s) if s.samples.is_empty() => (s.labels, Vec::new()),
            Self::Samples(s) => (s.labels, vec![SeriesPart::Samples(s.samples)]),
            Self::Parts { labels, parts } => (labels, parts),
        }
    }

    /// The simplest form holding `parts`: `Chunks` when all are chunks, `Samples` for one run.
    pub fn from_parts(labels: Labels, parts: Vec<SeriesPart>) -> Self {
        if parts.iter().all(|p| matches!(p, SeriesPart::Chunk(_))) {
            let chunks = parts
                .into_iter()
                .filter_map(|p| match p {
                    SeriesPart::Chunk(c) => Some(c),
                    SeriesPart::Samples(_) => None,
                })
                .collect();
            return Self::Chunks { labels, chunks };
        }
        match <[SeriesPart; 1]>::try_from(parts) {
            Ok([SeriesPart::Samples(samples)]) => Self::Samples(Series { labels, samples }),
            Ok(one) => Self::Parts {
                labels,
                parts: one.into(),
            },
            Err(parts) => Self::Parts { labels, parts },
        }
    }
}

/// Metadata of one metric family as last received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesMetadata {
    pub family: String,
    pub metric_type: MetricType,
    pub help: String,
    pub unit: String,
}

/// Head statistics for `/api/v1/status/tsdb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeadStats {
    pub num_series: u64,
    pub chunk_count: u64,
    pub min_time: i64,
    pub max_time: i64,
}

/// What the query engine will do with a selection, so that a store holding downsampled blocks
/// can pick a resolution and the aggregate that keeps the function's answer right (the hints
/// Thanos passes to its stores).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectHints {
    /// Coarsest resolution the caller accepts, in ms: 0 = raw data only; 300000 lets 5m blocks
    /// answer, 3600000 also 1h blocks.
    pub max_resolution_ms: i64,
    /// The function applied to the selection (`rate`, `max_over_time`, ...), if any.
    pub func: Option<String>,
    /// Range of the matrix selector, ms (0 for an instant vector selector).
    pub range_ms: i64,
    /// Query step, ms (0 for an instant query).
    pub step_ms: i64,
    /// Where the store stops reading and answers [`QueryError::LimitExceeded`].
    pub limits: ReadLimits,
}

/// Storage that answers selections. Time ranges are inclusive milliseconds.
///
/// Reads carry limits (`limit` arguments, [`SelectHints::limits`]; [`crate::limits::NO_LIMIT`]
/// is none): a store stops collecting as soon as its answer exceeds one and answers
/// [`QueryError::LimitExceeded`], so a request over a limit costs about the limit, not the
/// whole selection.
#[async_trait]
pub trait Queryable: Send + Sync {
    /// Series matching every matcher that have a sample in `[start, end]`, with those samples,
    /// sorted by labels.
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError>;

    /// Like [`Queryable::select`], but samples may stay compressed. Stores that hold chunks
    /// should override this; the default wraps `select`.
    async fn select_chunks(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        Ok(self
            .select(tenant, matchers, start, end)
            .await?
            .into_iter()
            .map(ChunkedSeries::Samples)
            .collect())
    }

    /// Like [`Queryable::select_chunks`], with hints about the query and limits on the answer.
    /// Stores without downsampled data ignore the resolution hints. The default checks the
    /// limits on the whole answer; stores that collect series one by one should override it and
    /// stop at the first series over a limit.
    async fn select_chunks_hinted(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        let v = self.select_chunks(tenant, matchers, start, end).await?;
        hints.limits.check(&v)?;
        Ok(v)
    }

    /// Label sets of the series matching every matcher with a sample in `[start, end]`, sorted;
    /// more than `limit` of them is [`crate::ReadLimit::Series`] exceeded.
    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError>;

    /// Sorted label names of series matching `matchers` (all series if empty) in `[start, end]`;
    /// more than `limit` of them is [`crate::ReadLimit::LabelNames`] exceeded.
    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError>;

    /// Sorted values of label `name` among series matching `matchers` in `[start, end]`; more
    /// than `limit` of them is [`crate::ReadLimit::LabelValues`] exceeded.
    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError>;

    /// Statistics of the in-memory head, for stores that have one.
    async fn head_stats(&self, _tenant: &TenantId) -> Result<Option<HeadStats>, QueryError> {
        Ok(None)
    }

    /// Metric metadata, optionally for one metric family.
    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError>;
}
