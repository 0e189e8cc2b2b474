//! `Ingester` service: pushes from distributors, reads from queriers.

use crate::convert::{
    outcome_from_pb, outcome_to_pb, push_error_to_status, query_error_to_status,
    status_to_push_error, tenant,
};
use crate::pb::ingester::v1 as pbi;
use crate::pb::ingester::v1::ingester_client::IngesterClient as RawClient;
use crate::pb::ingester::v1::ingester_server::{Ingester, IngesterServer};
use crate::pb::query::v1 as pb;
use crate::query::{self, RemoteReads, SelectStream};
use crate::{GrpcClientConfig, GrpcServerConfig};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use strata_model::batch::MetricType;
use strata_model::{Labels, Matcher, TenantId, WriteBatch};
use strata_proto::decode::decode_write_request_v1;
use strata_storage::{
    ChunkedSeries, EncodedPusher, HeadStats, PushError, PushOutcome, Pusher, QueryError, Queryable,
    ReadLimit, SelectHints, Series, SeriesMetadata,
};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// Serves an ingester (anything that pushes and answers selections) over gRPC.
pub struct IngesterService {
    pusher: Arc<dyn Pusher>,
    queryable: Arc<dyn Queryable>,
}

impl std::fmt::Debug for IngesterService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngesterService").finish_non_exhaustive()
    }
}

impl IngesterService {
    pub fn new(pusher: Arc<dyn Pusher>, queryable: Arc<dyn Queryable>) -> Self {
        Self { pusher, queryable }
    }

    /// The tonic service, with the server's message limits.
    pub fn into_server(self, cfg: &GrpcServerConfig) -> IngesterServer<Self> {
        IngesterServer::new(self)
            .max_decoding_message_size(cfg.max_recv_msg_size)
            .max_encoding_message_size(cfg.max_send_msg_size)
    }
}

fn metric_type_from_wire(t: u32) -> MetricType {
    MetricType::from_wire(u64::from(t))
}

