//! The read half shared by the ingester and store-gateway services: a `Queryable` served over
//! gRPC, and a client that is a `Queryable` again.

use crate::convert::{
    count_from_pb, hints_from_pb, hints_to_pb, labels_from_pb, labels_to_pb, limits_from_pb,
    limits_to_pb, matchers_from_pb, matchers_to_pb, query_error_to_status, series_from_pb,
    series_to_pb, status_to_query_error, tenant,
};
use crate::pb::query::v1 as pb;
use futures::{Stream, StreamExt};
use std::pin::Pin;
use std::time::Duration;
use strata_model::{Labels, Matcher, TenantId};
use strata_storage::limits::check_count;
use strata_storage::{ChunkedSeries, QueryError, Queryable, ReadLimit, ReadLimits, SelectHints};
use tonic::{Request, Response, Status};

/// Bytes of chunk data per streamed message: big enough to amortize framing, small enough
/// that the receiver's message limit is never near.
const STREAM_BATCH_BYTES: usize = 1 << 20;

pub type SelectStream =
    Pin<Box<dyn Stream<Item = Result<pb::SelectStreamResponse, Status>> + Send>>;

pub async fn serve_select(
    q: &dyn Queryable,
    req: pb::SelectRequest,
) -> Result<Response<SelectStream>, Status> {
    let t = tenant(&req.tenant)?;
    let matchers = matchers_from_pb(req.matchers)?;
    let mut hints = hints_from_pb(req.hints);
    hints.limits = limits_from_pb(req.limits);
    let series = q
        .select_chunks_hinted(&t, &matchers, req.start_ms, req.end_ms, &hints)
        .await
        .map_err(|e| query_error_to_status(&e))?;
    Ok(Response::new(select_stream(series, Vec::new())))
}

/// An answer as the messages of a streamed selection; `queried_blocks` go in the first.
pub fn select_stream(series: Vec<ChunkedSeries>, queried_blocks: Vec<Vec<u8>>) -> SelectStream {
    let mut batches = Vec::new();
    let mut cur = pb::SelectStreamResponse {
        queried_blocks,
        ..Default::default()
    };
    let mut bytes = 0;
    for s in series {
        let s = series_to_pb(s);
        bytes += s.chunks.iter().map(|c| c.data.len() + 24).sum::<usize>() + 64;
        cur.series.push(s);
        if bytes >= STREAM_BATCH_BYTES {
            batches.push(Ok(std::mem::take(&mut cur)));
            bytes = 0;
        }
    }
    if !cur.series.is_empty() || batches.is_empty() {
        batches.push(Ok(cur));
    }
    Box::pin(futures::stream::iter(batches))
}

pub async fn serve_series(
    q: &dyn Queryable,
    req: pb::SelectRequest,
) -> Result<Response<pb::SeriesLabelsResponse>, Status> {
    let t = tenant(&req.tenant)?;
    let matchers = matchers_from_pb(req.matchers)?;
    let limit = limits_from_pb(req.limits).max_series;
    let v = q
        .series(&t, &matchers, req.start_ms, req.end_ms, limit)
        .await
        .map_err(|e| query_error_to_status(&e))?;
    Ok(Response::new(pb::SeriesLabelsResponse {
        series: v
            .iter()
            .map(|l| pb::LabelSet {
                labels: labels_to_pb(l),
            })
            .collect(),
        queried_blocks: Vec::new(),
    }))
}

pub async fn serve_label_names(
    q: &dyn Queryable,
    req: pb::LabelNamesRequest,
) -> Result<Response<pb::StringsResponse>, Status> {
    let t = tenant(&req.tenant)?;
    let matchers = matchers_from_pb(req.matchers)?;
    let values = q
        .label_names(
            &t,
            &matchers,
            req.start_ms,
            req.end_ms,
            count_from_pb(req.limit),
        )
        .await
        .map_err(|e| query_error_to_status(&e))?;
    Ok(Response::new(pb::StringsResponse {
        values,
        queried_blocks: Vec::new(),
    }))
}

pub async fn serve_label_values(
    q: &dyn Queryable,
    req: pb::LabelValuesRequest,
) -> Result<Response<pb::StringsResponse>, Status> {
    let t = tenant(&req.tenant)?;
    let matchers = matchers_from_pb(req.matchers)?;
    let values = q
        .label_values(
            &t,
            &req.name,
            &matchers,
            req.start_ms,
            req.end_ms,
            count_from_pb(req.limit),
        )
        .await
        .map_err(|e| query_error_to_status(&e))?;
    Ok(Response::new(pb::StringsResponse {
        values,
        queried_blocks: Vec::new(),
    }))
}

