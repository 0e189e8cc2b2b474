//! The alertmanager component: Alertmanager-compatible configuration, alert routing, grouping,
//! inhibition, silences, time intervals, notification log and webhook notifications, with API
//! v2 and Mimir's per-tenant configuration API.
//!
//! [`Alertmanager`] holds one [`TenantAlertmanager`] per tenant (one in single-tenant mode),
//! drives all their timers from one loop, snapshots their state to disk and restores it at
//! start (see [`persist`]). Time is read only through [`time::Clock`], so every timer is
//! testable with a fake clock. With `ring.enabled`, several replicas registered in the cluster
//! KV's ring share the tenants and notify each group once between them (see [`cluster`]).

pub mod alert;
pub mod amconfig;
mod api;
mod body_limit;
pub mod bucket_state;
pub mod cluster;
pub mod config;
pub mod dispatch;
mod error;
pub mod firewall;
pub mod inhibit;
pub mod labels;
pub mod matcher;
pub mod metrics;
pub mod nflog;
pub mod notify;
mod notify_tls;
pub mod persist;
pub mod route;
mod sandbox;
pub mod secret_url;
mod shown;
pub mod silence;
pub mod template;
pub mod tenant;
pub mod time;
pub mod timeinterval;
pub mod webhook;

pub use api::router;
pub use cluster::{PeerTls, RingBackend};
pub use config::AlertmanagerConfig;
pub use error::{AlertmanagerError, ApiError, NotifyError, SnapshotError, UserConfigError};
pub use tenant::TenantAlertmanager;

use amconfig::{AmConfig, LoadedConfig};
use parking_lot::RwLock;
use persist::UserConfig;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use strata_model::{TenancyConfig, TenancyMode, TenantId};
use tenant::Shared;
use time::{Clock, Timestamp};

/// Version reported in `/api/v2/status`: the Alertmanager API level this implements (amtool
/// compares major.minor and warns on a mismatch).
pub const COMPAT_VERSION: &str = "0.25.0";

/// The alertmanager component: every tenant's alertmanager.
#[derive(Debug)]
pub struct Alertmanager {
    shared: Arc<Shared>,
    tenancy: TenancyConfig,
    state_dir: PathBuf,
    config_path: Option<PathBuf>,
    settings: AlertmanagerConfig,
    /// The configuration of tenants without their own (`config_file` or the built-in one).
    fallback: RwLock<Arc<LoadedConfig>>,
    tenants: metrics::TenantMap,
    /// The copy of the state in the bucket, once attached ([`Alertmanager::attach_bucket`]).
    bucket: std::sync::OnceLock<bucket_state::BucketState>,
}

/// The fallback configuration: `config_file`, or the built-in one without it.
fn read_config(path: Option<&Path>) -> Result<LoadedConfig, AlertmanagerError> {
    match path {
        None => {
            AmConfig::load(config::BUILTIN_CONFIG).map_err(|source| AlertmanagerError::LoadConfig {
                path: PathBuf::from("<built-in>"),
                source,
            })
        }
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|source| AlertmanagerError::ReadConfig {
                    path: p.to_path_buf(),
                    source,
                })?;
            let dir = p.parent().unwrap_or(Path::new("."));
            AmConfig::load_with(&text, amconfig::TemplateSource::Dir(dir)).map_err(|source| {
                AlertmanagerError::LoadConfig {
                    path: p.to_path_buf(),
                    source,
                }
            })
        }
    }
}

