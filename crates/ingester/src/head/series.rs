//! One series in the head: its identity and its compressed samples.

use std::sync::Arc;
use strata_model::Sample;
use strata_storage::chunk::{chunk_len, XorAppender, XorIter};
use strata_storage::EncodedChunk;

/// A full chunk, kept with its time range so queries skip it without decoding.
#[derive(Debug)]
pub struct ClosedChunk {
    pub min_t: i64,
    pub max_t: i64,
    /// Shared so that queries hold it without copying.
    pub data: Arc<[u8]>,
}

/// What happened to one appended sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendResult {
    Appended,
    /// Same timestamp and bit-identical value as the newest sample: accepted, nothing stored.
    Duplicate,
    /// Older than the newest sample.
    OutOfOrder {
        newest: i64,
    },
    /// Same timestamp as the newest sample with a different value.
    DuplicateTimestamp,
}

#[derive(Debug)]
pub struct MemSeries {
    /// Canonical label encoding (see `key`).
    pub key: Box<[u8]>,
    pub hash: u64,
    pub id: u32,
    head: XorAppender,
    head_min_t: i64,
    closed: Vec<ClosedChunk>,
}

impl MemSeries {
    pub fn new(key: Box<[u8]>, hash: u64, id: u32) -> Self {
        Self {
            key,
            hash,
            id,
            head: XorAppender::new(),
            head_min_t: i64::MAX,
            closed: Vec::new(),
        }
    }

    /// Newest sample's time, if any.
    pub fn max_t(&self) -> Option<i64> {
        if !self.head.is_empty() {
            Some(self.head.last_t())
        } else {
            self.closed.last().map(|c| c.max_t)
        }
    }

    fn last_v_bits(&self) -> Option<u64> {
        if !self.head.is_empty() {
            return Some(self.head.last_v_bits());
        }
        let c = self.closed.last()?;
        XorIter::new(&c.data).last().map(|s| s.v.to_bits())
    }

    /// Appends in time order; equal timestamps are duplicates (accepted if identical).
    #[inline]
    pub fn append(&mut self, t: i64, v: f64) -> AppendResult {
        if let Some(max_t) = self.max_t() {
            if t < max_t {
                return AppendResult::OutOfOrder { newest: max_t };
            }
            if t == max_t {
                return if self.last_v_bits() == Some(v.to_bits()) {
                    AppendResult::Duplicate
                } else {
                    AppendResult::DuplicateTimestamp
                };
            }
        }
        if self.head.is_full() {
            let full = std::mem::replace(&mut self.head, XorAppender::new());
            let max_t = full.last_t();
            self.closed.push(ClosedChunk {
                min_t: self.head_min_t,
                max_t,
                data: Arc::from(full.into_bytes()),
            });
        }
        if self.head.is_empty() {
            self.head_min_t = t;
        }
        self.head.append(t, v);
        AppendResult::Appended
    }

    /// Appends samples in `[start, end]` to `out`.
    pub fn samples_in(&self, start: i64, end: i64, out: &mut Vec<Sample>) {
        for c in &self.closed {
            if c.max_t < start || c.min_t > end {
                continue;
            }
            out.extend(XorIter::new(&c.data).filter(|s| s.t >= start && s.t <= end));
        }
        if !self.head.is_empty() && self.head.last_t() >= start && self.head_min_t <= end {
            out.extend(XorIter::new(self.head.bytes()).filter(|s| s.t >= start && s.t <= end));
        }
    }

    /// The chunks overlapping `[start, end]`, oldest first; the open chunk is copied.
    pub fn encoded_chunks(&self, start: i64, end: i64) -> Vec<EncodedChunk> {
        let mut out: Vec<EncodedChunk> = self
            .closed
            .iter()
            .filter(|c| c.max_t >= start && c.min_t <= end)
            .map(|c| EncodedChunk {
                min_t: c.min_t,
                max_t: c.max_t,
                data: c.data.clone(),
            })
            .collect();
        if !self.head.is_empty() && self.head.last_t() >= start && self.head_min_t <= end {
            out.push(EncodedChunk {
                min_t: self.head_min_t,
                max_t: self.head.last_t(),
                data: Arc::from(self.head.bytes()),
            });
        }
        out
    }

