//! The ingester's place in the ingester ring.
//!
//! An ingester registers only after its WAL was replayed (`Ingester::open` returns then), so
//! distributors never route writes to an ingester that would refuse or lose them. On SIGTERM
//! it turns LEAVING (writes go elsewhere at once) and then unregisters, keeping its WAL for the
//! restart. `POST /ingester/shutdown` is the scale-down path: leave, cut and upload every block
//! (the bucket then holds all it had), unregister, stop accepting writes; the process stays up
//! until it is stopped.

use crate::{Ingester, IngesterError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::sync::Arc;
use std::time::Duration;
use strata_meta::KvStore;
use strata_ring::{InstanceState, Lifecycler, LifecyclerOptions, RingConfig};

/// Key prefix of the ingester ring in the cluster KV.
pub const RING_PREFIX: &str = "ring/ingester";

/// An ingester's ring membership.
#[derive(Debug)]
pub struct RingMembership {
    ingester: Arc<Ingester>,
    lifecycler: Arc<Lifecycler>,
    flush_timeout: Duration,
    shutdown_lock: tokio::sync::Mutex<bool>,
}

impl RingMembership {
    /// Registers the (replayed) ingester and makes it ACTIVE.
    pub async fn join(
        ingester: Arc<Ingester>,
        cfg: RingConfig,
        kv: Arc<dyn KvStore>,
        opts: LifecyclerOptions,
        flush_timeout: Duration,
    ) -> Result<Arc<Self>, IngesterError> {
        let lifecycler = Lifecycler::start_with(cfg, kv, RING_PREFIX, opts).await?;
        if lifecycler.state() != InstanceState::Active {
            lifecycler.join().await?;
        }
        tracing::info!(
            instance = %lifecycler.id(),
            tokens = lifecycler.tokens().len(),
            "ingester is ACTIVE in the ring"
        );
        Ok(Arc::new(Self {
            ingester,
            lifecycler,
            flush_timeout,
            shutdown_lock: tokio::sync::Mutex::new(false),
        }))
    }

    pub fn lifecycler(&self) -> &Arc<Lifecycler> {
        &self.lifecycler
    }

    /// Stops taking writes through the ring (LEAVING), before the process drains and stops.
    pub async fn leave(&self) {
        if let Err(e) = self.lifecycler.leave().await {
            tracing::warn!(error = %e, "could not mark the ingester LEAVING");
        }
    }

    /// Ends the membership (unregisters if configured so).
    pub async fn stop(&self) {
        if let Err(e) = self.lifecycler.stop().await {
            tracing::warn!(error = %e, "could not leave the ingester ring cleanly");
        }
    }

    /// Leave, flush everything to the bucket, unregister (Mimir's `/ingester/shutdown`).
    /// Idempotent: a second call answers at once.
    pub async fn shutdown(&self) -> Result<crate::ShipReport, IngesterError> {
        let mut done = self.shutdown_lock.lock().await;
        if *done {
            return Ok(crate::ShipReport::default());
        }
        self.leave().await;
        tracing::info!("ingester shutdown requested: flushing every block to the bucket");
        let report = self.ingester.flush(self.flush_timeout).await?;
        tracing::info!(
            blocks_cut = report.blocks_cut,
            blocks_uploaded = report.blocks_uploaded,
            "finished flushing and shipping blocks; leaving the ring"
        );
        self.ingester.stop_accepting();
        self.lifecycler.stop().await?;
        *done = true;
        Ok(report)
    }
}

async fn shutdown_handler(State(m): State<Arc<RingMembership>>) -> Response {
    match m.shutdown().await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "ingester shutdown failed");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response()
        }
    }
}

/// `POST /ingester/shutdown`.
pub fn router(m: Arc<RingMembership>) -> Router {
    Router::new()
        .route("/ingester/shutdown", post(shutdown_handler))
        .with_state(m)
}
