//! The webhook notifier: payload version 4 written byte-for-byte like Alertmanager 0.25
//! (`encoding/json` of `webhook.Message`), truncation by `max_alerts`, authentication, and the
//! retry policy (transport errors and 5xx retried with backoff until the deadline, 4xx not).

use crate::alert::Alert;
use crate::amconfig::{Auth, Webhook};
use crate::error::NotifyError;
use crate::firewall::{blocked_in, Firewall, FirewallResolver};
use crate::labels::{
    fingerprint_string, go_json_map_into, go_json_string_into, regexp_quote_meta, LabelSet,
};
use crate::secret_url::redact_url;
use crate::time::{format_rfc3339_nano, Timestamp};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Builds the webhook body for the (already filtered and sorted) `alerts` of one group.
/// `alerts` carry `ends_at` as the flush left it: zero for alerts still firing at `now`.
pub fn payload(
    receiver: &str,
    group_labels: &LabelSet,
    group_key: &str,
    external_url: &str,
    max_alerts: u64,
    alerts: &[Alert],
    now: Timestamp,
) -> String {
    let keep = if max_alerts > 0 && (alerts.len() as u64) > max_alerts {
        max_alerts as usize
    } else {
        alerts.len()
    };
    let truncated = alerts.len() - keep;
    let alerts = &alerts[..keep];
    let all_resolved = alerts.iter().all(|a| a.resolved_at(now));
    let status = |a: bool| if a { "resolved" } else { "firing" };

    let mut out = String::with_capacity(512 + alerts.len() * 400);
    out.push_str("{\"receiver\":");
    go_json_string_into(&mut out, &regexp_quote_meta(receiver));
    out.push_str(",\"status\":");
    go_json_string_into(&mut out, status(all_resolved));
    out.push_str(",\"alerts\":[");
    for (i, a) in alerts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let resolved = a.resolved_at(now);
        out.push_str("{\"status\":");
        go_json_string_into(&mut out, status(resolved));
        out.push_str(",\"labels\":");
        go_json_map_into(&mut out, &a.labels);
        out.push_str(",\"annotations\":");
        go_json_map_into(&mut out, &a.annotations);
        out.push_str(",\"startsAt\":");
        go_json_string_into(&mut out, &format_rfc3339_nano(&a.starts_at));
        out.push_str(",\"endsAt\":");
        let ends = if resolved {
            a.ends_at
        } else {
            crate::time::zero_time()
        };
        go_json_string_into(&mut out, &format_rfc3339_nano(&ends));
        out.push_str(",\"generatorURL\":");
        go_json_string_into(&mut out, &a.generator_url);
        out.push_str(",\"fingerprint\":");
        go_json_string_into(&mut out, &fingerprint_string(a.fingerprint()));
        out.push('}');
    }
    out.push_str("],\"groupLabels\":");
    go_json_map_into(&mut out, group_labels);
    let (common_labels, common_annotations) = common(alerts);
    out.push_str(",\"commonLabels\":");
    go_json_map_into(&mut out, &common_labels);
    out.push_str(",\"commonAnnotations\":");
    go_json_map_into(&mut out, &common_annotations);
    out.push_str(",\"externalURL\":");
    go_json_string_into(&mut out, external_url);
    out.push_str(",\"version\":\"4\",\"groupKey\":");
    go_json_string_into(&mut out, group_key);
    out.push_str(",\"truncatedAlerts\":");
    out.push_str(&truncated.to_string());
    // Go's json.Encoder ends every value with a newline.
    out.push_str("}\n");
    out
}

/// Labels and annotations shared by every alert (with equal values).
fn common(alerts: &[Alert]) -> (LabelSet, LabelSet) {
    let Some(first) = alerts.first() else {
        return (LabelSet::new(), LabelSet::new());
    };
    let mut labels = LabelSet::clone(&first.labels);
    let mut annotations = LabelSet::clone(&first.annotations);
    for a in &alerts[1..] {
        labels.retain(|k, v| a.labels.get(k) == Some(v));
        annotations.retain(|k, v| a.annotations.get(k) == Some(v));
    }
    (labels, annotations)
}

