//! Builds each module of the chosen targets and connects them: in one process through the
//! storage traits, across processes through the rings and gRPC.

use crate::clients::Clients;
use crate::config::Config;
use crate::modules::Module;
use anyhow::Context;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use futures::future::BoxFuture;
use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use std::sync::{Arc, OnceLock};
use strata_meta::{KvStore, MetaNode, RemoteKv, RemoteKvOptions};
use strata_model::Overrides;
use strata_ring::{
    Lifecycler, LifecyclerOptions, Operation, RingConfig, RingMetrics, RingWatcher, WatcherOptions,
};
use strata_storage::Queryable;
use tokio::sync::watch;

/// Key prefix of the distributor ring (distributors count each other to split rate limits).
const DISTRIBUTOR_RING: &str = "ring/distributor";

/// Where the ruler keeps rule groups in the bucket: not a valid tenant id, so nothing that
/// lists tenants as top-level directories takes it for one.
const RULES_PREFIX: &str = "@rules";

/// The Alertmanager of this process as the ruler's destination: alerts go through its HTTP
/// API in-process (tenant resolution and, with its ring, forwarding to the owners included).
struct InProcessAlertmanager(Router);

#[async_trait::async_trait]
impl strata_ruler::notifier::AlertSink for InProcessAlertmanager {
    fn name(&self) -> String {
        "in-process".into()
    }

    async fn send(
        &self,
        tenant: &strata_model::TenantId,
        alerts: &[strata_ruler::notifier::PostableAlert],
    ) -> Result<(), strata_ruler::notifier::SendError> {
        use strata_ruler::notifier::SendError;
        let body = serde_json::to_vec(alerts).map_err(|e| SendError::Refused(e.to_string()))?;
        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/alertmanager/api/v2/alerts")
            .header("content-type", "application/json")
            .header("x-scope-orgid", tenant.as_str())
            .body(axum::body::Body::from(body))
            .map_err(|e| SendError::Refused(e.to_string()))?;
        let mut svc = self.0.clone();
        let resp = match tower_service::Service::call(&mut svc, req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(SendError::Refused(format!(
                "the Alertmanager answered {}",
                resp.status()
            )))
        }
    }
}

/// Something registered in a ring that must leave it when the process stops.
#[async_trait::async_trait]
pub trait Member: Send + Sync {
    /// Stop taking new work through the ring (LEAVING).
    async fn leave(&self);
    /// Leave the ring for good (unregister if so configured).
    async fn stop(&self);
}

#[async_trait::async_trait]
impl Member for strata_ingester::RingMembership {
    async fn leave(&self) {
        strata_ingester::RingMembership::leave(self).await
    }
    async fn stop(&self) {
        strata_ingester::RingMembership::stop(self).await
    }
}

/// A plain lifecycler (distributors, store-gateways).
struct LifecyclerMember(Arc<Lifecycler>);

#[async_trait::async_trait]
impl Member for LifecyclerMember {
    async fn leave(&self) {
        if let Err(e) = self.0.leave().await {
            tracing::warn!(instance = %self.0.id(), error = %e, "could not mark the instance LEAVING");
        }
    }
    async fn stop(&self) {
        if let Err(e) = self.0.stop().await {
            tracing::warn!(instance = %self.0.id(), error = %e, "could not leave the ring cleanly");
        }
    }
}

/// The Alertmanager in its ring: it joins by itself when its loop starts; leaving hands its
/// tenants over to the other replicas.
struct AlertmanagerMember(Arc<strata_alertmanager::Alertmanager>);

#[async_trait::async_trait]
impl Member for AlertmanagerMember {
    async fn leave(&self) {
        self.0.leave_ring().await
    }
    async fn stop(&self) {
        self.0.stop_ring().await
    }
}

pub type Join = BoxFuture<'static, anyhow::Result<Arc<dyn Member>>>;
pub type ReadyCheck = Box<dyn Fn() -> Option<String> + Send + Sync>;

