//! Slack (incoming webhooks) and PagerDuty (Events API v2) notifiers: their configuration,
//! and their request bodies rendered from the notification templates. Both are sent by the
//! webhook sender (same authentication and retry policy: transport errors and 5xx retried
//! until the flush deadline, 4xx not).

use crate::amconfig::HttpConfig;
use crate::template::{RenderError, Templates, Value};
use serde::{Deserialize, Serialize};
use strata_model::Secret;

fn no() -> bool {
    false
}

fn yes() -> bool {
    true
}

/// `slack_configs` entry. Unset texts take upstream's defaults: the `slack.default.*`
/// templates.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    #[serde(default = "no")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretext: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<SlackField>,
    #[serde(default)]
    pub short_fields: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_emoji: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb_url: Option<String>,
    #[serde(default)]
    pub link_names: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mrkdwn_in: Vec<String>,
    /// Interactive buttons: recognised so that the error names them, not sent yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlackField {
    pub title: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short: Option<bool>,
}

/// `pagerduty_configs` entry (Events API v2 only: `routing_key`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PagerdutyConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_key_file: Option<String>,
    /// Events API v1; recognised so that the error names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The Events API v2 endpoint upstream uses when neither `url` nor `global.pagerduty_url` is
/// set.
pub const PAGERDUTY_DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

fn render(t: &Templates, text: &str, data: &Value) -> Result<String, RenderError> {
    t.render_text(text, data)
}

fn or<'a>(v: &'a Option<String>, default: &'a str) -> &'a str {
    v.as_deref().unwrap_or(default)
}

