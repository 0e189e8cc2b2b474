//! Encoding a subset of a decoded [`WriteBatch`] back into a remote write 1.0 `WriteRequest`.
//!
//! The distributor sends each ingester only the series whose replica set includes it, so it
//! re-encodes the request once per ingester. Writing the protobuf by hand from the borrowed batch
//! costs a few memcpys per series; building prost messages first would allocate a `String` per
//! label (the cost [`crate::decode`] exists to avoid on the way in).

use strata_model::batch::{MetricMetadata, WriteBatch};

#[inline]
fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn len_field_len(payload: usize) -> usize {
    1 + varint_len(payload as u64) + payload
}

#[inline]
fn put_bytes_field(out: &mut Vec<u8>, key: u8, b: &[u8]) {
    out.push(key);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

#[inline]
fn label_len(name: &str, value: &str) -> usize {
    len_field_len(name.len()) + len_field_len(value.len())
}

#[inline]
fn sample_len(t: i64) -> usize {
    // value: key + fixed64; timestamp: key + varint (omitted when 0, as proto3 does).
    9 + if t == 0 { 0 } else { 1 + varint_len(t as u64) }
}

fn series_len(batch: &WriteBatch<'_>, i: usize) -> usize {
    let mut n = 0;
    for (name, value) in batch.series_labels(i) {
        n += len_field_len(label_len(name, value));
    }
    for s in batch.series_samples(i) {
        n += len_field_len(sample_len(s.t));
    }
    n
}

fn metadata_len(m: &MetricMetadata<'_>) -> usize {
    let ty = metric_type_number(m);
    (if ty == 0 { 0 } else { 1 + varint_len(ty) })
        + opt_str_len(m.family)
        + opt_str_len(m.help)
        + opt_str_len(m.unit)
}

fn opt_str_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        len_field_len(s.len())
    }
}

fn metric_type_number(m: &MetricMetadata<'_>) -> u64 {
    use strata_model::batch::MetricType::*;
    match m.metric_type {
        Unknown => 0,
        Counter => 1,
        Gauge => 2,
        Histogram => 3,
        GaugeHistogram => 4,
        Summary => 5,
        Info => 6,
        StateSet => 7,
    }
}

/// Appends to `out` a `WriteRequest` holding the batch's series `series` (in that order) and,
/// if `with_metadata`, every metadata entry of the batch.
pub fn encode_write_request_v1(
    batch: &WriteBatch<'_>,
    series: impl IntoIterator<Item = usize>,
    with_metadata: bool,
    out: &mut Vec<u8>,
) {
    for i in series {
        out.push(0x0a); // field 1, LEN: TimeSeries
        put_varint(out, series_len(batch, i) as u64);
        for (name, value) in batch.series_labels(i) {
            out.push(0x0a); // TimeSeries.labels
            put_varint(out, label_len(name, value) as u64);
            put_bytes_field(out, 0x0a, name.as_bytes());
            put_bytes_field(out, 0x12, value.as_bytes());
        }
        for s in batch.series_samples(i) {
            out.push(0x12); // TimeSeries.samples
            put_varint(out, sample_len(s.t) as u64);
            out.push(0x09); // Sample.value, fixed64
            out.extend_from_slice(&s.v.to_bits().to_le_bytes());
            if s.t != 0 {
                out.push(0x10); // Sample.timestamp, varint
                put_varint(out, s.t as u64);
            }
        }
    }
    if with_metadata {
        for m in &batch.metadata {
            out.push(0x1a); // field 3, LEN: MetricMetadata
            put_varint(out, metadata_len(m) as u64);
            let ty = metric_type_number(m);
            if ty != 0 {
                out.push(0x08);
                put_varint(out, ty);
            }
            if !m.family.is_empty() {
                put_bytes_field(out, 0x12, m.family.as_bytes());
            }
            if !m.help.is_empty() {
                put_bytes_field(out, 0x22, m.help.as_bytes());
            }
            if !m.unit.is_empty() {
                put_bytes_field(out, 0x2a, m.unit.as_bytes());
            }
        }
    }
}

