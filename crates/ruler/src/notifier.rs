//! Sending alerts to Alertmanager as Prometheus does (`notifier/`): per tenant a bounded queue
//! (the oldest alerts are dropped when full, counted in `prometheus_notifications_dropped_total`),
//! batches of at most 64 alerts, each batch posted to every Alertmanager with the tenant in
//! `X-Scope-OrgID`; a batch that no Alertmanager took counts as dropped.

use crate::metrics::{AlertmanagerLabels, Metrics};
use crate::rules::Alert;
use async_trait::async_trait;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use strata_model::TenantId;
use tokio::sync::Notify;

/// Most alerts in one post (Prometheus 2.42's `maxBatchSize`).
pub const MAX_BATCH: usize = 64;

/// An alert in Alertmanager's API v2 form (`POST /api/v2/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// RFC 3339 with as many fractional digits as needed, in UTC (what Go's JSON encoding of a
/// `time.Time` writes).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Prometheus's `SendAlerts`: `startsAt` is when the alert fired, `endsAt` when it resolved or,
/// while firing, its validity (`valid_until`); external labels are added where the alert has
/// no such label.
pub fn to_postable(
    alert: &Alert,
    expr: &str,
    external_url: &str,
    external_labels: &BTreeMap<String, String>,
) -> PostableAlert {
    let mut labels: BTreeMap<String, String> = alert
        .labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect();
    for (k, v) in external_labels {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    PostableAlert {
        labels,
        annotations: alert.annotations.clone(),
        starts_at: rfc3339(alert.fired_at.unwrap_or(alert.active_at)),
        ends_at: rfc3339(alert.resolved_at.unwrap_or(alert.valid_until)),
        generator_url: format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            external_url.trim_end_matches('/'),
            query_escape(expr)
        ),
    }
}

/// Why a post to one Alertmanager failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("posting alerts to {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    /// An in-process destination refused the alerts.
    #[error("{0}")]
    Refused(String),
}

/// Somewhere alerts go: an Alertmanager over HTTP, or the one in this process.
#[async_trait]
pub trait AlertSink: Send + Sync {
    /// Name for metrics and logs (the URL).
    fn name(&self) -> String;
    /// Posts one batch of a tenant's alerts.
    async fn send(&self, tenant: &TenantId, alerts: &[PostableAlert]) -> Result<(), SendError>;
}

/// An Alertmanager reached over HTTP: `POST <url>/api/v2/alerts`.
#[derive(Debug, Clone)]
pub struct HttpSink {
    client: reqwest::Client,
    url: String,
}

impl HttpSink {
    /// `base` is the Alertmanager's URL, e.g. `http://am:9093` or `http://strata:9009/alertmanager`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, SendError> {
        let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|source| SendError::Http {
                url: url.clone(),
                source,
            })?;
        Ok(Self { client, url })
    }
}

#[async_trait]
impl AlertSink for HttpSink {
    fn name(&self) -> String {
        self.url.clone()
    }

    async fn send(&self, tenant: &TenantId, alerts: &[PostableAlert]) -> Result<(), SendError> {
        let resp = self
            .client
            .post(&self.url)
            .header("X-Scope-OrgID", tenant.as_str())
            .json(alerts)
            .send()
            .await
            .map_err(|source| SendError::Http {
                url: self.url.clone(),
                source,
            })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(SendError::Status {
                url: self.url.clone(),
                status: resp.status().as_u16(),
            })
        }
    }
}

