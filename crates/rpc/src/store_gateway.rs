//! `StoreGateway` service: queriers read blocks from the bucket through it. A request that
//! names blocks is read by [`BlockQueryable`] (sharded store-gateways: the answer names the
//! blocks read); one that names none reads every block of the tenant ([`Queryable`]).

// Tonic handlers' error type is `tonic::Status`.
#![allow(clippy::result_large_err)]

use crate::convert::{
    block_ids_from_pb, block_ids_to_pb, count_from_pb, hints_from_pb, labels_to_pb, limits_from_pb,
    matchers_from_pb, query_error_to_status, tenant,
};
use crate::pb::query::v1 as pb;
use crate::pb::storegateway::v1::store_gateway_client::StoreGatewayClient as RawClient;
use crate::pb::storegateway::v1::store_gateway_server::{StoreGateway, StoreGatewayServer};
use crate::query::{self, RemoteReads, SelectStream};
use crate::{GrpcClientConfig, GrpcServerConfig};
use async_trait::async_trait;
use std::sync::Arc;
use strata_model::{Labels, Matcher, TenantId};
use strata_storage::{
    BlockQueryable, BlockSelection, BlocksAnswer, ChunkedSeries, QueryError, Queryable, ReadLimit,
    SelectHints, Series, SeriesMetadata,
};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// What a store-gateway service serves: whole-tenant reads and reads of named blocks.
pub trait StoreGatewayBackend: Queryable + BlockQueryable {}

impl<T: Queryable + BlockQueryable> StoreGatewayBackend for T {}

/// Serves a store-gateway over gRPC.
pub struct StoreGatewayService {
    backend: Arc<dyn StoreGatewayBackend>,
}

impl std::fmt::Debug for StoreGatewayService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreGatewayService")
            .finish_non_exhaustive()
    }
}

impl StoreGatewayService {
    pub fn new(backend: Arc<dyn StoreGatewayBackend>) -> Self {
        Self { backend }
    }

    fn queryable(&self) -> &dyn Queryable {
        self.backend.as_ref()
    }

    fn blocks(&self) -> &dyn BlockQueryable {
        self.backend.as_ref()
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
        let mut req = request.into_inner();
        if req.block_ids.is_empty() {
            return query::serve_select(self.queryable(), req).await;
        }
        let blocks = named_blocks(std::mem::take(&mut req.block_ids))?;
        let t = tenant(&req.tenant)?;
        let matchers = matchers_from_pb(req.matchers)?;
        let mut hints = hints_from_pb(req.hints);
        hints.limits = limits_from_pb(req.limits);
        let sel = BlockSelection::new(&t, &blocks, &matchers, req.start_ms, req.end_ms);
        let a = self
            .blocks()
            .select_blocks(sel, &hints)
            .await
            .map_err(|e| query_error_to_status(&e))?;
        Ok(Response::new(query::select_stream(
            a.value,
            block_ids_to_pb(&a.queried),
        )))
    }

    async fn series_labels(
        &self,
        request: Request<pb::SelectRequest>,
    ) -> Result<Response<pb::SeriesLabelsResponse>, Status> {
        let mut req = request.into_inner();
        if req.block_ids.is_empty() {
            return query::serve_series(self.queryable(), req).await;
        }
        let blocks = named_blocks(std::mem::take(&mut req.block_ids))?;
        let t = tenant(&req.tenant)?;
        let matchers = matchers_from_pb(req.matchers)?;
        let limit = limits_from_pb(req.limits).max_series;
        let sel = BlockSelection::new(&t, &blocks, &matchers, req.start_ms, req.end_ms);
        let a = self
            .blocks()
            .series_blocks(sel, limit)
            .await
            .map_err(|e| query_error_to_status(&e))?;
        Ok(Response::new(pb::SeriesLabelsResponse {
            series: a
                .value
                .iter()
                .map(|l| pb::LabelSet {
                    labels: labels_to_pb(l),
                })
                .collect(),
            queried_blocks: block_ids_to_pb(&a.queried),
        }))
    }

    async fn label_names(
        &self,
        request: Request<pb::LabelNamesRequest>,
    ) -> Result<Response<pb::StringsResponse>, Status> {
        let mut req = request.into_inner();
        if req.block_ids.is_empty() {
            return query::serve_label_names(self.queryable(), req).await;
        }
        let blocks = named_blocks(std::mem::take(&mut req.block_ids))?;
        let t = tenant(&req.tenant)?;
        let matchers = matchers_from_pb(req.matchers)?;
        let sel = BlockSelection::new(&t, &blocks, &matchers, req.start_ms, req.end_ms);
        let a = self
            .blocks()
            .label_names_blocks(sel, count_from_pb(req.limit))
            .await
            .map_err(|e| query_error_to_status(&e))?;
        Ok(Response::new(strings(a)))
    }

