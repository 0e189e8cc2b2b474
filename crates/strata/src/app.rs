//! Wires the modules of the chosen targets together and runs them until a signal arrives.

use crate::config::{Config, LogFormat, RuntimeConfig};
use crate::modules::{self, Module};
use crate::Cli;
use anyhow::Context;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use parking_lot::RwLock;
use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use strata_model::Overrides;
use tokio::sync::watch;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut cfg = match &cli.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(a) = cli.http_listen_address {
        cfg.server.http_listen_address = a;
    }
    if let Some(d) = cli.data_dir {
        cfg.data_dir = d;
    }
    if let Some(l) = cli.log_level {
        cfg.server.log_level = l;
    }
    if cli.print_default_config {
        print!("{}", serde_yaml::to_string(&Config::default())?);
        return Ok(());
    }
    cfg.validate()?;
    let targets = modules::parse_targets(&cli.target).map_err(anyhow::Error::msg)?;
    if cli.check_config {
        println!("configuration is valid");
        return Ok(());
    }
    init_logging(&cfg);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strata")
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(cfg, targets))
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.server.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.server.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Logfmt => builder.with_ansi(false).init(),
    }
}

/// Per-tenant limits: defaults from the config file plus the runtime overrides file.
fn load_overrides(cfg: &Config) -> anyhow::Result<Overrides> {
    let mut o = Overrides {
        defaults: cfg.limits.clone(),
        tenants: Default::default(),
    };
    if !cfg.runtime_config.file.is_empty() {
        o.tenants = RuntimeConfig::load(&PathBuf::from(&cfg.runtime_config.file))?.overrides;
    }
    Ok(o)
}

async fn reload_overrides(
    cfg: Config,
    overrides: Arc<RwLock<Overrides>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(cfg.runtime_config.period);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        match load_overrides(&cfg) {
            Ok(o) => {
                let mut cur = overrides.write();
                if *cur != o {
                    tracing::info!(tenants = o.tenants.len(), "runtime config reloaded");
                    *cur = o;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "runtime config reload failed; keeping the previous limits")
            }
        }
    }
}

