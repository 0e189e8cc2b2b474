//! Limits passed down with a read, so that every store stops collecting as soon as its answer
//! exceeds one instead of loading everything and being checked afterwards.
//!
//! Counting is per series and per chunk (a chunk's header holds its sample count), never per
//! sample: the hot decode loops stay as they are.

use crate::error::{LimitExceeded, ReadLimit};
use crate::query::{ChunkedSeries, EncodedChunk};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use strata_model::{Label, Labels, Sample};

/// No limit: the value of a limit argument or field that does not bound anything (also what an
/// absent field on the wire decodes to).
pub const NO_LIMIT: usize = 0;

/// Bounds on one selection's answer; each is [`NO_LIMIT`] (0) or a maximum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadLimits {
    /// Most series ([`ReadLimit::Series`]).
    pub max_series: usize,
    /// Most samples ([`ReadLimit::Samples`]). Chunks are counted whole, so a chunk reaching
    /// past the range's ends counts all its samples.
    pub max_samples: usize,
    /// Most estimated bytes held ([`ReadLimit::QueryMemory`]): compressed chunks, decoded
    /// samples and label sets, see [`ChunkedSeries::heap_bytes`].
    pub max_bytes: usize,
}

impl ReadLimits {
    /// Whether nothing is bounded.
    pub fn is_unlimited(&self) -> bool {
        self.max_series == NO_LIMIT && self.max_samples == NO_LIMIT && self.max_bytes == NO_LIMIT
    }

    /// An empty tally against these limits.
    pub fn tally(&self) -> ReadTally {
        ReadTally {
            limits: *self,
            series: 0,
            samples: 0,
            bytes: 0,
        }
    }

    /// Checks a whole answer (stores that cannot stop early, and merged answers).
    pub fn check(&self, series: &[ChunkedSeries]) -> Result<(), LimitExceeded> {
        if self.is_unlimited() {
            return Ok(());
        }
        let mut t = self.tally();
        series.iter().try_for_each(|s| t.add_series(s))
    }
}

/// What an answer holds so far, checked against [`ReadLimits`] as it grows.
#[derive(Debug, Clone, Copy)]
pub struct ReadTally {
    limits: ReadLimits,
    /// Series counted.
    pub series: usize,
    /// Samples counted.
    pub samples: usize,
    /// Estimated bytes counted.
    pub bytes: usize,
}

fn over(n: usize, max: usize) -> bool {
    max != NO_LIMIT && n > max
}

impl ReadTally {
    /// Adds `series` series holding `samples` samples and `bytes` bytes; fails once a total is
    /// over its limit.
    pub fn add(
        &mut self,
        series: usize,
        samples: usize,
        bytes: usize,
    ) -> Result<(), LimitExceeded> {
        self.series = self.series.saturating_add(series);
        self.samples = self.samples.saturating_add(samples);
        self.bytes = self.bytes.saturating_add(bytes);
        let l = &self.limits;
        let exceeded = |limit, max: usize| LimitExceeded {
            limit,
            max: max as u64,
        };
        if over(self.series, l.max_series) {
            return Err(exceeded(ReadLimit::Series, l.max_series));
        }
        if over(self.samples, l.max_samples) {
            return Err(exceeded(ReadLimit::Samples, l.max_samples));
        }
        if over(self.bytes, l.max_bytes) {
            return Err(exceeded(ReadLimit::QueryMemory, l.max_bytes));
        }
        Ok(())
    }

    /// Adds one series.
    pub fn add_series(&mut self, s: &ChunkedSeries) -> Result<(), LimitExceeded> {
        self.add(1, s.num_samples(), s.heap_bytes())
    }
}

/// Bytes charged by reads running in parallel for one selection (one task per block), so that
/// [`ReadLimits::max_bytes`] bounds what they hold together, not each. Charged once per batch
/// of rows, never per sample.
#[derive(Debug, Clone, Default)]
pub struct SharedBytes(Arc<AtomicUsize>);

impl SharedBytes {
    /// Adds `n` bytes; fails once the total is over `max` ([`NO_LIMIT`]: never).
    pub fn charge(&self, n: usize, max: usize) -> Result<(), LimitExceeded> {
        let total = self.0.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        if over(total, max) {
            return Err(LimitExceeded {
                limit: ReadLimit::QueryMemory,
                max: max as u64,
            });
        }
        Ok(())
    }