/// The process being assembled.
pub struct Wiring {
    pub cfg: Config,
    pub order: Vec<Module>,
    pub registry: Registry,
    pub router: Router,
    /// gRPC services, if any component serves some.
    pub grpc: Option<axum::Router>,
    /// Mutual TLS of the gRPC server and the Alertmanager ring's listener (`server.grpc_tls`).
    pub grpc_tls: Option<strata_tls::GrpcServerTls>,
    pub stop_tx: watch::Sender<bool>,
    pub stop_rx: watch::Receiver<bool>,
    pub background: Vec<tokio::task::JoinHandle<()>>,
    pub overrides: Option<Arc<RwLock<Overrides>>>,
    pub bucket: Option<strata_storage::bucket::Bucket>,
    pub meta: Option<Arc<MetaNode>>,
    pub kv: Option<Arc<dyn KvStore>>,
    pub ring_metrics: Option<RingMetrics>,
    pub ingester_ring: Option<Arc<RingWatcher>>,
    pub ingester: Option<Arc<strata_ingester::Ingester>>,
    pub store_gateway: Option<Arc<strata_store_gateway::StoreGateway>>,
    pub alertmanager: Option<Arc<strata_alertmanager::Alertmanager>>,
    /// What the querier reads (ingesters and blocks), for the ruler in the same process.
    pub query_source: Option<Arc<dyn Queryable>>,
    /// The querier's routes, held back when a query-frontend in this process goes in front.
    pub querier_router: Option<axum::Router>,
    /// The distributor, for the ruler in the same process (its writes get validated and
    /// limited like remote write).
    pub distributor: Option<Arc<strata_distributor::Distributor>>,
    pub clients: Clients,
    /// Ring joins run once the servers listen.
    pub joins: Vec<Join>,
    /// Members to take out of their rings at shutdown (joins add theirs when done).
    pub leavers: Vec<Arc<dyn Member>>,
    pub ready_checks: Vec<ReadyCheck>,
}

