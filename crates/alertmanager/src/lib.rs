//! The alertmanager component: Alertmanager-compatible configuration, alert routing, grouping,
//! inhibition, silences, notification log and webhook notifications, with API v2.
//!
//! Single tenant, in memory. The seams for the next slices: [`dispatch::Snapshot`] (what a
//! snapshotter persists or a peer replicates), [`Alertmanager::reload`] (SIGHUP), and the
//! [`time::Clock`] every timer reads.

pub mod alert;
pub mod amconfig;
mod api;
pub mod config;
pub mod dispatch;
mod error;
pub mod inhibit;
pub mod labels;
pub mod matcher;
pub mod nflog;
pub mod route;
pub mod silence;
pub mod time;
pub mod timeinterval;
pub mod webhook;

pub use api::router;
pub use config::AlertmanagerConfig;
pub use error::{AlertmanagerError, ApiError, NotifyError};

use amconfig::{AmConfig, LoadedConfig};
use dispatch::{Core, FlushJob};
use parking_lot::Mutex;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Clock, Timestamp};
use tokio::sync::Notify;

/// Version reported in `/api/v2/status`: the Alertmanager API level this implements (amtool
/// compares major.minor and warns on a mismatch).
pub const COMPAT_VERSION: &str = "0.25.0";

/// One (single-tenant) alertmanager.
#[derive(Debug)]
pub struct Alertmanager {
    core: Mutex<Core>,
    clock: Arc<dyn Clock>,
    wake: Notify,
    sender: webhook::WebhookSender,
    config_path: Option<PathBuf>,
    settings: AlertmanagerConfig,
    started: Timestamp,
    instance: String,
}

fn read_config(path: Option<&Path>) -> Result<LoadedConfig, AlertmanagerError> {
    let loaded = read_config_inner(path)?;
    let timed = loaded.routes_with_time_intervals();
    if !timed.is_empty() {
        tracing::warn!(
            routes = ?timed,
            "mute_time_intervals/active_time_intervals are validated but not evaluated yet: these routes are never muted"
        );
    }
    Ok(loaded)
}

fn read_config_inner(path: Option<&Path>) -> Result<LoadedConfig, AlertmanagerError> {
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
            AmConfig::load(&text).map_err(|source| AlertmanagerError::LoadConfig {
                path: p.to_path_buf(),
                source,
            })
        }
    }
}

impl Alertmanager {
    /// Loads the configuration and builds the component. `strata_data_dir` anchors relative
    /// paths; `default_external_url` is used when `external_url` is unset (upstream uses
    /// `http://<hostname>:<port>`).
    pub fn new(
        settings: AlertmanagerConfig,
        strata_data_dir: &Path,
        default_external_url: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, AlertmanagerError> {
        settings.validate()?;
        let config_path = settings.config_path(strata_data_dir);
        let loaded = read_config(config_path.as_deref())?;
        let external_url = settings
            .external_url
            .clone()
            .unwrap_or_else(|| default_external_url.to_string());
        let mut core = Core::new(
            Arc::new(loaded),
            external_url.trim_end_matches('/').to_string(),
        );
        core.silences.retention = settings.retention;
        let sender = webhook::WebhookSender::new(&format!("Strata/{}", env!("CARGO_PKG_VERSION")))
            .map_err(AlertmanagerError::HttpClient)?;
        let started = clock.now();
        Ok(Arc::new(Self {
            core: Mutex::new(core),
            clock,
            wake: Notify::new(),
            sender,
            config_path,
            settings,
            started,
            instance: uuid::Uuid::new_v4().simple().to_string(),
        }))
    }

    /// Re-reads the configuration file. A bad file leaves the running configuration in place.
    pub fn reload(&self) -> Result<(), AlertmanagerError> {
        let loaded = read_config(self.config_path.as_deref())?;
        let now = self.clock.now();
        self.core.lock().reload(Arc::new(loaded), now);
        self.wake.notify_one();
        tracing::info!("alertmanager configuration reloaded");
        Ok(())
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Access to the core (alerts, silences, notification log) under its lock.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        f(&mut self.core.lock())
    }

    /// A consistent copy of the state a snapshotter persists.
    pub fn snapshot(&self) -> dispatch::Snapshot {
        self.core.lock().snapshot()
    }

    pub(crate) fn put_alerts(&self, alerts: Vec<alert::Alert>) {
        let now = self.clock.now();
        self.core.lock().put_alerts(alerts, now);
        self.wake.notify_one();
    }

    /// Drives the timers until `shutdown` resolves: flushes due groups, sends their
    /// notifications concurrently, runs maintenance.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut maintenance = tokio::time::interval(self.settings.maintenance_interval);
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let now = self.clock.now();
            let (jobs, next) = {
                let mut core = self.core.lock();
                let jobs = core.poll(now);
                (jobs, core.next_due())
            };
            for job in jobs {
                tokio::spawn(Arc::clone(&self).execute(job));
            }
            let wait = next
                .map(|n| (n - now).to_std().unwrap_or_default())
                .unwrap_or(std::time::Duration::from_secs(60))
                .min(std::time::Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
                _ = maintenance.tick() => {
                    let now = self.clock.now();
                    self.core.lock().maintenance(now);
                }
                _ = &mut shutdown => return,
            }
        }
    }

    async fn execute(self: Arc<Self>, job: FlushJob) {
        let mut set = tokio::task::JoinSet::new();
        let mut ok = vec![false; job.sends.len()];
        for (i, s) in job.sends.iter().enumerate() {
            match &s.body {
                None => ok[i] = true,
                Some(body) => {
                    let (sender, hook, body, timeout) = (
                        self.sender.clone(),
                        s.webhook.clone(),
                        body.clone(),
                        job.timeout,
                    );
                    set.spawn(async move { (i, sender.send(&hook, &body, timeout).await) });
                }
            }
        }
        while let Some(res) = set.join_next().await {
            match res {
                Ok((i, Ok(()))) => ok[i] = true,
                Ok((i, Err(e))) => tracing::warn!(
                    group = %job.group.1,
                    receiver = %job.sends[i].key.receiver,
                    error = %e,
                    "notify failed"
                ),
                Err(e) => tracing::error!(error = %e, "notification task failed"),
            }
        }
        let now = self.clock.now();
        self.core.lock().complete(job, &ok, now);
        self.wake.notify_one();
    }
}