    async fn label_values(
        &self,
        request: Request<pb::LabelValuesRequest>,
    ) -> Result<Response<pb::StringsResponse>, Status> {
        let mut req = request.into_inner();
        if req.block_ids.is_empty() {
            return query::serve_label_values(self.queryable(), req).await;
        }
        let blocks = named_blocks(std::mem::take(&mut req.block_ids))?;
        let t = tenant(&req.tenant)?;
        let matchers = matchers_from_pb(req.matchers)?;
        let sel = BlockSelection::new(&t, &blocks, &matchers, req.start_ms, req.end_ms);
        let a = self
            .blocks()
            .label_values_blocks(sel, &req.name, count_from_pb(req.limit))
            .await
            .map_err(|e| query_error_to_status(&e))?;
        Ok(Response::new(strings(a)))
    }
}

fn named_blocks(ids: Vec<Vec<u8>>) -> Result<Vec<ulid::Ulid>, Status> {
    block_ids_from_pb(ids, "block_ids").map_err(Status::invalid_argument)
}

fn strings(a: BlocksAnswer<Vec<String>>) -> pb::StringsResponse {
    pb::StringsResponse {
        values: a.value,
        queried_blocks: block_ids_to_pb(&a.queried),
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

impl StoreGatewayClient {
    /// The blocks an answer names as read; a malformed id is the remote's fault.
    fn queried(&self, ids: Vec<Vec<u8>>) -> Result<Vec<ulid::Ulid>, QueryError> {
        block_ids_from_pb(ids, "queried_blocks").map_err(|e| QueryError::Remote {
            target: self.target.to_string(),
            source: e.into(),
        })
    }
}

#[async_trait]
impl BlockQueryable for StoreGatewayClient {
    async fn select_blocks(
        &self,
        sel: BlockSelection<'_>,
        hints: &SelectHints,
    ) -> Result<BlocksAnswer<Vec<ChunkedSeries>>, QueryError> {
        let r = self.reads();
        let mut req = r.select_request(sel.tenant, sel.matchers, sel.start, sel.end, hints);
        req.get_mut().block_ids = block_ids_to_pb(sel.blocks);
        let mut raw = self.raw.clone();
        let (value, queried) = r
            .collect_stream_blocks(raw.series(req), &hints.limits)
            .await?;
        Ok(BlocksAnswer {
            value,
            queried: self.queried(queried)?,
        })
    }

    async fn series_blocks(
        &self,
        sel: BlockSelection<'_>,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<Labels>>, QueryError> {
        let r = self.reads();
        let mut req = r.series_request(sel.tenant, sel.matchers, sel.start, sel.end, limit);
        req.get_mut().block_ids = block_ids_to_pb(sel.blocks);
        let mut raw = self.raw.clone();
        let mut resp = r.call(raw.series_labels(req)).await?;
        let queried = self.queried(std::mem::take(&mut resp.queried_blocks))?;
        Ok(BlocksAnswer {
            value: RemoteReads::label_sets(resp, limit)?,
            queried,
        })
    }

    async fn label_names_blocks(
        &self,
        sel: BlockSelection<'_>,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<String>>, QueryError> {
        let r = self.reads();
        let mut req = r.label_names_request(sel.tenant, sel.matchers, sel.start, sel.end, limit);
        req.get_mut().block_ids = block_ids_to_pb(sel.blocks);
        let mut raw = self.raw.clone();
        let mut resp = r.call(raw.label_names(req)).await?;
        let queried = self.queried(std::mem::take(&mut resp.queried_blocks))?;
        Ok(BlocksAnswer {
            value: RemoteReads::strings(resp, limit, ReadLimit::LabelNames)?,
            queried,
        })
    }

    async fn label_values_blocks(
        &self,
        sel: BlockSelection<'_>,
        name: &str,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<String>>, QueryError> {
        let r = self.reads();
        let mut req =
            r.label_values_request(sel.tenant, name, sel.matchers, sel.start, sel.end, limit);
        req.get_mut().block_ids = block_ids_to_pb(sel.blocks);
        let mut raw = self.raw.clone();
        let mut resp = r.call(raw.label_values(req)).await?;
        let queried = self.queried(std::mem::take(&mut resp.queried_blocks))?;
        Ok(BlocksAnswer {
            value: RemoteReads::strings(resp, limit, ReadLimit::LabelValues)?,
            queried,
        })
    }
}