/// Bytes [`encode_write_request_v1`] will append for these series (without metadata), to size
/// buffers up front.
pub fn encoded_len(batch: &WriteBatch<'_>, series: impl IntoIterator<Item = usize>) -> usize {
    series
        .into_iter()
        .map(|i| len_field_len(series_len(batch, i)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_write_request_v1;
    use prost::Message;
    use strata_model::batch::MetricType;
    use strata_model::Sample;

    fn batch() -> WriteBatch<'static> {
        let mut b = WriteBatch::default();
        b.push_series(
            &[("__name__", "up"), ("job", "node")],
            &[
                Sample::new(1000, 1.0),
                Sample::new(0, -0.0),
                Sample::new(-5, f64::NAN),
            ],
        );
        b.push_series(&[("__name__", "x")], &[]);
        b.push_series(
            &[("__name__", "y"), ("a", "ü".repeat(100).leak())],
            &[Sample::new(i64::MAX, f64::INFINITY)],
        );
        b.metadata.push(MetricMetadata {
            family: "up",
            metric_type: MetricType::Gauge,
            help: "whether the target is up",
            unit: "",
        });
        b
    }

    #[test]
    fn subset_round_trips_through_the_decoder_and_prost() {
        let b = batch();
        let mut out = Vec::new();
        encode_write_request_v1(&b, [2, 0], true, &mut out);
        // Metadata: type (2) + family (2 + 2) + help (2 + 24), framed by key and length.
        let md = 2 + (2 + 2) + (2 + 24);
        assert_eq!(encoded_len(&b, [2, 0]) + 2 + md, out.len());
        let mut d = WriteBatch::default();
        decode_write_request_v1(&out, &mut d).unwrap();
        assert_eq!(d.series.len(), 2);
        assert_eq!(d.series_labels(0), b.series_labels(2));
        assert_eq!(d.series_labels(1), b.series_labels(0));
        let bits = |s: &[Sample]| s.iter().map(|x| (x.t, x.v.to_bits())).collect::<Vec<_>>();
        assert_eq!(bits(d.series_samples(1)), bits(b.series_samples(0)));
        assert_eq!(bits(d.series_samples(0)), bits(b.series_samples(2)));
        assert_eq!(d.metadata, b.metadata);
        // A stock protobuf decoder agrees.
        let w = crate::prometheus::WriteRequest::decode(out.as_slice()).unwrap();
        assert_eq!(w.timeseries.len(), 2);
        assert_eq!(w.timeseries[1].samples[2].timestamp, -5);
        assert_eq!(w.metadata[0].help, "whether the target is up");
    }

    #[test]
    fn empty_selection_encodes_nothing() {
        let mut out = Vec::new();
        encode_write_request_v1(&batch(), [], false, &mut out);
        assert!(out.is_empty());
    }

    type OwnedSeries = (Vec<(String, String)>, Vec<Sample>);

    proptest::proptest! {
        #[test]
        fn any_batch_round_trips(
            series in proptest::collection::vec(
                (proptest::collection::vec(("[a-z_]{1,8}", "\\PC{0,12}"), 0..5),
                 proptest::collection::vec((proptest::num::i64::ANY, proptest::num::f64::ANY), 0..4)),
                0..6)
        ) {
            let mut b = WriteBatch::default();
            let owned: Vec<OwnedSeries> = series
                .iter()
                .map(|(l, s)| (l.clone(), s.iter().map(|&(t, v)| Sample::new(t, v)).collect()))
                .collect();
            let refs: Vec<Vec<(&str, &str)>> = owned
                .iter()
                .map(|(l, _)| l.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect())
                .collect();
            for (i, (_, s)) in owned.iter().enumerate() {
                b.push_series(&refs[i], s);
            }
            let mut out = Vec::new();
            encode_write_request_v1(&b, 0..b.series.len(), false, &mut out);
            proptest::prop_assert_eq!(out.len(), encoded_len(&b, 0..b.series.len()));
            let mut d = WriteBatch::default();
            decode_write_request_v1(&out, &mut d).unwrap();
            proptest::prop_assert_eq!(d.series.len(), b.series.len());
            for i in 0..b.series.len() {
                proptest::prop_assert_eq!(d.series_labels(i), b.series_labels(i));
                let got: Vec<(i64, u64)> = d.series_samples(i).iter().map(|x| (x.t, x.v.to_bits())).collect();
                let want: Vec<(i64, u64)> = b.series_samples(i).iter().map(|x| (x.t, x.v.to_bits())).collect();
                proptest::prop_assert_eq!(got, want);
            }
        }
    }
}