/// Sends webhook bodies over HTTP.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    follow: reqwest::Client,
    no_follow: reqwest::Client,
    /// Clients for tenants' configurations behind the receivers firewall, when it is on.
    sandboxed: Option<SandboxedClients>,
    per_host: Arc<HostLimits>,
    user_agent: String,
    /// Clients of receivers with a `tls_config`, by a digest of the setting (and whether they
    /// go through the firewall, and follow redirects): made on first use.
    tls_clients: Arc<parking_lot::Mutex<HashMap<[u8; 32], reqwest::Client>>>,
}

#[derive(Debug, Clone)]
struct SandboxedClients {
    follow: reqwest::Client,
    no_follow: reqwest::Client,
    firewall: Arc<Firewall>,
}

/// Request slots per receiver host (`scheme://host:port`); entries are created on first use
/// and kept (there are as many as distinct hosts in the configurations).
#[derive(Debug)]
struct HostLimits {
    permits: usize,
    hosts: parking_lot::Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl HostLimits {
    fn slot(&self, url: &str) -> Arc<Semaphore> {
        let host = match reqwest::Url::parse(url) {
            Ok(u) => format!(
                "{}://{}:{}",
                u.scheme(),
                u.host_str().unwrap_or_default(),
                u.port_or_known_default().unwrap_or_default()
            ),
            // reqwest refuses it without a request; it needs no slot of a real host.
            Err(_) => String::new(),
        };
        let mut hosts = self.hosts.lock();
        Arc::clone(
            hosts
                .entry(host)
                .or_insert_with(|| Arc::new(Semaphore::new(self.permits))),
        )
    }
}

impl WebhookSender {
    /// `per_host`: requests in flight to one receiver host at most.
    pub fn new(user_agent: &str, per_host: usize) -> Result<Self, reqwest::Error> {
        let build = |policy| {
            reqwest::Client::builder()
                .user_agent(user_agent)
                .redirect(policy)
                .build()
        };
        Ok(Self {
            follow: build(reqwest::redirect::Policy::limited(10))?,
            no_follow: build(reqwest::redirect::Policy::none())?,
            sandboxed: None,
            per_host: Arc::new(HostLimits {
                permits: per_host.max(1),
                hosts: parking_lot::Mutex::new(HashMap::new()),
            }),
            user_agent: user_agent.to_owned(),
            tls_clients: Arc::default(),
        })
    }

    /// The client of a receiver with a `tls_config`; `None` when its setting changes nothing.
    fn tls_client(
        &self,
        hook: &Webhook,
        firewalled: Option<&SandboxedClients>,
    ) -> Result<Option<reqwest::Client>, NotifyError> {
        let Some(cfg) = &hook.http.tls_config else {
            return Ok(None);
        };
        let tls_err = |source| NotifyError::Tls {
            url: hook.url.redacted(),
            source,
        };
        let Some(t) = cfg.client_tls().map_err(tls_err)? else {
            return Ok(None);
        };
        let key = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            for part in [&t.ca_pem, &t.cert_pem, &t.key_pem] {
                let b = part.as_deref().unwrap_or_default();
                h.update((b.len() as u64).to_le_bytes());
                h.update(b);
            }
            h.update(t.server_name.as_deref().unwrap_or_default().as_bytes());
            h.update([
                u8::from(t.insecure_skip_verify),
                u8::from(firewalled.is_some()),
                u8::from(hook.http.follow_redirects),
            ]);
            <[u8; 32]>::from(h.finalize())
        };
        if let Some(c) = self.tls_clients.lock().get(&key) {
            return Ok(Some(c.clone()));
        }
        let rustls_cfg = crate::notify_tls::client_config(&t).map_err(tls_err)?;
        let mut b = reqwest::Client::builder()
            .user_agent(&self.user_agent)
            .use_preconfigured_tls(rustls_cfg);
        b = match firewalled {
            Some(s) => {
                let fw = s.firewall.clone();
                let policy = if hook.http.follow_redirects {
                    let check = fw.clone();
                    reqwest::redirect::Policy::custom(move |attempt| {
                        if attempt.previous().len() >= 10 {
                            return attempt.error("too many redirects");
                        }
                        match check.check_url(attempt.url()) {
                            Ok(()) => attempt.follow(),
                            Err(blocked) => attempt.error(blocked),
                        }
                    })
                } else {
                    reqwest::redirect::Policy::none()
                };
                b.redirect(policy)
                    .dns_resolver(Arc::new(FirewallResolver(fw)))
                    .no_proxy()
            }
            None if hook.http.follow_redirects => {
                b.redirect(reqwest::redirect::Policy::limited(10))
            }
            None => b.redirect(reqwest::redirect::Policy::none()),
        };
        let client = b.build().map_err(|source| NotifyError::Transport {
            url: hook.url.redacted(),
            source: source.without_url(),
        })?;
        let mut cache = self.tls_clients.lock();
        // Bounded by the distinct settings in the configurations; a reload that changes them
        // all starts over rather than keeping old ones forever.
        if cache.len() >= 1024 {
            cache.clear();
        }
        cache.insert(key, client.clone());
        Ok(Some(client))
    }

