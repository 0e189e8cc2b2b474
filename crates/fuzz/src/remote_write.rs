//! `remote_write_v1` and `remote_write_v2`: a decompressed remote-write body through the
//! zero-copy decoder (`strata_proto::decode`), then what the distributor does with a decoded
//! batch: Mimir-style validation and the re-encoding sent to each ingester.
//!
//! Oracles: when prost (the reference decoder) also accepts the body, both must see the same
//! series and samples; a decoded batch re-encoded as 1.0 must decode to the same batch, before
//! and after validation; `encoded_len` must be exact.

use prost::Message;
use strata_distributor::validation::validate_batch;
use strata_model::{Limits, WriteBatch};
use strata_proto::decode::{decode_write_request_v1, decode_write_request_v2};
use strata_proto::encode::{encode_write_request_v1, encoded_len};
use strata_proto::{prometheus as pb1, write_v2 as pb2};
use strata_storage::PushOutcome;

/// "Now" for validation: fixed so that a run is reproducible (2023-11-14T22:13:20Z).
const NOW_MS: i64 = 1_700_000_000_000;

/// Body of the `remote_write_v1` target: `data` is an uncompressed `prometheus.WriteRequest`.
pub fn v1(data: &[u8]) {
    let mut batch = WriteBatch::default();
    if decode_write_request_v1(data, &mut batch).is_err() {
        return;
    }
    if let Ok(reference) = pb1::WriteRequest::decode(data) {
        let want: Vec<SeriesView> = reference
            .timeseries
            .iter()
            .map(|ts| SeriesView {
                labels: ts
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect(),
                samples: ts
                    .samples
                    .iter()
                    .map(|s| (s.timestamp, s.value.to_bits()))
                    .collect(),
            })
            .collect();
        assert_eq!(view(&batch), want, "the decoder and prost disagree");
        assert_eq!(batch.metadata.len(), reference.metadata.len());
    }
    after_decode(batch);
}

/// Body of the `remote_write_v2` target: `data` is an uncompressed
/// `io.prometheus.write.v2.Request`.
pub fn v2(data: &[u8]) {
    let mut batch = WriteBatch::default();
    if decode_write_request_v2(data, &mut batch).is_err() {
        return;
    }
    if let Ok(reference) = pb2::Request::decode(data) {
        let sym = |i: u32| reference.symbols[i as usize].clone();
        let want: Vec<SeriesView> = reference
            .timeseries
            .iter()
            .map(|ts| SeriesView {
                // Our decoder accepted the body, so every reference is in range.
                labels: ts
                    .labels_refs
                    .chunks_exact(2)
                    .map(|p| (sym(p[0]), sym(p[1])))
                    .collect(),
                samples: ts
                    .samples
                    .iter()
                    .map(|s| (s.timestamp, s.value.to_bits()))
                    .collect(),
            })
            .collect();
        assert_eq!(view(&batch), want, "the decoder and prost disagree");
    }
    after_decode(batch);
}

#[derive(Debug, PartialEq)]
struct SeriesView {
    labels: Vec<(String, String)>,
    samples: Vec<(i64, u64)>,
}

fn view(b: &WriteBatch<'_>) -> Vec<SeriesView> {
    (0..b.series.len())
        .map(|i| SeriesView {
            labels: b
                .series_labels(i)
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
            samples: b
                .series_samples(i)
                .iter()
                .map(|s| (s.t, s.v.to_bits()))
                .collect(),
        })
        .collect()
}

/// The distributor's steps after decoding, with the round-trip checks.
fn after_decode(mut batch: WriteBatch<'_>) {
    round_trip(&batch, 0..batch.series.len());
    let mut outcome = PushOutcome::default();
    let mut discarded = 0u64;
    validate_batch(
        &mut batch,
        &Limits::default(),
        NOW_MS,
        &mut outcome,
        |_, n| discarded += n,
    );
    assert_eq!(
        discarded, outcome.samples_rejected,
        "every rejected sample is counted once"
    );
    // What replication sends to ingesters: the series that kept samples.
    let valid: Vec<usize> = (0..batch.series.len())
        .filter(|&i| !batch.series_samples(i).is_empty())
        .collect();
    round_trip(&batch, valid);
}

/// Re-encodes `series` of `batch` (with its metadata) and checks that it decodes back to the
/// same labels, samples and metadata.
fn round_trip(batch: &WriteBatch<'_>, series: impl IntoIterator<Item = usize> + Clone) {
    let mut wire = Vec::new();
    encode_write_request_v1(batch, series.clone(), false, &mut wire);
    assert_eq!(
        wire.len(),
        encoded_len(batch, series.clone()),
        "encoded_len"
    );
    encode_write_request_v1(batch, std::iter::empty(), true, &mut wire);
    let mut again = WriteBatch::default();
    if let Err(e) = decode_write_request_v1(&wire, &mut again) {
        panic!("a re-encoded batch does not decode: {e}");
    }
    let picked: Vec<usize> = series.into_iter().collect();
    assert_eq!(again.series.len(), picked.len());
    for (j, &i) in picked.iter().enumerate() {
        assert_eq!(again.series_labels(j), batch.series_labels(i));
        let bits = |s: &[strata_model::Sample]| -> Vec<(i64, u64)> {
            s.iter().map(|x| (x.t, x.v.to_bits())).collect()
        };
        assert_eq!(bits(again.series_samples(j)), bits(batch.series_samples(i)));
    }
    assert_eq!(again.metadata, batch.metadata);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_request_passes_every_check() {
        let req = pb1::WriteRequest {
            timeseries: vec![pb1::TimeSeries {
                labels: vec![
                    pb1::Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    pb1::Label {
                        name: "job".into(),
                        value: "".into(),
                    },
                ],
                samples: vec![pb1::Sample {
                    value: 1.5,
                    timestamp: NOW_MS,
                }],
                ..Default::default()
            }],
            metadata: vec![pb1::MetricMetadata {
                r#type: 1,
                metric_family_name: "up".into(),
                help: "h".into(),
                unit: String::new(),
            }],
        };
        let body = req.encode_to_vec();
        v1(&body);
        let mut batch = WriteBatch::default();
        decode_write_request_v1(&body, &mut batch).unwrap();
        assert_eq!(
            view(&batch),
            vec![SeriesView {
                labels: vec![("__name__".into(), "up".into()), ("job".into(), "".into())],
                samples: vec![(NOW_MS, 1.5f64.to_bits())],
            }]
        );
        // Validation drops the empty label; the round trip of the survivor still holds.
        after_decode(batch);
    }

    #[test]
    fn garbage_is_refused_quietly() {
        v1(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        v2(&[0x22, 0x01, 0xff]);
        v2(&[0x2a, 0x02, 0x08, 0x07]);
    }
}
