//! One tenant's alertmanager: its core (alerts, groups, silences, notification log), its
//! configuration (its own, uploaded, or the shared fallback) and its files under
//! `<state dir>/<tenant>/`.

use crate::alert::Alert;
use crate::amconfig::LoadedConfig;
use crate::dispatch::{Core, FlushJob};
use crate::error::AlertmanagerError;
use crate::metrics::{IntegrationLabels, Metrics};
use crate::persist::{self, ConfigMeta, ConfigRecord, SnapshotFile, SnapshotFileRef, UserConfig};
use crate::silence::SilenceState;
use crate::time::{Clock, Timestamp};
use crate::webhook::WebhookSender;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;

/// What every tenant shares: the clock, the HTTP client, the metrics and the loop's wake-up.
#[derive(Debug)]
pub(crate) struct Shared {
    pub clock: Arc<dyn Clock>,
    pub wake: Notify,
    pub sender: WebhookSender,
    pub metrics: Metrics,
    pub external_url: String,
    pub started: Timestamp,
    pub instance: String,
    pub retention: std::time::Duration,
    /// The HA ring, when enabled.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// Counts behind the state gauges.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StateCounts {
    pub alerts_active: usize,
    pub alerts_suppressed: usize,
    pub silences_active: usize,
    pub silences_pending: usize,
    pub silences_expired: usize,
}

#[derive(Debug)]
struct ReloadStatus {
    ok: bool,
    last_success: Option<Timestamp>,
}

#[derive(Debug)]
pub struct TenantAlertmanager {
    id: String,
    dir: PathBuf,
    core: Mutex<Core>,
    pub(crate) shared: Arc<Shared>,
    /// The tenant's own configuration; `None`: it runs the fallback.
    user_config: Mutex<Option<UserConfig>>,
    /// When `user_config` was last set or deleted (`None`: never, or by a build without
    /// records).
    config_meta: Mutex<Option<ConfigMeta>>,
    reload: Mutex<ReloadStatus>,
    /// A digest of the state last written, to skip rewriting an unchanged state.
    last_written: Mutex<Option<u128>>,
    /// Serializes snapshot writes (the periodic one and the final one at shutdown).
    writing: Mutex<()>,
}

