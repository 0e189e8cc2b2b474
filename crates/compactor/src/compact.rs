//! Building output blocks: merging several blocks into one (horizontal or vertical compaction)
//! and downsampling one block. Series are streamed from the sources in block order and handed to
//! the writer as compressed XOR chunks, so memory follows the output's compressed size rather
//! than the decoded samples of the inputs.

use crate::downsample;
use crate::error::CompactorError;
use std::cmp::Ordering;
use std::sync::Arc;
use strata_model::{Labels, Sample, TenantId};
use strata_storage::block::{series_order, BlockFiles, BlockReader, BlockWriter, WriterOptions};
use strata_storage::chunk::{XorAppender, SAMPLES_PER_CHUNK};
use strata_storage::merge::merge_samples;
use strata_storage::{ChunkedSeries, EncodedChunk, Series};
use ulid::Ulid;

/// Encodes time-sorted samples as XOR chunks of at most [`SAMPLES_PER_CHUNK`] samples.
pub(crate) fn encode_chunks(samples: &[Sample]) -> Vec<EncodedChunk> {
    samples
        .chunks(SAMPLES_PER_CHUNK as usize)
        .filter_map(|part| {
            let (first, last) = (part.first()?, part.last()?);
            let mut app = XorAppender::new();
            for s in part {
                app.append(s.t, s.v);
            }
            Some(EncodedChunk {
                min_t: first.t,
                max_t: last.t,
                data: Arc::from(app.into_bytes()),
            })
        })
        .collect()
}

fn add(w: &mut BlockWriter, labels: Labels, samples: &[Sample]) -> Result<(), CompactorError> {
    w.add_chunked(&ChunkedSeries::Chunks {
        labels,
        chunks: encode_chunks(samples),
    })?;
    Ok(())
}

/// Union of the sources of `blocks`, sorted.
fn union_sources(blocks: &[&BlockReader]) -> Vec<Ulid> {
    let mut v: Vec<Ulid> = blocks
        .iter()
        .flat_map(|b| b.meta().sources.iter().copied())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Merges `sources` (open blocks of one tenant and resolution) into one block covering their
/// union: series with equal labels become one, samples with equal timestamps are kept once
/// (the first source's, in the order given). Level = highest source level + 1; sources = union
/// of the sources' sources.
pub(crate) async fn merge_blocks(
    tenant: &TenantId,
    sources: &[&BlockReader],
) -> Result<BlockFiles, CompactorError> {
    let first = sources.first().ok_or(CompactorError::EmptyGroup)?;
    let min_t = sources.iter().map(|b| b.meta().min_time).min().unwrap_or(0);
    let max_t = sources.iter().map(|b| b.meta().max_time).max().unwrap_or(0);
    let opts = WriterOptions {
        resolution: first.meta().resolution,
        compaction_level: sources
            .iter()
            .map(|b| b.meta().compaction_level)
            .max()
            .unwrap_or(1)
            + 1,
        sources: union_sources(sources),
        ..WriterOptions::default()
    };
    let mut w = BlockWriter::new(tenant.clone(), min_t, max_t, opts)?;
    let mut cursors: Vec<_> = sources.iter().map(|b| b.series_cursor()).collect();
    let mut heads: Vec<Option<Series>> = Vec::with_capacity(cursors.len());
    for c in &mut cursors {
        heads.push(c.next_series().await?);
    }
    loop {
        // The smallest label set among the sources' current series (k is small: a scan).
        let mut min: Option<&Labels> = None;
        for s in heads.iter().flatten() {
            if min.is_none_or(|m| series_order(&s.labels, m) == Ordering::Less) {
                min = Some(&s.labels);
            }
        }
        let Some(min) = min.cloned() else { break };
        let mut merged: Option<Series> = None;
        for (i, head) in heads.iter_mut().enumerate() {
            if let Some(s) = head.take_if(|s| s.labels == min) {
                merged = Some(match merged {
                    None => s,
                    Some(mut m) => {
                        m.samples = merge_samples(&m.samples, &s.samples);
                        m
                    }
                });
                *head = cursors[i].next_series().await?;
            }
        }
        if let Some(m) = merged {
            add(&mut w, m.labels, &m.samples)?;
        }
    }
    Ok(w.finish()?)
}

/// Downsamples `src` to `resolution` (5m from raw, 1h from 5m): same time range, level and
/// sources as the source block.
pub(crate) async fn downsample_block(
    tenant: &TenantId,
    src: &BlockReader,
    resolution: i64,
) -> Result<BlockFiles, CompactorError> {
    let m = src.meta();
    let opts = WriterOptions {
        resolution,
        compaction_level: m.compaction_level,
        sources: m.sources.clone(),
        ..WriterOptions::default()
    };
    let mut w = BlockWriter::new(tenant.clone(), m.min_time, m.max_time, opts)?;
    downsample::downsample_series(src, resolution, |labels, samples| {
        add(&mut w, labels, &samples)
    })
    .await?;
    Ok(w.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_every_sample_in_order() {
        let samples: Vec<Sample> = (0..250)
            .map(|i| Sample::new(i * 10, i as f64 * 0.5))
            .collect();
        let chunks = encode_chunks(&samples);
        assert_eq!(chunks.len(), 3);
        assert_eq!((chunks[2].min_t, chunks[2].max_t), (2400, 2490));
        let cs = ChunkedSeries::Chunks {
            labels: Labels::from_pairs([("__name__", "m")]),
            chunks,
        };
        let mut back = Vec::new();
        cs.decode_into(i64::MIN, i64::MAX, &mut back);
        assert_eq!(back, samples);
        assert!(encode_chunks(&[]).is_empty());
    }
}