impl Alertmanager {
    /// Loads the fallback configuration, restores the tenants found in the state directory
    /// (`settings.data_dir` under `strata_data_dir`; only the single tenant in single-tenant
    /// mode) and registers the metrics. `default_external_url` is used when `external_url` is
    /// unset (upstream uses `http://<hostname>:<port>`). With `ring.enabled`, `ring` says where
    /// the ring lives (required then, ignored otherwise); the replica starts watching it here
    /// and joins it when [`Alertmanager::run`] starts. Must be called within a Tokio runtime.
    pub fn new(
        settings: AlertmanagerConfig,
        strata_data_dir: &Path,
        default_external_url: &str,
        clock: Arc<dyn Clock>,
        tenancy: TenancyConfig,
        registry: &mut Registry,
        ring: Option<RingBackend>,
    ) -> Result<Arc<Self>, AlertmanagerError> {
        settings.validate()?;
        tenancy.validate().map_err(AlertmanagerError::Tenancy)?;
        let config_path = settings.config_path(strata_data_dir);
        let fallback = Arc::new(read_config(config_path.as_deref())?);
        let external_url = settings
            .external_url
            .clone()
            .unwrap_or_else(|| default_external_url.to_string())
            .trim_end_matches('/')
            .to_string();
        let user_agent = format!("Strata/{}", env!("CARGO_PKG_VERSION"));
        let mut sender = webhook::WebhookSender::new(
            &user_agent,
            settings.max_concurrent_notifications_per_host,
        )
        .map_err(AlertmanagerError::HttpClient)?;
        if settings.receivers_firewall.enabled() {
            let fw = firewall::Firewall::new(&settings.receivers_firewall)?;
            sender = sender
                .with_firewall(&user_agent, fw)
                .map_err(AlertmanagerError::HttpClient)?;
            tracing::info!("alertmanager receivers firewall on for tenants' configurations");
        }
        let tenants: metrics::TenantMap = Arc::default();
        let metrics = metrics::Metrics::new(registry, tenants.clone(), clock.clone());
        let cluster = match (settings.ring.enabled, ring) {
            (false, _) => None,
            (true, None) => return Err(AlertmanagerError::NoKv),
            (true, Some(backend)) => {
                Some(cluster::Cluster::new(&settings.ring, backend, registry)?)
            }
        };
        let shared = Arc::new(Shared {
            started: clock.now(),
            clock,
            wake: tokio::sync::Notify::new(),
            sender,
            metrics,
            external_url,
            instance: uuid::Uuid::new_v4().simple().to_string(),
            retention: settings.retention,
            cluster,
        });
        let am = Arc::new(Self {
            shared,
            state_dir: settings.state_dir(strata_data_dir),
            tenancy,
            config_path,
            settings,
            fallback: RwLock::new(fallback),
            tenants,
            bucket: std::sync::OnceLock::new(),
        });
        for id in am.stored_tenants()? {
            am.tenant(&id)?;
        }
        Ok(am)
    }

