//! The alerting core: alert store, aggregation groups with their timers, inhibition, silences
//! and the notification log, driven by explicit timestamps so that every timer is testable with
//! a fake clock. The async side (`crate::run`) only calls [`Core::poll`], executes the returned
//! [`FlushJob`]s and reports back with [`Core::complete`].

use crate::alert::{alert_order, Alert, AlertStore};
use crate::amconfig::{LoadedConfig, Webhook};
use crate::inhibit::Inhibitor;
use crate::labels::LabelSet;
use crate::nflog::{needs_update, Nflog, NflogEntry, NflogKey};
use crate::route::{Route, RouteOpts};
use crate::silence::{Silence, Silences};
use crate::time::{add, zero_time, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Upstream `notify.MinTimeout`: a flush may retry for at least this long.
const MIN_NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// An aggregation group: the alerts of one route with equal group labels.
#[derive(Debug)]
pub struct AggrGroup {
    pub route_id: usize,
    pub labels: LabelSet,
    pub key: String,
    pub opts: RouteOpts,
    pub alerts: BTreeMap<u64, Arc<Alert>>,
    pub next_flush: Timestamp,
    pub has_flushed: bool,
    pub in_flight: bool,
}

/// Identity of a group: route id and group key.
pub type GroupId = (usize, String);

/// One integration's part of a flush.
#[derive(Debug, Clone)]
pub struct PlannedSend {
    pub key: NflogKey,
    pub webhook: Webhook,
    /// What the request is made of, rendered only when the send has its slot (see
    /// [`Content::render`]). `None`: nothing to send (only resolved alerts and
    /// `send_resolved: false`), but the flush still counts as notified, like upstream.
    pub content: Option<Content>,
    /// Why this send cannot be made (an unreadable URL file): it fails without a request.
    pub failure: Option<Arc<crate::error::NotifyError>>,
    firing: BTreeSet<u64>,
    resolved: BTreeSet<u64>,
    repeat: Duration,
}

/// A due flush of one group.
#[derive(Debug, Clone)]
pub struct FlushJob {
    pub group: GroupId,
    pub now: Timestamp,
    /// How long sends may retry: `max(group_interval, 10s)`.
    pub timeout: Duration,
    pub sends: Vec<PlannedSend>,
    /// (fingerprint, updated_at) of the resolved alerts flushed: deleted from the group after
    /// success unless updated meanwhile.
    resolved_snapshot: Vec<(u64, Timestamp)>,
}

/// An email ready to go: where, and what.
#[derive(Debug, Clone)]
pub struct EmailSend {
    pub email: crate::amconfig::Email,
    pub mail: crate::notify::RenderedEmail,
}

/// One integration of a receiver in a flush: its name and index, where its request goes, how
/// its body is built, and why it cannot be sent at all.
type Target = (
    &'static str,
    usize,
    Webhook,
    IntegrationKind,
    Option<crate::error::NotifyError>,
);

/// Which integration of the receiver a send is for, and so how its body is built.
#[derive(Debug, Clone, Copy)]
pub enum IntegrationKind {
    /// A webhook, with its `max_alerts`.
    Webhook(u64),
    Slack(usize),
    Email(usize),
    Pagerduty(usize),
}

/// What one flush of a group is rendered from: shared by the group's integrations, holding the
/// alerts by reference. A flush of many groups at once (a restart, a mass outage) so queues
/// ~100 bytes per group, not its rendered payloads; each body is rendered when its send gets a
/// slot (`alertmanager.max_concurrent_notifications_per_host`).
#[derive(Debug)]
pub struct FlushData {
    config: Arc<LoadedConfig>,
    receiver: String,
    labels: LabelSet,
    key: String,
    external_url: String,
    now: Timestamp,
    /// In notification order; inhibited and silenced ones left out.
    alerts: Vec<Arc<Alert>>,
}

/// One integration's request, to be rendered.
#[derive(Debug, Clone)]
pub struct Content {
    data: Arc<FlushData>,
    kind: IntegrationKind,
    /// Leave resolved alerts out (`send_resolved: false`).
    only_firing: bool,
}

/// A rendered request: the body, and for an email the message (the body then holds its text).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: bytes::Bytes,
    pub email: Option<Arc<EmailSend>>,
}

