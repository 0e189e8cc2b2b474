//! Between the storage crate's types and their protobuf messages, and between errors and gRPC
//! statuses (the code carries what the caller needs: retry, bad request, limit).

// These helpers feed tonic handlers, whose error type is `tonic::Status` anyway; boxing it here
// would only add an allocation on the error path.
#![allow(clippy::result_large_err)]

use crate::error::RemoteStatus;
use crate::pb::ingester::v1 as pbi;
use crate::pb::query::v1 as pb;
use std::sync::Arc;
use strata_model::{Label, Labels, MatchOp, Matcher, Sample, TenantId};
use strata_storage::chunk::XorAppender;
use strata_storage::{
    ChunkedSeries, EncodedChunk, LimitExceeded, PushError, PushOutcome, QueryError, ReadLimit,
    ReadLimits, Rejection, RejectionKind, SelectHints, SeriesPart,
};
use tonic::{Code, Status};

/// Samples per chunk when a series arrives decoded (from blocks) and is sent compressed.
const SAMPLES_PER_CHUNK: u16 = 120;

pub fn tenant(id: &str) -> Result<TenantId, Status> {
    TenantId::new(id).map_err(|e| Status::invalid_argument(e.to_string()))
}

/// Block ids as sent: 16-byte ULIDs.
pub fn block_ids_to_pb(ids: &[ulid::Ulid]) -> Vec<Vec<u8>> {
    ids.iter().map(|u| u.to_bytes().to_vec()).collect()
}

/// Block ids as received; an id that is not 16 bytes is named by its field and position.
pub fn block_ids_from_pb(ids: Vec<Vec<u8>>, field: &str) -> Result<Vec<ulid::Ulid>, String> {
    ids.into_iter()
        .enumerate()
        .map(|(i, b)| {
            <[u8; 16]>::try_from(b.as_slice())
                .map(ulid::Ulid::from_bytes)
                .map_err(|_| format!("{field}[{i}]: {} bytes, a block id has 16", b.len()))
        })
        .collect()
}

pub fn matchers_to_pb(ms: &[Matcher]) -> Vec<pb::Matcher> {
    ms.iter()
        .map(|m| pb::Matcher {
            r#type: match m.op {
                MatchOp::Equal => pb::matcher::Type::Eq,
                MatchOp::NotEqual => pb::matcher::Type::Neq,
                MatchOp::RegexMatch => pb::matcher::Type::Re,
                MatchOp::RegexNoMatch => pb::matcher::Type::Nre,
            } as i32,
            name: m.name.clone(),
            value: m.value.clone(),
        })
        .collect()
}

pub fn matchers_from_pb(ms: Vec<pb::Matcher>) -> Result<Vec<Matcher>, Status> {
    ms.into_iter()
        .map(|m| {
            let op = match pb::matcher::Type::try_from(m.r#type) {
                Ok(pb::matcher::Type::Eq) => MatchOp::Equal,
                Ok(pb::matcher::Type::Neq) => MatchOp::NotEqual,
                Ok(pb::matcher::Type::Re) => MatchOp::RegexMatch,
                Ok(pb::matcher::Type::Nre) => MatchOp::RegexNoMatch,
                Err(_) => {
                    return Err(Status::invalid_argument(format!(
                        "unknown matcher type {}",
                        m.r#type
                    )))
                }
            };
            Matcher::new(op, m.name, m.value).map_err(|e| Status::invalid_argument(e.to_string()))
        })
        .collect()
}

pub fn hints_to_pb(h: &SelectHints) -> pb::SelectHints {
    pb::SelectHints {
        max_resolution_ms: h.max_resolution_ms,
        func: h.func.clone().unwrap_or_default(),
        range_ms: h.range_ms,
        step_ms: h.step_ms,
    }
}

pub fn hints_from_pb(h: Option<pb::SelectHints>) -> SelectHints {
    let h = h.unwrap_or_default();
    SelectHints {
        max_resolution_ms: h.max_resolution_ms,
        func: (!h.func.is_empty()).then_some(h.func),
        range_ms: h.range_ms,
        step_ms: h.step_ms,
        // Limits travel beside the hints (`SelectRequest.limits`).
        limits: ReadLimits::default(),
    }
}

