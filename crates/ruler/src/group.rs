//! A rule group: its rules evaluated in order at one timestamp per interval, their results
//! written through a [`Pusher`], stale markers for series that disappear, and the alerts to
//! send.

use crate::error::EvalFailure;
use crate::metrics::{GroupLabels, Metrics};
use crate::rulefmt::RuleGroup;
use crate::rules::{
    labels_from_map, restored_active_at, Alert, AlertContext, AlertState, AlertingRule, Health,
    OutSample, Rule,
};
use std::collections::{BTreeMap, HashSet};
use std::time::Instant;
use strata_model::{is_stale_nan, Labels, Matcher, Sample, TenantId, WriteBatch, STALE_NAN};
use strata_promql::{Engine, QueryValue};
use strata_storage::{Pusher, Queryable};

/// What a group evaluation needs from the process.
#[derive(Clone, Copy)]
pub struct EvalEnv<'a> {
    pub engine: &'a Engine,
    pub queryable: &'a dyn Queryable,
    pub pusher: &'a dyn Pusher,
    pub tenant: &'a TenantId,
    pub alert_ctx: &'a AlertContext,
    pub metrics: &'a Metrics,
    /// Prometheus's `--rules.alert.resend-delay`.
    pub resend_delay_ms: i64,
}

/// How `for` state is restored when a group starts (Prometheus's
/// `--rules.alert.for-outage-tolerance` and `--rules.alert.for-grace-period`).
#[derive(Debug, Clone, Copy)]
pub struct RestoreSettings {
    /// How far back the last `ALERTS_FOR_STATE` sample is looked for.
    pub outage_tolerance_ms: i64,
    /// Least time an alert with a `for` of at least this long stays pending after a restore;
    /// rules with a shorter `for` are not restored.
    pub grace_period_ms: i64,
}

/// Alerts an alerting rule wants sent after an evaluation.
#[derive(Debug, Clone)]
pub struct AlertsToSend {
    /// The rule's expression (for `generatorURL`).
    pub expr: String,
    pub alerts: Vec<Alert>,
}

/// What one evaluation of a group did.
#[derive(Debug, Default)]
pub struct GroupEvalOutcome {
    /// Samples produced (stale markers excluded).
    pub samples: usize,
    /// Rules whose evaluation failed.
    pub failures: usize,
    pub to_send: Vec<AlertsToSend>,
}

/// A loaded rule group of one tenant.
#[derive(Debug, Clone)]
pub struct Group {
    /// The namespace (Prometheus's `file`).
    pub namespace: String,
    pub name: String,
    pub interval_ms: i64,
    pub query_offset_ms: i64,
    pub limit: i64,
    pub rules: Vec<Rule>,
    /// The group as written (served back by the configuration API).
    pub source: RuleGroup,
    /// Series each rule wrote at its last successful evaluation (for stale markers).
    prev_series: Vec<HashSet<Labels>>,
    /// Wall-clock time of the last evaluation, ms.
    pub last_evaluation: Option<i64>,
    pub evaluation_seconds: f64,
    /// Whether the alerts' `for` state is still to be restored (see [`Self::begin_restore`]).
    should_restore: bool,
    /// Evaluations since [`Self::begin_restore`].
    evals_since_start: u32,
}

impl Group {
    /// Builds a group; `default_interval_ms` and `default_query_offset_ms` apply when the
    /// group does not set them.
    pub fn new(
        namespace: &str,
        source: &RuleGroup,
        default_interval_ms: i64,
        default_query_offset_ms: i64,
    ) -> Self {
        let rules: Vec<Rule> = source
            .rules
            .iter()
            .map(|r| Rule::from_node(r, &source.labels))
            .collect();
        Self {
            namespace: namespace.to_string(),
            name: source.name.clone(),
            interval_ms: source
                .interval
                .map(|d| d.as_millis())
                .filter(|&ms| ms > 0)
                .unwrap_or(default_interval_ms),
            query_offset_ms: source
                .query_offset
                .map_or(default_query_offset_ms, |d| d.as_millis()),
            limit: source.limit,
            prev_series: vec![HashSet::new(); rules.len()],
            rules,
            source: source.clone(),
            last_evaluation: None,
            evaluation_seconds: 0.0,
            should_restore: false,
            evals_since_start: 0,
        }
    }