    /// Whether any sample lies in `[start, end]`.
    pub fn has_sample_in(&self, start: i64, end: i64) -> bool {
        let chunks = self
            .closed
            .iter()
            .map(|c| (c.min_t, c.max_t, &*c.data))
            .chain(
                (!self.head.is_empty())
                    .then(|| (self.head_min_t, self.head.last_t(), self.head.bytes())),
            );
        for (min_t, max_t, data) in chunks {
            if max_t < start || min_t > end {
                continue;
            }
            if (min_t >= start && min_t <= end) || (max_t >= start && max_t <= end) {
                return true;
            }
            if XorIter::new(data).any(|s| s.t >= start && s.t <= end) {
                return true;
            }
        }
        false
    }

    /// Encoded chunks, oldest first, including the open one (for checkpoints).
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.closed
            .iter()
            .map(|c| &*c.data)
            .chain((!self.head.is_empty()).then(|| self.head.bytes()))
    }

    /// Restores chunks written by [`MemSeries::chunks`]; the last one becomes the open chunk.
    /// A chunk that decodes to fewer samples than its header counts is refused wherever it
    /// is: kept as a closed chunk it would be written into the next checkpoint as the open one,
    /// which does not load.
    pub fn restore_chunks(&mut self, chunks: Vec<Box<[u8]>>) -> Result<(), &'static str> {
        let n = chunks.len();
        for (i, data) in chunks.into_iter().enumerate() {
            let mut it = XorIter::new(&data);
            let Some(first) = it.next() else {
                if chunk_len(&data) == 0 {
                    continue;
                }
                return Err("a chunk holds fewer samples than its header counts");
            };
            let (mut count, mut last) = (1u32, first.t);
            for s in it {
                count += 1;
                last = s.t;
            }
            if count != u32::from(chunk_len(&data)) {
                return Err("a chunk holds fewer samples than its header counts");
            }
            if i + 1 == n && !XorAppender::from_bytes(&data).is_some_and(|a| a.is_full()) {
                self.head = XorAppender::from_bytes(&data).ok_or("corrupt open chunk")?;
                self.head_min_t = first.t;
            } else {
                self.closed.push(ClosedChunk {
                    min_t: first.t,
                    max_t: last,
                    data: Arc::from(data),
                });
            }
        }
        Ok(())
    }

    /// Drops the chunks whose samples are all older than `t` (they are in an uploaded block).
    /// A chunk straddling `t` is kept whole; readers merge its older samples with the block's.
    /// Returns how many chunks were dropped.
    pub fn drop_chunks_before(&mut self, t: i64) -> usize {
        let n = self.closed.iter().take_while(|c| c.max_t < t).count();
        self.closed.drain(..n);
        let mut dropped = n;
        if !self.head.is_empty() && self.head.last_t() < t && self.closed.is_empty() {
            self.head = XorAppender::new();
            self.head_min_t = i64::MAX;
            dropped += 1;
        }
        dropped
    }

    /// Whether the series holds no samples.
    pub fn is_empty(&self) -> bool {
        self.closed.is_empty() && self.head.is_empty()
    }

    /// Number of chunks, the open one included.
    pub fn chunk_count(&self) -> usize {
        self.closed.len() + usize::from(!self.head.is_empty())
    }

    /// Approximate heap bytes (for the memory metric).
    pub fn heap_bytes(&self) -> usize {
        self.key.len()
            + self.head.heap_bytes()
            + self.closed.capacity() * std::mem::size_of::<ClosedChunk>()
            + self.closed.iter().map(|c| c.data.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_duplicate_and_order_rules() {
        let mut s = MemSeries::new(Box::new([]), 0, 0);
        assert_eq!(s.append(10, 1.0), AppendResult::Appended);
        assert_eq!(s.append(10, 1.0), AppendResult::Duplicate);
        assert_eq!(s.append(10, 2.0), AppendResult::DuplicateTimestamp);
        assert_eq!(s.append(9, 1.0), AppendResult::OutOfOrder { newest: 10 });
        assert_eq!(s.append(11, f64::NAN), AppendResult::Appended);
        assert_eq!(s.append(11, f64::NAN), AppendResult::Duplicate);
    }

    /// Found by the `wal_record` fuzz target's checkpoint round trip: a damaged chunk that was
    /// not the last of its checkpoint record used to be kept as a closed chunk, so the next
    /// checkpoint, where it became the open one, did not load.
    #[test]
    fn a_chunk_shorter_than_its_header_is_refused_wherever_it_is() {
        let mut s = MemSeries::new(Box::new([]), 0, 0);
        for t in 0..130 {
            s.append(t * 10, t as f64);
        }
        let mut chunks: Vec<Box<[u8]>> = s.chunks().map(Box::from).collect();
        assert_eq!(chunks.len(), 2);
        let mut whole = MemSeries::new(Box::new([]), 0, 0);
        whole.restore_chunks(chunks.clone()).unwrap();
        assert_eq!(whole.chunk_count(), 2);
        // Cut the first chunk's bit stream in half: its header still counts 120 samples.
        let cut = Box::from(&chunks[0][..chunks[0].len() / 2]);
        chunks[0] = cut;
        let mut r = MemSeries::new(Box::new([]), 0, 0);
        assert!(r.restore_chunks(chunks.clone()).is_err());
        let mut last = MemSeries::new(Box::new([]), 0, 0);
        assert!(last.restore_chunks(vec![chunks[0].clone()]).is_err());
        // A header alone (no sample, count 3) is damaged too; a zero count is an empty chunk.
        let mut header_only = MemSeries::new(Box::new([]), 0, 0);
        assert!(header_only
            .restore_chunks(vec![Box::from(&[0u8, 3][..])])
            .is_err());
        let mut empty = MemSeries::new(Box::new([]), 0, 0);
        assert!(empty.restore_chunks(vec![Box::from(&[0u8, 0][..])]).is_ok());
        assert!(empty.is_empty());
    }

    #[test]
    fn spans_chunks_and_filters_by_time() {
        let mut s = MemSeries::new(Box::new([]), 0, 0);
        for t in 0..1000 {
            assert_eq!(s.append(t * 10, t as f64), AppendResult::Appended);
        }
        let mut out = Vec::new();
        s.samples_in(995, 2005, &mut out);
        assert_eq!(out.first().map(|x| x.t), Some(1000));
        assert_eq!(out.last().map(|x| x.t), Some(2000));
        assert_eq!(out.len(), 101);
        assert!(s.has_sample_in(1001, 1010));
        assert!(!s.has_sample_in(1001, 1009));
        assert!(!s.has_sample_in(10_000, 20_000));
        // Duplicate detection across a chunk boundary.
        assert_eq!(s.append(9990, 999.0), AppendResult::Duplicate);

        let chunks: Vec<Box<[u8]>> = s.chunks().map(Box::from).collect();
        let mut r = MemSeries::new(Box::new([]), 0, 0);
        r.restore_chunks(chunks).unwrap();
        let mut all = Vec::new();
        r.samples_in(i64::MIN, i64::MAX, &mut all);
        assert_eq!(all.len(), 1000);
        assert_eq!(r.append(10_000, 1.0), AppendResult::Appended);
        assert_eq!(
            r.append(5, 1.0),
            AppendResult::OutOfOrder { newest: 10_000 }
        );
    }
}