/// A count from the wire: values beyond this machine's `usize` are as good as no limit.
pub fn count_from_pb(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

pub fn limits_to_pb(l: &ReadLimits) -> pb::ReadLimits {
    pb::ReadLimits {
        max_series: l.max_series as u64,
        max_samples: l.max_samples as u64,
        max_bytes: l.max_bytes as u64,
    }
}

pub fn limits_from_pb(l: Option<pb::ReadLimits>) -> ReadLimits {
    let l = l.unwrap_or_default();
    ReadLimits {
        max_series: count_from_pb(l.max_series),
        max_samples: count_from_pb(l.max_samples),
        max_bytes: count_from_pb(l.max_bytes),
    }
}

pub fn labels_to_pb(l: &Labels) -> Vec<pb::LabelPair> {
    l.iter()
        .map(|l| pb::LabelPair {
            name: l.name.clone(),
            value: l.value.clone(),
        })
        .collect()
}

/// Labels from the wire, re-sorted and de-duplicated: a peer's bytes are not trusted to keep
/// the invariant every merge relies on.
pub fn labels_from_pb(l: Vec<pb::LabelPair>) -> Labels {
    let sorted = l.windows(2).all(|w| w[0].name < w[1].name);
    if sorted {
        Labels::from_sorted(
            l.into_iter()
                .map(|p| Label {
                    name: p.name,
                    value: p.value,
                })
                .collect(),
        )
    } else {
        Labels::from_pairs(l.into_iter().map(|p| (p.name, p.value)))
    }
}

/// A series as sent on the wire: always compressed chunks (decoded runs are encoded again).
pub fn series_to_pb(s: ChunkedSeries) -> pb::StreamSeries {
    let (labels, parts) = s.into_parts();
    let mut chunks = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            SeriesPart::Chunk(c) => chunks.push(pb::Chunk {
                min_t: c.min_t,
                max_t: c.max_t,
                data: bytes::Bytes::copy_from_slice(&c.data),
            }),
            SeriesPart::Samples(samples) => encode_samples(&samples, &mut chunks),
        }
    }
    pb::StreamSeries {
        labels: labels_to_pb(&labels),
        chunks,
    }
}

/// Encodes time-sorted samples as chunks of at most [`SAMPLES_PER_CHUNK`].
fn encode_samples(samples: &[Sample], chunks: &mut Vec<pb::Chunk>) {
    let mut app = XorAppender::new();
    let mut min_t = 0;
    for x in samples {
        if app.is_empty() {
            min_t = x.t;
        }
        app.append(x.t, x.v);
        if app.len() >= SAMPLES_PER_CHUNK {
            let max_t = app.last_t();
            let full = std::mem::replace(&mut app, XorAppender::new());
            chunks.push(pb::Chunk {
                min_t,
                max_t,
                data: bytes::Bytes::from(full.into_bytes().into_vec()),
            });
        }
    }
    if !app.is_empty() {
        chunks.push(pb::Chunk {
            min_t,
            max_t: app.last_t(),
            data: bytes::Bytes::from(app.into_bytes().into_vec()),
        });
    }
}

pub fn series_from_pb(s: pb::StreamSeries) -> ChunkedSeries {
    ChunkedSeries::Chunks {
        labels: labels_from_pb(s.labels),
        chunks: s
            .chunks
            .into_iter()
            .map(|c| EncodedChunk {
                min_t: c.min_t,
                max_t: c.max_t,
                data: Arc::from(c.data.as_ref()),
            })
            .collect(),
    }
}

fn kind_to_pb(k: RejectionKind) -> pbi::RejectionKind {
    match k {
        RejectionKind::BadData => pbi::RejectionKind::BadData,
        RejectionKind::Limit => pbi::RejectionKind::Limit,
    }
}

fn kind_from_pb(k: i32) -> RejectionKind {
    match pbi::RejectionKind::try_from(k) {
        Ok(pbi::RejectionKind::Limit) => RejectionKind::Limit,
        _ => RejectionKind::BadData,
    }
}