    /// Marks a group that starts in this process without state (a ruler start, or a group
    /// moved here from another ruler): its alerting rules write no `ALERTS` or
    /// `ALERTS_FOR_STATE` until their `for` state is restored after the second evaluation
    /// (Prometheus waits one more evaluation so that recording rules the alerts depend on
    /// have caught up).
    pub fn begin_restore(&mut self) {
        for r in &mut self.rules {
            if let Rule::Alerting(a) = r {
                a.restored = false;
            }
        }
        self.should_restore = true;
        self.evals_since_start = 0;
    }

    /// Whether [`Self::restore_for_state`] is due.
    pub fn restore_due(&self) -> bool {
        self.should_restore && self.evals_since_start >= 2
    }

    /// Restores each active alert's `activeAt` from the last `ALERTS_FOR_STATE` sample within
    /// the outage tolerance before `now_ms`, so that an alert that was firing fires again at
    /// once and a pending one keeps the pending time it had (Prometheus's `RestoreForState`).
    /// Returns how many alerts were restored. A failed read leaves that alert as it is (it is
    /// pending since its first evaluation here) and is logged.
    pub async fn restore_for_state(
        &mut self,
        env: EvalEnv<'_>,
        now_ms: i64,
        settings: RestoreSettings,
    ) -> usize {
        let start = now_ms - settings.outage_tolerance_ms;
        let mut restored = 0;
        for rule in &mut self.rules {
            let Rule::Alerting(r) = rule else { continue };
            if r.for_ms < settings.grace_period_ms {
                // It would wait longer for the grace period than for its own `for`.
                r.restored = true;
                continue;
            }
            for a in r.active.values_mut() {
                if a.state == AlertState::Inactive {
                    continue;
                }
                let want = AlertingRule::for_state_labels(a);
                let matchers: Vec<Matcher> = want
                    .iter()
                    .map(|l| Matcher::equal(l.name.clone(), l.value.clone()))
                    .collect();
                let found = match env
                    .queryable
                    .select(env.tenant, &matchers, start, now_ms)
                    .await
                {
                    Ok(found) => found,
                    Err(e) => {
                        tracing::warn!(
                            tenant = %env.tenant, group = %format!("{};{}", self.namespace, self.name),
                            alert = %a.labels, error = %e,
                            "reading ALERTS_FOR_STATE to restore an alert failed"
                        );
                        continue;
                    }
                };
                // Matchers on every label: a series with as many labels is the same series.
                let Some(last) = found
                    .iter()
                    .find(|s| s.labels.len() == want.len())
                    .and_then(|s| s.samples.last())
                else {
                    continue;
                };
                if is_stale_nan(last.v) {
                    continue;
                }
                a.active_at =
                    restored_active_at(r.for_ms, last.t, last.v, now_ms, settings.grace_period_ms);
                restored += 1;
            }
            r.restored = true;
        }
        self.should_restore = false;
        restored
    }

    /// `<namespace>;<group>`, the `rule_group` label of the metrics.
    pub fn key(&self) -> String {
        format!("{};{}", self.namespace, self.name)
    }