    /// Bytes charged so far.
    pub fn total(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Checks a count of distinct items (series, label names, label values) against `limit`.
pub fn check_count(n: usize, limit: usize, kind: ReadLimit) -> Result<(), LimitExceeded> {
    if over(n, limit) {
        return Err(LimitExceeded {
            limit: kind,
            max: limit as u64,
        });
    }
    Ok(())
}

/// Estimated heap bytes of a label set.
pub fn labels_heap_bytes(l: &Labels) -> usize {
    std::mem::size_of::<Labels>()
        + l.iter()
            .map(|x| std::mem::size_of::<Label>() + x.name.len() + x.value.len())
            .sum::<usize>()
}

/// Estimated heap bytes of an encoded chunk held by a query (its data, the `Arc` counts and
/// the descriptor).
pub fn chunk_heap_bytes(c: &EncodedChunk) -> usize {
    std::mem::size_of::<EncodedChunk>() + 2 * std::mem::size_of::<usize>() + c.data.len()
}

/// Estimated heap bytes of `n` decoded samples.
pub fn samples_heap_bytes(n: usize) -> usize {
    n.saturating_mul(std::mem::size_of::<Sample>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Series;

    fn series(n: usize) -> ChunkedSeries {
        ChunkedSeries::Samples(Series {
            labels: Labels::from_pairs([("__name__", "x")]),
            samples: (0..n as i64).map(|t| Sample::new(t, 1.0)).collect(),
        })
    }

    #[test]
    fn each_limit_names_its_setting_once_exceeded() {
        let limits = ReadLimits {
            max_series: 2,
            ..Default::default()
        };
        let mut t = limits.tally();
        t.add_series(&series(1)).unwrap();
        t.add_series(&series(1)).unwrap();
        let e = t.add_series(&series(1)).unwrap_err();
        assert_eq!(e.limit, ReadLimit::Series);
        assert_eq!(e.max, 2);
        assert!(
            e.to_string().contains("querier.max_series_per_request"),
            "{e}"
        );

        let limits = ReadLimits {
            max_samples: 10,
            ..Default::default()
        };
        assert!(limits.check(&[series(10)]).is_ok());
        let e = limits.check(&[series(5), series(6)]).unwrap_err();
        assert_eq!(e.limit, ReadLimit::Samples);
        assert!(
            e.to_string().contains("querier.max_samples_per_read"),
            "{e}"
        );

        let one = series(100);
        let limits = ReadLimits {
            max_bytes: one.heap_bytes(),
            ..Default::default()
        };
        assert!(limits.check(std::slice::from_ref(&one)).is_ok());
        let e = limits.check(&[one.clone(), series(1)]).unwrap_err();
        assert_eq!(e.limit, ReadLimit::QueryMemory);
        assert!(
            e.to_string().contains("querier.max_query_memory_bytes"),
            "{e}"
        );
    }

    #[test]
    fn zero_means_no_limit() {
        let many: Vec<ChunkedSeries> = (0..100).map(|_| series(100)).collect();
        assert!(ReadLimits::default().check(&many).is_ok());
        assert!(check_count(usize::MAX, NO_LIMIT, ReadLimit::LabelNames).is_ok());
        let e = check_count(4, 3, ReadLimit::LabelValues).unwrap_err();
        assert!(e.to_string().contains("more than 3 label values"), "{e}");
        assert!(
            e.to_string()
                .contains("querier.max_label_values_per_request"),
            "{e}"
        );
    }

    #[test]
    fn shared_bytes_bound_the_sum_of_parallel_reads() {
        let shared = SharedBytes::default();
        let other = shared.clone();
        shared.charge(600, 1000).unwrap();
        let e = other.charge(600, 1000).unwrap_err();
        assert_eq!((e.limit, e.max), (ReadLimit::QueryMemory, 1000));
        assert_eq!(shared.total(), 1200);
        assert!(SharedBytes::default().charge(usize::MAX, NO_LIMIT).is_ok());
    }

    #[test]
    fn limit_names_round_trip() {
        for l in ReadLimit::ALL {
            assert_eq!(ReadLimit::from_name(l.as_str()), Some(l));
        }
        assert_eq!(ReadLimit::from_name("nope"), None);
    }
}
