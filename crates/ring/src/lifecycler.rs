//! This instance's own ring entry: registration, joining with tokens, heartbeats, state
//! changes, leaving, and the housekeeping every member does (auto-forget, token collisions).
//! dskit `ring/lifecycler.go` semantics (research §1.3), one KV key per instance.

use crate::config::RingConfig;
use crate::desc::{instance_key, ring_prefix, InstanceDesc, InstanceState};
use crate::metrics::RingMetrics;
use crate::tokens;
use crate::watcher::{system_clock, Clock};
use crate::RingError;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use strata_meta::{cas_update, KvError, KvStore};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Optional parts of a [`Lifecycler`].
#[derive(Clone)]
pub struct LifecyclerOptions {
    /// The ring's name in logs and metrics; defaults to the prefix's last segment.
    pub name: Option<String>,
    pub metrics: Option<RingMetrics>,
    pub clock: Clock,
}

impl Default for LifecyclerOptions {
    fn default() -> Self {
        Self {
            name: None,
            metrics: None,
            clock: system_clock(),
        }
    }
}

impl std::fmt::Debug for LifecyclerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LifecyclerOptions")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Manages this instance's entry under `<prefix>/<instance_id>`.
pub struct Lifecycler {
    cfg: RingConfig,
    kv: Arc<dyn KvStore>,
    prefix: String,
    key: String,
    name: String,
    metrics: Option<RingMetrics>,
    clock: Clock,
    /// What this instance last wrote (or is about to write) to its key.
    local: parking_lot::Mutex<InstanceDesc>,
    /// Serializes the writes of the own key (heartbeat, join, state changes, stop).
    write: tokio::sync::Mutex<()>,
    stopped: AtomicBool,
    stop_tx: watch::Sender<bool>,
    task: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Lifecycler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycler")
            .field("key", &self.key)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

fn kv_err<'a>(op: &'static str, key: &'a str) -> impl FnOnce(KvError) -> RingError + 'a {
    move |source| RingError::Kv {
        op,
        key: key.to_owned(),
        source,
    }
}

impl Lifecycler {
    /// Registers this instance under `prefix` (e.g. `ring/ingester`) and starts heartbeating.
    pub async fn start(
        cfg: RingConfig,
        kv: Arc<dyn KvStore>,
        prefix: &str,
    ) -> Result<Arc<Self>, RingError> {
        Self::start_with(cfg, kv, prefix, LifecyclerOptions::default()).await
    }

    /// [`Self::start`] with metrics, a name or a test clock.
    ///
    /// The registration is one compare-and-swap with dskit's rules: an absent entry is created
    /// from the tokens file (ACTIVE if it holds `num_tokens` tokens) or PENDING without tokens;
    /// a JOINING entry (crash during start-up) goes back to PENDING; a LEAVING entry (crash
    /// during shutdown, or `unregister_on_shutdown: false`) gets its token count fixed and goes
    /// ACTIVE; any other entry is taken over with this instance's addresses, state and tokens
    /// kept.
    pub async fn start_with(
        cfg: RingConfig,
        kv: Arc<dyn KvStore>,
        prefix: &str,
        opts: LifecyclerOptions,
    ) -> Result<Arc<Self>, RingError> {
        cfg.validate("ring")?;
        let addr = cfg.instance_addr.clone().ok_or_else(|| RingError::Config {
            field: "ring.instance_addr".into(),
            reason: "must be set (the binary fills it from the gRPC listen address)".into(),
        })?;
        let prefix = prefix.trim_end_matches('/').to_owned();
        let key = instance_key(&prefix, &cfg.instance_id);
        let name = opts
            .name
            .clone()
            .unwrap_or_else(|| prefix.rsplit('/').next().unwrap_or(&prefix).to_owned());
        let file_tokens = match tokens_path(&cfg) {
            Some(p) => tokens::load(&p).unwrap_or_else(|e| {
                tracing::warn!(ring = %name, error = %e, "cannot read the tokens file; starting without it");
                Vec::new()
            }),
            None => Vec::new(),
        };
        let taken = others_tokens(&*kv, &prefix, &cfg.instance_id).await?;
        let now = (opts.clock)();

        let mut decided: Option<InstanceDesc> = None;
        cas_update(&*kv, &key, |cur| {
            let existing = cur.and_then(|v| match InstanceDesc::decode(&key, v) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(error = %e, "overwriting an unreadable entry of this instance");
                    None
                }
            });
            let mut d = match existing {
                None => {
                    let mut d = InstanceDesc {
                        id: cfg.instance_id.clone(),
                        addr: addr.clone(),
                        http_addr: String::new(),
                        zone: String::new(),
                        state: InstanceState::Pending,
                        tokens: Vec::new(),
                        heartbeat_ms: now,
                        registered_ms: now,
                    };
                    if !file_tokens.is_empty() {
                        d.tokens = file_tokens.clone();
                        if d.tokens.len() >= cfg.num_tokens {
                            d.state = InstanceState::Active;
                        }
                    }
                    d
                }
                Some(mut d) => {
                    match d.state {
                        InstanceState::Joining => d.state = InstanceState::Pending,
                        InstanceState::Leaving => {
                            tokens::fix_count(&mut d.tokens, cfg.num_tokens, &taken);
                            d.state = InstanceState::Active;
                        }
                        InstanceState::Pending | InstanceState::Active => {}
                    }
                    d
                }
            };
            d.id = cfg.instance_id.clone();
            d.addr = addr.clone();
            d.http_addr = cfg.instance_http_addr.clone().unwrap_or_default();
            d.zone = cfg.instance_zone.clone();
            d.heartbeat_ms = now;
            let bytes = d.encode();
            decided = Some(d);
            Some(bytes)
        })
        .await
        .map_err(kv_err("registration", &key))?;
        let desc = decided.expect("cas_update ran the closure");
        tracing::info!(ring = %name, instance = %desc.id, state = %desc.state, tokens = desc.tokens.len(), "registered in the ring");