    /// Carries the alert state of `old` over to this group where a rule has the same name,
    /// expression and configuration (Prometheus's `CopyState` on reload), and the series
    /// memory used for stale markers.
    pub fn copy_state_from(&mut self, old: &Group) {
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let found = old
                .rules
                .iter()
                .enumerate()
                .find(|(_, o)| o.name() == rule.name() && o.expr() == rule.expr());
            let Some((j, o)) = found else { continue };
            if let Some(prev) = old.prev_series.get(j) {
                self.prev_series[i] = prev.clone();
            }
            match (rule, o) {
                (Rule::Alerting(n), Rule::Alerting(o)) => {
                    n.active = o.active.clone();
                    n.restored = o.restored;
                    n.status = o.status.clone();
                }
                (Rule::Recording(n), Rule::Recording(o)) => n.status = o.status.clone(),
                _ => {}
            }
        }
        self.last_evaluation = old.last_evaluation;
        self.evaluation_seconds = old.evaluation_seconds;
        // A reload while the old group still waited to restore: the new one restores, and its
        // new alerting rules wait for that too.
        if old.should_restore {
            self.begin_restore();
            self.evals_since_start = old.evals_since_start;
        }
    }

    /// The evaluation time slot at or before `now_ms`: multiples of the interval shifted by
    /// an offset derived from the group's identity, so that groups spread over the interval
    /// and a group keeps its phase across restarts and rulers (Prometheus's
    /// `EvalTimestamp`).
    pub fn eval_timestamp(&self, now_ms: i64) -> i64 {
        let interval = self.interval_ms.max(1);
        let h = xxhash_rust::xxh3::xxh3_64(self.key().as_bytes());
        let offset = (h % interval as u64) as i64;
        let adj = now_ms - offset;
        adj - adj.rem_euclid(interval) + offset
    }

    fn group_labels(&self, tenant: &TenantId) -> GroupLabels {
        GroupLabels {
            user: tenant.as_str().to_string(),
            rule_group: self.key(),
        }
    }

    /// Evaluates every rule in order at `ts` (ms): queries at `ts` − query offset, writes the
    /// results, and collects the alerts to send.
    pub async fn eval(&mut self, env: EvalEnv<'_>, ts: i64) -> GroupEvalOutcome {
        let started = Instant::now();
        let gl = self.group_labels(env.tenant);
        let query_ts = ts - self.query_offset_ms;
        let mut outcome = GroupEvalOutcome::default();
        self.evals_since_start = self.evals_since_start.saturating_add(1);
        for i in 0..self.rules.len() {
            let rule_started = Instant::now();
            env.metrics.evaluations.get_or_create(&gl).inc();
            let result = self.eval_rule(env, i, ts, query_ts).await;
            let (key, rule_name) = (self.key(), self.rules[i].name().to_string());
            let status = self.rules[i].status_mut();
            status.last_evaluation = Some(wall_ms());
            status.evaluation_seconds = rule_started.elapsed().as_secs_f64();
            match result {
                Ok((samples, to_send)) => {
                    status.health = Health::Ok;
                    status.last_error = None;
                    outcome.samples += samples;
                    if let Some(t) = to_send {
                        if !t.alerts.is_empty() {
                            outcome.to_send.push(t);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        tenant = %env.tenant, group = %key, rule = %rule_name,
                        error = %e, "rule evaluation failed"
                    );
                    status.health = Health::Err;
                    status.last_error = Some(e.to_string());
                    env.metrics.evaluation_failures.get_or_create(&gl).inc();
                    outcome.failures += 1;
                }
            }
        }
        self.evaluation_seconds = started.elapsed().as_secs_f64();
        self.last_evaluation = Some(wall_ms());
        env.metrics
            .last_duration
            .get_or_create(&gl)
            .set(self.evaluation_seconds);
        env.metrics
            .last_evaluation
            .get_or_create(&gl)
            .set(ts as f64 / 1000.0);
        env.metrics
            .last_samples
            .get_or_create(&gl)
            .set(outcome.samples as i64);
        outcome
    }

    async fn eval_rule(
        &mut self,
        env: EvalEnv<'_>,
        i: usize,
        ts: i64,
        query_ts: i64,
    ) -> Result<(usize, Option<AlertsToSend>), EvalFailure> {
        let expr = self.rules[i].expr().to_string();
        let result = env
            .engine
            .instant(env.queryable, env.tenant, &expr, query_ts)
            .await?;
        let vector: Vec<(Labels, f64)> = match result.value {
            QueryValue::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
            QueryValue::Scalar { v, .. } => vec![(Labels::default(), v)],
            _ => return Err(EvalFailure::NotAVector),
        };
        let samples = match &mut self.rules[i] {
            Rule::Recording(r) => r.apply(vector, query_ts, self.limit)?,
            Rule::Alerting(r) => {
                let querier = r
                    .templates_query()
                    .then_some(EngineQuerier { env, ts: query_ts });
                r.apply(
                    vector,
                    ts,
                    query_ts,
                    self.limit,
                    env.alert_ctx,
                    querier.as_ref().map(|q| q as _),
                )?
            }
        };
        let current: HashSet<Labels> = samples.iter().map(|s| s.labels.clone()).collect();
        let stale: Vec<OutSample> = self.prev_series[i]
            .difference(&current)
            .map(|l| OutSample {
                labels: l.clone(),
                t: query_ts,
                v: STALE_NAN,
            })
            .collect();
        write(env, &samples, &stale).await?;
        let produced = samples.len();
        self.prev_series[i] = current;
        let to_send = match &mut self.rules[i] {
            Rule::Alerting(r) => Some(AlertsToSend {
                expr,
                alerts: r.alerts_to_send(ts, env.resend_delay_ms, self.interval_ms),
            }),
            Rule::Recording(_) => None,
        };
        Ok((produced, to_send))
    }

    /// Writes stale markers for every series the group's rules wrote last (the group is
    /// being removed or moved away), at `ts` − query offset.
    pub async fn mark_all_stale(&mut self, env: EvalEnv<'_>, ts: i64) -> Result<(), EvalFailure> {
        let t = ts - self.query_offset_ms;
        let stale: Vec<OutSample> = self
            .prev_series
            .iter()
            .flatten()
            .map(|l| OutSample {
                labels: l.clone(),
                t,
                v: STALE_NAN,
            })
            .collect();
        write(env, &[], &stale).await?;
        for s in &mut self.prev_series {
            s.clear();
        }
        Ok(())
    }

    /// Alerting rules' alerts, for the API.
    pub fn alerting_rules(&self) -> impl Iterator<Item = &crate::rules::AlertingRule> {
        self.rules.iter().filter_map(|r| match r {
            Rule::Alerting(a) => Some(a),
            Rule::Recording(_) => None,
        })
    }
}