/// Builds requests and turns answers back into storage types, for any remote `Queryable`.
pub struct RemoteReads<'a> {
    pub target: &'a str,
    pub timeout: Duration,
}

impl RemoteReads<'_> {
    pub fn request<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        r.set_timeout(self.timeout);
        r
    }

    pub fn select_request(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Request<pb::SelectRequest> {
        self.request(pb::SelectRequest {
            tenant: tenant.as_str().to_owned(),
            matchers: matchers_to_pb(matchers),
            start_ms: start,
            end_ms: end,
            hints: Some(hints_to_pb(hints)),
            limits: Some(limits_to_pb(&hints.limits)),
            block_ids: Vec::new(),
        })
    }

    /// A request for the label sets of a selection, at most `limit` of them.
    pub fn series_request(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Request<pb::SelectRequest> {
        let hints = SelectHints {
            limits: ReadLimits {
                max_series: limit,
                ..ReadLimits::default()
            },
            ..SelectHints::default()
        };
        self.select_request(tenant, matchers, start, end, &hints)
    }

    pub fn label_names_request(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Request<pb::LabelNamesRequest> {
        self.request(pb::LabelNamesRequest {
            tenant: tenant.as_str().to_owned(),
            matchers: matchers_to_pb(matchers),
            start_ms: start,
            end_ms: end,
            limit: limit as u64,
            block_ids: Vec::new(),
        })
    }

    pub fn label_values_request(
        &self,
        tenant: &TenantId,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Request<pb::LabelValuesRequest> {
        self.request(pb::LabelValuesRequest {
            tenant: tenant.as_str().to_owned(),
            name: name.to_owned(),
            matchers: matchers_to_pb(matchers),
            start_ms: start,
            end_ms: end,
            limit: limit as u64,
            block_ids: Vec::new(),
        })
    }

    /// Runs `call` with the deadline enforced here too: a peer that accepts the connection and
    /// then hangs must not hold the query beyond it.
    pub async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, QueryError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(status_to_query_error(self.target, s)),
            Err(_) => Err(self.deadline()),
        }
    }

    fn deadline(&self) -> QueryError {
        status_to_query_error(
            self.target,
            Status::deadline_exceeded(format!("no answer within {:?}", self.timeout)),
        )
    }

    /// Collects a streamed selection, counting it against `limits` as the messages arrive: a
    /// peer that does not stop by itself (one that predates limits) is cut off at the first
    /// message over them, and dropping the stream cancels the call.
    pub async fn collect_stream(
        &self,
        call: impl std::future::Future<
            Output = Result<Response<tonic::Streaming<pb::SelectStreamResponse>>, Status>,
        >,
        limits: &ReadLimits,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        Ok(self.collect_stream_blocks(call, limits).await?.0)
    }

    /// [`RemoteReads::collect_stream`], with the blocks the answer names as read.
    pub async fn collect_stream_blocks(
        &self,
        call: impl std::future::Future<
            Output = Result<Response<tonic::Streaming<pb::SelectStreamResponse>>, Status>,
        >,
        limits: &ReadLimits,
    ) -> Result<(Vec<ChunkedSeries>, Vec<Vec<u8>>), QueryError> {
        let fut = async {
            let mut stream = call
                .await
                .map_err(|s| status_to_query_error(self.target, s))?
                .into_inner();
            let mut out = Vec::new();
            let mut queried = Vec::new();
            let mut tally = limits.tally();
            while let Some(msg) = stream.next().await {
                let msg = msg.map_err(|s| status_to_query_error(self.target, s))?;
                queried.extend(msg.queried_blocks);
                for s in msg.series {
                    let s = series_from_pb(s);
                    tally.add_series(&s)?;
                    out.push(s);
                }
            }
            Ok::<_, QueryError>((out, queried))
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(self.deadline()),
        }
    }

    /// The label sets of an answer; more than `limit` (a peer that predates limits) is the
    /// series limit exceeded, as if the peer had stopped.
    pub fn label_sets(
        r: pb::SeriesLabelsResponse,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        check_count(r.series.len(), limit, ReadLimit::Series)?;
        Ok(r.series
            .into_iter()
            .map(|s| labels_from_pb(s.labels))
            .collect())
    }

    /// The strings of an answer, checked against `limit` like [`RemoteReads::label_sets`].
    pub fn strings(
        r: pb::StringsResponse,
        limit: usize,
        kind: ReadLimit,
    ) -> Result<Vec<String>, QueryError> {
        check_count(r.values.len(), limit, kind)?;
        Ok(r.values)
    }
}