    /// Tenants with a directory in the state directory. In single-tenant mode only the single
    /// tenant: others (left from a multi-tenant past) could never be reached through the API,
    /// yet they would still send notifications.
    fn stored_tenants(&self) -> Result<Vec<TenantId>, AlertmanagerError> {
        if self.tenancy.mode == TenancyMode::Single {
            let id = TenantId::new(&self.tenancy.single_tenant_id)
                .map_err(AlertmanagerError::Tenancy)?;
            return Ok(vec![id]);
        }
        let entries = match std::fs::read_dir(&self.state_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(AlertmanagerError::ScanState {
                    path: self.state_dir.clone(),
                    source,
                })
            }
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|source| AlertmanagerError::ScanState {
                path: self.state_dir.clone(),
                source,
            })?;
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            match TenantId::new(&e.file_name().to_string_lossy()) {
                Ok(id) => out.push(id),
                Err(err) => tracing::warn!(
                    path = %e.path().display(),
                    error = %err,
                    "ignoring a directory in the alertmanager state directory that is not a tenant"
                ),
            }
        }
        out.sort();
        Ok(out)
    }

    /// The tenant's alertmanager, created (and restored from its directory) on first use.
    pub fn tenant(&self, id: &TenantId) -> Result<Arc<TenantAlertmanager>, AlertmanagerError> {
        if let Some(t) = self.tenants.read().get(id.as_str()) {
            return Ok(t.clone());
        }
        let mut map = self.tenants.write();
        if let Some(t) = map.get(id.as_str()) {
            return Ok(t.clone());
        }
        let t = TenantAlertmanager::open(
            id.as_str(),
            self.state_dir.join(id.as_str()),
            self.fallback.read().clone(),
            self.shared.clone(),
        )?;
        map.insert(id.as_str().to_string(), t.clone());
        drop(map);
        self.count_owned();
        self.shared.wake.notify_one();
        Ok(t)
    }

    /// Sets the gauge of owned tenants: at tenant creation and when the ring changes.
    pub(crate) fn count_owned(&self) {
        if let Some(c) = self.cluster() {
            let n = self.tenants.read().keys().filter(|t| c.owns(t)).count();
            c.metrics.owned_tenants.set(n as i64);
        }
    }

    /// The tenant of single-tenant mode (or the configured `single_tenant_id` in any mode).
    pub fn default_tenant(&self) -> Result<Arc<TenantAlertmanager>, AlertmanagerError> {
        let id =
            TenantId::new(&self.tenancy.single_tenant_id).map_err(AlertmanagerError::Tenancy)?;
        self.tenant(&id)
    }

    pub fn tenancy(&self) -> &TenancyConfig {
        &self.tenancy
    }

    /// The tenants that exist now.
    pub fn tenants(&self) -> Vec<Arc<TenantAlertmanager>> {
        self.tenants.read().values().cloned().collect()
    }

    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    pub(crate) fn started(&self) -> Timestamp {
        self.shared.started
    }

    pub(crate) fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// The HA ring, when `ring.enabled`.
    pub fn cluster(&self) -> Option<&Arc<cluster::Cluster>> {
        self.shared.cluster.as_ref()
    }

    /// Whether notifications may go out (`/-/ready`): always without a ring; with one, once the
    /// replica is ACTIVE in it and its start-up state sync finished or timed out.
    pub fn settled(&self) -> bool {
        self.cluster().is_none_or(|c| c.settled())
    }

    /// Whether `tenant`'s groups may be flushed here: always without a ring; with one, see
    /// [`cluster::Cluster::may_notify`].
    fn may_notify(&self, tenant: &str) -> bool {
        self.cluster().is_none_or(|c| c.may_notify(tenant))
    }

    /// The ring page (`/alertmanager/ring`: HTML, or JSON with `Accept: application/json`;
    /// `POST forget=<id>` removes a dead replica), when the ring is enabled.
    pub fn ring_router(&self) -> Option<axum::Router> {
        self.cluster().map(|c| {
            strata_ring::ring_router(
                "/alertmanager/ring",
                c.watcher().clone(),
                c.kv().clone(),
                config::RING_PREFIX,
            )
        })
    }

    /// Starts leaving the ring (shutdown): goes LEAVING, so that the other replicas take this
    /// one's tenants over, and waits (up to `ring.settle_timeout`) until they pulled its state.
    /// Nothing is notified afterwards. Does nothing without a ring or when already leaving.
    pub async fn leave_ring(&self) {
        if let Some(c) = self.cluster() {
            c.leave().await;
        }
    }

    /// Leaves the ring for good: stops heartbeating and unregisters (or stays LEAVING with
    /// `ring.unregister_on_shutdown: false`). [`Alertmanager::run`] calls both steps when its
    /// shutdown future resolves; a process that leaves earlier calls them itself.
    pub async fn stop_ring(&self) {
        if let Some(c) = self.cluster() {
            c.stop().await;
        }
    }

    /// Re-reads the fallback configuration file and applies it to every tenant without its own
    /// configuration. A bad file leaves the running configuration in place.
    pub fn reload(&self) -> Result<(), AlertmanagerError> {
        let tenants = self.tenants();
        let loaded = match read_config(self.config_path.as_deref()) {
            Ok(l) => Arc::new(l),
            Err(e) => {
                for t in tenants.iter().filter(|t| t.uses_fallback()) {
                    t.mark_reload_failed();
                }
                return Err(e);
            }
        };
        *self.fallback.write() = loaded.clone();
        for t in tenants.iter().filter(|t| t.uses_fallback()) {
            t.apply(loaded.clone());
        }
        tracing::info!("alertmanager configuration reloaded");
        Ok(())
    }

    /// Checks, stores and applies a tenant's own configuration document (Mimir's format). A
    /// refused document changes nothing.
    pub fn set_tenant_config(&self, id: &TenantId, text: &str) -> Result<(), ApiError> {
        let (cfg, loaded) = UserConfig::parse(text).map_err(ApiError::UserConfig)?;
        let t = self.tenant(id).map_err(ApiError::Internal)?;
        t.set_user_config(cfg, Arc::new(loaded))
            .map_err(ApiError::Internal)?;
        tracing::info!(tenant = %id, "alertmanager configuration of tenant stored and applied");
        Ok(())
    }

    /// Removes a tenant's own configuration: it runs the fallback from now on.
    pub fn delete_tenant_config(&self, id: &TenantId) -> Result<(), ApiError> {
        let t = self.tenant(id).map_err(ApiError::Internal)?;
        let fallback = self.fallback.read().clone();
        t.delete_user_config(fallback).map_err(ApiError::Internal)
    }

    /// Before [`Alertmanager::new`]: copies from the bucket the state files of the tenants this
    /// replica serves whose local files are missing (see [`bucket_state`]). Returns the tenants
    /// restored. Does nothing when `alertmanager.bucket.enabled` is off. With the ring (`kv`
    /// required then), the tenants it will own: if it has tokens in the ring, those its tokens
    /// give it; if no other replica is ACTIVE, all; otherwise (a new replica joining) none, as
    /// its peers' state is newer.
    pub async fn restore_from_bucket(
        settings: &AlertmanagerConfig,
        strata_data_dir: &Path,
        tenancy: &TenancyConfig,
        bucket: &strata_storage::bucket::Bucket,
        kv: Option<&dyn strata_meta::KvStore>,
    ) -> Result<Vec<String>, AlertmanagerError> {
        settings.validate()?;
        if !settings.bucket.enabled {
            return Ok(Vec::new());
        }
        let scope = if settings.ring.enabled {
            let kv = kv.ok_or(AlertmanagerError::NoKv)?;
            Some(cluster::restore_scope(&settings.ring, kv).await)
        } else {
            None
        };
        let single =
            (tenancy.mode == TenancyMode::Single).then(|| tenancy.single_tenant_id.clone());
        bucket_state::hydrate(
            bucket,
            &settings.bucket,
            &settings.state_dir(strata_data_dir),
            |t| {
                single.as_deref().is_none_or(|s| s == t)
                    && scope.as_ref().is_none_or(|s| s.includes(&settings.ring, t))
            },
        )
        .await
    }

    /// Keeps a copy of every tenant's state files in `bucket` from now on (when
    /// `alertmanager.bucket.enabled`); the periodic snapshot round uploads what changed.
    pub fn attach_bucket(&self, bucket: strata_storage::bucket::Bucket) {
        if self.settings.bucket.enabled {
            let _ = self.bucket.set(bucket_state::BucketState::new(
                bucket,
                self.settings.bucket.clone(),
            ));
        }
    }

    /// Uploads the tenants' changed state files to the bucket, if one is attached: those not
    /// uploaded within `alertmanager.bucket.upload_interval`, or all with `force`
    /// (shutdown). With the ring, only tenants this replica owns (leaving: owned before it
    /// left). Returns how many objects changed.
    pub async fn upload_state(&self, force: bool) -> Result<usize, AlertmanagerError> {
        let Some(b) = self.bucket.get() else {
            return Ok(0);
        };
        // With the ring, only the tenants this replica serves: one it lost holds an ageing copy
        // that must not overwrite the copy of its new owners.
        let tenants: Vec<String> = self
            .tenants()
            .iter()
            .filter(|t| self.cluster().is_none_or(|c| c.keeps_bucket_copy(t.id())))
            .map(|t| t.id().to_string())
            .collect();
        b.upload(&self.state_dir, &tenants, force).await
    }

    /// Snapshots every tenant whose state changed; errors are logged and counted, and the
    /// previous snapshot stays.
    pub fn persist_all(&self) -> Result<(), AlertmanagerError> {
        let mut first_err = None;
        for t in self.tenants() {
            if let Err(e) = t.persist() {
                tracing::error!(tenant = t.id(), error = %e, "alertmanager snapshot failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The final snapshot at shutdown. Call after [`Alertmanager::run`] has returned so that
    /// nothing changes afterwards.
    pub fn shutdown(&self) -> Result<(), AlertmanagerError> {
        self.persist_all()?;
        tracing::info!(tenants = self.tenants().len(), "alertmanager state saved");
        Ok(())
    }

    /// Drives every tenant's timers until `shutdown` resolves: flushes due groups, sends their
    /// notifications concurrently, runs maintenance and periodic snapshots. With the ring, also
    /// joins it, serves the peers' gRPC API and replicates; a tenant's groups are flushed only
    /// where [`cluster::Cluster::may_notify`] allows it. At shutdown it leaves the ring (see
    /// [`Alertmanager::leave_ring`]) and unregisters.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let cluster_tasks = match self.cluster() {
            Some(c) => match c.start(self.clone()) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(error = %e, "alertmanager ring not started");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        /// Stops the ring's tasks (and frees the gRPC port) however `run` ends.
        struct AbortOnDrop(
            Vec<tokio::task::JoinHandle<()>>,
            Option<Arc<cluster::Cluster>>,
        );
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                for t in &self.0 {
                    t.abort();
                }
                if let Some(c) = &self.1 {
                    c.abort_senders();
                }
            }
        }
        let _cluster_tasks = AbortOnDrop(cluster_tasks, self.cluster().cloned());
        tokio::pin!(shutdown);
        let mut maintenance = tokio::time::interval(self.settings.maintenance_interval);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut snapshots = tokio::time::interval(self.settings.snapshot_interval);
        snapshots.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        snapshots.tick().await;
        let mut persisting: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            let now = self.now();
            let mut next: Option<Timestamp> = None;
            // Groups of tenants this replica may not notify for wait (until settled, or until a
            // sync after a ring change brought the previous owners' state); the syncer and the
            // ring follower wake this loop.
            for t in self
                .tenants()
                .into_iter()
                .filter(|t| self.may_notify(t.id()))
            {
                let (jobs, due) = t.with_core(|c| (c.poll(now), c.next_due()));
                for job in jobs {
                    tokio::spawn(t.clone().execute(job));
                }
                next = match (next, due) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let wait = next
                .map(|n| (n - now).to_std().unwrap_or_default())
                .unwrap_or(std::time::Duration::from_secs(60))
                .min(std::time::Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.shared.wake.notified() => {}
                _ = maintenance.tick() => {
                    let now = self.now();
                    for t in self.tenants() {
                        t.with_core(|c| c.maintenance(now));
                    }
                }
                _ = snapshots.tick() => {
                    // File I/O off the async threads; one round at a time.
                    if persisting.as_ref().is_none_or(|h| h.is_finished()) {
                        let am = self.clone();
                        persisting = Some(tokio::spawn(async move {
                            let local = am.clone();
                            let _ = tokio::task::spawn_blocking(move || local.persist_all()).await;
                            // Errors are logged per tenant and retried next round.
                            let _ = am.upload_state(false).await;
                        }));
                    }
                }
                _ = &mut shutdown => {
                    // Still serving the peers (the tasks stop when this returns), so they can
                    // pull this replica's state while it hands its tenants over.
                    self.leave_ring().await;
                    if let Some(h) = persisting {
                        let _ = h.await;
                    }
                    self.stop_ring().await;
                    return;
                }
            }
        }
    }
}
