//! Recording and alerting rules and their evaluation at one timestamp, with Prometheus's
//! semantics (`rules/recording.go`, `rules/alerting.go` of Prometheus 2.42).

use crate::error::EvalFailure;
use crate::rulefmt::RuleNode;
use crate::template::{expand, TemplateData};
use std::collections::{BTreeMap, HashMap};
use strata_model::{Label, Labels, METRIC_NAME};

/// How long a resolved alert is kept (and re-sent as resolved): Prometheus's
/// `resolvedRetention`.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Series name of the alert state series.
pub const ALERTS: &str = "ALERTS";
/// Series name of the `for` state series (value: the alert's active-since time, in seconds).
pub const ALERTS_FOR_STATE: &str = "ALERTS_FOR_STATE";

/// The state of one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    /// The name Prometheus uses (`alertstate` label, API `state`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Pending => "pending",
            Self::Firing => "firing",
        }
    }
}

/// One alert of an alerting rule: one output series of its expression. Times are ms since
/// the epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// The series labels without `__name__`, plus the rule's (expanded) labels and
    /// `alertname`.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    /// The expression's value at the last evaluation where the alert was active.
    pub value: f64,
    /// When the expression first returned this series (this time round).
    pub active_at: i64,
    /// When the alert turned firing.
    pub fired_at: Option<i64>,
    /// When a firing alert turned inactive.
    pub resolved_at: Option<i64>,
    /// When the alert was last sent to Alertmanager.
    pub last_sent_at: Option<i64>,
    /// `endsAt` of the last send of an unresolved alert.
    pub valid_until: i64,
    /// Since when the alert has been kept firing by `keep_firing_for` after its series
    /// disappeared.
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    /// Prometheus's `needsSending`: firing or resolved alerts, when resolved since the last
    /// send or not sent within `resend_delay`.
    pub fn needs_sending(&self, ts: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last = self.last_sent_at.unwrap_or(i64::MIN);
        if self.resolved_at.is_some_and(|r| r > last) {
            return true;
        }
        self.last_sent_at
            .is_none_or(|l| l.saturating_add(resend_delay_ms) < ts)
    }
}

/// Health of a rule's last evaluation, as the rules API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Ok => "ok",
            Self::Err => "err",
        }
    }
}

/// What every rule reports about its last evaluation.
#[derive(Debug, Clone)]
pub struct RuleStatus {
    pub health: Health,
    pub last_error: Option<String>,
    /// Wall-clock time of the last evaluation, ms.
    pub last_evaluation: Option<i64>,
    /// How long the last evaluation took.
    pub evaluation_seconds: f64,
}

impl Default for RuleStatus {
    fn default() -> Self {
        Self {
            health: Health::Unknown,
            last_error: None,
            last_evaluation: None,
            evaluation_seconds: 0.0,
        }
    }
}

/// A recording rule: stores its expression's result under a new metric name.
#[derive(Debug, Clone)]
pub struct RecordingRule {
    pub name: String,
    pub expr: String,
    /// Group labels merged with the rule's own (the rule's win).
    pub labels: BTreeMap<String, String>,
    pub status: RuleStatus,
}

/// An alerting rule and its active alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    pub name: String,
    pub expr: String,
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    /// Label templates: group labels merged with the rule's own (the rule's win).
    pub labels: BTreeMap<String, String>,
    /// Annotation templates.
    pub annotations: BTreeMap<String, String>,
    /// Active (pending, firing, or resolved within the retention) alerts by label set.
    pub active: HashMap<Labels, Alert>,
    /// Whether `ALERTS`/`ALERTS_FOR_STATE` are written (after `for` state restoration).
    pub restored: bool,
    pub status: RuleStatus,
}

/// A rule of a group.
#[derive(Debug, Clone)]
pub enum Rule {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

impl Rule {
    /// Builds a rule from its file form; `group_labels` are the group's `labels`.
    pub fn from_node(node: &RuleNode, group_labels: &BTreeMap<String, String>) -> Rule {
        let mut labels = group_labels.clone();
        labels.extend(node.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        if node.is_alert() {
            Rule::Alerting(AlertingRule {
                name: node.name().to_string(),
                expr: node.expr.clone(),
                for_ms: node.for_.map_or(0, |d| d.as_millis()),
                keep_firing_for_ms: node.keep_firing_for.map_or(0, |d| d.as_millis()),
                labels,
                annotations: node.annotations.clone(),
                active: HashMap::new(),
                restored: true,
                status: RuleStatus::default(),
            })
        } else {
            Rule::Recording(RecordingRule {
                name: node.name().to_string(),
                expr: node.expr.clone(),
                labels,
                status: RuleStatus::default(),
            })
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(r) => &r.name,
        }
    }

    pub fn expr(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.expr,
            Rule::Alerting(r) => &r.expr,
        }
    }

