//! Merging answers from several stores (ingesters and store-gateways, or several blocks) into
//! one: series with equal labels become one series, samples with equal timestamps are kept once.
//! That is what makes a query answer the same before and after a block is flushed, uploaded
//! twice by replicas, or compacted while the old blocks are still readable.

use crate::limits::check_count;
use crate::query::{ChunkedSeries, Queryable, SelectHints, Series, SeriesMetadata, SeriesPart};
use crate::{LimitExceeded, QueryError, ReadLimit};
use async_trait::async_trait;
use std::sync::Arc;
use strata_model::{Labels, Matcher, Sample, TenantId};

/// Merges two time-sorted sample lists; on equal timestamps the sample of `a` wins (the first
/// source is the freshest, e.g. the ingester over a block).
pub fn merge_samples(a: &[Sample], b: &[Sample]) -> Vec<Sample> {
    let mut out = a.to_vec();
    merge_into(&mut out, b);
    out
}

/// Merges `b` into `a` (both sorted by time; `a` wins on equal timestamps). Blocks of a series
/// usually cover disjoint, ordered time ranges: then this is an append, without a copy of `a`.
pub fn merge_into(a: &mut Vec<Sample>, b: &[Sample]) {
    match (a.last(), b.first()) {
        (_, None) => return,
        (None, _) => {
            a.extend_from_slice(b);
            return;
        }
        (Some(x), Some(y)) if x.t < y.t => {
            a.extend_from_slice(b);
            return;
        }
        _ => {}
    }
    if let (Some(x), Some(y)) = (b.last(), a.first()) {
        if x.t < y.t {
            a.splice(0..0, b.iter().copied());
            return;
        }
    }
    let merged = merge_interleaved(a, b);
    *a = merged;
}

fn merge_interleaved(a: &[Sample], b: &[Sample]) -> Vec<Sample> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].t.cmp(&b[j].t) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Merges lists of series, each sorted by labels, into one sorted list without duplicates.
pub fn merge_series(lists: Vec<Vec<Series>>) -> Vec<Series> {
    let mut all: Vec<(usize, Series)> = lists
        .into_iter()
        .enumerate()
        .flat_map(|(src, l)| l.into_iter().map(move |s| (src, s)))
        .collect();
    // Stable on the source index so that, for equal labels, earlier sources come first.
    all.sort_by(|a, b| a.1.labels.cmp(&b.1.labels).then(a.0.cmp(&b.0)));
    let mut out: Vec<Series> = Vec::with_capacity(all.len());
    for (_, s) in all {
        match out.last_mut() {
            Some(prev) if prev.labels == s.labels => merge_into(&mut prev.samples, &s.samples),
            _ => out.push(s),
        }
    }
    out
}

/// Merges chunked answers (each list sorted by labels; on equal timestamps the earlier list
/// wins). A series found in one source keeps its form. One found in several is merged piece by
/// piece: a piece (chunk or run of decoded samples) that overlaps no other in time is kept as it
/// is, so head chunks stay compressed next to the samples a block decoded; byte-identical chunks
/// that replicas hold are kept once; only pieces that overlap are decoded within `[start, end]`
/// and merged.
pub fn merge_chunked(lists: Vec<Vec<ChunkedSeries>>, start: i64, end: i64) -> Vec<ChunkedSeries> {
    if lists.iter().filter(|l| !l.is_empty()).count() <= 1 {
        return lists.into_iter().flatten().collect();
    }
    let mut all: Vec<(usize, ChunkedSeries)> = lists
        .into_iter()
        .enumerate()
        .flat_map(|(src, l)| l.into_iter().map(move |s| (src, s)))
        .collect();
    all.sort_by(|a, b| a.1.labels().cmp(b.1.labels()).then(a.0.cmp(&b.0)));
    let mut out: Vec<ChunkedSeries> = Vec::with_capacity(all.len());
    let mut group: Vec<ChunkedSeries> = Vec::new();
    for (_, s) in all {
        if group.first().is_some_and(|g| g.labels() != s.labels()) {
            out.extend(merge_one_series(std::mem::take(&mut group), start, end));
        }
        group.push(s);
    }
    out.extend(merge_one_series(group, start, end));
    out
}