async fn serve(cfg: Config, targets: Vec<Module>) -> anyhow::Result<()> {
    let order = modules::resolve(&targets);
    tracing::info!(
        targets = %targets.iter().map(|m| m.name()).collect::<Vec<_>>().join(","),
        modules = %order.iter().map(|m| m.name()).collect::<Vec<_>>().join(","),
        data_dir = %cfg.data_dir.display(),
        "starting Strata {}",
        env!("CARGO_PKG_VERSION")
    );
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data_dir {}", cfg.data_dir.display()))?;
    let mut registry = Registry::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let ready = Arc::new(AtomicBool::new(false));
    let mut router = Router::new();
    let mut overrides = None;
    let mut ingester = None;
    let mut bucket: Option<strata_storage::bucket::Bucket> = None;
    let mut store_gateway: Option<Arc<strata_store_gateway::StoreGateway>> = None;
    let mut alertmanager: Option<Arc<strata_alertmanager::Alertmanager>> = None;
    let mut background = Vec::new();
    for m in &order {
        match m {
            Module::Server | Module::All => {}
            Module::Bucket => {
                let bcfg = cfg.resolved_bucket();
                bucket = Some(
                    strata_storage::bucket::Bucket::from_config(&bcfg)
                        .context("cannot set up the bucket (bucket:)")?,
                );
                tracing::info!(backend = ?bcfg.backend, "bucket configured");
            }
            Module::StoreGateway => {
                let b = bucket.clone().context("store-gateway needs the bucket")?;
                store_gateway = Some(strata_store_gateway::StoreGateway::new(
                    cfg.store_gateway.clone(),
                    b,
                    &mut registry,
                )?);
            }
            Module::Compactor => {
                let b = bucket.clone().context("compactor needs the bucket")?;
                let o = overrides
                    .clone()
                    .context("compactor needs runtime-config")?;
                let c =
                    strata_compactor::Compactor::new(cfg.compactor.clone(), b, o, &mut registry)?;
                background.push(tokio::spawn(c.run(stop_rx.clone())));
            }
            Module::RuntimeConfig => {
                let o = Arc::new(RwLock::new(load_overrides(&cfg)?));
                if !cfg.runtime_config.file.is_empty() {
                    background.push(tokio::spawn(reload_overrides(
                        cfg.clone(),
                        o.clone(),
                        stop_rx.clone(),
                    )));
                }
                overrides = Some(o);
            }
            Module::Ingester => {
                let o = overrides.clone().context("ingester needs runtime-config")?;
                let data_dir = cfg.data_dir.clone();
                let icfg = cfg.ingester.clone();
                // Replay can take a while and does blocking file I/O.
                let ing = tokio::task::block_in_place(|| {
                    strata_ingester::Ingester::open(icfg, &data_dir, o, &mut registry)
                })?;
                let b = bucket.clone().context("ingester needs the bucket")?;
                ing.enable_shipping(b, &data_dir)
                    .await
                    .context("cannot load the ingester's local blocks")?;
                background.push(tokio::spawn(ing.clone().run_background(stop_rx.clone())));
                ingester = Some(ing);
            }
            Module::Distributor => {
                let ing = ingester.clone().context("distributor needs an ingester")?;
                let d = strata_distributor::Distributor::new(
                    cfg.distributor.clone(),
                    cfg.tenancy.clone(),
                    overrides
                        .clone()
                        .context("distributor needs runtime-config")?,
                    ing,
                    &mut registry,
                )?;
                router = router.merge(strata_distributor::router(d));
            }
            Module::Alertmanager => {
                let default_url = format!("http://{}", cfg.server.http_listen_address);
                let b = bucket.clone().context("alertmanager needs the bucket")?;
                let restored = strata_alertmanager::Alertmanager::restore_from_bucket(
                    &cfg.alertmanager,
                    &cfg.data_dir,
                    &cfg.tenancy,
                    &b,
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
                    cfg.alertmanager.clone(),
                    &cfg.data_dir,
                    &default_url,
                    Arc::new(strata_alertmanager::time::SystemClock),
                    cfg.tenancy.clone(),
                    &mut registry,
                )?;
                let mut stop = stop_rx.clone();
                background.push(tokio::spawn(am.clone().run(async move {
                    let _ = stop.changed().await;
                })));
                am.attach_bucket(b);
                router = router.merge(strata_alertmanager::router(am.clone()));
                alertmanager = Some(am);
            }
            Module::Querier => {
                let ing = ingester.clone().context("querier needs an ingester")?;
                let sg = store_gateway
                    .clone()
                    .context("querier needs a store-gateway")?;
                // Ingester first: on equal timestamps its samples win over blocks'.
                let source: Arc<dyn strata_storage::Queryable> =
                    Arc::new(strata_storage::MergeQueryable::new(vec![ing, sg]));
                let q =
                    strata_querier::Querier::new(cfg.querier.clone(), cfg.tenancy.clone(), source)?;
                router = router.merge(strata_querier::router(q));
            }
        }
    }
    let registry = Arc::new(registry);
    let shown_cfg = cfg.shown()?;
    let ready_flag = ready.clone();
    router = router
        .route(
            "/ready",
            get(move || {
                let r = ready_flag.load(Ordering::Relaxed);
                async move {
                    if r {
                        (StatusCode::OK, "ready\n")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: starting or stopping\n",
                        )
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let registry = registry.clone();
                async move {
                    let mut out = String::new();
                    match prometheus_client::encoding::text::encode(&mut out, &registry) {
                        Ok(()) => (
                            StatusCode::OK,
                            [(
                                "content-type",
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            out,
                        )
                            .into_response(),
                        Err(e) => {
                            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                        }
                    }
                }
            }),
        )
        .route("/config", get(move || async move { shown_cfg }))
        .layer(axum::middleware::from_fn(log_request));

    let listener = tokio::net::TcpListener::bind(&cfg.server.http_listen_address)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (server.http_listen_address)",
                cfg.server.http_listen_address
            )
        })?;
    tracing::info!(address = %listener.local_addr()?, "HTTP server listening");
    ready.store(true, Ordering::Relaxed);

    let mut reloader = None;
    if let Some(am) = alertmanager.clone() {
        // SIGHUP reloads the Alertmanager configuration; a bad file keeps the old one.
        reloader = Some(tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                if let Err(e) = am.reload() {
                    tracing::error!(error = %e, "alertmanager reload failed; keeping the running configuration");
                }
            }
        }));
    }
    let ready_for_signal = ready.clone();
    let shutdown = async move {
        let reason = wait_for_signal().await;
        tracing::info!(
            signal = reason,
            "shutting down: no new requests; finishing in-flight ones"
        );
        ready_for_signal.store(false, Ordering::Relaxed);
    };
    let server = crate::http_server::serve(
        listener,
        router,
        cfg.server.max_request_header_bytes,
        shutdown,
    );
    let grace = cfg.server.graceful_shutdown_timeout;
    let server_task = tokio::spawn(server);
    let res = server_task.await;
    let _ = stop_tx.send(true);
    if let Some(ing) = ingester {
        match tokio::time::timeout(grace, ing.shutdown()).await {
            Ok(()) => tracing::info!("ingester stopped cleanly"),
            Err(_) => tracing::warn!(
                "ingester shutdown timed out; the WAL will be replayed at the next start"
            ),
        }
    }
    if let Some(r) = reloader {
        r.abort();
    }
    for b in background {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), b).await;
    }
    if let Some(am) = alertmanager {
        // After its loop stopped: the final snapshot holds everything up to the shutdown.
        if let Err(e) = tokio::task::block_in_place(|| am.shutdown()) {
            tracing::error!(error = %e, "alertmanager final snapshot failed");
        }
        // Errors are logged per tenant; the bucket keeps the previous copy.
        if let Ok(n) = am.upload_state(true).await {
            tracing::info!(objects = n, "alertmanager state copied to the bucket");
        }
    }
    res.context("HTTP server task failed")?
        .context("HTTP server failed")?;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return "none",
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

async fn log_request(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let t0 = std::time::Instant::now();
    let resp = next.run(req).await;
    let status = resp.status();
    let took_ms = t0.elapsed().as_millis() as u64;
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), took_ms, "request failed");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), took_ms, "request");
    }
    resp
}