/// Reasons are short stable ids used as metric labels; an id from a newer peer that this build
/// does not know is reported under a generic one.
fn static_reason(r: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "sample-out-of-order",
        "sample-duplicate-timestamp",
        "sample-out-of-bounds",
        "max-series-per-tenant",
    ];
    KNOWN
        .iter()
        .find(|k| **k == r)
        .copied()
        .unwrap_or("rejected-by-ingester")
}

pub fn outcome_to_pb(o: PushOutcome) -> pbi::PushResponse {
    let (rejected_series, rejected_kinds) = o
        .rejected_series
        .iter()
        .map(|&(i, k)| (i, kind_to_pb(k) as i32))
        .unzip();
    pbi::PushResponse {
        samples_written: o.samples_written,
        samples_rejected: o.samples_rejected,
        first_rejection: o.first_rejection.map(|r| pbi::Rejection {
            kind: kind_to_pb(r.kind) as i32,
            reason: r.reason.to_owned(),
            message: r.message,
        }),
        rejected_series,
        rejected_kinds,
    }
}

pub fn outcome_from_pb(r: pbi::PushResponse) -> PushOutcome {
    PushOutcome {
        samples_written: r.samples_written,
        samples_rejected: r.samples_rejected,
        first_rejection: r.first_rejection.map(|j| Rejection {
            kind: kind_from_pb(j.kind),
            reason: static_reason(&j.reason),
            message: j.message,
        }),
        rejected_series: r
            .rejected_series
            .iter()
            .zip(r.rejected_kinds.iter().chain(std::iter::repeat(&0)))
            .map(|(&i, &k)| (i, kind_from_pb(k)))
            .collect(),
    }
}

/// The full error chain in one line, for a status message.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let m = s.to_string();
        if !msg.contains(&m) {
            msg.push_str(": ");
            msg.push_str(&m);
        }
        src = s.source();
    }
    msg
}

pub fn push_error_to_status(e: &PushError) -> Status {
    let code = match e {
        PushError::Unavailable(..) | PushError::Remote { .. } | PushError::Quorum { .. } => {
            Code::Unavailable
        }
        PushError::InvalidRequest(_) => Code::InvalidArgument,
        PushError::Wal(_) => Code::Internal,
    };
    Status::new(code, chain(e))
}

pub fn status_to_push_error(target: &str, s: Status) -> PushError {
    match s.code() {
        Code::InvalidArgument => PushError::InvalidRequest(Box::new(RemoteStatus::from(s))),
        _ => PushError::Remote {
            target: target.to_owned(),
            source: Box::new(RemoteStatus::from(s)),
        },
    }
}

/// gRPC metadata keys carrying which limit a read exceeded, and its value.
const LIMIT_KEY: &str = "strata-limit";
const LIMIT_MAX_KEY: &str = "strata-limit-max";

pub fn query_error_to_status(e: &QueryError) -> Status {
    if let QueryError::LimitExceeded(l) = e {
        let mut s = Status::new(Code::ResourceExhausted, l.to_string());
        let md = s.metadata_mut();
        md.insert(
            LIMIT_KEY,
            tonic::metadata::MetadataValue::from_static(l.limit.as_str()),
        );
        md.insert(LIMIT_MAX_KEY, tonic::metadata::MetadataValue::from(l.max));
        return s;
    }
    let code = match e {
        QueryError::BadData(_) => Code::InvalidArgument,
        QueryError::LimitExceeded(_) => Code::ResourceExhausted,
        QueryError::Unavailable(_) | QueryError::Remote { .. } | QueryError::Incomplete(_) => {
            Code::Unavailable
        }
        QueryError::Storage(_) => Code::Internal,
    };
    // Bad-data messages are shown to the user as they are; the variant's prefix is added again
    // on the calling side.
    let msg = match e {
        QueryError::BadData(m) => m.clone(),
        _ => chain(e),
    };
    Status::new(code, msg)
}

/// The limit a peer's status reports, if it is one this build knows.
fn limit_from_status(s: &Status) -> Option<LimitExceeded> {
    let md = s.metadata();
    let limit = ReadLimit::from_name(md.get(LIMIT_KEY)?.to_str().ok()?)?;
    let max = md.get(LIMIT_MAX_KEY)?.to_str().ok()?.parse().ok()?;
    Some(LimitExceeded { limit, max })
}

