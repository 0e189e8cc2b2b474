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
    let mut resp = pb::ReadResponse::default();
    let mut samples_total = 0usize;
    for (matchers, start, end) in &selections {
        let series = q.store.select(&tenant, matchers, *start, *end).await?;
        let mut result = pb::QueryResult::default();
        for s in series {
            samples_total += s.samples.len();
            if samples_total > q.cfg.max_samples_per_read {
                return Err(ApiError::Execution(format!(
                    "remote read would return more than {} samples (querier.max_samples_per_read)",
                    q.cfg.max_samples_per_read
                )));
            }
            result.timeseries.push(pb::TimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|l| pb::Label {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
                samples: s
                    .samples
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