        let (stop_tx, _) = watch::channel(false);
        let this = Arc::new(Self {
            cfg,
            kv,
            prefix,
            key,
            name,
            metrics: opts.metrics,
            clock: opts.clock,
            local: parking_lot::Mutex::new(desc.clone()),
            write: tokio::sync::Mutex::new(()),
            stopped: AtomicBool::new(false),
            stop_tx,
            task: parking_lot::Mutex::new(None),
        });
        if desc.tokens != file_tokens {
            this.persist_tokens(&desc.tokens).await;
        }
        let task = tokio::spawn(heartbeat_loop(
            Arc::downgrade(&this),
            this.stop_tx.subscribe(),
            this.cfg.heartbeat_period,
        ));
        *this.task.lock() = Some(task);
        Ok(this)
    }

    pub fn id(&self) -> &str {
        &self.cfg.instance_id
    }

    /// The KV key of this instance.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn state(&self) -> InstanceState {
        self.local.lock().state
    }

    pub fn is_active(&self) -> bool {
        self.state() == InstanceState::Active
    }

    pub fn tokens(&self) -> Vec<u32> {
        self.local.lock().tokens.clone()
    }

    /// The entry as this instance last wrote it.
    pub fn desc(&self) -> InstanceDesc {
        self.local.lock().clone()
    }

    /// Takes `num_tokens` tokens (keeping any it already has), avoiding every token in the
    /// ring, goes ACTIVE and saves the tokens file. The owner calls it once it is ready to
    /// serve (the ingester: after WAL replay). Then resolves collisions: of two instances
    /// holding the same token, the one with the greater id draws a new one.
    pub async fn join(&self) -> Result<(), RingError> {
        self.check_running()?;
        let taken = others_tokens(&*self.kv, &self.prefix, self.id()).await?;
        let n = self.cfg.num_tokens;
        self.update(|d| {
            match d.state {
                InstanceState::Leaving => {
                    return Err(RingError::InvalidTransition {
                        from: d.state,
                        to: InstanceState::Active,
                    })
                }
                InstanceState::Pending | InstanceState::Joining | InstanceState::Active => {}
            }
            let need = n.saturating_sub(d.tokens.len());
            tokens::add_random(&mut d.tokens, need, &taken);
            d.state = InstanceState::Active;
            Ok(())
        })
        .await?;
        let entries = self.list_others().await?;
        self.resolve_collisions(&entries).await
    }

    /// Moves to `state` if the transition is allowed (PENDING -> JOINING/ACTIVE, JOINING ->
    /// ACTIVE/PENDING, ACTIVE -> LEAVING). Use [`Self::join`] to take tokens.
    pub async fn set_state(&self, state: InstanceState) -> Result<(), RingError> {
        self.check_running()?;
        self.set_state_inner(state).await
    }

    async fn set_state_inner(&self, state: InstanceState) -> Result<(), RingError> {
        self.update(|d| {
            if !d.state.can_transition_to(state) {
                return Err(RingError::InvalidTransition {
                    from: d.state,
                    to: state,
                });
            }
            d.state = state;
            Ok(())
        })
        .await
    }

    /// Goes LEAVING: writes stop coming, reads still do.
    pub async fn leave(&self) -> Result<(), RingError> {
        self.set_state(InstanceState::Leaving).await
    }

    /// Stops heartbeating, then deletes the entry (`unregister_on_shutdown`) or leaves it
    /// LEAVING with its tokens for the next start to take back.
    pub async fn stop(&self) -> Result<(), RingError> {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.stop_tx.send_replace(true);
        let task = self.task.lock().take();
        if let Some(t) = task {
            let _ = t.await;
        }
        if self.cfg.unregister_on_shutdown {
            let _g = self.write.lock().await;
            self.kv
                .delete(&self.key, None)
                .await
                .map_err(kv_err("unregister", &self.key))?;
            tracing::info!(ring = %self.name, instance = %self.id(), "unregistered from the ring");
        } else if self.state() == InstanceState::Active {
            self.set_state_inner(InstanceState::Leaving).await?;
        }
        Ok(())
    }

    /// Writes a heartbeat now, then does the members' housekeeping (collision check,
    /// auto-forget). The heartbeat task calls it every `heartbeat_period`.
    pub async fn heartbeat(&self) -> Result<(), RingError> {
        // After stop, a heartbeat would register the instance again.
        self.check_running()?;
        if let Err(e) = self.update(|_| Ok(())).await {
            if let Some(m) = &self.metrics {
                m.heartbeat_failed(&self.name);
            }
            return Err(e);
        }
        // Housekeeping failures do not fail the heartbeat, which was written.
        let entries = match self.list_others().await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(ring = %self.name, error = %e, "cannot list the ring for housekeeping");
                return Ok(());
            }
        };
        if let Err(e) = self.resolve_collisions(&entries).await {
            tracing::warn!(ring = %self.name, error = %e, "cannot resolve token collisions");
        }
        self.auto_forget(&entries).await;
        Ok(())
    }

    fn check_running(&self) -> Result<(), RingError> {
        if self.stopped.load(Ordering::SeqCst) {
            Err(RingError::Stopped)
        } else {
            Ok(())
        }
    }

    /// Applies `f` to a copy of the entry and writes it with a fresh heartbeat; the local
    /// copy changes only once the write succeeded. An entry that vanished (forgotten) is
    /// registered again.
    async fn update(
        &self,
        f: impl FnOnce(&mut InstanceDesc) -> Result<(), RingError>,
    ) -> Result<(), RingError> {
        let _g = self.write.lock().await;
        let mut d = self.local.lock().clone();
        let old_tokens = d.tokens.clone();
        f(&mut d)?;
        let now = (self.clock)();
        d.heartbeat_ms = now;
        let mut reregistered = false;
        cas_update(&*self.kv, &self.key, |cur| {
            if cur.is_none() {
                // A re-registration must not look older than it is (shuffle-shard lookback).
                d.registered_ms = now;
                reregistered = true;
            }
            Some(d.encode())
        })
        .await
        .map_err(kv_err("update", &self.key))?;
        if reregistered {
            tracing::info!(ring = %self.name, instance = %self.id(), "instance was missing from the ring (forgotten?); registered it again");
        }
        let tokens_changed = d.tokens != old_tokens;
        let tokens = d.tokens.clone();
        *self.local.lock() = d;
        if tokens_changed {
            self.persist_tokens(&tokens).await;
        }
        Ok(())
    }

    async fn persist_tokens(&self, t: &[u32]) {
        if let Some(path) = tokens_path(&self.cfg) {
            if let Err(e) = tokens::save(path, t.to_vec()).await {
                tracing::warn!(ring = %self.name, error = %e, "cannot save the tokens file");
            }
        }
    }

    /// Every other instance's entry (key, version, record).
    async fn list_others(&self) -> Result<Vec<(String, u64, InstanceDesc)>, RingError> {
        let prefix = ring_prefix(&self.prefix);
        let entries = self
            .kv
            .list(&prefix)
            .await
            .map_err(kv_err("list", &prefix))?;
        Ok(entries
            .into_iter()
            .filter(|e| e.key != self.key)
            .filter_map(|e| {
                InstanceDesc::decode(&e.key, &e.value)
                    .ok()
                    .map(|d| (e.key, e.version, d))
            })
            .collect())
    }

    /// Draws new tokens for those this instance shares with an instance of a smaller id (the
    /// ring orders equal tokens by id, so the smaller id already owns the range).
    async fn resolve_collisions(
        &self,
        others: &[(String, u64, InstanceDesc)],
    ) -> Result<(), RingError> {
        let me = self.id().to_owned();
        let mine: HashSet<u32> = self.local.lock().tokens.iter().copied().collect();
        let lost: HashSet<u32> = others
            .iter()
            .filter(|(_, _, d)| d.id < me)
            .flat_map(|(_, _, d)| d.tokens.iter().copied())
            .filter(|t| mine.contains(t))
            .collect();
        if lost.is_empty() {
            return Ok(());
        }
        let taken: HashSet<u32> = others
            .iter()
            .flat_map(|(_, _, d)| d.tokens.iter().copied())
            .collect();
        tracing::info!(ring = %self.name, instance = %me, collisions = lost.len(), "tokens collide with instances of smaller ids; drawing new ones");
        self.update(|d| {
            let keep = d.tokens.len();
            d.tokens.retain(|t| !lost.contains(t));
            let n = keep - d.tokens.len();
            tokens::add_random(&mut d.tokens, n, &taken);
            Ok(())
        })
        .await
    }

    /// Removes entries whose heartbeat is older than `auto_forget_unhealthy_periods x
    /// heartbeat_timeout`, unless at least half of the ring looks unhealthy (then this
    /// instance is more likely cut off than they are dead).
    async fn auto_forget(&self, others: &[(String, u64, InstanceDesc)]) {
        let periods = self.cfg.auto_forget_unhealthy_periods;
        if periods == 0 {
            return;
        }
        let now = (self.clock)();
        let timeout = self.cfg.heartbeat_timeout.as_millis() as i64;
        let forget_after = timeout.saturating_mul(i64::from(periods));
        let age = |d: &InstanceDesc| now.saturating_sub(d.heartbeat_ms);
        let dead: Vec<&(String, u64, InstanceDesc)> = others
            .iter()
            .filter(|(_, _, d)| age(d) > forget_after)
            .collect();
        if dead.is_empty() {
            return;
        }
        // This instance just heartbeated, so it counts as healthy.
        let total = others.len() + 1;
        let unhealthy = others.iter().filter(|(_, _, d)| age(d) > timeout).count();
        if unhealthy * 2 >= total {
            tracing::warn!(ring = %self.name, unhealthy, total, "not auto-forgetting: at least half of the ring looks unhealthy, the network may be partitioned");
            return;
        }
        for (key, version, d) in dead {
            match self.kv.delete(key, Some(*version)).await {
                Ok(true) => {
                    let for_ = humantime::format_duration(Duration::from_secs(
                        (age(d) / 1000).max(0) as u64,
                    ));
                    tracing::warn!(ring = %self.name, instance = %d.id, unhealthy_for = %for_, "auto-forgetting instance from the ring because it is unhealthy for a long time");
                    if let Some(m) = &self.metrics {
                        m.forgot(&self.name);
                    }
                }
                // Gone already, or it heartbeated meanwhile.
                Ok(false) | Err(KvError::Conflict { .. }) => {}
                Err(e) => {
                    tracing::warn!(ring = %self.name, instance = %d.id, error = %e, "cannot auto-forget instance");
                }
            }
        }
    }
}