impl Content {
    /// Renders the request as of the flush: alerts not resolved then are sent with a zero end.
    pub fn render(&self) -> Result<Rendered, crate::error::NotifyError> {
        let d = &*self.data;
        let now = d.now;
        let alerts: Vec<Alert> = d
            .alerts
            .iter()
            .filter(|a| !self.only_firing || !a.resolved_at(now))
            .map(|a| {
                let mut a = Alert::clone(a);
                if !a.resolved_at(now) {
                    a.ends_at = zero_time();
                }
                a
            })
            .collect();
        let receiver = d.config.receivers.get(&d.receiver);
        let missing = || crate::error::NotifyError::ReceiverGone {
            receiver: d.receiver.clone(),
        };
        let kind = match self.kind {
            IntegrationKind::Webhook(max) => Kind::Webhook(max),
            IntegrationKind::Slack(i) => {
                Kind::Slack(receiver.and_then(|r| r.slacks.get(i)).ok_or_else(missing)?)
            }
            IntegrationKind::Pagerduty(i) => Kind::Pagerduty(
                receiver
                    .and_then(|r| r.pagerduties.get(i))
                    .ok_or_else(missing)?,
            ),
            IntegrationKind::Email(i) => {
                let e = receiver.and_then(|r| r.emails.get(i)).ok_or_else(missing)?;
                let m = render_email(
                    e,
                    &d.config,
                    &d.receiver,
                    &d.labels,
                    &d.external_url,
                    &alerts,
                    now,
                )?;
                return Ok(Rendered {
                    body: bytes::Bytes::from(m.mail.message.clone()),
                    email: Some(Arc::new(m)),
                });
            }
        };
        let body = render_body(
            &kind,
            &d.config,
            &d.receiver,
            &d.labels,
            &d.key,
            &d.external_url,
            &alerts,
            now,
        )?;
        Ok(Rendered {
            body: bytes::Bytes::from(body),
            email: None,
        })
    }
}

/// How an integration's body is built.
enum Kind<'a> {
    Webhook(u64),
    Slack(&'a crate::amconfig::Slack),
    Pagerduty(&'a crate::amconfig::Pagerduty),
}

fn render_email(
    e: &crate::amconfig::Email,
    config: &LoadedConfig,
    receiver: &str,
    group_labels: &LabelSet,
    external_url: &str,
    alerts: &[Alert],
    now: Timestamp,
) -> Result<EmailSend, crate::error::NotifyError> {
    let data = crate::template::data(receiver, group_labels, external_url, alerts, now);
    let mail = crate::notify::email_message(e, &config.templates, &data)
        .map_err(crate::error::NotifyError::Email)?;
    Ok(EmailSend {
        email: e.clone(),
        mail,
    })
}

#[allow(clippy::too_many_arguments)]
fn render_body(
    kind: &Kind<'_>,
    config: &LoadedConfig,
    receiver: &str,
    group_labels: &LabelSet,
    group_key: &str,
    external_url: &str,
    alerts: &[Alert],
    now: Timestamp,
) -> Result<String, crate::error::NotifyError> {
    use crate::error::NotifyError;
    let data = || crate::template::data(receiver, group_labels, external_url, alerts, now);
    match kind {
        Kind::Webhook(max_alerts) => Ok(crate::webhook::payload(
            receiver,
            group_labels,
            group_key,
            external_url,
            *max_alerts,
            alerts,
            now,
        )),
        Kind::Slack(s) => {
            crate::notify::slack_body(&s.config, &config.templates, &data()).map_err(|source| {
                NotifyError::Template {
                    integration: "slack",
                    receiver: receiver.to_string(),
                    source,
                }
            })
        }
        Kind::Pagerduty(p) => {
            let routing_key = p
                .routing_key
                .read()
                .map_err(|source| NotifyError::SecretFile {
                    integration: "pagerduty",
                    source,
                })?;
            crate::notify::pagerduty_body(
                &p.config,
                routing_key.expose(),
                &config.templates,
                &data(),
                group_key,
            )
            .map_err(|source| NotifyError::Template {
                integration: "pagerduty",
                receiver: receiver.to_string(),
                source,
            })
        }
    }
}

/// Status of one alert as the API reports it.
#[derive(Debug, Clone, Default)]
pub struct AlertStatus {
    pub silenced_by: Vec<String>,
    pub inhibited_by: Vec<String>,
}

impl AlertStatus {
    pub fn state(&self) -> &'static str {
        if self.silenced_by.is_empty() && self.inhibited_by.is_empty() {
            "active"
        } else {
            "suppressed"
        }
    }
}