/// Runs the `query` calls of an alerting rule's templates with the rule's engine, tenant and
/// query time, as Prometheus's expander does.
struct EngineQuerier<'a> {
    env: EvalEnv<'a>,
    ts: i64,
}

impl strata_template::TemplateQuerier for EngineQuerier<'_> {
    fn query(&self, query: &str) -> Result<Vec<strata_template::QuerySample>, String> {
        // Templates expand synchronously inside the async evaluation: the query blocks this
        // worker thread while the runtime's other workers run the rest.
        let handle = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return Err("templates can query only on a multi-threaded runtime".into());
        }
        let env = self.env;
        let answer = tokio::task::block_in_place(|| {
            handle.block_on(
                env.engine
                    .instant(env.queryable, env.tenant, query, self.ts),
            )
        })
        .map_err(|e| e.to_string())?;
        match answer.value {
            QueryValue::Vector(v) => Ok(v
                .into_iter()
                .map(|s| (crate::rules::labels_to_map(&s.labels), s.v))
                .collect()),
            QueryValue::Scalar { v, .. } => Ok(vec![(BTreeMap::new(), v)]),
            _ => Err("rule result is not a vector or scalar".into()),
        }
    }
}

/// Wall-clock time, ms.
pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Pushes samples and stale markers as one write request. Refusals of single samples (out of
/// order, duplicates, limits) are logged, as Prometheus logs them, not failures of the rule.
async fn write(
    env: EvalEnv<'_>,
    samples: &[OutSample],
    stale: &[OutSample],
) -> Result<(), EvalFailure> {
    if samples.is_empty() && stale.is_empty() {
        return Ok(());
    }
    let mut batch = WriteBatch::default();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for s in samples.iter().chain(stale) {
        pairs.clear();
        pairs.extend(s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
        batch.push_series(&pairs, &[Sample::new(s.t, s.v)]);
    }
    let outcome = env.pusher.push(env.tenant, &batch).await?;
    if let Some(r) = outcome.first_rejection {
        tracing::warn!(
            tenant = %env.tenant, rejected = outcome.samples_rejected, reason = r.reason,
            message = %r.message, "rule samples refused by the write path"
        );
    }
    Ok(())
}

/// Builds labels from a map (for tests and callers that hold maps).
pub fn labels(m: &std::collections::BTreeMap<String, String>) -> Labels {
    labels_from_map(m)
}
