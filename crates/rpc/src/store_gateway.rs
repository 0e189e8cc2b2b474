//! `StoreGateway` service: queriers read blocks from the bucket through it.

use crate::pb::query::v1 as pb;
use crate::pb::storegateway::v1::store_gateway_client::StoreGatewayClient as RawClient;
use crate::pb::storegateway::v1::store_gateway_server::{StoreGateway, StoreGatewayServer};
use crate::query::{self, RemoteReads, SelectStream};
use crate::{GrpcClientConfig, GrpcServerConfig};
use async_trait::async_trait;
use std::sync::Arc;
use strata_model::{Labels, Matcher, TenantId};
use strata_storage::{
    ChunkedSeries, QueryError, Queryable, ReadLimit, SelectHints, Series, SeriesMetadata,
};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// Serves a store-gateway (a `Queryable` over blocks) over gRPC.
pub struct StoreGatewayService {
    queryable: Arc<dyn Queryable>,
}

impl std::fmt::Debug for StoreGatewayService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreGatewayService")
            .finish_non_exhaustive()
    }
}

impl StoreGatewayService {
    pub fn new(queryable: Arc<dyn Queryable>) -> Self {
        Self { queryable }
    }

    /// The tonic service, with the server's message limits.
    pub fn into_server(self, cfg: &GrpcServerConfig) -> StoreGatewayServer<Self> {
        StoreGatewayServer::new(self)
            .max_decoding_message_size(cfg.max_recv_msg_size)
            .max_encoding_message_size(cfg.max_send_msg_size)
    }
}

#[tonic::async_trait]
impl StoreGateway for StoreGatewayService {
    type SeriesStream = SelectStream;

    async fn series(
        &self,
        request: Request<pb::SelectRequest>,
    ) -> Result<Response<SelectStream>, Status> {
        query::serve_select(self.queryable.as_ref(), request.into_inner()).await
    }

    async fn series_labels(
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
}

/// A remote store-gateway as a `Queryable`.
#[derive(Debug, Clone)]
pub struct StoreGatewayClient {
    target: Arc<str>,
    raw: RawClient<Channel>,
    cfg: GrpcClientConfig,
}

impl StoreGatewayClient {
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
impl Queryable for StoreGatewayClient {
    async fn select(
        &self,
        tenant: &TenantId,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, QueryError> {
        let chunked = self.select_chunks(tenant, matchers, start, end).await?;
        Ok(chunked
            .into_iter()
            .map(|c| {
                let mut samples = Vec::new();
                c.decode_into(start, end, &mut samples);
                Series {
                    labels: c.labels().clone(),
                    samples,
                }
            })
            .filter(|s| !s.samples.is_empty())
            .collect())
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
        r.collect_stream(raw.series(req), &hints.limits).await
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
        RemoteReads::label_sets(r.call(raw.series_labels(req)).await?, limit)
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

    /// Blocks carry no metric metadata (ingesters answer it).
    async fn metadata(
        &self,
        _tenant: &TenantId,
        _metric: Option<&str>,
    ) -> Result<Vec<SeriesMetadata>, QueryError> {
        Ok(Vec::new())
    }
}
