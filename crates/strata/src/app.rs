//! Wires the modules of the chosen targets together and runs them until a signal arrives.

use crate::config::{Config, LogFormat};
use crate::modules::{self, Module};
use crate::wiring::Wiring;
use crate::Cli;
use anyhow::Context;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use strata_model::Overrides;
use tokio::sync::watch;

pub fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.hash_password || cli.hash_token {
        return print_hash(cli.hash_password);
    }
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

/// `--hash-password` / `--hash-token`: one line from standard input, its hash on standard
/// output.
fn print_hash(password: bool) -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read standard input")?;
    let secret = line.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        anyhow::bail!("nothing to hash: write the secret on standard input");
    }
    let hash = if password {
        crate::auth::hash_password(secret.as_bytes())?
    } else {
        crate::auth::hash_token(secret.as_bytes())
    };
    println!("{hash}");
    Ok(())
}

fn init_logging(cfg: &Config) {
    // openraft narrates every election and vote at info; keep that for `meta` debugging.
    let level = if cfg.server.log_level.contains("openraft") {
        cfg.server.log_level.clone()
    } else {
        format!("{},openraft=warn", cfg.server.log_level)
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
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
pub(crate) fn load_overrides(cfg: &Config) -> anyhow::Result<Overrides> {
    use crate::config::RuntimeConfig;
    let mut o = Overrides {
        defaults: cfg.limits.clone(),
        tenants: Default::default(),
    };
    if !cfg.runtime_config.file.is_empty() {
        o.tenants = RuntimeConfig::load(&PathBuf::from(&cfg.runtime_config.file))?.overrides;
    }
    Ok(o)
}

pub(crate) async fn reload_overrides(
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
    let order = modules::resolve_with(&targets, cfg.alertmanager.ring.enabled);
    tracing::info!(
        targets = %targets.iter().map(|m| m.name()).collect::<Vec<_>>().join(","),
        modules = %order.iter().map(|m| m.name()).collect::<Vec<_>>().join(","),
        data_dir = %cfg.data_dir.display(),
        "starting Strata {}",
        env!("CARGO_PKG_VERSION")
    );
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data_dir {}", cfg.data_dir.display()))?;
    crate::auth::log_mode(&cfg.server.auth, &cfg.tenancy);
    let mut w = Wiring::new(cfg.clone(), order.clone())?;
    for m in &order {
        w.init(*m)
            .await
            .with_context(|| format!("cannot start module {}", m.name()))?;
    }
    let Wiring {
        registry,
        mut router,
        grpc,
        grpc_tls,
        stop_tx,
        stop_rx,
        mut background,
        ingester,
        alertmanager,
        meta,
        joins,
        mut leavers,
        ready_checks,
        ..
    } = w;

    let ready = Arc::new(AtomicBool::new(false));
    let registry = Arc::new(registry);
    let shown_cfg = cfg.shown()?;
    let ready_flag = ready.clone();
    let ready_checks = Arc::new(ready_checks);
    router = router
        .route(
            "/ready",
            get(move || {
                let up = ready_flag.load(Ordering::Relaxed);
                let why = ready_checks.iter().find_map(|c| c());
                async move {
                    match (up, why) {
                        (true, None) => (StatusCode::OK, "ready\n".to_owned()),
                        (false, _) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "not ready: starting or stopping\n".to_owned(),
                        ),
                        (true, Some(why)) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {why}\n"),
                        ),
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
        .route("/config", get(move || async move { shown_cfg }));
    if cfg.server.auth.enabled {
        let auth = crate::auth::Auth::load(&cfg.server.auth, cfg.tenancy.clone())?;
        background.push(tokio::spawn(
            auth.clone()
                .watch_file(cfg.server.auth.reload_interval, stop_rx.clone()),
        ));
        router = router.layer(axum::middleware::from_fn_with_state(
            auth,
            crate::auth::authenticate,
        ));
    }
    router = router.layer(axum::middleware::from_fn(log_request));
    let http_tls = cfg
        .server
        .http_tls
        .as_ref()
        .map(|t| strata_tls::server_config(t, &[strata_tls::ALPN_H2, strata_tls::ALPN_HTTP1]))
        .transpose()
        .context("server.http_tls")?;

    let listener = tokio::net::TcpListener::bind(&cfg.server.http_listen_address)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (server.http_listen_address)",
                cfg.server.http_listen_address
            )
        })?;
    tracing::info!(address = %listener.local_addr()?, https = http_tls.is_some(), "HTTP server listening");

    // Stopping: the signal handler marks the process unready and leaves the rings first (so
    // writes go elsewhere), then the servers drain.
    let (drain_tx, drain_rx) = watch::channel(false);
    let grpc_task = match grpc {
        Some(routes) => {
            let l = tokio::net::TcpListener::bind(&cfg.server.grpc_listen_address)
                .await
                .with_context(|| {
                    format!(
                        "cannot listen on {} (server.grpc_listen_address)",
                        cfg.server.grpc_listen_address
                    )
                })?;
            tracing::info!(address = %l.local_addr()?, mutual_tls = grpc_tls.is_some(), "gRPC server listening");
            let mut drain = drain_rx.clone();
            let limits = cfg.server.grpc.clone();
            Some(tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .max_concurrent_streams(limits.max_concurrent_streams)
                    .tcp_nodelay(true)
                    .add_routes(tonic::service::Routes::from(routes))
                    .serve_with_incoming_shutdown(
                        strata_tls::grpc::incoming(l, grpc_tls),
                        async move {
                            let _ = drain.wait_for(|d| *d).await;
                        },
                    )
                    .await
            }))
        }
        None => None,
    };

    // Components that join rings do it once their servers answer.
    for j in joins {
        leavers.push(j.await.context("cannot join the ring")?);
    }
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
    let leaving = leavers.clone();
    let mut http_drain = drain_rx.clone();
    tokio::spawn(async move {
        let reason = wait_for_signal().await;
        tracing::info!(
            signal = reason,
            "shutting down: leaving the rings, no new requests, finishing in-flight ones"
        );
        ready_for_signal.store(false, Ordering::Relaxed);
        for l in &leaving {
            l.leave().await;
        }
        let _ = drain_tx.send(true);
    });
    let server = crate::http_server::serve(
        listener,
        http_tls,
        router,
        cfg.server.max_request_header_bytes,
        async move {
            let _ = http_drain.wait_for(|d| *d).await;
        },
    );
    let grace = cfg.server.graceful_shutdown_timeout;
    let res = tokio::spawn(server).await;
    if let Some(g) = grpc_task {
        match tokio::time::timeout(grace, g).await {
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "gRPC server failed"),
            Err(_) => tracing::warn!("gRPC server did not drain in time"),
            _ => {}
        }
    }
    let _ = stop_tx.send(true);
    if let Some(ing) = ingester {
        match tokio::time::timeout(grace, ing.shutdown()).await {
            Ok(()) => tracing::info!("ingester stopped cleanly"),
            Err(_) => tracing::warn!(
                "ingester shutdown timed out; the WAL will be replayed at the next start"
            ),
        }
    }
    for l in &leavers {
        l.stop().await;
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
    if let Some(m) = meta {
        m.shutdown().await;
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