/// Merges the answers for one series, in source order.
fn merge_one_series(group: Vec<ChunkedSeries>, start: i64, end: i64) -> Option<ChunkedSeries> {
    if group.len() <= 1 {
        return group.into_iter().next();
    }
    let mut labels = None;
    let mut pieces: Vec<(usize, SeriesPart)> = Vec::new();
    for (src, s) in group.into_iter().enumerate() {
        let (l, parts) = s.into_parts();
        labels.get_or_insert(l);
        pieces.extend(parts.into_iter().map(|p| (src, p)));
    }
    let labels = labels?;
    pieces.sort_by_key(|(src, p)| (p.min_t(), *src));
    let mut parts = Vec::with_capacity(pieces.len());
    let mut overlapping: Vec<(usize, SeriesPart)> = Vec::new();
    let mut overlap_end = i64::MIN;
    for (src, p) in pieces {
        if !overlapping.is_empty() && p.min_t() > overlap_end {
            parts.extend(merge_overlapping(
                std::mem::take(&mut overlapping),
                start,
                end,
            ));
        }
        overlap_end = if overlapping.is_empty() {
            p.max_t()
        } else {
            overlap_end.max(p.max_t())
        };
        overlapping.push((src, p));
    }
    parts.extend(merge_overlapping(overlapping, start, end));
    Some(ChunkedSeries::from_parts(labels, parts))
}

/// One piece for pieces whose time ranges overlap: the piece itself when alone, one copy of
/// identical chunks, else their samples in `[start, end]` merged (lower source index wins).
fn merge_overlapping(
    mut pieces: Vec<(usize, SeriesPart)>,
    start: i64,
    end: i64,
) -> Option<SeriesPart> {
    if pieces.len() <= 1 {
        return pieces.pop().map(|(_, p)| p);
    }
    if let SeriesPart::Chunk(first) = &pieces[0].1 {
        if pieces
            .iter()
            .all(|(_, p)| matches!(p, SeriesPart::Chunk(c) if c == first))
        {
            return pieces.pop().map(|(_, p)| p);
        }
    }
    pieces.sort_by_key(|(src, _)| *src);
    let mut merged = Vec::new();
    let mut buf = Vec::new();
    for (_, p) in &pieces {
        buf.clear();
        p.decode_into(start, end, &mut buf);
        merge_into(&mut merged, &buf);
    }
    (!merged.is_empty()).then_some(SeriesPart::Samples(merged))
}

/// Merges sorted string lists into one sorted list without duplicates.
pub fn merge_sorted_strings(lists: Vec<Vec<String>>) -> Vec<String> {
    let mut v: Vec<String> = lists.into_iter().flatten().collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Merges sorted label-set lists into one sorted list without duplicates; more than `limit`
/// distinct sets is [`ReadLimit::Series`] exceeded.
pub fn merge_labels(lists: Vec<Vec<Labels>>, limit: usize) -> Result<Vec<Labels>, LimitExceeded> {
    let mut v: Vec<Labels> = if lists.len() == 1 {
        lists.into_iter().flatten().collect()
    } else {
        let mut v: Vec<Labels> = lists.into_iter().flatten().collect();
        v.sort();
        v.dedup();
        v
    };
    check_count(v.len(), limit, ReadLimit::Series)?;
    v.shrink_to_fit();
    Ok(v)
}

/// [`merge_sorted_strings`], then more than `limit` strings is `kind` exceeded.
pub fn merge_strings_limited(
    lists: Vec<Vec<String>>,
    limit: usize,
    kind: ReadLimit,
) -> Result<Vec<String>, LimitExceeded> {
    let v = merge_sorted_strings(lists);
    check_count(v.len(), limit, kind)?;
    Ok(v)
}

/// A [`Queryable`] over several stores, in priority order (the first wins on equal samples).
pub struct MergeQueryable {
    sources: Vec<Arc<dyn Queryable>>,
}

impl std::fmt::Debug for MergeQueryable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeQueryable")
            .field("sources", &self.sources.len())
            .finish()
    }
}

impl MergeQueryable {
    /// Merges `sources`; the first is preferred for equal timestamps.
    pub fn new(sources: Vec<Arc<dyn Queryable>>) -> Self {
        Self { sources }
    }
}