pub fn status_to_query_error(target: &str, s: Status) -> QueryError {
    if s.code() == Code::ResourceExhausted {
        if let Some(l) = limit_from_status(&s) {
            return QueryError::LimitExceeded(l);
        }
    }
    match s.code() {
        Code::InvalidArgument => QueryError::BadData(s.message().to_owned()),
        _ => QueryError::Remote {
            target: target.to_owned(),
            source: Box::new(RemoteStatus::from(s)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::Sample;
    use strata_storage::Series;

    #[test]
    fn decoded_series_travel_as_chunks_and_decode_back() {
        let samples: Vec<Sample> = (0..300)
            .map(|i| Sample::new(1000 * i, (i as f64).sqrt()))
            .collect();
        let labels = Labels::from_pairs([("__name__", "x"), ("a", "b")]);
        let pbs = series_to_pb(ChunkedSeries::Samples(Series {
            labels: labels.clone(),
            samples: samples.clone(),
        }));
        assert_eq!(pbs.chunks.len(), 3);
        assert_eq!(pbs.chunks[0].max_t, 119_000);
        assert_eq!(pbs.chunks[2].min_t, 240_000);
        let back = series_from_pb(pbs);
        assert_eq!(back.labels(), &labels);
        let mut out = Vec::new();
        back.decode_into(i64::MIN, i64::MAX, &mut out);
        assert_eq!(out, samples);
    }

    #[test]
    fn unsorted_labels_from_a_peer_are_sorted() {
        let l = labels_from_pb(vec![
            pb::LabelPair {
                name: "b".into(),
                value: "1".into(),
            },
            pb::LabelPair {
                name: "a".into(),
                value: "2".into(),
            },
        ]);
        assert_eq!(l, Labels::from_pairs([("a", "2"), ("b", "1")]));
    }

    #[test]
    fn matchers_round_trip_and_bad_regex_is_invalid_argument() {
        let ms = vec![
            Matcher::equal("__name__", "up"),
            Matcher::new(MatchOp::RegexNoMatch, "job", "a|b").unwrap(),
        ];
        assert_eq!(matchers_from_pb(matchers_to_pb(&ms)).unwrap(), ms);
        let bad = vec![pb::Matcher {
            r#type: pb::matcher::Type::Re as i32,
            name: "x".into(),
            value: "(".into(),
        }];
        assert_eq!(
            matchers_from_pb(bad).unwrap_err().code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn outcome_round_trips() {
        let mut o = PushOutcome {
            samples_written: 5,
            ..Default::default()
        };
        o.reject(2, || Rejection {
            kind: RejectionKind::Limit,
            reason: "max-series-per-tenant",
            message: "limit".into(),
        });
        o.rejected_series = vec![(3, RejectionKind::Limit), (7, RejectionKind::BadData)];
        assert_eq!(outcome_from_pb(outcome_to_pb(o.clone())), o);
    }

    #[test]
    fn errors_keep_their_meaning_across_the_wire() {
        for limit in ReadLimit::ALL {
            let sent = LimitExceeded { limit, max: 42 };
            let s = query_error_to_status(&QueryError::LimitExceeded(sent));
            assert_eq!(s.code(), Code::ResourceExhausted);
            let e = status_to_query_error("ingester-1", s);
            assert!(
                matches!(e, QueryError::LimitExceeded(got) if got == sent),
                "{e}"
            );
        }
        // A resource-exhausted status without a known limit (another kind of server) stays a
        // remote failure naming the peer.
        let e = status_to_query_error("ingester-1", Status::resource_exhausted("busy"));
        assert!(
            matches!(e, QueryError::Remote { ref target, .. } if target == "ingester-1"),
            "{e}"
        );
        let limits = ReadLimits {
            max_series: 1,
            max_samples: 2,
            max_bytes: 3,
        };
        assert_eq!(limits_from_pb(Some(limits_to_pb(&limits))), limits);
        assert_eq!(limits_from_pb(None), ReadLimits::default());
        let s = push_error_to_status(&PushError::Unavailable("ingester", "shutting down"));
        let e = status_to_push_error("ingester-1", s);
        assert!(e.to_string().contains("ingester-1"), "{e}");
        assert!(e.to_string().contains("shutting down"), "{e}");
    }
}