/// What a snapshotter persists (and a peer replicates): silences, notification log, alerts.
/// The alerts are shared with the live state, so taking a snapshot copies no alert.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub silences: Vec<Silence>,
    pub nflog: Vec<NflogEntry>,
    pub alerts: Vec<Arc<Alert>>,
}

#[derive(Debug)]
pub struct Core {
    pub config: Arc<LoadedConfig>,
    pub alerts: AlertStore,
    pub silences: Silences,
    pub nflog: Nflog,
    inhibitor: Inhibitor,
    groups: BTreeMap<GroupId, AggrGroup>,
    external_url: String,
}

impl Core {
    pub fn new(config: Arc<LoadedConfig>, external_url: String) -> Self {
        Self {
            inhibitor: Inhibitor::new(config.inhibit_rules.clone()),
            config,
            alerts: AlertStore::default(),
            silences: Silences::default(),
            nflog: Nflog::default(),
            groups: BTreeMap::new(),
            external_url,
        }
    }

    pub fn external_url(&self) -> &str {
        &self.external_url
    }

    /// Applies a new configuration. Like upstream, the aggregation groups are rebuilt from the
    /// stored alerts; the notification log keeps already-sent groups from being sent again.
    pub fn reload(&mut self, config: Arc<LoadedConfig>, now: Timestamp) {
        self.config = config;
        self.inhibitor = Inhibitor::new(self.config.inhibit_rules.clone());
        self.groups.clear();
        let all: Vec<Arc<Alert>> = self.alerts.iter().map(|(_, a)| Arc::clone(a)).collect();
        for a in &all {
            self.inhibitor.observe(a);
        }
        for a in all {
            self.route_alert(a, now);
        }
    }

    /// Stores alerts that passed API validation and routes them into groups.
    pub fn put_alerts(&mut self, alerts: Vec<Alert>, now: Timestamp) {
        for a in alerts {
            let stored = self.alerts.put(a, now);
            self.inhibitor.observe(&stored);
            self.route_alert(stored, now);
        }
    }

    fn route_alert(&mut self, alert: Arc<Alert>, now: Timestamp) {
        let config = Arc::clone(&self.config);
        let fp = alert.fingerprint();
        for route in config.route.match_labels(&alert.labels) {
            let labels = route.group_labels(&alert.labels);
            let key = route.group_key(&labels);
            let group = self
                .groups
                .entry((route.id, key.clone()))
                .or_insert_with(|| AggrGroup {
                    route_id: route.id,
                    labels,
                    key,
                    opts: route.opts.clone(),
                    alerts: BTreeMap::new(),
                    next_flush: add(now, route.opts.group_wait),
                    has_flushed: false,
                    in_flight: false,
                });
            // An alert whose group_wait is already over flushes the new group at once.
            if !group.has_flushed && add(alert.starts_at, group.opts.group_wait) < now {
                group.next_flush = now;
            }
            group.alerts.insert(fp, Arc::clone(&alert));
        }
    }

    /// Silences and inhibitions of a label set at `now`.
    pub fn status(&self, labels: &LabelSet, now: Timestamp) -> AlertStatus {
        AlertStatus {
            silenced_by: self.silences.mutes(labels, now),
            inhibited_by: self
                .inhibitor
                .inhibited_by(labels, now)
                .map(|fp| vec![crate::labels::fingerprint_string(fp)])
                .unwrap_or_default(),
        }
    }