impl Wiring {
    /// Reads the TLS files of `server.grpc_tls` and `grpc_client.tls` (errors name them).
    pub fn new(cfg: Config, order: Vec<Module>) -> anyhow::Result<Self> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let pool = strata_rpc::ChannelPool::new(cfg.grpc_client.clone(), cfg.local_ip())
            .context("grpc_client.tls")?;
        let grpc_tls = cfg
            .server
            .grpc_tls
            .as_ref()
            .map(strata_tls::GrpcServerTls::new)
            .transpose()
            .context("server.grpc_tls")?;
        Ok(Self {
            cfg,
            order,
            registry: Registry::default(),
            router: Router::new(),
            grpc: None,
            grpc_tls,
            stop_tx,
            stop_rx,
            background: Vec::new(),
            overrides: None,
            bucket: None,
            meta: None,
            kv: None,
            ring_metrics: None,
            ingester_ring: None,
            ingester: None,
            store_gateway: None,
            alertmanager: None,
            query_source: None,
            querier_router: None,
            distributor: None,
            clients: Clients::new(pool),
            joins: Vec::new(),
            leavers: Vec::new(),
            ready_checks: Vec::new(),
        })
    }

    fn has(&self, m: Module) -> bool {
        self.order.contains(&m)
    }

    /// Whether components run as separate processes (anything but `all`): they then serve
    /// gRPC and register in their rings.
    fn clustered(&self) -> bool {
        !self.has(Module::All)
    }

    fn add_grpc(&mut self, routes: tonic::service::Routes) {
        let r = routes.into_axum_router();
        self.grpc = Some(match self.grpc.take() {
            Some(g) => g.merge(r),
            None => r,
        });
    }

    fn kv(&self) -> anyhow::Result<Arc<dyn KvStore>> {
        self.kv.clone().context("the cluster KV is not set up")
    }

    fn ring_metrics(&mut self) -> RingMetrics {
        if self.ring_metrics.is_none() {
            self.ring_metrics = Some(RingMetrics::new(&mut self.registry));
        }
        self.ring_metrics.clone().expect("just set")
    }

    /// A live view of the ring at `prefix`, read with `ring`'s settings, and its page at
    /// `page` (`/ingester/ring`, …).
    fn watch_ring(
        &mut self,
        name: &str,
        prefix: &str,
        ring: &RingConfig,
        page: &'static str,
    ) -> anyhow::Result<Arc<RingWatcher>> {
        let kv = self.kv()?;
        let mut opts = WatcherOptions::new(name, ring.ring_options());
        opts.metrics = Some(self.ring_metrics());
        let w = RingWatcher::start(kv.clone(), prefix, opts);
        self.router = std::mem::take(&mut self.router).merge(strata_ring::ring_router(
            page,
            w.clone(),
            kv,
            prefix,
        ));
        Ok(w)
    }

    fn lifecycler_options(&mut self, name: &str) -> LifecyclerOptions {
        LifecyclerOptions {
            name: Some(name.to_owned()),
            metrics: Some(self.ring_metrics()),
            ..LifecyclerOptions::default()
        }
    }

    /// Registers this process in a ring once the servers listen.
    fn join_ring(&mut self, name: &str, prefix: &'static str, ring: RingConfig) {
        let Ok(kv) = self.kv() else { return };
        let opts = self.lifecycler_options(name);
        self.joins.push(Box::pin(async move {
            let l = Lifecycler::start_with(ring, kv, prefix, opts).await?;
            if !l.is_active() {
                l.join().await?;
            }
            tracing::info!(ring = prefix, instance = %l.id(), "joined the ring");
            Ok(Arc::new(LifecyclerMember(l)) as Arc<dyn Member>)
        }));
    }

    pub async fn init(&mut self, m: Module) -> anyhow::Result<()> {
        match m {
            Module::Server | Module::All => Ok(()),
            Module::RuntimeConfig => self.init_runtime_config(),
            Module::Bucket => self.init_bucket(),
            Module::Meta => self.init_meta().await,
            Module::Kv => self.init_kv(),
            Module::IngesterRing => {
                let ring = self.cfg.ingester.ring.clone();
                let w = self.watch_ring(
                    "ingester",
                    strata_ingester::membership::RING_PREFIX,
                    &ring,
                    "/ingester/ring",
                )?;
                self.ingester_ring = Some(w);
                Ok(())
            }
            Module::Ingester => self.init_ingester().await,
            Module::StoreGateway => self.init_store_gateway(),
            Module::Compactor => self.init_compactor(),
            Module::Distributor => self.init_distributor(),
            Module::Querier => self.init_querier(),
            Module::QueryFrontend => self.init_query_frontend(),
            Module::Alertmanager => self.init_alertmanager().await,
            Module::Ruler => self.init_ruler(),
        }
    }

    fn init_runtime_config(&mut self) -> anyhow::Result<()> {
        let o = Arc::new(RwLock::new(crate::app::load_overrides(&self.cfg)?));
        if !self.cfg.runtime_config.file.is_empty() {
            self.background
                .push(tokio::spawn(crate::app::reload_overrides(
                    self.cfg.clone(),
                    o.clone(),
                    self.stop_rx.clone(),
                )));
        }
        self.overrides = Some(o);
        Ok(())
    }

    fn init_bucket(&mut self) -> anyhow::Result<()> {
        let bcfg = self.cfg.resolved_bucket();
        self.bucket = Some(
            strata_storage::bucket::Bucket::from_config(&bcfg)
                .context("cannot set up the bucket (bucket:)")?,
        );
        tracing::info!(backend = ?bcfg.backend, "bucket configured");
        Ok(())
    }

    async fn init_meta(&mut self) -> anyhow::Result<()> {
        let mut mcfg = self.cfg.meta.clone();
        if mcfg.bind_address.is_none() {
            mcfg.bind_address = self.cfg.local_ip();
        }
        let node = MetaNode::start_with_tls(mcfg, &self.cfg.data_dir, self.clients.tls())
            .await
            .context("cannot start the meta node (meta:)")?;
        self.router = std::mem::take(&mut self.router).merge(node.admin_router());
        // A lone voter inside `all` needs no network; every other voter serves the Raft and
        // KV services.
        if self.clustered() || !self.cfg.meta.peers.is_empty() {
            self.add_grpc(node.grpc_routes());
        }
        tracing::info!(
            node = node.id(),
            peers = self.cfg.meta.peers.len(),
            "meta node started"
        );
        self.meta = Some(node);
        Ok(())
    }

    fn init_kv(&mut self) -> anyhow::Result<()> {
        let kv: Arc<dyn KvStore> = if let Some(m) = &self.meta {
            m.clone()
        } else if !self.cfg.meta.peers.is_empty() {
            let endpoints = self
                .cfg
                .meta
                .peers
                .iter()
                .map(|p| p.address.clone())
                .collect();
            Arc::new(RemoteKv::new(
                endpoints,
                RemoteKvOptions {
                    rpc_timeout: self.cfg.meta.rpc_timeout,
                    connect_timeout: self.cfg.grpc_client.connect_timeout,
                    local_address: self.cfg.local_ip(),
                    tls: self.clients.tls(),
                    ..RemoteKvOptions::default()
                },
            ))
        } else {
            anyhow::bail!(
                "meta.peers: must list the meta voters' gRPC addresses: this process runs without a meta voter of its own and needs the cluster KV"
            );
        };
        self.kv = Some(kv);
        Ok(())
    }

    async fn init_ingester(&mut self) -> anyhow::Result<()> {
        let o = self
            .overrides
            .clone()
            .context("ingester needs runtime-config")?;
        let data_dir = self.cfg.data_dir.clone();
        let icfg = self.cfg.ingester.clone();
        let registry = &mut self.registry;
        // Replay can take a while and does blocking file I/O.
        let ing = tokio::task::block_in_place(|| {
            strata_ingester::Ingester::open(icfg, &data_dir, o, registry)
        })?;
        let b = self.bucket.clone().context("ingester needs the bucket")?;
        ing.enable_shipping(b, &data_dir)
            .await
            .context("cannot load the ingester's local blocks")?;
        self.background.push(tokio::spawn(
            ing.clone().run_background(self.stop_rx.clone()),
        ));
        if self.clustered() {
            let svc = strata_rpc::IngesterService::new(ing.clone(), ing.clone())
                .into_server(&self.cfg.server.grpc);
            self.add_grpc(tonic::service::Routes::new(svc));
            // Joins after the servers listen, so it is reachable once ACTIVE.
            let ring = self.cfg.resolved_ring(&self.cfg.ingester.ring);
            let kv = self.kv()?;
            let opts = self.lifecycler_options("ingester");
            let flush_timeout = self.cfg.ingester.flush_timeout;
            let cell: Arc<OnceLock<Arc<strata_ingester::RingMembership>>> = Arc::default();
            let joined = cell.clone();
            let ing2 = ing.clone();
            self.joins.push(Box::pin(async move {
                let m = strata_ingester::RingMembership::join(ing2, ring, kv, opts, flush_timeout)
                    .await?;
                let _ = joined.set(m.clone());
                Ok(m as Arc<dyn Member>)
            }));
            let ready = cell.clone();
            self.ready_checks.push(Box::new(move || {
                ready
                    .get()
                    .is_none()
                    .then(|| "the ingester has not joined the ring yet".to_owned())
            }));
            self.router = std::mem::take(&mut self.router).route(
                "/ingester/shutdown",
                post(move || {
                    let cell = cell.clone();
                    async move {
                        let Some(m) = cell.get().cloned() else {
                            return (
                                StatusCode::SERVICE_UNAVAILABLE,
                                "the ingester has not joined the ring yet\n".to_owned(),
                            )
                                .into_response();
                        };
                        match m.shutdown().await {
                            Ok(r) => (
                                StatusCode::OK,
                                format!(
                                    "flushed: {} blocks cut, {} uploaded; left the ring\n",
                                    r.blocks_cut, r.blocks_uploaded
                                ),
                            )
                                .into_response(),
                            Err(e) => {
                                tracing::error!(error = %e, "ingester shutdown failed");
                                (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"))
                                    .into_response()
                            }
                        }
                    }
                }),
            );
        }
        self.ingester = Some(ing);
        Ok(())
    }

    fn init_store_gateway(&mut self) -> anyhow::Result<()> {
        let b = self
            .bucket
            .clone()
            .context("store-gateway needs the bucket")?;
        let ring = self.cfg.store_gateway.ring.clone();
        let watcher = self.watch_ring(
            "store-gateway",
            strata_store_gateway::RING_PREFIX,
            &ring,
            "/store-gateway/ring",
        )?;
        // In a cluster each store-gateway holds the blocks it owns in the ring (queriers ask
        // owners by block); alone in `all` it holds every block.
        let sharding = self
            .clustered()
            .then(|| strata_store_gateway::BlockSharding::new(watcher, ring.instance_id.clone()));
        let sg = strata_store_gateway::StoreGateway::with_sharding(
            self.cfg.store_gateway.clone(),
            b,
            sharding,
            &mut self.registry,
        )?;
        if self.clustered() {
            let svc =
                strata_rpc::StoreGatewayService::new(sg.clone()).into_server(&self.cfg.server.grpc);
            self.add_grpc(tonic::service::Routes::new(svc));
            let ring = self.cfg.resolved_ring(&ring);
            self.join_ring("store-gateway", strata_store_gateway::RING_PREFIX, ring);
        }
        self.store_gateway = Some(sg);
        Ok(())
    }

    fn init_compactor(&mut self) -> anyhow::Result<()> {
        let b = self.bucket.clone().context("compactor needs the bucket")?;
        let o = self
            .overrides
            .clone()
            .context("compactor needs runtime-config")?;
        let c =
            strata_compactor::Compactor::new(self.cfg.compactor.clone(), b, o, &mut self.registry)?;
        self.background
            .push(tokio::spawn(c.run(self.stop_rx.clone())));
        Ok(())
    }

    fn init_distributor(&mut self) -> anyhow::Result<()> {
        let pusher: Arc<dyn strata_storage::Pusher> = match &self.ingester {
            Some(ing) => ing.clone(),
            None => {
                let ring = self
                    .ingester_ring
                    .clone()
                    .context("distributor needs the ingester ring")?;
                Arc::new(strata_distributor::ReplicatedPusher::new(
                    ring,
                    Arc::new(self.clients.clone()),
                    &mut self.registry,
                ))
            }
        };
        let mut hooks = strata_distributor::ClusterHooks::default();
        if self.cfg.distributor.ha_tracker.enabled {
            let ha = strata_distributor::HaTracker::new(
                self.cfg.distributor.ha_tracker.clone(),
                self.kv()?,
            );
            self.background
                .push(tokio::spawn(ha.clone().run(self.stop_rx.clone())));
            hooks.ha_tracker = Some(ha);
        }
        if self.clustered() {
            let ring = self.cfg.distributor.ring.clone();
            let w = self.watch_ring("distributor", DISTRIBUTOR_RING, &ring, "/distributor/ring")?;
            hooks.healthy_distributors = Some(Arc::new(move || {
                w.ring()
                    .healthy_instances(Operation::Write, w.now_ms())
                    .count()
            }));
            let ring = self.cfg.resolved_ring(&ring);
            self.join_ring("distributor", DISTRIBUTOR_RING, ring);
        }
        let overrides = self
            .overrides
            .clone()
            .context("distributor needs runtime-config")?;
        let d = strata_distributor::Distributor::with_cluster(
            self.cfg.distributor.clone(),
            self.cfg.tenancy.clone(),
            overrides,
            pusher,
            hooks,
            &mut self.registry,
        )?;
        self.distributor = Some(d.clone());
        self.router = std::mem::take(&mut self.router).merge(strata_distributor::router(d));
        Ok(())
    }

    /// What queries read: the ingesters (this process's, or through their ring) and the
    /// blocks (this process's store-gateway, or the store-gateways' ring). Built once.
    fn query_source(&mut self) -> anyhow::Result<Arc<dyn Queryable>> {
        if let Some(s) = &self.query_source {
            return Ok(s.clone());
        }
        let ingesters: Arc<dyn Queryable> = match &self.ingester {
            Some(i) => i.clone(),
            None => Arc::new(strata_querier::ingesters::RingQueryable::new(
                self.ingester_ring
                    .clone()
                    .context("querier needs the ingester ring")?,
                Arc::new(self.clients.clone()),
                self.cfg.querier.ingesters.clone(),
            )),
        };
        let blocks: Arc<dyn Queryable> = match &self.store_gateway {
            Some(sg) if !self.clustered() => sg.clone(),
            _ => {
                let ring = self.cfg.store_gateway.ring.clone();
                let w = self.watch_ring(
                    "store-gateway",
                    strata_store_gateway::RING_PREFIX,
                    &ring,
                    "/store-gateway/ring",
                )?;
                let bucket = self
                    .bucket
                    .clone()
                    .context("querier needs the bucket (to read the bucket index)")?;
                let sg = &self.cfg.store_gateway;
                Arc::new(strata_querier::store_gateways::StoreGatewaySet::new(
                    w,
                    Arc::new(self.clients.clone()),
                    bucket,
                    strata_querier::store_gateways::BlockPlanning {
                        sync_interval: sg.sync_interval,
                        ignore_deletion_marks_delay: sg.ignore_deletion_marks_delay,
                    },
                ))
            }
        };
        // Blocks only for what the ingesters no longer hold: the recent range is read once,
        // from the ingesters, instead of decoded from both copies and merged. Ingesters delete
        // an uploaded block `retention_period` after its end, by their own clock: 10 minutes
        // less leaves room for clock skew between processes (and turns it off for short
        // retentions).
        let store_after = self.cfg.querier.query_store_after.min(
            self.cfg
                .ingester
                .blocks
                .retention_period
                .saturating_sub(std::time::Duration::from_secs(600)),
        );
        let blocks: Arc<dyn Queryable> = Arc::new(strata_querier::store_after::OlderThan::new(
            blocks,
            store_after,
        ));
        // Ingesters first: on equal timestamps their samples win over blocks'.
        let source: Arc<dyn Queryable> =
            Arc::new(strata_storage::MergeQueryable::new(vec![ingesters, blocks]));
        self.query_source = Some(source.clone());
        Ok(source)
    }

    fn init_querier(&mut self) -> anyhow::Result<()> {
        let source = self.query_source()?;
        let q = strata_querier::Querier::new(
            self.cfg.querier.clone(),
            self.cfg.tenancy.clone(),
            source,
        )?;
        let routes = strata_querier::router(q);
        if self.has(Module::QueryFrontend) {
            self.querier_router = Some(routes);
        } else {
            self.router = std::mem::take(&mut self.router).merge(routes);
        }
        Ok(())
    }

    /// In front of this process's querier, or alone calling `query_frontend.downstream_url`.
    fn init_query_frontend(&mut self) -> anyhow::Result<()> {
        let cfg = self.cfg.query_frontend.clone();
        if let Some(querier) = self.querier_router.take() {
            let downstream = Arc::new(strata_query_frontend::RouterDownstream(querier.clone()));
            let f = strata_query_frontend::QueryFrontend::new(
                cfg,
                self.cfg.tenancy.clone(),
                downstream,
                &mut self.registry,
            )?;
            self.router = std::mem::take(&mut self.router)
                .merge(strata_query_frontend::in_front_of(f, querier));
            return Ok(());
        }
        let url = cfg.downstream_url.clone().context(
            "query_frontend.downstream_url: a query-frontend without a querier in its process needs the querier's URL (e.g. http://querier:8080)",
        )?;
        let downstream = Arc::new(strata_query_frontend::HttpDownstream::new(
            &url,
            self.cfg.querier.query_timeout + std::time::Duration::from_secs(5),
        )?);
        let f = strata_query_frontend::QueryFrontend::new(
            cfg,
            self.cfg.tenancy.clone(),
            downstream,
            &mut self.registry,
        )?;
        self.router = std::mem::take(&mut self.router).merge(strata_query_frontend::router(f));
        Ok(())
    }

    fn init_ruler(&mut self) -> anyhow::Result<()> {
        let queryable = self.query_source()?;
        let pusher: Arc<dyn strata_storage::Pusher> = match &self.distributor {
            Some(d) => d.clone(),
            None => {
                // A ruler alone writes like a distributor that is not in the distributor ring
                // (it takes no remote write, so it must not take a share of the rate limit).
                let ring = self
                    .ingester_ring
                    .clone()
                    .context("ruler needs the ingester ring")?;
                let ingesters = Arc::new(strata_distributor::ReplicatedPusher::new(
                    ring,
                    Arc::new(self.clients.clone()),
                    &mut self.registry,
                ));
                let overrides = self
                    .overrides
                    .clone()
                    .context("ruler needs runtime-config")?;
                strata_distributor::Distributor::with_cluster(
                    self.cfg.distributor.clone(),
                    self.cfg.tenancy.clone(),
                    overrides,
                    ingesters,
                    strata_distributor::ClusterHooks::default(),
                    &mut self.registry,
                )?
            }
        };
        let cfg = self.cfg.ruler.clone();
        let metrics = strata_ruler::metrics::Metrics::new(&mut self.registry);
        let mut sinks: Vec<Arc<dyn strata_ruler::notifier::AlertSink>> = Vec::new();
        for url in &cfg.alertmanager_urls {
            sinks.push(Arc::new(strata_ruler::notifier::HttpSink::new(
                url,
                cfg.notification_timeout,
            )?));
        }
        if sinks.is_empty() {
            match &self.alertmanager {
                Some(am) => sinks.push(Arc::new(InProcessAlertmanager(
                    strata_alertmanager::router(am.clone()),
                ))),
                None => tracing::warn!(
                    "ruler: no ruler.alertmanager_urls and no Alertmanager in this process; alerts are evaluated but not sent"
                ),
            }
        }
        let notifier = Arc::new(strata_ruler::notifier::Notifier::new(
            sinks,
            cfg.notification_queue_capacity,
            metrics.clone(),
        ));
        let q = &self.cfg.querier;
        let engine = strata_promql::Engine::new(strata_promql::EngineOptions {
            lookback_delta: q.lookback_delta,
            max_samples: q.max_samples,
            timeout: q.query_timeout,
            max_query_bytes: q.max_query_bytes,
            max_query_depth: q.max_query_depth,
            default_subquery_step: cfg.evaluation_interval,
            ..strata_promql::EngineOptions::default()
        });
        let bucket = self.bucket.clone().context("ruler needs the bucket")?;
        // Rulers as their own processes share the groups through the ruler ring; in `all` the
        // one ruler evaluates every group.
        let sharding = if self.clustered() {
            let ring = self.cfg.resolved_ring(&cfg.ring);
            let watcher = self.watch_ring(
                "ruler",
                strata_ruler::sharding::RING_PREFIX,
                &ring,
                "/ruler/ring",
            )?;
            let id = ring.instance_id.clone();
            self.join_ring("ruler", strata_ruler::sharding::RING_PREFIX, ring);
            let sharding = strata_ruler::sharding::RingSharding::new(watcher, id);
            Some(if self.cfg.server.http_tls.is_some() {
                sharding.without_peer_listing()
            } else {
                sharding
            })
        } else {
            None
        };
        let ruler = strata_ruler::Ruler::new(
            cfg,
            self.cfg.tenancy.clone(),
            engine,
            queryable,
            pusher,
            strata_ruler::store::RuleStore::new(bucket, RULES_PREFIX),
            notifier.clone(),
            metrics,
            sharding,
            self.overrides.clone(),
        )?;
        self.background
            .push(tokio::spawn(notifier.run(self.stop_rx.clone())));
        self.background
            .push(tokio::spawn(ruler.clone().run(self.stop_rx.clone())));
        let root_alerts = self.alertmanager.is_none();
        self.router = std::mem::take(&mut self.router)
            .merge(strata_ruler::api::router_with(ruler, root_alerts));
        Ok(())
    }

    async fn init_alertmanager(&mut self) -> anyhow::Result<()> {
        let mut settings = self.cfg.alertmanager.clone();
        let ring = if settings.ring.enabled {
            let r = &mut settings.ring;
            if r.instance_http_addr.is_none() {
                r.instance_http_addr = Some(self.cfg.server.http_listen_address.clone());
            }
            if !r.tokens_file.is_empty() && std::path::Path::new(&r.tokens_file).is_relative() {
                r.tokens_file = self.cfg.data_dir.join(&r.tokens_file).display().to_string();
            }
            let tls = match (&self.grpc_tls, self.clients.tls()) {
                (Some(server), Some(client)) => Some(strata_alertmanager::PeerTls {
                    server: server.clone(),
                    client,
                }),
                _ => None,
            };
            Some(strata_alertmanager::RingBackend {
                kv: self.kv()?,
                metrics: Some(self.ring_metrics()),
                tls,
            })
        } else {
            None
        };
        let cfg = &self.cfg;
        let default_url = format!("http://{}", cfg.server.http_listen_address);
        let b = self
            .bucket
            .clone()
            .context("alertmanager needs the bucket")?;
        let restored = strata_alertmanager::Alertmanager::restore_from_bucket(
            &settings,
            &cfg.data_dir,
            &cfg.tenancy,
            &b,
            ring.as_ref().map(|r| &*r.kv),
        )
        .await
        .context("cannot restore alertmanager state from the bucket")?;
        if !restored.is_empty() {
            tracing::info!(
                tenants = restored.len(),
                "alertmanager state restored from the bucket"
            );
        }
        let am = strata_alertmanager::Alertmanager::new(
            settings,
            &cfg.data_dir,
            &default_url,
            Arc::new(strata_alertmanager::time::SystemClock),
            cfg.tenancy.clone(),
            &mut self.registry,
            ring,
        )?;
        let mut stop = self.stop_rx.clone();
        self.background
            .push(tokio::spawn(am.clone().run(async move {
                let _ = stop.changed().await;
            })));
        am.attach_bucket(b);
        self.router =
            std::mem::take(&mut self.router).merge(strata_alertmanager::router(am.clone()));
        if let Some(page) = am.ring_router() {
            self.router = std::mem::take(&mut self.router).merge(page);
            // Leaves at the signal, before the servers drain, so the peers take the tenants
            // over while this process still answers them.
            self.leavers.push(Arc::new(AlertmanagerMember(am.clone())));
        }
        self.alertmanager = Some(am);
        Ok(())
    }
}