/// Removes instance `id` from the ring under `prefix` (the ring page's Forget button). Returns
/// whether it was there. A running instance registers itself again at its next heartbeat.
pub async fn forget(kv: &dyn KvStore, prefix: &str, id: &str) -> Result<bool, RingError> {
    if id.is_empty() || id.contains('/') {
        return Err(RingError::UnknownInstance(id.to_owned()));
    }
    let key = instance_key(prefix, id);
    kv.delete(&key, None).await.map_err(kv_err("forget", &key))
}

fn tokens_path(cfg: &RingConfig) -> Option<PathBuf> {
    (!cfg.tokens_file.is_empty()).then(|| PathBuf::from(&cfg.tokens_file))
}

async fn others_tokens(
    kv: &dyn KvStore,
    prefix: &str,
    me: &str,
) -> Result<HashSet<u32>, RingError> {
    let p = ring_prefix(prefix);
    let entries = kv.list(&p).await.map_err(kv_err("list", &p))?;
    let mine = instance_key(prefix, me);
    Ok(entries
        .iter()
        .filter(|e| e.key != mine)
        .filter_map(|e| InstanceDesc::decode(&e.key, &e.value).ok())
        .flat_map(|d| d.tokens)
        .collect())
}

async fn heartbeat_loop(this: Weak<Lifecycler>, mut stop: watch::Receiver<bool>, period: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let Some(l) = this.upgrade() else { return };
        if let Err(e) = l.heartbeat().await {
            tracing::warn!(ring = %l.name, instance = %l.id(), error = %e, "ring heartbeat failed");
        }
    }
}
