//! The ruler component: loads every tenant's rule groups from the bucket, runs one evaluation
//! loop per group, and hands the alerts to the notifier.

use crate::config::RulerConfig;
use crate::error::RulerError;
use crate::group::{wall_ms, EvalEnv, Group, RestoreSettings};
use crate::metrics::{GroupLabels, Metrics};
use crate::notifier::PostableAlert;
use crate::notifier::{to_postable, Notifier};
use crate::rulefmt::RuleGroup;
use crate::rules::AlertContext;
use crate::sharding::{RingSharding, RING_CHECK_PERIOD};
use crate::store::{Namespaces, RuleStore};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use strata_model::limits::Overrides;
use strata_model::relabel::{compile_all, process, Relabel, RelabelConfig};
use strata_model::Labels;
use strata_model::{TenancyConfig, TenantId};
use strata_promql::Engine;
use strata_storage::{Pusher, Queryable};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A group being evaluated.
struct Running {
    group: Arc<tokio::sync::Mutex<Group>>,
    source: RuleGroup,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// A tenant's relabelling rules as configured, and compiled.
type CompiledRelabel = (Vec<RelabelConfig>, Arc<Vec<Relabel>>);

/// Key of a group within a tenant: (namespace, group name).
pub type GroupKey = (String, String);

/// The ruler.
pub struct Ruler {
    pub(crate) cfg: RulerConfig,
    pub(crate) tenancy: TenancyConfig,
    engine: Engine,
    queryable: Arc<dyn Queryable>,
    pusher: Arc<dyn Pusher>,
    pub(crate) store: RuleStore,
    notifier: Arc<Notifier>,
    metrics: Metrics,
    alert_ctx: AlertContext,
    /// Per-tenant settings (external labels and URL, alert relabelling), if any.
    overrides: Option<Arc<RwLock<Overrides>>>,
    /// `ruler.alert_relabel_configs`, compiled.
    relabel: Vec<Relabel>,
    /// Each tenant's `ruler_alert_relabel_configs`, compiled, with the configuration they
    /// were compiled from (recompiled when the runtime configuration changes).
    tenant_relabel: Mutex<HashMap<TenantId, CompiledRelabel>>,
    running: Mutex<HashMap<TenantId, BTreeMap<GroupKey, Running>>>,
    /// With rulers in a ring: which groups this one evaluates. None: every group.
    sharding: Option<RingSharding>,
    /// Asks the other rulers for their groups in the rules and alerts APIs (sharded rulers,
    /// plain HTTP between them).
    pub(crate) peer_client: Option<reqwest::Client>,
    /// Each tenant's groups as last read from the bucket, to re-shard without re-reading when
    /// the ring changes.
    loaded: Mutex<HashMap<TenantId, Namespaces>>,
}

impl std::fmt::Debug for Ruler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruler")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Ruler {
    /// Builds the ruler. `queryable` is what rules query (the querier's view: ingesters and
    /// blocks), `pusher` where their results go (the distributor, so the write path's
    /// validation and limits apply).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: RulerConfig,
        tenancy: TenancyConfig,
        engine: Engine,
        queryable: Arc<dyn Queryable>,
        pusher: Arc<dyn Pusher>,
        store: RuleStore,
        notifier: Arc<Notifier>,
        metrics: Metrics,
        sharding: Option<RingSharding>,
        overrides: Option<Arc<RwLock<Overrides>>>,
    ) -> Result<Arc<Self>, RulerError> {
        cfg.validate()?;
        let relabel = compile_all(&cfg.alert_relabel_configs, "ruler.alert_relabel_configs")
            .map_err(|e| RulerError::Config {
                field: "ruler.alert_relabel_configs",
                reason: e.to_string(),
            })?;
        let alert_ctx = AlertContext {
            external_labels: cfg.external_labels.clone(),
            external_url: cfg.external_url.clone(),
        };
        Ok(Arc::new(Self {
            cfg,
            tenancy,
            engine,
            queryable,
            pusher,
            store,
            notifier,
            metrics,
            alert_ctx,
            overrides,
            relabel,
            tenant_relabel: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            peer_client: sharding.as_ref().and_then(|_| {
                reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(10))
                    .build()
                    .ok()
            }),
            sharding,
            loaded: Mutex::new(HashMap::new()),
        }))
    }

    /// The tenant of a request, as the other APIs resolve it.
    pub(crate) fn tenant(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<TenantId, strata_model::TenantError> {
        let hv = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        self.tenancy
            .resolve(hv("x-scope-orgid"), hv("authorization"))
    }

    /// Reads every tenant's groups from the bucket and brings the running groups in line.
    pub async fn sync(self: &Arc<Self>) -> Result<(), RulerError> {
        let tenants = self.store.tenants().await?;
        let mut seen = std::collections::HashSet::new();
        for t in tenants {
            let groups = self.store.groups(&t).await?;
            self.sync_tenant(&t, groups).await;
            seen.insert(t);
        }
        let gone: Vec<TenantId> = self
            .running
            .lock()
            .keys()
            .filter(|t| !seen.contains(*t))
            .cloned()
            .collect();
        for t in gone {
            self.sync_tenant(&t, Namespaces::new()).await;
        }
        self.store.forget_other_tenants(&seen);
        Ok(())
    }

    /// Re-reads one tenant's groups (after a change through the API).
    pub async fn sync_one(self: &Arc<Self>, tenant: &TenantId) -> Result<(), RulerError> {
        let groups = self.store.groups(tenant).await?;
        self.sync_tenant(tenant, groups).await;
        Ok(())
    }

    /// Starts new groups, restarts changed ones (keeping the alert state of unchanged rules)
    /// and stops removed ones (writing stale markers for their series).
    pub async fn sync_tenant(self: &Arc<Self>, tenant: &TenantId, namespaces: Namespaces) {
        if namespaces.is_empty() {
            self.loaded.lock().remove(tenant);
        } else {
            self.loaded
                .lock()
                .insert(tenant.clone(), namespaces.clone());
        }
        // Configured groups, and among them those this ruler evaluates; a configured group
        // owned by another ruler stops here without stale markers (it continues there).
        let mut configured: std::collections::HashSet<GroupKey> = Default::default();
        let mut wanted: BTreeMap<GroupKey, RuleGroup> = BTreeMap::new();
        for (ns, groups) in namespaces {
            for g in groups {
                configured.insert((ns.clone(), g.name.clone()));
                if self
                    .sharding
                    .as_ref()
                    .is_none_or(|s| s.owns(tenant, &ns, &g.name))
                {
                    wanted.insert((ns.clone(), g.name.clone()), g);
                }
            }
        }
        // Changes are decided under the lock; stopping (which awaits) happens after.
        let mut to_stop: Vec<(GroupKey, Running, bool)> = Vec::new();
        {
            let mut running = self.running.lock();
            let current = running.entry(tenant.clone()).or_default();
            let keys: Vec<GroupKey> = current.keys().cloned().collect();
            for k in keys {
                match wanted.get(&k) {
                    Some(src) if *src == current[&k].source => {
                        wanted.remove(&k);
                    }
                    Some(_) => {
                        if let Some(r) = current.remove(&k) {
                            to_stop.push((k, r, false));
                        }
                    }
                    None => {
                        let removed = !configured.contains(&k);
                        if let Some(r) = current.remove(&k) {
                            to_stop.push((k, r, removed));
                        }
                    }
                }
            }
        }
        let mut previous: HashMap<GroupKey, Group> = HashMap::new();
        for (k, r, removed) in to_stop {
            let _ = r.stop.send(true);
            let _ = r.task.await;
            let mut g = r.group.lock().await;
            let gl = GroupLabels {
                user: tenant.to_string(),
                rule_group: g.key(),
            };
            if removed {
                let now = g.eval_timestamp(wall_ms());
                let ctx = self.alert_ctx_for(tenant);
                if let Err(e) = g.mark_all_stale(self.env(tenant, &ctx), now).await {
                    tracing::warn!(tenant = %tenant, group = %g.key(), error = %e, "writing stale markers of a removed group failed");
                }
                self.forget_metrics(&gl);
            } else if !wanted.contains_key(&k) {
                tracing::info!(tenant = %tenant, group = %g.key(), "the rule group moved to another ruler");
                self.forget_metrics(&gl);
            } else {
                previous.insert(k, g.clone());
            }
        }
        for (k, src) in wanted {
            let mut g = Group::new(
                &k.0,
                &src,
                ms(self.cfg.evaluation_interval),
                ms(self.cfg.query_offset),
            );
            match previous.get(&k) {
                Some(old) => g.copy_state_from(old),
                // New here (a start, or a group moved from another ruler): its alerts' `for`
                // state comes back from ALERTS_FOR_STATE.
                None => g.begin_restore(),
            }
            let gl = GroupLabels {
                user: tenant.to_string(),
                rule_group: g.key(),
            };
            self.metrics
                .group_interval
                .get_or_create(&gl)
                .set(g.interval_ms as f64 / 1000.0);
            self.metrics
                .group_rules
                .get_or_create(&gl)
                .set(g.rules.len() as i64);
            let group = Arc::new(tokio::sync::Mutex::new(g));
            let (stop, stop_rx) = watch::channel(false);
            let task = tokio::spawn(
                self.clone()
                    .run_group(tenant.clone(), group.clone(), stop_rx),
            );
            self.running
                .lock()
                .entry(tenant.clone())
                .or_default()
                .insert(
                    k,
                    Running {
                        group,
                        source: src,
                        stop,
                        task,
                    },
                );
        }
        let mut running = self.running.lock();
        if running.get(tenant).is_some_and(BTreeMap::is_empty) {
            running.remove(tenant);
        }
    }

    fn forget_metrics(&self, gl: &GroupLabels) {
        let m = &self.metrics;
        m.evaluations.remove(gl);
        m.evaluation_failures.remove(gl);
        m.iterations.remove(gl);
        m.iterations_missed.remove(gl);
        m.group_interval.remove(gl);
        m.last_evaluation.remove(gl);
        m.last_duration.remove(gl);
        m.group_rules.remove(gl);
        m.last_samples.remove(gl);
    }

    /// The tenant's alert context: `ruler.external_labels` and `external_url`, overridden by
    /// its `ruler_external_labels` and `ruler_external_url`.
    fn alert_ctx_for(&self, tenant: &TenantId) -> AlertContext {
        let mut ctx = self.alert_ctx.clone();
        if let Some(o) = &self.overrides {
            let o = o.read();
            let l = o.for_tenant(tenant.as_str());
            ctx.external_labels.extend(
                l.ruler_external_labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            if !l.ruler_external_url.is_empty() {
                ctx.external_url = l.ruler_external_url.clone();
            }
        }
        ctx
    }

    /// The tenant's compiled `ruler_alert_relabel_configs` (validated with the runtime
    /// configuration, so a failure here only drops back to none, logged).
    fn tenant_relabel(&self, tenant: &TenantId) -> Arc<Vec<Relabel>> {
        let Some(o) = &self.overrides else {
            return Arc::default();
        };
        let cfgs = o
            .read()
            .for_tenant(tenant.as_str())
            .ruler_alert_relabel_configs
            .clone();
        let mut cache = self.tenant_relabel.lock();
        if let Some((c, compiled)) = cache.get(tenant) {
            if *c == cfgs {
                return compiled.clone();
            }
        }
        let compiled = Arc::new(
            compile_all(&cfgs, "ruler_alert_relabel_configs").unwrap_or_else(|e| {
                tracing::warn!(tenant = %tenant, error = %e, "ignoring the tenant's alert relabelling");
                Vec::new()
            }),
        );
        cache.insert(tenant.clone(), (cfgs, compiled.clone()));
        compiled
    }

    fn env<'a>(&'a self, tenant: &'a TenantId, alert_ctx: &'a AlertContext) -> EvalEnv<'a> {
        EvalEnv {
            engine: &self.engine,
            queryable: self.queryable.as_ref(),
            pusher: self.pusher.as_ref(),
            tenant,
            alert_ctx,
            metrics: &self.metrics,
            resend_delay_ms: ms(self.cfg.resend_delay),
        }
    }

    /// One group's loop: evaluates at its aligned slots; slots that passed while an
    /// evaluation overran are skipped and counted as missed.
    async fn run_group(
        self: Arc<Self>,
        tenant: TenantId,
        group: Arc<tokio::sync::Mutex<Group>>,
        mut stop: watch::Receiver<bool>,
    ) {
        let (interval, mut next, gl) = {
            let g = group.lock().await;
            let gl = GroupLabels {
                user: tenant.to_string(),
                rule_group: g.key(),
            };
            (
                g.interval_ms.max(1),
                g.eval_timestamp(wall_ms()) + g.interval_ms.max(1),
                gl,
            )
        };
        loop {
            let wait = (next - wall_ms()).max(0) as u64;
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let missed = (wall_ms() - next) / interval;
            if missed > 0 {
                self.metrics
                    .iterations_missed
                    .get_or_create(&gl)
                    .inc_by(missed as u64);
                self.metrics
                    .iterations
                    .get_or_create(&gl)
                    .inc_by(missed as u64);
                next += missed * interval;
            }
            self.metrics.iterations.get_or_create(&gl).inc();
            let ctx = self.alert_ctx_for(&tenant);
            let mut g = group.lock().await;
            let outcome = g.eval(self.env(&tenant, &ctx), next).await;
            if g.restore_due() {
                let settings = RestoreSettings {
                    outage_tolerance_ms: ms(self.cfg.for_outage_tolerance),
                    grace_period_ms: ms(self.cfg.for_grace_period),
                };
                let n = g
                    .restore_for_state(self.env(&tenant, &ctx), wall_ms(), settings)
                    .await;
                tracing::info!(tenant = %tenant, group = %g.key(), restored_alerts = n, "restored the for state of the group's alerts");
            }
            let mut postable = Vec::new();
            let tenant_relabel = self.tenant_relabel(&tenant);
            for s in &outcome.to_send {
                for a in &s.alerts {
                    let p = to_postable(a, &s.expr, &ctx.external_url, &ctx.external_labels);
                    // Prometheus relabels after adding the external labels; an alert the rules
                    // drop is not sent.
                    if let Some(p) = relabel_alert(p, &self.relabel, &tenant_relabel) {
                        postable.push(p);
                    }
                }
            }
            drop(g);
            self.notifier.enqueue(&tenant, postable);
            next += interval;
        }
    }

    /// Syncs from the bucket every `poll_interval` until `shutdown`, and, with a ring, moves
    /// groups whenever a ruler joins, leaves or stops heartbeating; then stops every group
    /// (without stale markers: another ruler, or this one after a restart, continues them).
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut signature = self.sharding.as_ref().map(RingSharding::signature);
        let mut next_poll = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_poll {
                if let Err(e) = self.sync().await {
                    tracing::warn!(error = %e, "loading rule groups failed");
                }
                next_poll = tokio::time::Instant::now() + self.cfg.poll_interval;
            } else if let Some(s) = &self.sharding {
                let now = s.signature();
                if signature.as_ref() != Some(&now) {
                    tracing::info!(rulers = ?now, "the ruler ring changed; re-sharding rule groups");
                    signature = Some(now);
                    self.reshard().await;
                }
            }
            let wake = match &self.sharding {
                Some(_) => next_poll.min(tokio::time::Instant::now() + RING_CHECK_PERIOD),
                None => next_poll,
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        let all: Vec<Running> = self
            .running
            .lock()
            .drain()
            .flat_map(|(_, m)| m.into_values())
            .collect();
        for r in all {
            let _ = r.stop.send(true);
            let _ = r.task.await;
        }
    }

    /// The ruler ring view, when rulers share the groups.
    pub fn sharding(&self) -> Option<&RingSharding> {
        self.sharding.as_ref()
    }

    /// Re-applies ownership to the groups last read from the bucket.
    async fn reshard(self: &Arc<Self>) {
        let loaded: Vec<(TenantId, Namespaces)> = self
            .loaded
            .lock()
            .iter()
            .map(|(t, n)| (t.clone(), n.clone()))
            .collect();
        for (t, namespaces) in loaded {
            self.sync_tenant(&t, namespaces).await;
        }
    }

    /// A tenant's running groups sorted by (namespace, name).
    pub fn groups(&self, tenant: &TenantId) -> Vec<Arc<tokio::sync::Mutex<Group>>> {
        self.running
            .lock()
            .get(tenant)
            .map(|m| m.values().map(|r| r.group.clone()).collect())
            .unwrap_or_default()
    }
}

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Applies the static, then the tenant's, relabelling to an alert's labels; `None` when they
/// drop it.
fn relabel_alert(
    mut p: PostableAlert,
    global: &[Relabel],
    tenant: &[Relabel],
) -> Option<PostableAlert> {
    if global.is_empty() && tenant.is_empty() {
        return Some(p);
    }
    let labels = Labels::from_pairs(p.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let labels = process(&labels, global)?;
    let labels = process(&labels, tenant)?;
    p.labels = labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    Some(p)
}