/// Per-tenant queues and the loop that drains them.
pub struct Notifier {
    sinks: Vec<Arc<dyn AlertSink>>,
    queues: Mutex<HashMap<TenantId, VecDeque<PostableAlert>>>,
    capacity: usize,
    wake: Notify,
    metrics: Metrics,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field(
                "sinks",
                &self.sinks.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(sinks: Vec<Arc<dyn AlertSink>>, capacity: usize, metrics: Metrics) -> Self {
        metrics.notifications_queue_capacity.set(capacity as i64);
        Self {
            sinks,
            queues: Mutex::new(HashMap::new()),
            capacity,
            wake: Notify::new(),
            metrics,
        }
    }

    /// Queues alerts of a tenant; beyond the capacity the oldest are dropped.
    pub fn enqueue(&self, tenant: &TenantId, alerts: Vec<PostableAlert>) {
        if alerts.is_empty() {
            return;
        }
        let mut queues = self.queues.lock();
        let q = queues.entry(tenant.clone()).or_default();
        q.extend(alerts);
        let over = q.len().saturating_sub(self.capacity);
        if over > 0 {
            q.drain(..over);
            self.metrics.notifications_dropped.inc_by(over as u64);
        }
        let len: usize = queues.values().map(VecDeque::len).sum();
        self.metrics.notifications_queue_length.set(len as i64);
        drop(queues);
        self.wake.notify_one();
    }

    /// Alerts waiting, over all tenants.
    pub fn queued(&self) -> usize {
        self.queues.lock().values().map(VecDeque::len).sum()
    }

    /// Takes up to one batch per tenant.
    fn next_batches(&self) -> Vec<(TenantId, Vec<PostableAlert>)> {
        let mut queues = self.queues.lock();
        let mut out = Vec::new();
        for (t, q) in queues.iter_mut() {
            if !q.is_empty() {
                let n = q.len().min(MAX_BATCH);
                out.push((t.clone(), q.drain(..n).collect()));
            }
        }
        queues.retain(|_, q| !q.is_empty());
        let len: usize = queues.values().map(VecDeque::len).sum();
        self.metrics.notifications_queue_length.set(len as i64);
        out
    }

    /// Sends everything queued now, batch by batch, to every sink.
    pub async fn flush(&self) {
        loop {
            let batches = self.next_batches();
            if batches.is_empty() {
                return;
            }
            for (tenant, alerts) in batches {
                self.send_all(&tenant, &alerts).await;
            }
        }
    }

    async fn send_all(&self, tenant: &TenantId, alerts: &[PostableAlert]) {
        if self.sinks.is_empty() {
            self.metrics
                .notifications_dropped
                .inc_by(alerts.len() as u64);
            return;
        }
        let sends = self.sinks.iter().map(|s| async move {
            let r = s.send(tenant, alerts).await;
            (s.name(), r)
        });
        let mut delivered = false;
        for (name, r) in futures::future::join_all(sends).await {
            let l = AlertmanagerLabels { alertmanager: name };
            match r {
                Ok(()) => {
                    delivered = true;
                    self.metrics
                        .notifications_sent
                        .get_or_create(&l)
                        .inc_by(alerts.len() as u64);
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "sending alerts failed");
                    self.metrics
                        .notifications_errors
                        .get_or_create(&l)
                        .inc_by(alerts.len() as u64);
                }
            }
        }
        if !delivered {
            self.metrics
                .notifications_dropped
                .inc_by(alerts.len() as u64);
        }
    }

    /// Sends queued alerts until `shutdown` turns true, then sends what is left once.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            self.flush().await;
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        self.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_model::Labels;

    struct Recorder(Mutex<Vec<(String, usize)>>, bool);

    #[async_trait]
    impl AlertSink for Recorder {
        fn name(&self) -> String {
            "rec".into()
        }
        async fn send(&self, t: &TenantId, a: &[PostableAlert]) -> Result<(), SendError> {
            self.0.lock().push((t.to_string(), a.len()));
            if self.1 {
                Ok(())
            } else {
                Err(SendError::Refused("down".into()))
            }
        }
    }

    fn alert(i: usize) -> PostableAlert {
        PostableAlert {
            labels: BTreeMap::from([("i".to_string(), i.to_string())]),
            annotations: BTreeMap::new(),
            starts_at: rfc3339(0),
            ends_at: rfc3339(0),
            generator_url: String::new(),
        }
    }

    #[tokio::test]
    async fn batches_of_64_and_bounded_queue() {
        let rec = Arc::new(Recorder(Mutex::new(Vec::new()), true));
        let m = Metrics::default();
        let n = Notifier::new(vec![rec.clone()], 150, m.clone());
        let t = TenantId::new("t").unwrap();
        n.enqueue(&t, (0..200).map(alert).collect());
        assert_eq!(n.queued(), 150);
        assert_eq!(m.notifications_dropped.get(), 50);
        n.flush().await;
        let sizes: Vec<usize> = rec.0.lock().iter().map(|(_, s)| *s).collect();
        assert_eq!(sizes, vec![64, 64, 22]);
        assert_eq!(n.queued(), 0);
    }

    #[tokio::test]
    async fn a_batch_no_alertmanager_took_is_dropped() {
        let rec = Arc::new(Recorder(Mutex::new(Vec::new()), false));
        let m = Metrics::default();
        let n = Notifier::new(vec![rec], 100, m.clone());
        n.enqueue(&TenantId::new("t").unwrap(), (0..3).map(alert).collect());
        n.flush().await;
        assert_eq!(m.notifications_dropped.get(), 3);
    }

    #[test]
    fn postable_alert_times_and_links() {
        let a = Alert {
            labels: Labels::from_pairs([("alertname", "Down"), ("cluster", "mine")]),
            annotations: BTreeMap::new(),
            state: crate::rules::AlertState::Firing,
            value: 1.0,
            active_at: 1_000,
            fired_at: Some(61_000),
            resolved_at: None,
            last_sent_at: Some(61_000),
            valid_until: 301_000,
            keep_firing_since: None,
        };
        let ext = BTreeMap::from([
            ("cluster".to_string(), "eu".to_string()),
            ("region".to_string(), "west".to_string()),
        ]);
        let p = to_postable(&a, "up == 0", "http://strata:9009/", &ext);
        assert_eq!(p.starts_at, "1970-01-01T00:01:01Z");
        assert_eq!(p.ends_at, "1970-01-01T00:05:01Z");
        assert_eq!(p.labels["cluster"], "mine");
        assert_eq!(p.labels["region"], "west");
        assert_eq!(
            p.generator_url,
            "http://strata:9009/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
        );
        let json = serde_json::to_string(&p).unwrap();
        assert!(
            json.contains("\"startsAt\"") && json.contains("\"generatorURL\""),
            "{json}"
        );
    }
}