#[async_trait]
impl Queryable for MergeQueryable {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let answers = futures::future::try_join_all(
            self.sources
                .iter()
                .map(|s| s.select(tenant, matchers, start, end)),
        )
        .await?;
        Ok(merge_series(answers))
    }

    async fn select_chunks(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        // Without hints: raw data only, like every source's own default.
        self.select_chunks_hinted(tenant, matchers, start, end, &SelectHints::default())
            .await
    }

    async fn select_chunks_hinted(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        let answers = futures::future::try_join_all(
            self.sources
                .iter()
                .map(|s| s.select_chunks_hinted(tenant, matchers, start, end, hints)),
        )
        .await?;
        // Each source stopped at the limits on its own; their union may still exceed them.
        let merged = merge_chunked(answers, start, end);
        hints.limits.check(&merged)?;
        Ok(merged)
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let answers = futures::future::try_join_all(
            self.sources
                .iter()
                .map(|s| s.series(tenant, matchers, start, end, limit)),
        )
        .await?;
        Ok(merge_labels(answers, limit)?)
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let answers = futures::future::try_join_all(
            self.sources
                .iter()
                .map(|s| s.label_names(tenant, matchers, start, end, limit)),
        )
        .await?;
        Ok(merge_strings_limited(
            answers,
            limit,
            ReadLimit::LabelNames,
        )?)
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let answers = futures::future::try_join_all(
            self.sources
                .iter()
                .map(|s| s.label_values(tenant, name, matchers, start, end, limit)),
        )
        .await?;
        Ok(merge_strings_limited(
            answers,
            limit,
            ReadLimit::LabelValues,
        )?)
    }

    async fn head_stats(&self, tenant: &TenantId) -> Result<Option<crate::HeadStats>, QueryError> {
        for s in &self.sources {
            if let Some(h) = s.head_stats(tenant).await? {
                return Ok(Some(h));
            }
        }
        Ok(None)
    }

    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        // Blocks carry no metadata; the first source that has any answers.
        for s in &self.sources {
            let m = s.metadata(tenant, metric).await?;
            if !m.is_empty() {
                return Ok(m);
            }
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample { t, v }
    }

    fn series(name: &str, samples: Vec<Sample>) -> Series {
        Series {
            labels: Labels::from_pairs([("__name__", name)]),
            samples,
        }
    }

    #[test]
    fn equal_timestamps_keep_the_first_source() {
        let m = merge_samples(
            &[s(1, 1.0), s(3, 3.0)],
            &[s(2, 20.0), s(3, 30.0), s(4, 40.0)],
        );
        assert_eq!(m, vec![s(1, 1.0), s(2, 20.0), s(3, 3.0), s(4, 40.0)]);
    }

    #[test]
    fn disjoint_ranges_append_or_prepend() {
        let mut a = vec![s(5, 5.0), s(6, 6.0)];
        merge_into(&mut a, &[s(7, 7.0)]);
        merge_into(&mut a, &[s(1, 1.0), s(2, 2.0)]);
        merge_into(&mut a, &[s(2, 9.0), s(3, 3.0)]);
        merge_into(&mut a, &[]);
        assert_eq!(
            a,
            vec![
                s(1, 1.0),
                s(2, 2.0),
                s(3, 3.0),
                s(5, 5.0),
                s(6, 6.0),
                s(7, 7.0)
            ]
        );
    }

    #[test]
    fn series_from_several_sources_become_one() {
        let a = vec![series("a", vec![s(1, 1.0)]), series("b", vec![s(1, 1.0)])];
        let b = vec![
            series("a", vec![s(1, 9.0), s(2, 2.0)]),
            series("c", vec![s(5, 5.0)]),
        ];
        let m = merge_series(vec![a, b]);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].samples, vec![s(1, 1.0), s(2, 2.0)]);
        assert_eq!(m[2].labels.metric_name(), Some("c"));
    }

    /// A store of series `m{i="…"}` for ids in `ids`, one sample each, that stops at its limits
    /// and counts the series it hands out.
    struct Source {
        ids: std::ops::Range<usize>,
        produced: std::sync::atomic::AtomicUsize,
    }

    impl Source {
        fn new(ids: std::ops::Range<usize>) -> Arc<Self> {
            Arc::new(Self {
                ids,
                produced: Default::default(),
            })
        }

        fn produced(&self) -> usize {
            self.produced.load(std::sync::atomic::Ordering::SeqCst)
        }

        fn each(&self) -> impl Iterator<Item = Series> + '_ {
            self.ids.clone().map(|i| {
                self.produced
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Series {
                    labels: Labels::from_pairs([
                        ("__name__", "m".to_string()),
                        ("i", format!("{i:05}")),
                    ]),
                    samples: vec![s(1, i as f64)],
                }
            })
        }
    }

    #[async_trait]
    impl Queryable for Source {
        async fn select(
            &self,
            _: &TenantId,
            _: &[Matcher],
            _: i64,
            _: i64,
        ) -> Result<Vec<Series>, QueryError> {
            Ok(self.each().collect())
        }

        async fn select_chunks_hinted(
            &self,
            _: &TenantId,
            _: &[Matcher],
            _: i64,
            _: i64,
            hints: &SelectHints,
        ) -> Result<Vec<ChunkedSeries>, QueryError> {
            let mut tally = hints.limits.tally();
            let mut out = Vec::new();
            for x in self.each() {
                let x = ChunkedSeries::Samples(x);
                tally.add_series(&x)?;
                out.push(x);
            }
            Ok(out)
        }

        async fn series(
            &self,
            _: &TenantId,
            _: &[Matcher],
            _: i64,
            _: i64,
            limit: usize,
        ) -> Result<Vec<Labels>, QueryError> {
            let mut out = Vec::new();
            for x in self.each() {
                out.push(x.labels);
                check_count(out.len(), limit, ReadLimit::Series)?;
            }
            Ok(out)
        }

        async fn label_names(
            &self,
            _: &TenantId,
            _: &[Matcher],
            _: i64,
            _: i64,
            _: usize,
        ) -> Result<Vec<String>, QueryError> {
            Ok(vec!["__name__".into(), "i".into()])
        }

        async fn label_values(
            &self,
            _: &TenantId,
            name: &str,
            _: &[Matcher],
            _: i64,
            _: i64,
            limit: usize,
        ) -> Result<Vec<String>, QueryError> {
            let mut out = Vec::new();
            for x in self.each() {
                out.extend(x.labels.get(name).map(str::to_owned));
                check_count(out.len(), limit, ReadLimit::LabelValues)?;
            }
            Ok(out)
        }

        async fn metadata(
            &self,
            _: &TenantId,
            _: Option<&str>,
        ) -> Result<Vec<SeriesMetadata>, QueryError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn limits_reach_every_source_and_the_union() {
        let (a, b) = (Source::new(0..600), Source::new(400..1000));
        let q = MergeQueryable::new(vec![a.clone(), b.clone()]);
        let t = TenantId::new("t").unwrap();
        let limited = |max_series| SelectHints {
            limits: crate::ReadLimits {
                max_series,
                ..Default::default()
            },
            ..SelectHints::default()
        };
        let is_limit = |e: &QueryError, kind: ReadLimit, max: u64| matches!(e, QueryError::LimitExceeded(l) if (l.limit, l.max) == (kind, max));
        // Both sources stop at their 11th series.
        let e = q.series(&t, &[], 0, 1, 10).await.unwrap_err();
        assert!(is_limit(&e, ReadLimit::Series, 10), "{e}");
        let e = q
            .select_chunks_hinted(&t, &[], 0, 1, &limited(10))
            .await
            .unwrap_err();
        assert!(is_limit(&e, ReadLimit::Series, 10), "{e}");
        let e = q.label_values(&t, "i", &[], 0, 1, 10).await.unwrap_err();
        assert!(is_limit(&e, ReadLimit::LabelValues, 10), "{e}");
        assert!(
            a.produced() + b.produced() <= 3 * 22,
            "{}",
            a.produced() + b.produced()
        );
        // Each source's 600 fit under 700; their union of 1,000 does not.
        let e = q.series(&t, &[], 0, 1, 700).await.unwrap_err();
        assert!(is_limit(&e, ReadLimit::Series, 700), "{e}");
        let e = q
            .select_chunks_hinted(&t, &[], 0, 1, &limited(700))
            .await
            .unwrap_err();
        assert!(is_limit(&e, ReadLimit::Series, 700), "{e}");
        let e = q.label_values(&t, "i", &[], 0, 1, 700).await.unwrap_err();
        assert!(is_limit(&e, ReadLimit::LabelValues, 700), "{e}");
        let e = q.label_names(&t, &[], 0, 1, 1).await.unwrap_err();
        assert!(is_limit(&e, ReadLimit::LabelNames, 1), "{e}");
        // At the limit: the whole union.
        assert_eq!(q.series(&t, &[], 0, 1, 1000).await.unwrap().len(), 1000);
        let got = q
            .select_chunks_hinted(&t, &[], 0, 1, &limited(1000))
            .await
            .unwrap();
        assert_eq!(got.len(), 1000);
    }

    #[test]
    fn chunked_merge_decodes_only_shared_series() {
        let mut app = crate::chunk::XorAppender::new();
        for t in 0..10 {
            app.append(t * 10, t as f64);
        }
        let chunk = crate::EncodedChunk {
            min_t: 0,
            max_t: 90,
            data: app.bytes().into(),
        };
        let labels = Labels::from_pairs([("__name__", "a")]);
        let a = vec![ChunkedSeries::Chunks {
            labels: labels.clone(),
            chunks: vec![chunk],
        }];
        let b = vec![
            ChunkedSeries::Samples(series("a", vec![s(90, 9.0), s(100, 10.0)])),
            ChunkedSeries::Samples(series("z", vec![s(1, 1.0)])),
        ];
        let m = merge_chunked(vec![a, b], 0, 1000);
        assert_eq!(m.len(), 2);
        let mut out = Vec::new();
        m[0].decode_into(0, 1000, &mut out);
        assert_eq!(out.len(), 11);
        assert_eq!(out[10], s(100, 10.0));
        assert!(matches!(m[1], ChunkedSeries::Samples(_)));
    }

    fn chunk_of(samples: &[Sample]) -> crate::EncodedChunk {
        let mut app = crate::chunk::XorAppender::new();
        for x in samples {
            app.append(x.t, x.v);
        }
        crate::EncodedChunk {
            min_t: samples[0].t,
            max_t: samples[samples.len() - 1].t,
            data: app.bytes().into(),
        }
    }

    fn chunked(parts: Vec<SeriesPart>) -> ChunkedSeries {
        ChunkedSeries::from_parts(Labels::from_pairs([("__name__", "a")]), parts)
    }

    fn decoded(c: &ChunkedSeries, start: i64, end: i64) -> Vec<Sample> {
        let mut out = Vec::new();
        c.decode_into(start, end, &mut out);
        out
    }

    #[test]
    fn disjoint_sources_keep_chunks_compressed_beside_decoded_runs() {
        let head = chunk_of(&[s(100, 1.0), s(110, 2.0)]);
        let newer = chunk_of(&[s(120, 3.0), s(130, 4.0)]);
        let ingester = vec![chunked(vec![
            SeriesPart::Chunk(head.clone()),
            SeriesPart::Chunk(newer.clone()),
        ])];
        let block = vec![chunked(vec![SeriesPart::Samples(vec![
            s(10, 0.5),
            s(90, 0.9),
        ])])];
        let m = merge_chunked(vec![ingester, block], 0, 1000);
        assert_eq!(m.len(), 1);
        let ChunkedSeries::Parts { parts, .. } = &m[0] else {
            panic!("expected pieces, got {:?}", m[0]);
        };
        assert_eq!(
            parts,
            &vec![
                SeriesPart::Samples(vec![s(10, 0.5), s(90, 0.9)]),
                SeriesPart::Chunk(head),
                SeriesPart::Chunk(newer),
            ]
        );
        assert_eq!(
            decoded(&m[0], 0, 1000),
            vec![
                s(10, 0.5),
                s(90, 0.9),
                s(100, 1.0),
                s(110, 2.0),
                s(120, 3.0),
                s(130, 4.0)
            ]
        );
        assert_eq!(
            decoded(&m[0], 95, 125),
            vec![s(100, 1.0), s(110, 2.0), s(120, 3.0)]
        );
        assert_eq!(m[0].num_samples(), 6);
    }

    #[test]
    fn only_overlapping_pieces_are_decoded_and_the_first_source_wins() {
        let old = chunk_of(&[s(0, 0.0), s(10, 1.0)]);
        let shared = chunk_of(&[s(20, 2.0), s(30, 3.0)]);
        let replica_a = vec![chunked(vec![
            SeriesPart::Chunk(old.clone()),
            SeriesPart::Chunk(shared.clone()),
        ])];
        // The second source holds the same chunk at 20–30 (a replica) and an overlapping run
        // at 25–40 whose sample at 30 must lose to the first source's.
        let replica_b = vec![chunked(vec![
            SeriesPart::Chunk(shared.clone()),
            SeriesPart::Samples(vec![s(25, 9.0), s(30, 9.0), s(40, 4.0)]),
        ])];
        let m = merge_chunked(vec![replica_a, replica_b], 0, 1000);
        let ChunkedSeries::Parts { parts, .. } = &m[0] else {
            panic!("expected pieces, got {:?}", m[0]);
        };
        assert_eq!(parts[0], SeriesPart::Chunk(old));
        assert_eq!(
            parts[1],
            SeriesPart::Samples(vec![s(20, 2.0), s(25, 9.0), s(30, 3.0), s(40, 4.0)])
        );
        assert_eq!(parts.len(), 2);

        // Byte-identical chunks from replicas are kept once, still compressed.
        let a = vec![chunked(vec![SeriesPart::Chunk(shared.clone())])];
        let b = vec![chunked(vec![SeriesPart::Chunk(shared.clone())])];
        let m = merge_chunked(vec![a, b], 0, 1000);
        assert_eq!(
            m,
            vec![ChunkedSeries::Chunks {
                labels: Labels::from_pairs([("__name__", "a")]),
                chunks: vec![shared],
            }]
        );
    }

    proptest::proptest! {
        /// Any split of several sources' samples into chunks and runs merges to what merging the
        /// plain sample lists gives (earlier source wins on equal timestamps).
        #[test]
        fn merged_pieces_decode_like_merged_samples(
            sources in proptest::collection::vec(
                proptest::collection::vec((0i64..400, 0u8..8, proptest::bool::ANY), 0..40),
                1..4,
            ),
            window in (0i64..400, 0i64..400),
        ) {
            let (start, end) = (window.0.min(window.1), window.0.max(window.1));
            let mut expected: Vec<Sample> = Vec::new();
            let mut lists = Vec::new();
            for (src, raw) in sources.iter().enumerate() {
                let mut ts: Vec<i64> = raw.iter().map(|x| x.0).collect();
                ts.sort_unstable();
                ts.dedup();
                let samples: Vec<Sample> =
                    ts.iter().map(|&t| s(t, (src * 1000) as f64 + t as f64)).collect();
                let in_window: Vec<Sample> =
                    samples.iter().copied().filter(|x| x.t >= start && x.t <= end).collect();
                merge_into(&mut expected, &in_window);
                // Cut into pieces of 1–8 samples, each a chunk or a decoded run.
                let mut parts = Vec::new();
                let mut rest = &samples[..];
                let mut cuts = raw.iter();
                while !rest.is_empty() {
                    let (n, as_chunk) = cuts.next().map_or((8, true), |c| (c.1 as usize + 1, c.2));
                    let (piece, tail) = rest.split_at(n.min(rest.len()));
                    parts.push(if as_chunk {
                        SeriesPart::Chunk(chunk_of(piece))
                    } else {
                        SeriesPart::Samples(piece.to_vec())
                    });
                    rest = tail;
                }
                lists.push(if parts.is_empty() { vec![] } else { vec![chunked(parts)] });
            }
            let m = merge_chunked(lists, start, end);
            let got = m.first().map(|c| decoded(c, start, end)).unwrap_or_default();
            proptest::prop_assert_eq!(got, expected);
            if let Some(ChunkedSeries::Parts { parts, .. }) = m.first() {
                for w in parts.windows(2) {
                    proptest::prop_assert!(w[0].max_t() < w[1].min_t());
                }
            }
        }
    }
}