impl TenantAlertmanager {
    /// Builds the tenant from its directory: its stored configuration if any (else
    /// `fallback`), then its snapshot if any. A file that exists but cannot be used is an
    /// error naming it.
    pub(crate) fn open(
        id: &str,
        dir: PathBuf,
        fallback: Arc<LoadedConfig>,
        shared: Arc<Shared>,
    ) -> Result<Arc<Self>, AlertmanagerError> {
        let config_path = dir.join(persist::USER_CONFIG_FILE);
        let (user_config, config) = match std::fs::read_to_string(&config_path) {
            Ok(text) => {
                let (cfg, loaded) =
                    UserConfig::parse(&text).map_err(|source| AlertmanagerError::StoredConfig {
                        path: config_path.clone(),
                        source,
                    })?;
                (Some(cfg), Arc::new(loaded))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, fallback),
            Err(e) => {
                return Err(AlertmanagerError::ReadConfig {
                    path: config_path,
                    source: e,
                })
            }
        };
        let meta_path = dir.join(persist::CONFIG_META_FILE);
        let config_meta =
            ConfigMeta::read(&meta_path).map_err(|source| AlertmanagerError::ReadStateFile {
                path: meta_path,
                source,
            })?;
        let now = shared.clock.now();
        let mut core = Core::new(config, shared.external_url.clone());
        core.silences.retention = shared.retention;
        let snap_path = dir.join(persist::SNAPSHOT_FILE);
        let restored =
            SnapshotFile::read(&snap_path, id).map_err(|source| AlertmanagerError::ReadState {
                path: snap_path.clone(),
                source,
            })?;
        if let Some(file) = restored {
            let snap = file.into_snapshot();
            tracing::info!(
                tenant = id,
                silences = snap.silences.len(),
                nflog = snap.nflog.len(),
                alerts = snap.alerts.len(),
                "alertmanager state restored"
            );
            // Restored alerts are routed afresh: groups whose alerts are older than group_wait
            // flush at once, and the restored notification log keeps that flush from
            // repeating what was already sent within repeat_interval.
            core.restore(snap, now);
        }
        Ok(Arc::new(Self {
            id: id.to_string(),
            dir,
            core: Mutex::new(core),
            shared,
            user_config: Mutex::new(user_config),
            config_meta: Mutex::new(config_meta),
            reload: Mutex::new(ReloadStatus {
                ok: true,
                last_success: Some(now),
            }),
            last_written: Mutex::new(None),
            writing: Mutex::new(()),
        }))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Access to the core (alerts, silences, notification log) under its lock.
    pub fn with_core<R>(&self, f: impl FnOnce(&mut Core) -> R) -> R {
        f(&mut self.core.lock())
    }

    /// A consistent copy of the state the snapshot persists.
    pub fn snapshot(&self) -> crate::dispatch::Snapshot {
        self.core.lock().snapshot()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    pub(crate) fn put_alerts(&self, alerts: Vec<Alert>) {
        let now = self.now();
        self.core.lock().put_alerts(alerts, now);
        self.shared.wake.notify_one();
    }

    /// The tenant's own configuration, if it has one.
    pub fn user_config(&self) -> Option<UserConfig> {
        self.user_config.lock().clone()
    }

    pub fn uses_fallback(&self) -> bool {
        self.user_config.lock().is_none()
    }

    /// Applies a configuration; groups are rebuilt from the stored alerts.
    pub(crate) fn apply(&self, config: Arc<LoadedConfig>) {
        let now = self.now();
        self.core.lock().reload(config, now);
        let mut r = self.reload.lock();
        r.ok = true;
        r.last_success = Some(now);
        drop(r);
        self.shared.wake.notify_one();
    }

    pub(crate) fn mark_reload_failed(&self) {
        self.reload.lock().ok = false;
    }

    pub fn reload_status(&self) -> (bool, Option<Timestamp>) {
        let r = self.reload.lock();
        (r.ok, r.last_success)
    }

    /// Stores and applies the tenant's own configuration (already checked). The file is
    /// written first: a configuration that could not be stored is not applied.
    pub(crate) fn set_user_config(
        &self,
        cfg: UserConfig,
        loaded: Arc<LoadedConfig>,
    ) -> Result<(), AlertmanagerError> {
        let meta = ConfigMeta {
            updated_at: self.now(),
            deleted: false,
        };
        self.store_user_config(cfg, loaded, meta)
    }

    fn write_meta(&self, meta: ConfigMeta) -> Result<(), AlertmanagerError> {
        let path = self.dir.join(persist::CONFIG_META_FILE);
        meta.write(&path)
            .map_err(|source| AlertmanagerError::WriteState { path, source })?;
        *self.config_meta.lock() = Some(meta);
        Ok(())
    }

    /// The tenant's configuration record, for the replicas: `None` without one.
    pub fn config_record(&self) -> Option<ConfigRecord> {
        let meta = (*self.config_meta.lock())?;
        Some(ConfigRecord {
            meta,
            config: if meta.deleted {
                None
            } else {
                self.user_config()
            },
        })
    }

    /// Takes a peer's record if it is newer than this replica's (last writer wins). Returns
    /// whether it changed anything.
    pub(crate) fn merge_config_record(
        &self,
        record: ConfigRecord,
        fallback: Arc<LoadedConfig>,
    ) -> Result<bool, AlertmanagerError> {
        let newer = self
            .config_meta
            .lock()
            .is_none_or(|m| record.meta.updated_at > m.updated_at);
        if !newer {
            return Ok(false);
        }
        match (record.meta.deleted, record.config) {
            (false, Some(cfg)) => {
                let loaded = cfg
                    .check()
                    .map_err(|source| AlertmanagerError::PeerConfig {
                        tenant: self.id.clone(),
                        source,
                    })?;
                self.store_user_config(cfg, Arc::new(loaded), record.meta)?;
            }
            _ => self.remove_user_config(
                fallback,
                ConfigMeta {
                    updated_at: record.meta.updated_at,
                    deleted: true,
                },
            )?,
        }
        Ok(true)
    }

    fn store_user_config(
        &self,
        cfg: UserConfig,
        loaded: Arc<LoadedConfig>,
        meta: ConfigMeta,
    ) -> Result<(), AlertmanagerError> {
        let path = self.dir.join(persist::USER_CONFIG_FILE);
        let text = cfg
            .to_yaml()
            .map_err(|source| AlertmanagerError::EncodeConfig {
                tenant: self.id.clone(),
                source,
            })?;
        persist::write_atomic(&path, text.as_bytes())
            .map_err(|source| AlertmanagerError::WriteState { path, source })?;
        self.write_meta(meta)?;
        *self.user_config.lock() = Some(cfg);
        self.apply(loaded);
        Ok(())
    }

    /// Removes the tenant's own configuration; it runs `fallback` from now on.
    pub(crate) fn delete_user_config(
        &self,
        fallback: Arc<LoadedConfig>,
    ) -> Result<(), AlertmanagerError> {
        let meta = ConfigMeta {
            updated_at: self.now(),
            deleted: true,
        };
        self.remove_user_config(fallback, meta)
    }

    fn remove_user_config(
        &self,
        fallback: Arc<LoadedConfig>,
        meta: ConfigMeta,
    ) -> Result<(), AlertmanagerError> {
        let path = self.dir.join(persist::USER_CONFIG_FILE);
        persist::remove_durably(&path)
            .map_err(|source| AlertmanagerError::WriteState { path, source })?;
        self.write_meta(meta)?;
        if self.user_config.lock().take().is_some() {
            self.apply(fallback);
        }
        Ok(())
    }

    pub fn state_counts(&self, now: Timestamp) -> StateCounts {
        let core = self.core.lock();
        let mut c = StateCounts::default();
        for (_, a) in core.alerts.iter() {
            if a.resolved_at(now) {
                continue;
            }
            if core.status(&a.labels, now).state() == "active" {
                c.alerts_active += 1;
            } else {
                c.alerts_suppressed += 1;
            }
        }
        for s in core.silences.iter() {
            match s.state(now) {
                SilenceState::Active => c.silences_active += 1,
                SilenceState::Pending => c.silences_pending += 1,
                SilenceState::Expired => c.silences_expired += 1,
            }
        }
        c
    }

    /// Writes the snapshot if the state changed since the last one. An empty state is not
    /// written for a tenant that never had a snapshot, so reading an unknown tenant's API
    /// leaves no directory behind. Returns whether a file was written.
    pub fn persist(&self) -> Result<bool, AlertmanagerError> {
        let _one_at_a_time = self.writing.lock();
        let started = std::time::Instant::now();
        let now = self.now();
        let snap = self.core.lock().snapshot();
        let path = self.dir.join(persist::SNAPSHOT_FILE);
        let empty = snap.silences.is_empty() && snap.nflog.is_empty() && snap.alerts.is_empty();
        let mut last = self.last_written.lock();
        if empty && last.is_none() && !path.exists() {
            return Ok(false);
        }
        // Compare without `taken_at`, which changes every time. The state is hashed as it
        // serializes, not kept: at 10k alerts the JSON is ~8 MB.
        let mut digest = persist::DigestWriter::default();
        serde_json::to_writer(&mut digest, &(&snap.silences, &snap.nflog, &snap.alerts)).map_err(
            |source| AlertmanagerError::EncodeState {
                tenant: self.id.clone(),
                source,
            },
        )?;
        let digest = digest.finish();
        if *last == Some(digest) {
            return Ok(false);
        }
        let file = SnapshotFileRef::new(&self.id, now, &snap);
        let res = persist::write_atomic_with(&path, |w| {
            serde_json::to_writer(w, &file).map_err(std::io::Error::from)
        });
        if let Err(source) = res {
            self.metrics().snapshot_failures.inc();
            return Err(AlertmanagerError::WriteState { path, source });
        }
        *last = Some(digest);
        self.metrics()
            .snapshot_duration
            .observe(started.elapsed().as_secs_f64());
        Ok(true)
    }

    /// Gives a flush up without sending anything: nothing is logged and the group keeps its
    /// alerts, to be flushed again.
    fn abandon(&self, job: FlushJob) {
        let failed = vec![false; job.sends.len()];
        let now = self.now();
        self.core.lock().complete(job, &failed, now);
        self.shared.wake.notify_one();
    }

    /// Sends one flush's notifications concurrently and records the outcome. With the ring,
    /// the owner at position N first waits N × peer_timeout and then drops what an earlier
    /// owner already sent (upstream's wait and dedup stages).
    pub(crate) async fn execute(self: Arc<Self>, job: FlushJob) {
        let mut ok = vec![false; job.sends.len()];
        // Sends an earlier owner made: nothing to send or to log here.
        let mut skip = vec![false; job.sends.len()];
        if let Some(cluster) = self.shared.cluster.clone() {
            // Ownership can move between the flush and here (a ring change, this replica
            // leaving): the new owners send, and the group waits here until it is owned again.
            let Some(position) = cluster.position(&self.id) else {
                self.abandon(job);
                return;
            };
            if position > 0 && !job.sends.is_empty() {
                tokio::time::sleep(cluster.peer_timeout() * position as u32).await;
                if !cluster.may_notify(&self.id) {
                    self.abandon(job);
                    return;
                }
                let now = self.now();
                let core = self.core.lock();
                for (i, s) in job.sends.iter().enumerate() {
                    if !core.still_needed(s, now) {
                        skip[i] = true;
                        ok[i] = true;
                        cluster.metrics.deduplicated.inc();
                    }
                }
            }
        }
        let mut set = tokio::task::JoinSet::new();
        for (i, s) in job.sends.iter().enumerate() {
            if skip[i] {
                continue;
            }
            if let Some(e) = &s.failure {
                // Not retried: a broken template or a missing file stays so until a reload.
                self.metrics()
                    .notifications_failed
                    .get_or_create(&IntegrationLabels {
                        tenant: self.id.clone(),
                        integration: s.key.integration.clone(),
                    })
                    .inc();
                tracing::warn!(
                    tenant = %self.id,
                    group = %job.group.1,
                    receiver = %s.key.receiver,
                    error = %e,
                    "notify failed"
                );
                continue;
            }
            match &s.content {
                None => ok[i] = true,
                Some(content) => {
                    let (sender, hook, content, timeout) = (
                        self.shared.sender.clone(),
                        s.webhook.clone(),
                        content.clone(),
                        job.timeout,
                    );
                    let labels = IntegrationLabels {
                        tenant: self.id.clone(),
                        integration: s.key.integration.clone(),
                    };
                    self.metrics().notifications.get_or_create(&labels).inc();
                    let latency = self.metrics().notification_latency.clone();
                    set.spawn(async move {
                        let t0 = std::time::Instant::now();
                        // The slot first, then the body: queued sends hold no payload.
                        let res = match sender.slot(hook.url.expose(), timeout).await {
                            Err(e) => Err(e),
                            Ok(_slot) => {
                                let left = timeout.saturating_sub(t0.elapsed());
                                match content.render() {
                                    Err(e) => Err(e),
                                    Ok(r) => match r.email {
                                        Some(m) => {
                                            crate::notify::send_email(
                                                &m.email,
                                                &m.mail,
                                                left,
                                                sender.firewall_for(&hook).map(|f| &**f),
                                            )
                                            .await
                                        }
                                        None => sender.send(&hook, &r.body, left).await,
                                    },
                                }
                            }
                        };
                        latency
                            .get_or_create(&labels)
                            .observe(t0.elapsed().as_secs_f64());
                        (i, res)
                    });
                }
            }
        }
        while let Some(res) = set.join_next().await {
            match res {
                Ok((i, Ok(()))) => ok[i] = true,
                Ok((i, Err(e))) => {
                    let labels = IntegrationLabels {
                        tenant: self.id.clone(),
                        integration: job.sends[i].key.integration.clone(),
                    };
                    self.metrics()
                        .notifications_failed
                        .get_or_create(&labels)
                        .inc();
                    if matches!(e, crate::error::NotifyError::Blocked { .. }) {
                        self.metrics()
                            .notifications_blocked
                            .get_or_create(&labels)
                            .inc();
                    }
                    tracing::warn!(
                        tenant = %self.id,
                        group = %job.group.1,
                        receiver = %job.sends[i].key.receiver,
                        error = %e,
                        "notify failed"
                    );
                }
                Err(e) => tracing::error!(error = %e, "notification task failed"),
            }
        }
        let now = self.now();
        // Only what this replica sent goes to its log and to the other owners; a skipped send
        // is already logged (the entry that made it skip).
        let logged: Vec<crate::nflog::NflogKey> = job
            .sends
            .iter()
            .enumerate()
            .filter(|(i, _)| ok[*i] && !skip[*i])
            .map(|(_, s)| s.key.clone())
            .collect();
        let entries = {
            let mut core = self.core.lock();
            core.complete_deduplicated(job, &ok, &skip, now);
            logged
                .iter()
                .filter_map(|k| core.nflog.get(k).cloned())
                .collect::<Vec<_>>()
        };
        if let Some(cluster) = &self.shared.cluster {
            cluster.replicate(&self.id, Vec::new(), entries);
        }
        self.shared.wake.notify_one();
    }

    /// Creates or updates a silence and replicates what changed (an update that cannot be done
    /// in place also expires the old silence).
    pub fn set_silence(
        &self,
        s: crate::silence::Silence,
    ) -> Result<String, crate::silence::SilenceError> {
        let now = self.now();
        let prev = (!s.id.is_empty()).then(|| s.id.clone());
        let (id, changed) = {
            let mut core = self.core.lock();
            let id = core.silences.set(s, now)?;
            let changed: Vec<crate::silence::Silence> = [Some(id.clone()), prev]
                .into_iter()
                .flatten()
                .filter_map(|i| core.silences.get(&i).cloned())
                .collect();
            (id, changed)
        };
        if let Some(cluster) = &self.shared.cluster {
            cluster.replicate(&self.id, changed, Vec::new());
        }
        self.shared.wake.notify_one();
        Ok(id)
    }

    /// Expires a silence and replicates it.
    pub fn expire_silence(&self, id: &str) -> Result<(), crate::silence::SilenceError> {
        let now = self.now();
        let changed = {
            let mut core = self.core.lock();
            core.silences.expire(id, now)?;
            core.silences.get(id).cloned()
        };
        if let (Some(cluster), Some(s)) = (&self.shared.cluster, changed) {
            cluster.replicate(&self.id, vec![s], Vec::new());
        }
        Ok(())
    }
}