    pub fn status(&self) -> &RuleStatus {
        match self {
            Rule::Recording(r) => &r.status,
            Rule::Alerting(r) => &r.status,
        }
    }

    pub fn status_mut(&mut self) -> &mut RuleStatus {
        match self {
            Rule::Recording(r) => &mut r.status,
            Rule::Alerting(r) => &mut r.status,
        }
    }
}

/// One sample a rule produces.
#[derive(Debug, Clone, PartialEq)]
pub struct OutSample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// Builds a label set from a map.
pub(crate) fn labels_from_map(m: &BTreeMap<String, String>) -> Labels {
    // An empty value means "no such label" in Prometheus.
    Labels::from_sorted(
        m.iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| Label::new(k.clone(), v.clone()))
            .collect(),
    )
}

pub(crate) fn labels_to_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

impl RecordingRule {
    /// Turns the query result (at `t`) into the recorded samples: `__name__` set to the rule
    /// name, the rule labels applied (an empty value removes the label).
    pub fn apply(
        &self,
        result: Vec<(Labels, f64)>,
        t: i64,
        limit: i64,
    ) -> Result<Vec<OutSample>, EvalFailure> {
        let mut out = Vec::with_capacity(result.len());
        let mut seen = std::collections::HashSet::with_capacity(result.len());
        for (labels, v) in result {
            let mut m = labels_to_map(&labels);
            m.insert(METRIC_NAME.to_string(), self.name.clone());
            for (k, val) in &self.labels {
                if val.is_empty() {
                    m.remove(k);
                } else {
                    m.insert(k.clone(), val.clone());
                }
            }
            let labels = labels_from_map(&m);
            if !seen.insert(labels.clone()) {
                return Err(EvalFailure::DuplicateRecorded);
            }
            out.push(OutSample { labels, t, v });
        }
        if limit > 0 && out.len() as i64 > limit {
            return Err(EvalFailure::SeriesLimit {
                limit,
                got: out.len(),
            });
        }
        Ok(out)
    }
}

/// What the alert templates need besides the sample.
#[derive(Debug, Clone, Default)]
pub struct AlertContext {
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

impl AlertingRule {
    /// Whether a label or annotation template may call `query` (then the evaluation gives
    /// the templates an engine to ask).
    pub fn templates_query(&self) -> bool {
        self.labels
            .values()
            .chain(self.annotations.values())
            .any(|t| t.contains("{{") && t.contains("query"))
    }