/// The incoming-webhook JSON for one notification.
pub fn slack_body(cfg: &SlackConfig, t: &Templates, data: &Value) -> Result<String, RenderError> {
    let status_firing =
        matches!(data, Value::Struct(m) if m.get("Status") == Some(&Value::Str("firing".into())));
    let r = |text: &Option<String>, default: &str| render(t, or(text, default), data);
    let color = match &cfg.color {
        Some(c) => render(t, c, data)?,
        None => if status_firing { "danger" } else { "good" }.to_string(),
    };
    let mut attachment = serde_json::Map::new();
    let mut put = |k: &str, v: String| {
        if !v.is_empty() {
            attachment.insert(k.to_string(), serde_json::Value::String(v));
        }
    };
    put(
        "title",
        r(&cfg.title, r#"{{ template "slack.default.title" . }}"#)?,
    );
    put(
        "title_link",
        r(
            &cfg.title_link,
            r#"{{ template "slack.default.titlelink" . }}"#,
        )?,
    );
    put(
        "pretext",
        r(&cfg.pretext, r#"{{ template "slack.default.pretext" . }}"#)?,
    );
    put(
        "text",
        r(&cfg.text, r#"{{ template "slack.default.text" . }}"#)?,
    );
    put(
        "fallback",
        r(
            &cfg.fallback,
            r#"{{ template "slack.default.fallback" . }}"#,
        )?,
    );
    put(
        "callback_id",
        r(
            &cfg.callback_id,
            r#"{{ template "slack.default.callbackid" . }}"#,
        )?,
    );
    put(
        "footer",
        r(&cfg.footer, r#"{{ template "slack.default.footer" . }}"#)?,
    );
    put("image_url", r(&cfg.image_url, "")?);
    put("thumb_url", r(&cfg.thumb_url, "")?);
    put("color", color);
    if !cfg.fields.is_empty() {
        let mut fields = Vec::new();
        for f in &cfg.fields {
            fields.push(serde_json::json!({
                "title": render(t, &f.title, data)?,
                "value": render(t, &f.value, data)?,
                "short": f.short.unwrap_or(cfg.short_fields),
            }));
        }
        attachment.insert("fields".into(), serde_json::Value::Array(fields));
    }
    if !cfg.mrkdwn_in.is_empty() {
        attachment.insert("mrkdwn_in".into(), serde_json::json!(cfg.mrkdwn_in));
    }
    let mut msg = serde_json::Map::new();
    let mut put_msg = |k: &str, v: String| {
        if !v.is_empty() {
            msg.insert(k.to_string(), serde_json::Value::String(v));
        }
    };
    put_msg("channel", r(&cfg.channel, "")?);
    put_msg(
        "username",
        r(
            &cfg.username,
            r#"{{ template "slack.default.username" . }}"#,
        )?,
    );
    put_msg(
        "icon_emoji",
        r(
            &cfg.icon_emoji,
            r#"{{ template "slack.default.iconemoji" . }}"#,
        )?,
    );
    put_msg(
        "icon_url",
        r(&cfg.icon_url, r#"{{ template "slack.default.iconurl" . }}"#)?,
    );
    if cfg.link_names {
        msg.insert("link_names".into(), serde_json::Value::Bool(true));
    }
    msg.insert(
        "attachments".into(),
        serde_json::Value::Array(vec![serde_json::Value::Object(attachment)]),
    );
    Ok(serde_json::Value::Object(msg).to_string())
}

/// PagerDuty's summary limit; longer summaries are cut with an ellipsis.
const PAGERDUTY_MAX_SUMMARY: usize = 1024;

fn truncate(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The Events API v2 body for one notification. `dedup_key` is the SHA-256 of the group key
/// (hex), so the trigger and the resolve of one group name the same incident.
pub fn pagerduty_body(
    cfg: &PagerdutyConfig,
    routing_key: &str,
    t: &Templates,
    data: &Value,
    group_key: &str,
) -> Result<String, RenderError> {
    use sha2::Digest;
    let resolved =
        matches!(data, Value::Struct(m) if m.get("Status") == Some(&Value::Str("resolved".into())));
    let r = |text: &Option<String>, default: &str| render(t, or(text, default), data);
    let summary = truncate(
        r(
            &cfg.description,
            r#"{{ template "pagerduty.default.description" . }}"#,
        )?,
        PAGERDUTY_MAX_SUMMARY,
    );
    let client = r(
        &cfg.client,
        r#"{{ template "pagerduty.default.client" . }}"#,
    )?;
    let client_url = r(
        &cfg.client_url,
        r#"{{ template "pagerduty.default.clientURL" . }}"#,
    )?;
    let mut details = serde_json::Map::new();
    match &cfg.details {
        Some(d) => {
            for (k, v) in d {
                details.insert(k.clone(), serde_json::Value::String(render(t, v, data)?));
            }
        }
        None => {
            for (k, v) in [
                (
                    "firing",
                    r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
                ),
                (
                    "resolved",
                    r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#,
                ),
                ("num_firing", "{{ .Alerts.Firing | len }}"),
                ("num_resolved", "{{ .Alerts.Resolved | len }}"),
            ] {
                details.insert(k.into(), serde_json::Value::String(render(t, v, data)?));
            }
        }
    }
    let mut payload = serde_json::Map::new();
    payload.insert("summary".into(), summary.into());
    // Upstream's defaults: the client name as source, "error" as severity.
    let source = match &cfg.source {
        Some(s) => render(t, s, data)?,
        None => client.clone(),
    };
    payload.insert("source".into(), source.into());
    payload.insert("severity".into(), r(&cfg.severity, "error")?.into());
    for (k, v) in [
        ("class", &cfg.class),
        ("component", &cfg.component),
        ("group", &cfg.group),
    ] {
        if let Some(text) = v {
            let s = render(t, text, data)?;
            if !s.is_empty() {
                payload.insert(k.into(), s.into());
            }
        }
    }
    payload.insert("custom_details".into(), serde_json::Value::Object(details));
    let dedup_key: String = sha2::Sha256::digest(group_key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let msg = serde_json::json!({
        "routing_key": routing_key,
        "event_action": if resolved { "resolve" } else { "trigger" },
        "dedup_key": dedup_key,
        "client": client,
        "client_url": client_url,
        "payload": payload,
    });
    Ok(msg.to_string())
}

/// `email_configs` entry. Unset settings come from `global.smtp_*`; `headers.Subject` and the
/// HTML body default to the `email.default.*` templates.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    #[serde(default = "no")]
    pub send_resolved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hello: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smarthost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_tls: Option<bool>,
    /// Accepted so upstream files load; the system's roots verify the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<crate::amconfig::TlsConfig>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One rendered email: who it goes to and its RFC 5322 text.
#[derive(Debug, Clone)]
pub struct RenderedEmail {
    pub envelope: lettre::address::Envelope,
    pub message: Vec<u8>,
}

/// Why an email could not be put together.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error(transparent)]
    Template(#[from] RenderError),
    #[error("invalid {field} address {value:?}: {source}")]
    Address {
        field: &'static str,
        value: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    #[error("cannot build the message: {0}")]
    Build(#[source] lettre::error::Error),
}

/// Renders an email: `From`, `To` and `Subject` (and any other header) from `headers` (filled
/// with the defaults at load), the HTML and optional text bodies.
pub fn email_message(
    email: &crate::amconfig::Email,
    t: &Templates,
    data: &Value,
) -> Result<RenderedEmail, EmailError> {
    use lettre::message::{header, Mailbox, Mailboxes, MultiPart, SinglePart};
    let mut rendered = std::collections::BTreeMap::new();
    for (k, v) in &email.headers {
        rendered.insert(k.as_str(), render(t, v, data)?);
    }
    let from_text = rendered.remove("From").unwrap_or_default();
    let to_text = rendered.remove("To").unwrap_or_default();
    let subject = rendered.remove("Subject").unwrap_or_default();
    let from: Mailbox = from_text.parse().map_err(|source| EmailError::Address {
        field: "from",
        value: from_text.clone(),
        source,
    })?;
    let to: Mailboxes = to_text.parse().map_err(|source| EmailError::Address {
        field: "to",
        value: to_text.clone(),
        source,
    })?;
    let mut b = lettre::Message::builder()
        .from(from)
        .mailbox(header::To::from(to))
        .subject(subject);
    for (k, v) in rendered {
        let name = header::HeaderName::new_from_ascii(k.to_string())
            .map_err(|_| EmailError::HeaderName(k.to_string()))?;
        b = b.raw_header(header::HeaderValue::new(name, v));
    }
    let html = match &email.config.html {
        Some(h) => render(t, h, data)?,
        None => t.render("email.default.html", data)?,
    };
    let text = match &email.config.text {
        Some(x) => Some(render(t, x, data)?),
        None => None,
    };
    let msg = match text {
        Some(text) if !html.is_empty() => {
            b.multipart(MultiPart::alternative_plain_html(text, html))
        }
        Some(text) => b.singlepart(SinglePart::plain(text)),
        None => b.singlepart(SinglePart::html(html)),
    }
    .map_err(EmailError::Build)?;
    Ok(RenderedEmail {
        envelope: msg.envelope().clone(),
        message: msg.formatted(),
    })
}

/// Sends one email with retries until `deadline_in` has passed: connection failures and
/// transient (4xx) SMTP answers are retried with the webhook's backoff; permanent (5xx) answers
/// are not. With a `firewall` (a tenant's configuration), the smarthost is resolved and checked
/// first and the connection goes to a permitted address (TLS still verifies the host name).
pub async fn send_email(
    email: &crate::amconfig::Email,
    mail: &RenderedEmail,
    deadline_in: std::time::Duration,
    firewall: Option<&crate::firewall::Firewall>,
) -> Result<(), crate::error::NotifyError> {
    use crate::error::NotifyError;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::transport::smtp::extension::ClientId;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
    let smtp_err = |source| NotifyError::Smtp {
        smarthost: format!("{}:{}", email.host, email.port),
        source,
    };
    let deadline = tokio::time::Instant::now() + deadline_in;
    let mut interval = 0.5f64;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(NotifyError::DeadlineExceeded {
                url: format!("smtp://{}:{}", email.host, email.port),
            });
        }
        // Implicit TLS on 465 as upstream; STARTTLS required unless require_tls is false.
        let tls = if email.port == 465 {
            Tls::Wrapper(TlsParameters::new(email.host.clone()).map_err(smtp_err)?)
        } else if email.require_tls {
            Tls::Required(TlsParameters::new(email.host.clone()).map_err(smtp_err)?)
        } else {
            Tls::None
        };
        let server = match firewall {
            None => Ok(email.host.clone()),
            Some(fw) => match fw.resolve(&email.host, email.port).await {
                // Never empty when Ok; the host itself would resolve past the firewall.
                Ok(addrs) => Ok(addrs
                    .first()
                    .map(|a| a.ip().to_string())
                    .unwrap_or_default()),
                Err(e) => match crate::firewall::blocked_in(&e) {
                    Some(source) => {
                        return Err(NotifyError::Blocked {
                            url: format!("smtp://{}:{}", email.host, email.port),
                            source,
                        })
                    }
                    None => Err(NotifyError::Resolve {
                        host: email.host.clone(),
                        source: e,
                    }),
                },
            },
        };
        let failure = match server {
            Err(e) => e,
            Ok(server) => {
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server)
                    .port(email.port)
                    .timeout(Some(left))
                    .tls(tls);
                if let Some(h) = &email.hello {
                    b = b.hello_name(ClientId::Domain(h.clone()));
                }
                if let Some(user) = &email.username {
                    let password = match &email.password {
                        Some(p) => p
                            .read()
                            .map_err(|source| NotifyError::SecretFile {
                                integration: "email",
                                source,
                            })?
                            .expose()
                            .to_string(),
                        None => String::new(),
                    };
                    b = b.credentials(Credentials::new(user.clone(), password));
                }
                match b.build().send_raw(&mail.envelope, &mail.message).await {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_permanent() || e.is_client() => return Err(smtp_err(e)),
                    Err(e) => smtp_err(e),
                }
            }
        };
        tracing::debug!(error = %failure, "email notification failed, retrying");
        let jitter = 0.5 + (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 1000.0;
        let wait = std::time::Duration::from_secs_f64((interval * jitter).min(60.0));
        interval *= 1.5;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if wait >= left {
            return Err(failure);
        }
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::Alert;
    use crate::labels::LabelSet;
    use crate::time::{parse_rfc3339, zero_time};
    use std::sync::Arc;

    fn data(resolved: bool) -> Value {
        let now = parse_rfc3339("2026-11-25T00:00:00Z").unwrap();
        let a = Alert {
            labels: [
                ("alertname".to_string(), "DiskFull".to_string()),
                ("instance".to_string(), "db1".to_string()),
            ]
            .into_iter()
            .collect::<LabelSet>()
            .into(),
            annotations: Arc::new(LabelSet::from([(
                "summary".to_string(),
                "disk full".to_string(),
            )])),
            starts_at: parse_rfc3339("2026-11-24T23:00:00Z").unwrap(),
            ends_at: if resolved {
                parse_rfc3339("2026-11-24T23:30:00Z").unwrap()
            } else {
                zero_time()
            },
            generator_url: "http://prom/g".into(),
            updated_at: zero_time(),
            timeout: false,
        };
        crate::template::data(
            "ops",
            &[("alertname".to_string(), "DiskFull".to_string())].into(),
            "http://am:9093",
            &[a],
            now,
        )
    }

    fn slack(yaml: &str) -> SlackConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn slack_defaults_and_overrides() {
        let t = crate::template::defaults();
        let body = slack_body(&slack("{channel: '#ops'}"), &t, &data(false)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["channel"], "#ops");
        assert_eq!(v["username"], "Strata Alertmanager");
        let a = &v["attachments"][0];
        // Common labels beyond the group's follow in parentheses.
        assert_eq!(a["title"], "[FIRING:1] DiskFull (db1)");
        assert_eq!(a["color"], "danger");
        assert_eq!(a["title_link"], "http://am:9093/#/alerts?receiver=ops");
        assert!(
            a["text"].as_str().unwrap().contains("instance = db1"),
            "{a}"
        );
        assert!(a.get("pretext").is_none(), "empty texts are omitted: {a}");

        let cfg = slack(
            "{title: '{{ .CommonLabels.alertname | toLower }}', text: '{{ .CommonAnnotations.summary }}', color: '{{ if eq .Status \"resolved\" }}#00ff00{{ end }}', fields: [{title: 'host', value: '{{ .CommonLabels.instance }}'}], short_fields: true}",
        );
        let v: serde_json::Value =
            serde_json::from_str(&slack_body(&cfg, &t, &data(true)).unwrap()).unwrap();
        let a = &v["attachments"][0];
        assert_eq!(a["title"], "diskfull");
        assert_eq!(a["text"], "disk full");
        assert_eq!(a["color"], "#00ff00");
        assert_eq!(
            a["fields"],
            serde_json::json!([{"title": "host", "value": "db1", "short": true}])
        );
    }

    #[test]
    fn slack_template_error_is_reported() {
        let t = crate::template::defaults();
        let e = slack_body(&slack("{title: '{{ .Nope }}'}"), &t, &data(false)).unwrap_err();
        assert!(e.to_string().contains("can't evaluate field Nope"), "{e}");
    }

    #[test]
    fn pagerduty_trigger_and_resolve_share_the_dedup_key() {
        let t = crate::template::defaults();
        let cfg: PagerdutyConfig = serde_yaml::from_str("{routing_key: k}").unwrap();
        let trig: serde_json::Value = serde_json::from_str(
            &pagerduty_body(&cfg, "k", &t, &data(false), "{}:{alertname=\"DiskFull\"}").unwrap(),
        )
        .unwrap();
        assert_eq!(trig["event_action"], "trigger");
        assert_eq!(trig["routing_key"], "k");
        assert_eq!(trig["payload"]["summary"], "[FIRING:1] DiskFull (db1)");
        assert_eq!(trig["payload"]["severity"], "error");
        assert_eq!(trig["payload"]["source"], "Strata Alertmanager");
        assert_eq!(trig["payload"]["custom_details"]["num_firing"], "1");
        assert_eq!(trig["client_url"], "http://am:9093/#/alerts?receiver=ops");
        let key = trig["dedup_key"].as_str().unwrap();
        assert_eq!(key.len(), 64);
        let res: serde_json::Value = serde_json::from_str(
            &pagerduty_body(&cfg, "k", &t, &data(true), "{}:{alertname=\"DiskFull\"}").unwrap(),
        )
        .unwrap();
        assert_eq!(res["event_action"], "resolve");
        assert_eq!(res["dedup_key"], key);
        assert_eq!(res["payload"]["custom_details"]["num_resolved"], "1");
    }

    #[test]
    fn long_summaries_are_cut() {
        let s = truncate("x".repeat(2000), PAGERDUTY_MAX_SUMMARY);
        assert_eq!(s.chars().count(), PAGERDUTY_MAX_SUMMARY);
        assert!(s.ends_with('…'));
    }
}