    /// The earliest time a group is due, if any.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.groups
            .values()
            .filter(|g| !g.in_flight)
            .map(|g| g.next_flush)
            .min()
    }

    /// Starts every flush that is due at `now`.
    pub fn poll(&mut self, now: Timestamp) -> Vec<FlushJob> {
        let due: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, g)| !g.in_flight && g.next_flush <= now)
            .map(|(id, _)| id.clone())
            .collect();
        due.into_iter()
            .filter_map(|id| self.flush(id, now))
            .collect()
    }

    fn flush(&mut self, id: GroupId, now: Timestamp) -> Option<FlushJob> {
        let config = Arc::clone(&self.config);
        let group = self.groups.get_mut(&id)?;
        group.next_flush = add(now, group.opts.group_interval);
        group.has_flushed = true;
        if group.alerts.is_empty() {
            return None;
        }
        // In notification order; the ends of alerts still firing are zeroed when rendered.
        let mut alerts: Vec<Arc<Alert>> = group.alerts.values().cloned().collect();
        alerts.sort_by(|a, b| alert_order(&a.labels, &b.labels));
        let resolved_snapshot = group
            .alerts
            .iter()
            .filter(|(_, a)| a.resolved_at(now))
            .map(|(fp, a)| (*fp, a.updated_at))
            .collect();
        let (labels, key, opts) = (group.labels.clone(), group.key.clone(), group.opts.clone());
        group.in_flight = true;

        // Mute stages in upstream's order: inhibition, time intervals, silences. A group muted by
        // its route's time intervals sends nothing and logs nothing, so the first flush after
        // the interval notifies as if the muted flushes had not happened.
        if config.route_muted(&opts, now) {
            alerts.clear();
        }
        alerts.retain(|a| {
            self.inhibitor.inhibited_by(&a.labels, now).is_none()
                && self.silences.mutes(&a.labels, now).is_empty()
        });
        let mut sends = Vec::new();
        if !alerts.is_empty() {
            let firing: BTreeSet<u64> = alerts
                .iter()
                .filter(|a| !a.resolved_at(now))
                .map(|a| a.fingerprint())
                .collect();
            let resolved: BTreeSet<u64> = alerts
                .iter()
                .filter(|a| a.resolved_at(now))
                .map(|a| a.fingerprint())
                .collect();
            if let Some(receiver) = config.receivers.get(&opts.receiver) {
                let mut targets: Vec<Target> = Vec::new();
                for (idx, hook) in receiver.webhooks.iter().enumerate() {
                    targets.push((
                        "webhook",
                        idx,
                        hook.clone(),
                        IntegrationKind::Webhook(hook.max_alerts),
                        None,
                    ));
                }
                for (idx, e) in receiver.emails.iter().enumerate() {
                    let target = Webhook {
                        url: crate::amconfig::SecretUrl::new(format!(
                            "smtp://{}:{}",
                            e.host, e.port
                        )),
                        send_resolved: e.config.send_resolved,
                        max_alerts: 0,
                        http: crate::amconfig::HttpConfig::default(),
                        sandboxed: config.sandboxed,
                    };
                    targets.push(("email", idx, target, IntegrationKind::Email(idx), None));
                }
                for (idx, s) in receiver.slacks.iter().enumerate() {
                    let (url, failure) = match s.url.read() {
                        Ok(u) => (crate::amconfig::SecretUrl::from(u), None),
                        Err(source) => (
                            crate::amconfig::SecretUrl::default(),
                            Some(crate::error::NotifyError::SecretFile {
                                integration: "slack",
                                source,
                            }),
                        ),
                    };
                    let target = Webhook {
                        url,
                        send_resolved: s.config.send_resolved,
                        max_alerts: 0,
                        http: s.http.clone(),
                        sandboxed: config.sandboxed,
                    };
                    targets.push(("slack", idx, target, IntegrationKind::Slack(idx), failure));
                }
                for (idx, p) in receiver.pagerduties.iter().enumerate() {
                    let target = Webhook {
                        url: crate::amconfig::SecretUrl::new(p.url.clone()),
                        send_resolved: p.config.send_resolved,
                        max_alerts: 0,
                        http: p.http.clone(),
                        sandboxed: config.sandboxed,
                    };
                    targets.push((
                        "pagerduty",
                        idx,
                        target,
                        IntegrationKind::Pagerduty(idx),
                        None,
                    ));
                }
                let data = Arc::new(FlushData {
                    config: Arc::clone(&config),
                    receiver: receiver.name.clone(),
                    labels,
                    key: key.clone(),
                    external_url: self.external_url.clone(),
                    now,
                    alerts,
                });
                for (integration, idx, hook, kind, unusable) in targets {
                    let nkey = NflogKey {
                        group_key: key.clone(),
                        receiver: receiver.name.clone(),
                        integration: integration.into(),
                        index: idx,
                    };
                    if !needs_update(
                        self.nflog.get(&nkey),
                        &firing,
                        &resolved,
                        hook.send_resolved,
                        opts.repeat_interval,
                        now,
                    ) {
                        continue;
                    }
                    // Without send_resolved, resolved alerts are left out, and a flush with
                    // only resolved alerts sends nothing.
                    let something = hook.send_resolved || !firing.is_empty();
                    let (content, failure) = match (something, unusable) {
                        (false, _) => (None, None),
                        (true, Some(e)) => (None, Some(Arc::new(e))),
                        (true, None) => (
                            Some(Content {
                                data: Arc::clone(&data),
                                kind,
                                only_firing: !hook.send_resolved,
                            }),
                            None,
                        ),
                    };
                    sends.push(PlannedSend {
                        key: nkey,
                        webhook: hook,
                        content,
                        failure,
                        firing: firing.clone(),
                        resolved: resolved.clone(),
                        repeat: opts.repeat_interval,
                    });
                }
            }
        }
        Some(FlushJob {
            group: id,
            now,
            timeout: opts.group_interval.max(MIN_NOTIFY_TIMEOUT),
            sends,
            resolved_snapshot,
        })
    }

    /// Whether a planned send is still needed according to the notification log now: after an
    /// HA owner's wait, entries replicated from earlier owners may show it was sent already.
    pub fn still_needed(&self, send: &PlannedSend, now: Timestamp) -> bool {
        needs_update(
            self.nflog.get(&send.key),
            &send.firing,
            &send.resolved,
            send.webhook.send_resolved,
            send.repeat,
            now,
        )
    }

    /// Records the outcome of a flush: successful sends go to the notification log; if every
    /// send succeeded, the flushed resolved alerts leave the group.
    pub fn complete(&mut self, job: FlushJob, ok: &[bool], now: Timestamp) {
        self.complete_deduplicated(job, ok, &[], now);
    }

    /// [`Core::complete`] where the sends flagged in `skipped` were not made because another
    /// replica made them: they count as successful but are not logged again (the other
    /// replica's entry, which made them skip, stays).
    pub fn complete_deduplicated(
        &mut self,
        job: FlushJob,
        ok: &[bool],
        skipped: &[bool],
        now: Timestamp,
    ) {
        let mut all_ok = true;
        for (i, s) in job.sends.into_iter().enumerate() {
            if skipped.get(i).copied().unwrap_or(false) {
                continue;
            }
            if ok.get(i).copied().unwrap_or(false) {
                self.nflog.log(s.key, s.firing, s.resolved, now, s.repeat);
            } else {
                all_ok = false;
            }
        }
        if let Some(group) = self.groups.get_mut(&job.group) {
            group.in_flight = false;
            if all_ok {
                for (fp, updated_at) in job.resolved_snapshot {
                    if group
                        .alerts
                        .get(&fp)
                        .is_some_and(|a| a.updated_at == updated_at)
                    {
                        group.alerts.remove(&fp);
                    }
                }
            }
        }
    }

    /// Periodic housekeeping: drop empty groups, resolved alerts, expired log entries and
    /// silences past retention.
    pub fn maintenance(&mut self, now: Timestamp) {
        self.groups
            .retain(|_, g| g.in_flight || !g.alerts.is_empty());
        self.alerts.gc(now);
        self.inhibitor.gc(now);
        self.nflog.gc(now);
        self.silences.gc(now);
    }

    pub fn groups(&self) -> impl Iterator<Item = &AggrGroup> {
        self.groups.values()
    }

    /// Receivers an alert is routed to (one per matching route, like upstream).
    pub fn receivers_of(&self, labels: &LabelSet) -> Vec<String> {
        self.config
            .route
            .match_labels(labels)
            .iter()
            .map(|r: &&Route| r.opts.receiver.clone())
            .collect()
    }

    /// The persistent state, in a stable order (so that an unchanged state serializes to the
    /// same bytes and the snapshotter can skip rewriting it).
    pub fn snapshot(&self) -> Snapshot {
        let mut silences: Vec<Silence> = self.silences.iter().cloned().collect();
        silences.sort_by(|a, b| a.id.cmp(&b.id));
        let mut nflog: Vec<NflogEntry> = self.nflog.entries().cloned().collect();
        nflog.sort_by(|a, b| {
            (
                &a.key.group_key,
                &a.key.receiver,
                &a.key.integration,
                a.key.index,
            )
                .cmp(&(
                    &b.key.group_key,
                    &b.key.receiver,
                    &b.key.integration,
                    b.key.index,
                ))
        });
        let mut alerts: Vec<(u64, Arc<Alert>)> = self
            .alerts
            .iter()
            .map(|(fp, a)| (*fp, Arc::clone(a)))
            .collect();
        alerts.sort_by_key(|(fp, _)| *fp);
        Snapshot {
            silences,
            nflog,
            alerts: alerts.into_iter().map(|(_, a)| a).collect(),
        }
    }

    pub fn restore(&mut self, snap: Snapshot, now: Timestamp) {
        self.silences.restore(snap.silences);
        for e in snap.nflog {
            self.nflog.merge(e);
        }
        self.put_alerts(
            snap.alerts.into_iter().map(Arc::unwrap_or_clone).collect(),
            now,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amconfig::AmConfig;
    use crate::time::{parse_rfc3339, Clock, FakeClock};

    const CONFIG: &str = r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: ['team="db"']
      receiver: db
      continue: true
    - matchers: ['team=~"db|web"']
      receiver: quiet
receivers:
  - name: default
    webhook_configs: [{url: 'http://127.0.0.1:1/default'}]
  - name: db
    webhook_configs: [{url: 'http://127.0.0.1:1/db', send_resolved: false}]
  - name: quiet
    webhook_configs: [{url: 'http://127.0.0.1:1/quiet', max_alerts: 1}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
"#;

    fn setup() -> (Core, FakeClock) {
        let clock = FakeClock::new(parse_rfc3339("2026-01-01T00:00:00Z").unwrap());
        let cfg = Arc::new(AmConfig::load(CONFIG).unwrap());
        (Core::new(cfg, "http://am".into()), clock)
    }

    fn alert(clock: &FakeClock, pairs: &[(&str, &str)]) -> Alert {
        Alert {
            labels: pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<LabelSet>()
                .into(),
            annotations: Arc::default(),
            starts_at: clock.now(),
            ends_at: add(clock.now(), Duration::from_secs(3 * 3600)),
            generator_url: String::new(),
            updated_at: clock.now(),
            timeout: false,
        }
    }

    /// Runs due flushes, completes them successfully, returns (receiver path, body) pairs.
    fn flush_all(core: &mut Core, clock: &FakeClock) -> Vec<(String, serde_json::Value)> {
        let now = clock.now();
        let jobs = core.poll(now);
        let mut out = Vec::new();
        for job in jobs {
            let ok = vec![true; job.sends.len()];
            for s in &job.sends {
                if let Some(b) = s.content.as_ref().map(|c| c.render().unwrap().body) {
                    out.push((
                        s.webhook
                            .url
                            .expose()
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                            .to_string(),
                        serde_json::from_slice(&b).unwrap(),
                    ));
                }
            }
            core.complete(job, &ok, now);
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn group_wait_interval_repeat_and_resolve() {
        let (mut core, clock) = setup();
        core.put_alerts(
            vec![alert(&clock, &[("alertname", "A"), ("team", "db")])],
            clock.now(),
        );
        clock.advance(Duration::from_secs(29));
        assert!(
            flush_all(&mut core, &clock).is_empty(),
            "nothing before group_wait"
        );
        assert_eq!(
            core.next_due(),
            Some(add(
                parse_rfc3339("2026-01-01T00:00:00Z").unwrap(),
                Duration::from_secs(30)
            ))
        );
        clock.advance(Duration::from_secs(1));
        let sent = flush_all(&mut core, &clock);
        let paths: Vec<&str> = sent.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, vec!["db", "quiet"]);
        assert_eq!(sent[0].1["groupKey"], r#"{}/{team="db"}:{alertname="A"}"#);
        // A second alert joins: sent at the next group_interval tick, not before.
        core.put_alerts(
            vec![alert(&clock, &[("alertname", "A"), ("team", "web")])],
            clock.now(),
        );
        clock.advance(Duration::from_secs(299));
        assert!(flush_all(&mut core, &clock).is_empty());
        clock.advance(Duration::from_secs(1));
        let sent = flush_all(&mut core, &clock);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, "quiet");
        assert_eq!(sent[0].1["truncatedAlerts"], 1);
        // Unchanged: nothing until repeat_interval (1h, checked at group_interval ticks).
        for _ in 0..11 {
            clock.advance(Duration::from_secs(300));
            assert!(flush_all(&mut core, &clock).is_empty());
        }
        // db was last notified at 00:00:30, quiet at 00:05:30: each repeats at the first tick
        // more than 1h later.
        clock.advance(Duration::from_secs(300));
        let sent = flush_all(&mut core, &clock);
        assert_eq!(sent.len(), 1, "repeat after 1h: {sent:?}");
        assert_eq!(sent[0].0, "db");
        clock.advance(Duration::from_secs(300));
        let sent = flush_all(&mut core, &clock);
        assert_eq!(sent.len(), 1, "repeat after 1h: {sent:?}");
        assert_eq!(sent[0].0, "quiet");
        // Resolve the db alert: `quiet` (send_resolved) gets it, `db` does not, and the
        // resolved alert leaves its groups.
        let mut r = alert(&clock, &[("alertname", "A"), ("team", "db")]);
        r.starts_at = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        r.ends_at = clock.now();
        core.put_alerts(vec![r], clock.now());
        clock.advance(Duration::from_secs(300));
        let sent = flush_all(&mut core, &clock);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].0, "quiet");
        assert_eq!(sent[0].1["alerts"][0]["status"], "resolved");
        core.maintenance(clock.now());
        assert_eq!(
            core.groups().count(),
            1,
            "the db group was emptied and dropped"
        );
    }

    #[test]
    fn inhibition_silence_and_failed_sends() {
        let (mut core, clock) = setup();
        let now = clock.now();
        core.put_alerts(
            vec![
                alert(
                    &clock,
                    &[
                        ("alertname", "Down"),
                        ("cluster", "c1"),
                        ("severity", "critical"),
                    ],
                ),
                alert(
                    &clock,
                    &[
                        ("alertname", "Lat"),
                        ("cluster", "c1"),
                        ("severity", "warning"),
                    ],
                ),
                alert(
                    &clock,
                    &[
                        ("alertname", "Lat"),
                        ("cluster", "c2"),
                        ("severity", "warning"),
                    ],
                ),
                alert(&clock, &[("alertname", "Silenced")]),
            ],
            now,
        );
        core.silences
            .set(
                Silence {
                    id: String::new(),
                    matchers: vec![crate::silence::SilenceMatcher {
                        name: "alertname".into(),
                        value: "Silenced".into(),
                        is_regex: false,
                        is_equal: true,
                    }],
                    starts_at: now,
                    ends_at: add(now, Duration::from_secs(3600)),
                    updated_at: now,
                    created_by: "t".into(),
                    comment: "t".into(),
                },
                now,
            )
            .unwrap();
        clock.advance(Duration::from_secs(30));
        // Fail every send: nothing logged, so the next tick retries the notification.
        let jobs = core.poll(clock.now());
        let bodies: Vec<serde_json::Value> = jobs
            .iter()
            .flat_map(|j| j.sends.iter())
            .filter_map(|s| s.content.as_ref())
            .map(|c| serde_json::from_slice(&c.render().unwrap().body).unwrap())
            .collect();
        assert_eq!(
            bodies.len(),
            2,
            "Down and Lat groups; Silenced muted: {bodies:?}"
        );
        let lat = bodies
            .iter()
            .find(|b| b["groupLabels"]["alertname"] == "Lat")
            .unwrap();
        assert_eq!(
            lat["alerts"].as_array().unwrap().len(),
            1,
            "c1 is inhibited"
        );
        assert_eq!(lat["alerts"][0]["labels"]["cluster"], "c2");
        for job in jobs {
            let n = job.sends.len();
            core.complete(job, &vec![false; n], clock.now());
        }
        clock.advance(Duration::from_secs(300));
        assert_eq!(flush_all(&mut core, &clock).len(), 2);
        // Status for the API.
        let st = core.status(
            &[
                ("alertname", "Lat"),
                ("cluster", "c1"),
                ("severity", "warning"),
            ]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
            clock.now(),
        );
        assert_eq!(st.state(), "suppressed");
        assert_eq!(st.inhibited_by.len(), 1);
    }

    #[test]
    fn time_intervals_mute_and_activate_routes() {
        let cfg = Arc::new(
            AmConfig::load(
                r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: ['team="night"']
      mute_time_intervals: [night]
    - matchers: ['team="day"']
      active_time_intervals: [office]
receivers:
  - name: default
    webhook_configs: [{url: 'http://127.0.0.1:1/default'}]
time_intervals:
  - name: night
    time_intervals: [{times: [{start_time: '00:00', end_time: '01:00'}]}]
  - name: office
    time_intervals: [{times: [{start_time: '01:00', end_time: '02:00'}]}]
"#,
            )
            .unwrap(),
        );
        let clock = FakeClock::new(parse_rfc3339("2026-01-01T00:00:00Z").unwrap());
        let mut core = Core::new(cfg, "http://am".into());
        core.put_alerts(
            vec![
                alert(&clock, &[("alertname", "N"), ("team", "night")]),
                alert(&clock, &[("alertname", "D"), ("team", "day")]),
            ],
            clock.now(),
        );
        // 00:00:30 to 00:55:30: N is inside its mute interval, D outside its active one.
        clock.advance(Duration::from_secs(30));
        for _ in 0..12 {
            assert!(
                flush_all(&mut core, &clock).is_empty(),
                "at {}",
                clock.now()
            );
            clock.advance(Duration::from_secs(300));
        }
        assert_eq!(core.nflog.entries().count(), 0, "muted flushes log nothing");
        // 01:00:30: both notify.
        let sent = flush_all(&mut core, &clock);
        let names: BTreeSet<String> = sent
            .iter()
            .map(|(_, b)| b["groupLabels"]["alertname"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["D", "N"].iter().map(|s| s.to_string()).collect());
        // Until 02:00 nothing new; at 02:05:30 the repeat is due for both, but D's route is
        // no longer active.
        for _ in 0..12 {
            clock.advance(Duration::from_secs(300));
            assert!(
                flush_all(&mut core, &clock).is_empty(),
                "at {}",
                clock.now()
            );
        }
        clock.advance(Duration::from_secs(300));
        let sent = flush_all(&mut core, &clock);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].1["groupLabels"]["alertname"], "N");
    }

    #[test]
    fn old_alert_flushes_new_group_at_once_and_snapshot_roundtrips() {
        let (mut core, clock) = setup();
        let mut a = alert(&clock, &[("alertname", "Old")]);
        a.starts_at = parse_rfc3339("2025-12-31T00:00:00Z").unwrap();
        core.put_alerts(vec![a], clock.now());
        assert_eq!(flush_all(&mut core, &clock).len(), 1);
        let snap = core.snapshot();
        let json = serde_json::to_string(&snap).unwrap();
        let (mut other, _) = setup();
        other.restore(serde_json::from_str(&json).unwrap(), clock.now());
        // The restored notification log suppresses a repeat.
        assert!(flush_all(&mut other, &clock).is_empty());
    }
}