fn metric_type_to_wire(t: MetricType) -> u32 {
    match t {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

#[tonic::async_trait]
impl Ingester for IngesterService {
    async fn push(
        &self,
        request: Request<pbi::PushRequest>,
    ) -> Result<Response<pbi::PushResponse>, Status> {
        let req = request.into_inner();
        let t = tenant(&req.tenant)?;
        let mut batch = WriteBatch::default();
        decode_write_request_v1(&req.write_request, &mut batch)
            .map_err(|e| Status::invalid_argument(format!("write_request: {e}")))?;
        let outcome = self
            .pusher
            .push(&t, &batch)
            .await
            .map_err(|e| push_error_to_status(&e))?;
        Ok(Response::new(outcome_to_pb(outcome)))
    }

    type QueryStreamStream = SelectStream;

    async fn query_stream(
        &self,
        request: Request<pb::SelectRequest>,
    ) -> Result<Response<SelectStream>, Status> {
        query::serve_select(self.queryable.as_ref(), request.into_inner()).await
    }

    async fn series(
        &self,
        request: Request<pb::SelectRequest>,
    ) -> Result<Response<pb::SeriesLabelsResponse>, Status> {
        query::serve_series(self.queryable.as_ref(), request.into_inner()).await
    }

    async fn label_names(
        &self,
        request: Request<pb::LabelNamesRequest>,
    ) -> Result<Response<pb::StringsResponse>, Status> {
        query::serve_label_names(self.queryable.as_ref(), request.into_inner()).await
    }

    async fn label_values(
        &self,
        request: Request<pb::LabelValuesRequest>,
    ) -> Result<Response<pb::StringsResponse>, Status> {
        query::serve_label_values(self.queryable.as_ref(), request.into_inner()).await
    }

    async fn metadata(
        &self,
        request: Request<pbi::MetadataRequest>,
    ) -> Result<Response<pbi::MetadataResponse>, Status> {
        let req = request.into_inner();
        let t = tenant(&req.tenant)?;
        let metric = (!req.metric.is_empty()).then_some(req.metric.as_str());
        let md = self
            .queryable
            .metadata(&t, metric)
            .await
            .map_err(|e| query_error_to_status(&e))?;
        Ok(Response::new(pbi::MetadataResponse {
            metadata: md
                .into_iter()
                .map(|m| pbi::MetricMetadata {
                    family: m.family,
                    r#type: metric_type_to_wire(m.metric_type),
                    help: m.help,
                    unit: m.unit,
                })
                .collect(),
        }))
    }

    async fn head_stats(
        &self,
        request: Request<pbi::HeadStatsRequest>,
    ) -> Result<Response<pbi::HeadStatsResponse>, Status> {
        let t = tenant(&request.into_inner().tenant)?;
        let s = self
            .queryable
            .head_stats(&t)
            .await
            .map_err(|e| query_error_to_status(&e))?;
        Ok(Response::new(match s {
            None => pbi::HeadStatsResponse::default(),
            Some(s) => pbi::HeadStatsResponse {
                present: true,
                num_series: s.num_series,
                chunk_count: s.chunk_count,
                min_time: s.min_time,
                max_time: s.max_time,
            },
        }))
    }
}

/// A remote ingester: pushes and reads over gRPC. Cheap to clone (the channel is shared).
#[derive(Debug, Clone)]
pub struct IngesterClient {
    target: Arc<str>,
    raw: RawClient<Channel>,
    cfg: GrpcClientConfig,
}

impl IngesterClient {
    /// `target` names the instance in errors (its id).
    pub fn new(target: &str, channel: Channel, cfg: &GrpcClientConfig) -> Self {
        Self {
            target: Arc::from(target),
            raw: RawClient::new(channel)
                .max_decoding_message_size(cfg.max_recv_msg_size)
                .max_encoding_message_size(cfg.max_send_msg_size),
            cfg: cfg.clone(),
        }
    }

    fn reads(&self) -> RemoteReads<'_> {
        RemoteReads {
            target: &self.target,
            timeout: self.cfg.query_timeout,
        }
    }
}

#[async_trait]
impl EncodedPusher for IngesterClient {
    async fn push_encoded(
        &self,
        tenant: &TenantId,
        write_request: Bytes,
    ) -> Result<PushOutcome, PushError> {
        let mut req = Request::new(pbi::PushRequest {
            tenant: tenant.as_str().to_owned(),
            write_request,
        });
        req.set_timeout(self.cfg.push_timeout);
        let mut raw = self.raw.clone();
        match tokio::time::timeout(self.cfg.push_timeout, raw.push(req)).await {
            Ok(Ok(r)) => Ok(outcome_from_pb(r.into_inner())),
            Ok(Err(s)) => Err(status_to_push_error(&self.target, s)),
            Err(_) => Err(status_to_push_error(
                &self.target,
                Status::deadline_exceeded(format!(
                    "no answer within {:?} (grpc_client.push_timeout)",
                    self.cfg.push_timeout
                )),
            )),
        }
    }
}

#[async_trait]
impl Pusher for IngesterClient {
    async fn push(
        &self,
        tenant: &TenantId,
        batch: &WriteBatch<'_>,
    ) -> Result<PushOutcome, PushError> {
        let mut buf = Vec::with_capacity(strata_proto::encode::encoded_len(
            batch,
            0..batch.series.len(),
        ));
        strata_proto::encode::encode_write_request_v1(batch, 0..batch.series.len(), true, &mut buf);
        self.push_encoded(tenant, Bytes::from(buf)).await
    }
}

#[async_trait]
impl Queryable for IngesterClient {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let chunked = self.select_chunks(tenant, matchers, start, end).await?;
        Ok(strata_storage::query::decode_all(chunked, start, end))
    }

    async fn select_chunks(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        self.select_chunks_hinted(tenant, matchers, start, end, &SelectHints::default())
            .await
    }

    async fn select_chunks_hinted(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        hints: &SelectHints,
    ) -> Result<Vec<ChunkedSeries>, QueryError> {
        let r = self.reads();
        let req = r.select_request(tenant, matchers, start, end, hints);
        let mut raw = self.raw.clone();
        r.collect_stream(raw.query_stream(req), &hints.limits).await
    }

    async fn series(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<Labels>, QueryError> {
        let r = self.reads();
        let req = r.series_request(tenant, matchers, start, end, limit);
        let mut raw = self.raw.clone();
        RemoteReads::label_sets(r.call(raw.series(req)).await?, limit)
    }

    async fn label_names(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let r = self.reads();
        let req = r.label_names_request(tenant, matchers, start, end, limit);
        let mut raw = self.raw.clone();
        RemoteReads::strings(
            r.call(raw.label_names(req)).await?,
            limit,
            ReadLimit::LabelNames,
        )
    }

    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<String>, QueryError> {
        let r = self.reads();
        let req = r.label_values_request(tenant, name, matchers, start, end, limit);
        let mut raw = self.raw.clone();
        RemoteReads::strings(
            r.call(raw.label_values(req)).await?,
            limit,
            ReadLimit::LabelValues,
        )
    }

    async fn head_stats(&self, tenant: &TenantId) -> Result<Option<HeadStats>, QueryError> {
        let r = self.reads();
        let req = r.request(pbi::HeadStatsRequest {
            tenant: tenant.as_str().to_owned(),
        });
        let mut raw = self.raw.clone();
        let s = r.call(raw.head_stats(req)).await?;
        Ok(s.present.then_some(HeadStats {
            num_series: s.num_series,
            chunk_count: s.chunk_count,
            min_time: s.min_time,
            max_time: s.max_time,
        }))
    }

    async fn metadata(
        &self,
        tenant: &TenantId,
        metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        let r = self.reads();
        let req = r.request(pbi::MetadataRequest {
            tenant: tenant.as_str().to_owned(),
            metric: metric.unwrap_or_default().to_owned(),
        });
        let mut raw = self.raw.clone();
        Ok(r.call(raw.metadata(req))
            .await?
            .metadata
            .into_iter()
            .map(|m| SeriesMetadata {
                family: m.family,
                metric_type: metric_type_from_wire(m.r#type),
                help: m.help,
                unit: m.unit,
            })
            .collect())
    }
}