    /// Advances the alerts with the query result of the evaluation at `ts` (the query ran at
    /// `query_ts` = `ts` − query offset) and returns the `ALERTS` and `ALERTS_FOR_STATE`
    /// samples (timestamped `query_ts`).
    pub fn apply(
        &mut self,
        result: Vec<(Labels, f64)>,
        ts: i64,
        query_ts: i64,
        limit: i64,
        ctx: &AlertContext,
        querier: Option<&dyn strata_template::TemplateQuerier>,
    ) -> Result<Vec<OutSample>, EvalFailure> {
        let mut current: HashMap<Labels, Alert> = HashMap::with_capacity(result.len());
        for (series, value) in result {
            let series_map = labels_to_map(&series);
            let data = TemplateData {
                labels: &series_map,
                external_labels: &ctx.external_labels,
                external_url: &ctx.external_url,
                value,
                querier,
            };
            let mut m = series_map.clone();
            m.remove(METRIC_NAME);
            for (k, text) in &self.labels {
                let v = expand(&self.name, text, &data);
                if v.is_empty() {
                    m.remove(k);
                } else {
                    m.insert(k.clone(), v);
                }
            }
            m.insert("alertname".to_string(), self.name.clone());
            let annotations = self
                .annotations
                .iter()
                .map(|(k, text)| (k.clone(), expand(&self.name, text, &data)))
                .collect();
            let labels = labels_from_map(&m);
            if current.contains_key(&labels) {
                return Err(EvalFailure::DuplicateAlert);
            }
            current.insert(
                labels.clone(),
                Alert {
                    labels,
                    annotations,
                    state: AlertState::Pending,
                    value,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: 0,
                    keep_firing_since: None,
                },
            );
        }
        let present: std::collections::HashSet<Labels> = current.keys().cloned().collect();
        for (labels, a) in current {
            match self.active.get_mut(&labels) {
                Some(existing) if existing.state != AlertState::Inactive => {
                    existing.value = a.value;
                    existing.annotations = a.annotations;
                }
                _ => {
                    self.active.insert(labels, a);
                }
            }
        }
        let mut out = Vec::new();
        let mut active_count = 0usize;
        let mut remove = Vec::new();
        for (labels, a) in self.active.iter_mut() {
            if !present.contains(labels) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && self.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < self.keep_firing_for_ms;
                }
                // A pending alert is dropped; a resolved one once its retention is over.
                if a.state == AlertState::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    remove.push(labels.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            active_count += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= self.for_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if self.restored {
                out.push(OutSample {
                    labels: with_name_and_state(&a.labels, ALERTS, Some(a.state)),
                    t: query_ts,
                    v: 1.0,
                });
                out.push(OutSample {
                    labels: with_name_and_state(&a.labels, ALERTS_FOR_STATE, None),
                    t: query_ts,
                    // Whole seconds, as Prometheus writes `ActiveAt.Unix()`.
                    v: a.active_at.div_euclid(1000) as f64,
                });
            }
        }
        for l in remove {
            self.active.remove(&l);
        }
        if limit > 0 && active_count as i64 > limit {
            self.active.clear();
            return Err(EvalFailure::AlertLimit {
                limit,
                got: active_count,
            });
        }
        // Deterministic order for writes and tests.
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// The `ALERTS_FOR_STATE` series of an alert (what [`Self::apply`] writes for it).
    pub fn for_state_labels(a: &Alert) -> Labels {
        with_name_and_state(&a.labels, ALERTS_FOR_STATE, None)
    }

    /// The rule's state: the "worst" state of its alerts.
    pub fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// Active alerts sorted by labels.
    pub fn alerts(&self) -> Vec<&Alert> {
        let mut v: Vec<&Alert> = self.active.values().collect();
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }

    /// Prometheus's `sendAlerts`: the alerts to send after the evaluation at `ts`, marked as
    /// sent, with `valid_until` = `ts` + 4 × max(interval, resend delay) (two evaluations or
    /// sends may fail before Alertmanager resolves the alert on its own).
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
    ) -> Vec<Alert> {
        let delta = resend_delay_ms.max(interval_ms);
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay_ms) {
                a.last_sent_at = Some(ts);
                a.valid_until = ts + 4 * delta;
                out.push(a.clone());
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

/// `labels` plus `__name__` and, for `ALERTS`, `alertstate`.
fn with_name_and_state(labels: &Labels, name: &str, state: Option<AlertState>) -> Labels {
    let mut v: Vec<Label> = labels
        .iter()
        .filter(|l| l.name != METRIC_NAME && l.name != "alertstate")
        .cloned()
        .collect();
    v.push(Label::new(METRIC_NAME, name));
    if let Some(s) = state {
        v.push(Label::new("alertstate", s.as_str()));
    }
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Labels::from_sorted(v)
}

/// The `activeAt` (ms) of an alert restored from the last `ALERTS_FOR_STATE` sample `(t, v)`
/// written before a restart or a move, at `now_ms`, for a rule with hold duration `for_ms`
/// (Prometheus 2.42's `RestoreForState`; times are cut to whole seconds as there):
/// - the alert had fired (its pending time covered `for`): the old `activeAt`, so it fires
///   again at the next evaluation that still sees it;
/// - less than `grace_ms` of pending time was left: it fires `grace_ms` after `now_ms`;
/// - otherwise the pending time it had is kept: `activeAt` moves forward by the downtime.
pub fn restored_active_at(for_ms: i64, t_ms: i64, v_secs: f64, now_ms: i64, grace_ms: i64) -> i64 {
    let down_at = t_ms.div_euclid(1000) * 1000;
    let active_at = (v_secs as i64).saturating_mul(1000);
    let remaining = for_ms - (down_at - active_at);
    if remaining <= 0 {
        active_at
    } else if remaining < grace_ms {
        now_ms + grace_ms - for_ms
    } else {
        active_at + (now_ms - down_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn restored_active_at_follows_prometheus_cases() {
        let (for_ms, grace) = (30 * MIN, 10 * MIN);
        // Fired before going down (pending 35 m ≥ 30 m): the old activeAt.
        assert_eq!(
            restored_active_at(for_ms, 35 * MIN, 0.0, 40 * MIN, grace),
            0
        );
        // Pending 20 m, 10 m left (not < grace): shifted by the 6 m of downtime.
        assert_eq!(
            restored_active_at(for_ms, 20 * MIN, 0.0, 26 * MIN, grace),
            6 * MIN
        );
        // Pending 25 m, 5 m left (< grace): fires a grace period after now.
        let a = restored_active_at(for_ms, 25 * MIN, 0.0, 26 * MIN, grace);
        assert_eq!(a + for_ms, 26 * MIN + grace);
        // Times are whole seconds, as Prometheus writes and reads them.
        assert_eq!(
            restored_active_at(for_ms, 20 * MIN + 999, 0.0, 26 * MIN, grace),
            6 * MIN
        );
    }
}
