//! A decoded write request whose strings borrow from the request body.
//!
//! Flat vectors instead of one `Vec` per series keep a 2,000-series request at a handful of
//! allocations; ranges tie each series to its labels and samples.

use crate::Sample;
use std::ops::Range;

/// One series of a [`WriteBatch`]: index ranges into the batch's flat vectors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesEntry {
    pub labels: Range<u32>,
    pub samples: Range<u32>,
    /// Native-histogram samples the sender included (not stored yet; reported as rejected).
    pub histograms: u32,
    /// Exemplars the sender included (not stored yet).
    pub exemplars: u32,
}

/// Metric type carried by remote-write metadata, as in the Prometheus API's `type` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    Unknown,
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
}

impl MetricType {
    /// Maps the numeric enum shared by remote write 1.0 and 2.0 (0 = unknown/unspecified).
    pub fn from_wire(v: u64) -> Self {
        match v {
            1 => Self::Counter,
            2 => Self::Gauge,
            3 => Self::Histogram,
            4 => Self::GaugeHistogram,
            5 => Self::Summary,
            6 => Self::Info,
            7 => Self::StateSet,
            _ => Self::Unknown,
        }
    }

    /// The lower-case name the Prometheus HTTP API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
            Self::GaugeHistogram => "gaugehistogram",
            Self::Summary => "summary",
            Self::Info => "info",
            Self::StateSet => "stateset",
        }
    }
}

/// Metadata of one metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata<'a> {
    pub family: &'a str,
    pub metric_type: MetricType,
    pub help: &'a str,
    pub unit: &'a str,
}

/// A decoded write request.
#[derive(Debug, Default)]
pub struct WriteBatch<'a> {
    pub labels: Vec<(&'a str, &'a str)>,
    pub samples: Vec<Sample>,
    pub series: Vec<SeriesEntry>,
    pub metadata: Vec<MetricMetadata<'a>>,
}

impl<'a> WriteBatch<'a> {
    pub fn clear(&mut self) {
        self.labels.clear();
        self.samples.clear();
        self.series.clear();
        self.metadata.clear();
    }

    /// Labels of series `i`.
    #[inline]
    pub fn series_labels(&self, i: usize) -> &[(&'a str, &'a str)] {
        let r = &self.series[i].labels;
        &self.labels[r.start as usize..r.end as usize]
    }

    /// Samples of series `i`.
    #[inline]
    pub fn series_samples(&self, i: usize) -> &[Sample] {
        let r = &self.series[i].samples;
        &self.samples[r.start as usize..r.end as usize]
    }

    /// Total float samples in the batch.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }

    /// Removes label `name` from every series (the HA tracker's replica label).
    pub fn remove_label(&mut self, name: &str) {
        if !self.labels.iter().any(|(n, _)| *n == name) {
            return;
        }
        let mut labels = Vec::with_capacity(self.labels.len());
        for s in &mut self.series {
            let start = labels.len() as u32;
            labels.extend(
                self.labels[s.labels.start as usize..s.labels.end as usize]
                    .iter()
                    .filter(|(n, _)| *n != name)
                    .copied(),
            );
            s.labels = start..labels.len() as u32;
        }
        self.labels = labels;
    }

    /// Appends a series from owned parts; used by tests and non-hot paths.
    pub fn push_series(&mut self, labels: &[(&'a str, &'a str)], samples: &[Sample]) {
        let l0 = self.labels.len() as u32;
        self.labels.extend_from_slice(labels);
        let s0 = self.samples.len() as u32;
        self.samples.extend_from_slice(samples);
        self.series.push(SeriesEntry {
            labels: l0..self.labels.len() as u32,
            samples: s0..self.samples.len() as u32,
            histograms: 0,
            exemplars: 0,
        });
    }
}

#[cfg(test)]
mod remove_label_tests {
    use super::*;

    #[test]
    fn removes_the_label_from_every_series_only() {
        let mut b = WriteBatch::default();
        b.push_series(&[("__name__", "a"), ("__replica__", "r1"), ("x", "1")], &[]);
        b.push_series(&[("__name__", "b")], &[Sample::new(1, 1.0)]);
        b.push_series(&[("__replica__", "r1"), ("y", "2")], &[]);
        b.remove_label("__replica__");
        assert_eq!(b.series_labels(0), &[("__name__", "a"), ("x", "1")]);
        assert_eq!(b.series_labels(1), &[("__name__", "b")]);
        assert_eq!(b.series_labels(2), &[("y", "2")]);
        assert_eq!(b.series_samples(1), &[Sample::new(1, 1.0)]);
    }
}