    /// Sends the notifications of tenants' configurations ([`Webhook::sandboxed`]) through
    /// `firewall`: resolved addresses, literal IPs and redirect targets are checked, and the
    /// environment's proxies are not used.
    pub fn with_firewall(
        mut self,
        user_agent: &str,
        firewall: Firewall,
    ) -> Result<Self, reqwest::Error> {
        let firewall = Arc::new(firewall);
        let build = |policy| {
            reqwest::Client::builder()
                .user_agent(user_agent)
                .redirect(policy)
                .dns_resolver(Arc::new(FirewallResolver(firewall.clone())))
                .no_proxy()
                .build()
        };
        let fw = firewall.clone();
        let checked_redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("too many redirects");
            }
            match fw.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(blocked) => attempt.error(blocked),
            }
        });
        self.sandboxed = Some(SandboxedClients {
            follow: build(checked_redirects)?,
            no_follow: build(reqwest::redirect::Policy::none())?,
            firewall,
        });
        Ok(self)
    }

    /// The firewall a target's connections go through, if any.
    pub fn firewall_for(&self, hook: &Webhook) -> Option<&Arc<Firewall>> {
        self.sandboxed
            .as_ref()
            .filter(|_| hook.sandboxed)
            .map(|s| &s.firewall)
    }

    /// Waits (at most `wait`) for a request slot to the host of `url`; a send holds it through
    /// its retries, so a failing host's backoff delays only its own notifications.
    pub async fn slot(
        &self,
        url: &str,
        wait: Duration,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, NotifyError> {
        let slot = self.per_host.slot(url);
        match tokio::time::timeout(wait, slot.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Never closed; and a wait that outlasts the send's time is its deadline.
            Ok(Err(_)) | Err(_) => Err(NotifyError::DeadlineExceeded {
                url: redact_url(url),
            }),
        }
    }

    /// One attempt.
    pub async fn send_once(
        &self,
        hook: &Webhook,
        body: &bytes::Bytes,
        timeout: Duration,
    ) -> Result<(), NotifyError> {
        let shown = hook.url.redacted();
        let firewalled = self.sandboxed.as_ref().filter(|_| hook.sandboxed);
        let with_tls = self.tls_client(hook, firewalled)?;
        let client = match firewalled {
            Some(s) => {
                // A literal IP never reaches the resolver: checked here.
                if let Ok(u) = reqwest::Url::parse(hook.url.expose()) {
                    s.firewall
                        .check_url(&u)
                        .map_err(|source| NotifyError::Blocked {
                            url: shown.clone(),
                            source,
                        })?;
                }
                if hook.http.follow_redirects {
                    &s.follow
                } else {
                    &s.no_follow
                }
            }
            None if hook.http.follow_redirects => &self.follow,
            None => &self.no_follow,
        };
        let client = with_tls.as_ref().unwrap_or(client);
        let auth = hook
            .http
            .auth()
            .map_err(|source| NotifyError::Credentials {
                url: shown.clone(),
                source,
            })?;
        let mut req = client
            .post(hook.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(timeout)
            .body(body.clone());
        match auth {
            Auth::None => {}
            Auth::Basic { username, password } => {
                req = req.basic_auth(username, Some(password.expose()))
            }
            Auth::Header {
                scheme,
                credentials,
            } => {
                req = req.header(
                    reqwest::header::AUTHORIZATION,
                    format!("{scheme} {}", credentials.expose()),
                )
            }
        }
        let resp = req
            .send()
            .await
            .map_err(|source| match blocked_in(&source) {
                Some(blocked) => NotifyError::Blocked {
                    url: shown.clone(),
                    source: blocked,
                },
                // reqwest's message repeats the URL: left out, it may carry a token.
                None => NotifyError::Transport {
                    url: shown.clone(),
                    source: source.without_url(),
                },
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        let body: String = text.chars().take(512).collect();
        if status.is_server_error() {
            Err(NotifyError::ServerError {
                url: shown,
                status: status.as_u16(),
                body,
            })
        } else {
            Err(NotifyError::ClientError {
                url: shown,
                status: status.as_u16(),
                body,
            })
        }
    }

    /// Sends with retries until `deadline_in` has passed: transport errors and 5xx are retried
    /// with exponential backoff (500 ms, ×1.5, ±50 % jitter, at most 60 s), any other failure
    /// ends the attempt.
    pub async fn send(
        &self,
        hook: &Webhook,
        body: &bytes::Bytes,
        deadline_in: Duration,
    ) -> Result<(), NotifyError> {
        let deadline = tokio::time::Instant::now() + deadline_in;
        let mut interval = 0.5f64;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(NotifyError::DeadlineExceeded {
                    url: hook.url.redacted(),
                });
            }
            match self.send_once(hook, body, left).await {
                Ok(()) => return Ok(()),
                Err(e) if !e.retryable() => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "webhook notification failed, retrying");
                    let jitter = 0.5 + (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
                    let wait = Duration::from_secs_f64((interval * jitter).min(60.0));
                    interval *= 1.5;
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if wait >= left {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_rfc3339, zero_time};

    #[test]
    fn payload_is_byte_identical_to_lab_capture() {
        let alert = |cluster: &str, summary: &str| Alert {
            labels: [
                ("alertname", "HighLatency"),
                ("team", "db"),
                ("cluster", cluster),
                ("severity", "warning"),
            ]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<LabelSet>()
            .into(),
            annotations: Arc::new(LabelSet::from([(
                "summary".to_string(),
                summary.to_string(),
            )])),
            starts_at: parse_rfc3339("2026-11-24T23:30:45.730905661Z").unwrap(),
            ends_at: zero_time(),
            generator_url: String::new(),
            updated_at: zero_time(),
            timeout: false,
        };
        let now = parse_rfc3339("2026-11-24T23:30:47Z").unwrap();
        let gl: LabelSet = [("alertname".to_string(), "HighLatency".to_string())].into();
        let body = payload(
            "truncated",
            &gl,
            r#"{}/{team=~"db|web"}:{alertname="HighLatency"}"#,
            "http://vm:9093",
            1,
            &[alert("c2", "latency c2"), alert("c3", "latency c3")],
            now,
        );
        // The capture (lab/webhook_payloads_sample.json) re-encoded compactly as Go writes it.
        let want = concat!(
            r#"{"receiver":"truncated","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighLatency","cluster":"c2","severity":"warning","team":"db"},"annotations":{"summary":"latency c2"},"startsAt":"2026-11-24T23:30:45.730905661Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"7f78b0c1c0dd7579"}],"groupLabels":{"alertname":"HighLatency"},"commonLabels":{"alertname":"HighLatency","cluster":"c2","severity":"warning","team":"db"},"commonAnnotations":{"summary":"latency c2"},"externalURL":"http://vm:9093","version":"4","groupKey":"{}/{team=~\"db|web\"}:{alertname=\"HighLatency\"}","truncatedAlerts":1}"#,
            "\n"
        );
        assert_eq!(body, want);
    }

    #[test]
    fn resolved_payload_and_common_labels() {
        let mk = |c: &str, ends: &str| Alert {
            labels: [
                ("alertname".to_string(), "NodeDown".to_string()),
                ("cluster".to_string(), c.to_string()),
            ]
            .into_iter()
            .collect::<LabelSet>()
            .into(),
            annotations: Arc::default(),
            starts_at: parse_rfc3339("2026-11-24T23:30:45.730905661Z").unwrap(),
            ends_at: parse_rfc3339(ends).unwrap(),
            generator_url: "http://p/graph?g0.expr=a<b&x".into(),
            updated_at: zero_time(),
            timeout: false,
        };
        let now = parse_rfc3339("2026-11-24T23:40:00Z").unwrap();
        let body = payload(
            "a.b",
            &LabelSet::new(),
            "{}:{}",
            "http://x",
            0,
            &[
                mk("c1", "2026-11-24T23:35:45.730905661Z"),
                mk("c2", "2026-11-24T23:36:00Z"),
            ],
            now,
        );
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["receiver"], "a\\.b");
        assert_eq!(v["alerts"][0]["endsAt"], "2026-11-24T23:35:45.730905661Z");
        assert_eq!(v["alerts"][1]["endsAt"], "2026-11-24T23:36:00Z");
        assert_eq!(
            v["commonLabels"],
            serde_json::json!({"alertname": "NodeDown"})
        );
        assert!(body.contains(r#"a\u003cb\u0026x"#));
        assert_eq!(v["truncatedAlerts"], 0);
    }

    /// A receiver answering with the queued status codes (then 200), recording Authorization.
    async fn receiver(codes: Vec<u16>) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
        use axum::http::{HeaderMap, StatusCode};
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let codes = Arc::new(Mutex::new(codes.into_iter()));
        let (s2, c2) = (seen.clone(), codes.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap| {
                let (seen, codes) = (s2.clone(), c2.clone());
                async move {
                    seen.lock().push(
                        headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(String::from),
                    );
                    let code = codes.lock().next().unwrap_or(200);
                    StatusCode::from_u16(code).unwrap_or(StatusCode::OK)
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        (url, seen)
    }

    fn hook(url: &str, http: &str) -> Webhook {
        let cfg = crate::amconfig::AmConfig::load(&format!(
            "route: {{receiver: a}}\nreceivers: [{{name: a, webhook_configs: [{{url: '{url}', http_config: {http}}}]}}]\n"
        ))
        .unwrap();
        cfg.receivers["a"].webhooks[0].clone()
    }

    use parking_lot::Mutex;
    use std::sync::Arc;

    #[tokio::test]
    async fn errors_never_carry_the_url_path_or_credentials() {
        let sender = WebhookSender::new("test", 4).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let h = hook(
            &format!("http://127.0.0.1:{port}/S3NT1NEL?token=S3NT1NEL"),
            "{basic_auth: {username: u, password: S3NT1NEL}}",
        );
        let e = sender
            .send_once(
                &h,
                &bytes::Bytes::from_static(b"{}"),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        let shown = format!("{e} {e:?} {h:?}");
        assert!(!shown.contains("S3NT1NEL"), "{shown}");
        assert!(
            shown.contains(&format!("http://127.0.0.1:{port}/<secret>")),
            "{shown}"
        );
        let (url, seen) = receiver(vec![404]).await;
        let h = hook(&format!("{url}?token=S3NT1NEL"), "{}");
        let e = sender
            .send_once(
                &h,
                &bytes::Bytes::from_static(b"{}"),
                Duration::from_secs(5),
            )
            .await
            .unwrap_err();
        assert!(!e.to_string().contains("S3NT1NEL"), "{e}");
        assert_eq!(seen.lock().len(), 1);
    }

    #[tokio::test]
    async fn the_firewall_refuses_tenant_targets_once_without_retrying() {
        let fw: crate::firewall::FirewallConfig =
            serde_yaml::from_str("block_private_addresses: true").unwrap();
        let sender = WebhookSender::new("test", 4)
            .unwrap()
            .with_firewall("test", crate::firewall::Firewall::new(&fw).unwrap())
            .unwrap();
        let (url, seen) = receiver(vec![]).await;
        let mut h = hook(&url, "{}");
        // The operator's configuration is not filtered.
        sender
            .send(
                &h,
                &bytes::Bytes::from_static(b"{}"),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(seen.lock().len(), 1);
        // A tenant's: refused, by literal address and by name, and not retried (the deadline
        // is an hour away).
        h.sandboxed = true;
        let by_name = {
            let mut n = h.clone();
            n.url = crate::amconfig::SecretUrl::new(url.replace("127.0.0.1", "localhost"));
            n
        };
        for target in [&h, &by_name] {
            let e = sender
                .send(
                    target,
                    &bytes::Bytes::from_static(b"{}"),
                    Duration::from_secs(3600),
                )
                .await
                .unwrap_err();
            assert!(matches!(e, NotifyError::Blocked { .. }), "{e}");
            assert!(!e.retryable());
            assert!(e.to_string().contains("block_private_addresses"), "{e}");
        }
        assert_eq!(seen.lock().len(), 1, "nothing reached the receiver");
        assert!(sender.firewall_for(&h).is_some());
    }

    #[tokio::test]
    async fn redirects_of_tenant_targets_are_checked() {
        use axum::http::{header, StatusCode};
        let fw: crate::firewall::FirewallConfig =
            serde_yaml::from_str("block_cidr_networks: ['127.0.0.2/32']").unwrap();
        let sender = WebhookSender::new("test", 4)
            .unwrap()
            .with_firewall("test", crate::firewall::Firewall::new(&fw).unwrap())
            .unwrap();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, "http://127.0.0.2:9/metadata")],
                )
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        let mut h = hook(&url, "{}");
        h.sandboxed = true;
        let e = sender
            .send(
                &h,
                &bytes::Bytes::from_static(b"{}"),
                Duration::from_secs(3600),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, NotifyError::Blocked { .. }), "{e}");
        assert!(e.to_string().contains("127.0.0.2"), "{e}");
    }

    #[tokio::test]
    async fn retries_5xx_not_4xx_and_authenticates() {
        let sender = WebhookSender::new("test", 4).unwrap();
        // 5xx twice, then success: retried.
        let (url, seen) = receiver(vec![500, 503]).await;
        let h = hook(&url, "{basic_auth: {username: u, password: p}}");
        sender
            .send(
                &h,
                &bytes::Bytes::from_static(b"{}"),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        let seen = seen.lock().clone();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0].as_deref(), Some("Basic dTpw"));
        // 4xx (429 included): one attempt, error.
        let (url, seen) = receiver(vec![429]).await;
        let h = hook(&url, "{bearer_token: tok}");
        let e = sender
            .send(
                &h,
                &bytes::Bytes::from_static(b"{}"),
                Duration::from_secs(10),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(e, NotifyError::ClientError { status: 429, .. }),
            "{e}"
        );
        assert_eq!(seen.lock().clone(), vec![Some("Bearer tok".to_string())]);
        // Transport errors: retried until the deadline, then the last error.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let h = hook(&format!("http://127.0.0.1:{port}/x"), "{}");
        let started = std::time::Instant::now();
        let e = sender
            .send(
                &h,
                &bytes::Bytes::from_static(b"{}"),
                Duration::from_millis(1500),
            )
            .await
            .unwrap_err();
        assert!(e.retryable(), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    /// Twelve notifications to one slow host with 3 slots (taken as `TenantAlertmanager::execute`
    /// does): never more than 3 requests reach it at once, and all 12 arrive; a second host is
    /// not held up by the first one's queue.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_per_host_are_limited() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        async fn slow_receiver() -> (String, Arc<(AtomicUsize, AtomicUsize, AtomicUsize)>) {
            // (in flight, most in flight, served)
            let state: Arc<(AtomicUsize, AtomicUsize, AtomicUsize)> = Arc::default();
            let st = state.clone();
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(move || {
                    let st = st.clone();
                    async move {
                        let now = st.0.fetch_add(1, Ordering::SeqCst) + 1;
                        st.1.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(150)).await;
                        st.0.fetch_sub(1, Ordering::SeqCst);
                        st.2.fetch_add(1, Ordering::SeqCst);
                        "ok"
                    }
                }),
            );
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/hook", l.local_addr().unwrap());
            tokio::spawn(async move {
                let _ = axum::serve(l, app).await;
            });
            (url, state)
        }
        let sender = WebhookSender::new("test", 3).unwrap();
        let (slow_url, slow) = slow_receiver().await;
        let (other_url, other) = slow_receiver().await;
        let slow_hook = hook(&slow_url, "{}");
        let other_hook = hook(&other_url, "{}");
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (sender, h) = (sender.clone(), slow_hook.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = sender.slot(h.url.expose(), Duration::from_secs(30)).await?;
                sender
                    .send(
                        &h,
                        &bytes::Bytes::from_static(b"{}"),
                        Duration::from_secs(30),
                    )
                    .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The other host's request does not queue behind the slow host's twelve.
        let _slot = sender
            .slot(other_hook.url.expose(), Duration::from_secs(30))
            .await
            .unwrap();
        sender
            .send(
                &other_hook,
                &bytes::Bytes::from_static(b"{}"),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        assert!(
            slow.2.load(Ordering::SeqCst) < 12,
            "the other host waited for all of the slow host's requests"
        );
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(slow.2.load(Ordering::SeqCst), 12);
        assert_eq!(slow.1.load(Ordering::SeqCst), 3, "most requests in flight");
        assert_eq!(other.2.load(Ordering::SeqCst), 1);
    }
}
