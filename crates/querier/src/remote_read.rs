//! Prometheus remote read (`POST /api/v1/read`) with the SAMPLES response type: a Prometheus
//! configured with `remote_read` reads Strata's data back.

use crate::api::Querier;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;
use std::sync::Arc;
use strata_model::{MatchOp, Matcher};
use strata_proto::prometheus as pb;
use strata_storage::{LimitExceeded, QueryError, ReadLimit, ReadLimits, SelectHints, NO_LIMIT};

fn convert(m: &pb::LabelMatcher) -> Result<Matcher, ApiError> {
    let op = match pb::label_matcher::Type::try_from(m.r#type) {
        Ok(pb::label_matcher::Type::Eq) => MatchOp::Equal,
        Ok(pb::label_matcher::Type::Neq) => MatchOp::NotEqual,
        Ok(pb::label_matcher::Type::Re) => MatchOp::RegexMatch,
        Ok(pb::label_matcher::Type::Nre) => MatchOp::RegexNoMatch,
        Err(_) => {
            return Err(ApiError::BadData(format!(
                "unknown matcher type {}",
                m.r#type
            )))
        }
    };
    Matcher::new(op, m.name.clone(), m.value.clone()).map_err(|e| ApiError::BadData(e.to_string()))
}

async fn read(q: &Querier, headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let tenant = q.tenant(headers)?;
    let not_snappy = |e| ApiError::BadData(format!("body is not snappy block-format data: {e}"));
    // The size the body claims, checked before the buffer for it is allocated.
    let limit = q.cfg.max_request_body_bytes;
    let claimed = snap::raw::decompress_len(body).map_err(not_snappy)?;
    if claimed > limit {
        return Err(ApiError::BadData(format!(
            "remote read request decompresses to {claimed} bytes, more than {limit} (querier.max_request_body_bytes)"
        )));
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(not_snappy)?;
    let req = pb::ReadRequest::decode(raw.as_slice())
        .map_err(|e| ApiError::BadData(format!("body is not a prometheus.ReadRequest: {e}")))?;
    // Every query is checked before any is run: one that selects everything (no matcher, or
    // only matchers the empty string satisfies) is refused, as Prometheus does.
    let mut selections = Vec::with_capacity(req.queries.len());
    for (i, query) in req.queries.iter().enumerate() {
        let matchers = query
            .matchers
            .iter()
            .map(convert)
            .collect::<Result<Vec<_>, _>>()?;
        if matchers.iter().all(Matcher::matches_empty) {
            return Err(ApiError::BadData(format!(
                "queries[{i}]: match[] must contain at least one non-empty matcher"
            )));
        }
        selections.push((matchers, query.start_timestamp_ms, query.end_timestamp_ms));
    }
    let (max_series, max_samples) = (q.cfg.max_series_per_request, q.cfg.max_samples_per_read);
    let configured = ReadLimits {
        max_series,
        max_samples,
        max_bytes: NO_LIMIT,
    };
    // The limits hold for the whole request: each query may take what the ones before it left.
    let mut tally = configured.tally();
    let mut resp = pb::ReadResponse::default();
    let mut buf = Vec::new();
    for (matchers, start, end) in &selections {
        let (start, end) = (*start, *end);
        let left = |max: usize, used: usize| max.saturating_sub(used).max(1);
        let hints = SelectHints {
            limits: ReadLimits {
                max_series: left(max_series, tally.series),
                max_samples: left(max_samples, tally.samples),
                max_bytes: NO_LIMIT,
            },
            ..SelectHints::default()
        };
        let series = match q
            .store
            .select_chunks_hinted(&tenant, matchers, start, end, &hints)
            .await
        {
            Ok(s) => s,
            // The store names what was left; the user set the whole.
            Err(QueryError::LimitExceeded(l)) => {
                let max = match l.limit {
                    ReadLimit::Series => max_series,
                    ReadLimit::Samples => max_samples,
                    _ => return Err(QueryError::LimitExceeded(l).into()),
                };
                return Err(QueryError::LimitExceeded(LimitExceeded {
                    limit: l.limit,
                    max: max as u64,
                })
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        let mut result = pb::QueryResult::default();
        for s in series {
            buf.clear();
            s.decode_into(start, end, &mut buf);
            if buf.is_empty() {
                continue;
            }
            // Exact counts of what is sent (the stores counted whole chunks).
            tally
                .add(1, buf.len(), 0)
                .map_err(QueryError::LimitExceeded)?;
            result.timeseries.push(pb::TimeSeries {
                labels: s
                    .labels()
                    .iter()
                    .map(|l| pb::Label {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
                samples: buf
                    .iter()
                    .map(|x| pb::Sample {
                        value: x.v,
                        timestamp: x.t,
                    })
                    .collect(),
                ..Default::default()
            });
        }
        resp.results.push(result);
    }
    snap::raw::Encoder::new()
        .compress_vec(&resp.encode_to_vec())
        .map_err(|e| ApiError::Execution(format!("snappy encoding failed: {e}")))
}

pub async fn handler(State(q): State<Arc<Querier>>, headers: HeaderMap, body: Bytes) -> Response {
    match read(&q, &headers, &body).await {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/x-protobuf"),
                (header::CONTENT_ENCODING, "snappy"),
            ],
            bytes,
        )
            .into_response(),
        // Remote-read clients print the body; plain text reads better there than JSON.
        Err(e) => {
            let msg = format!("remote read failed: {e}\n");
            let status = e.into_response().status();
            (status, msg).into_response()
        }
    }
}
