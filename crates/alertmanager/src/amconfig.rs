//! Alertmanager's own configuration file (`alertmanager.yml`), parsed strictly like upstream's
//! `yaml.UnmarshalStrict` and validated with upstream's rules and messages.

use crate::labels::is_valid_label_name;
use crate::matcher::{parse_matchers, MatchOp, Matcher, Matchers};
use crate::route::{Route, RouteOpts};
use crate::time::PromDuration;
use crate::time::Timestamp;
use crate::timeinterval::TimeInterval;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use strata_model::Secret;

pub use crate::secret_url::SecretUrl;

/// A configuration that does not load: either the YAML does not fit the schema (the message
/// names the field and the line) or a value breaks a rule (the message names the field path).
#[derive(Debug, thiserror::Error)]
pub enum AmConfigError {
    #[error("{0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("templates: {0}")]
    Template(#[from] crate::template::TemplateError),
}

/// Where `templates:` patterns find their files.
#[derive(Debug, Clone, Copy)]
pub enum TemplateSource<'a> {
    /// Globs relative to this directory (the configuration file's), like upstream.
    Dir(&'a std::path::Path),
    /// A tenant's uploaded `template_files` (Mimir): all of them are loaded, as Mimir does.
    Files(&'a BTreeMap<String, String>),
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> AmConfigError {
    AmConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmConfig {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<String>,
    pub route: Option<RouteConfig>,
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_intervals: Vec<TimeIntervalConfig>,
    /// Deprecated alias of `time_intervals` (same schema).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mute_time_intervals: Vec<TimeIntervalConfig>,
}

type Opaque = Option<serde_yaml::Value>;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalConfig {
    #[serde(default = "default_resolve_timeout")]
    pub resolve_timeout: PromDuration,
    #[serde(default)]
    pub http_config: HttpConfig,
    // Defaults of integrations Strata does not implement yet: accepted so upstream files load,
    // not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_hello: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_smarthost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_identity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_require_tls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_api_url: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_api_url_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_url: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_url: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_corp_id: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_url: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_api_url: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webex_api_url: Opaque,
}

fn default_resolve_timeout() -> PromDuration {
    PromDuration(Duration::from_secs(300))
}

impl Default for GlobalConfig {
    fn default() -> Self {
        serde_yaml::from_str("{}").unwrap_or_else(|e| panic!("empty global section: {e}"))
    }
}

/// The subset of prometheus/common `http_config` Strata implements: authentication and
/// redirects. TLS settings are accepted (upstream files carry them) but only `http://` URLs are
/// supported for now; `oauth2` is parsed (so its secret is never shown) and refused.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "yes")]
    pub enable_http2: bool,
}

fn yes() -> bool {
    true
}

impl Default for HttpConfig {
    fn default() -> Self {
        serde_yaml::from_str("{}").unwrap_or_else(|e| panic!("empty http_config: {e}"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

/// prometheus/common's `tls_config` of a notifier: the CA that signs the receiver's certificate
/// (`ca`/`ca_file`, else the system's roots), a client certificate (`cert`+`key` or
/// `cert_file`+`key_file`), `server_name` checked instead of the URL's host, and
/// `insecure_skip_verify`. Its inline `key` is a secret and its `*_file` settings name server
/// files (refused in tenants' configurations). `min_version`/`max_version` are accepted and
/// not used: Strata speaks TLS 1.2 and 1.3.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
}

impl TlsConfig {
    /// The client TLS setup it describes, files read (only the operator's configuration may
    /// name files: the sandbox refuses them in tenants'); `None` when it changes nothing.
    pub fn client_tls(&self) -> Result<Option<strata_tls::StaticClientTls>, strata_tls::TlsError> {
        fn pick(
            inline: Option<&str>,
            file: Option<&String>,
            what: &'static str,
        ) -> Result<Option<Vec<u8>>, strata_tls::TlsError> {
            if let Some(v) = inline.filter(|v| !v.is_empty()) {
                return Ok(Some(v.as_bytes().to_vec()));
            }
            match file.filter(|f| !f.is_empty()) {
                Some(f) => std::fs::read(f)
                    .map(Some)
                    .map_err(|e| strata_tls::TlsError::Pem {
                        what,
                        path: f.into(),
                        reason: format!("cannot read: {e}"),
                    }),
                None => Ok(None),
            }
        }
        let t = strata_tls::StaticClientTls {
            ca_pem: pick(self.ca.as_deref(), self.ca_file.as_ref(), "ca_file")?,
            cert_pem: pick(self.cert.as_deref(), self.cert_file.as_ref(), "cert_file")?,
            key_pem: pick(
                self.key.as_ref().map(|k| k.expose()),
                self.key_file.as_ref(),
                "key_file",
            )?,
            server_name: self.server_name.clone().filter(|n| !n.is_empty()),
            insecure_skip_verify: self.insecure_skip_verify.unwrap_or(false),
        };
        let nothing = t.ca_pem.is_none()
            && t.cert_pem.is_none()
            && t.key_pem.is_none()
            && t.server_name.is_none()
            && !t.insecure_skip_verify;
        Ok((!nothing).then_some(t))
    }
}

/// prometheus/common's `oauth2`: recognised so that the error names it and its client secret
/// is never shown; not supported yet.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OAuth2 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoint_params: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<TlsConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

/// How a notifier authenticates, resolved from an `http_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic {
        username: String,
        password: Secret,
    },
    /// `Authorization: <scheme> <credentials>`.
    Header {
        scheme: String,
        credentials: Secret,
    },
}

impl HttpConfig {
    fn validate(&self, field: &str) -> Result<(), AmConfigError> {
        let bearer = self.bearer_token.is_some() || self.bearer_token_file.is_some();
        if self.bearer_token.is_some() && self.bearer_token_file.is_some() {
            return Err(invalid(
                field,
                "at most one of bearer_token & bearer_token_file must be configured",
            ));
        }
        if self.basic_auth.is_some() && bearer {
            return Err(invalid(
                field,
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured",
            ));
        }
        if let Some(a) = &self.authorization {
            if bearer {
                return Err(invalid(
                    field,
                    "authorization is not compatible with bearer_token & bearer_token_file",
                ));
            }
            if self.basic_auth.is_some() {
                return Err(invalid(
                    field,
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                ));
            }
            if a.credentials.is_some() && a.credentials_file.is_some() {
                return Err(invalid(
                    format!("{field}.authorization"),
                    "at most one of authorization credentials & credentials_file must be configured",
                ));
            }
            if a.kind
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case("basic"))
            {
                return Err(invalid(
                    format!("{field}.authorization.type"),
                    "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                ));
            }
        }
        if let Some(b) = &self.basic_auth {
            if b.password.is_some() && b.password_file.is_some() {
                return Err(invalid(
                    format!("{field}.basic_auth"),
                    "at most one of basic_auth password & password_file must be configured",
                ));
            }
        }
        if let Some(t) = &self.tls_config {
            t.client_tls()
                .and_then(|c| c.map(|c| crate::notify_tls::client_config(&c)).transpose())
                .map_err(|e| invalid(format!("{field}.tls_config"), e.to_string()))?;
        }
        if self.proxy_url.is_some() {
            return Err(invalid(
                format!("{field}.proxy_url"),
                "proxies are not supported by Strata yet",
            ));
        }
        if self.oauth2.is_some() {
            return Err(invalid(
                format!("{field}.oauth2"),
                "OAuth 2.0 is not supported by Strata yet",
            ));
        }
        Ok(())
    }

    /// Reads credentials (including `*_file` ones, which only the operator's configuration may
    /// hold) into an [`Auth`].
    pub fn auth(&self) -> std::io::Result<Auth> {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| Secret::new(s.trim()));
        if let Some(b) = &self.basic_auth {
            let password = match (&b.password, &b.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => read(f)?,
                (None, None) => Secret::default(),
            };
            return Ok(Auth::Basic {
                username: b.username.clone(),
                password,
            });
        }
        if let Some(a) = &self.authorization {
            let credentials = match (&a.credentials, &a.credentials_file) {
                (Some(c), _) => c.clone(),
                (None, Some(f)) => read(f)?,
                (None, None) => Secret::default(),
            };
            return Ok(Auth::Header {
                scheme: a.kind.clone().unwrap_or_else(|| "Bearer".to_string()),
                credentials,
            });
        }
        match (&self.bearer_token, &self.bearer_token_file) {
            (Some(t), _) => Ok(Auth::Header {
                scheme: "Bearer".into(),
                credentials: t.clone(),
            }),
            (None, Some(f)) => Ok(Auth::Header {
                scheme: "Bearer".into(),
                credentials: read(f)?,
            }),
            (None, None) => Ok(Auth::None),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<String>>,
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_eq: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_re: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matchers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mute_time_intervals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_time_intervals: Option<Vec<String>>,
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<RouteConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<PromDuration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<PromDuration>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_configs: Vec<WebhookConfig>,
    // Integrations not implemented yet: recognised so the error says so instead of "unknown
    // field".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub email_configs: Vec<crate::notify::EmailConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pagerduty_configs: Vec<crate::notify::PagerdutyConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slack_configs: Vec<crate::notify::SlackConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_configs: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_configs: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushover_configs: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_configs: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_configs: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram_configs: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webex_configs: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discord_configs: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msteams_configs: Opaque,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Shown as `scheme://host:port/<secret>` (see [`SecretUrl`]).
    #[serde(default)]
    pub url: Option<SecretUrl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_config: Option<HttpConfig>,
    #[serde(default)]
    pub max_alerts: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_match: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_match_re: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_matchers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_match: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_match_re: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_matchers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equal: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalConfig {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub time_intervals: Vec<TimeIntervalSpec>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub times: Vec<TimeRangeSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days_of_month: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub months: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub years: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeSpec {
    pub start_time: String,
    pub end_time: String,
}

/// An inhibit rule ready for evaluation.
#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source: Matchers,
    pub target: Matchers,
    pub equal: Vec<String>,
}

/// A notification target ready for sending: a webhook, or the endpoint another integration
/// posts to.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: SecretUrl,
    pub send_resolved: bool,
    pub max_alerts: u64,
    pub http: HttpConfig,
    /// From a tenant's configuration: the receivers firewall applies.
    pub sandboxed: bool,
}

/// Where a secret URL or key comes from: the configuration, or a file read at each send (so
/// that a rotated secret is picked up without a reload; only the operator's configuration may
/// name files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline(Secret),
    File(String),
}

impl SecretSource {
    pub fn read(&self) -> std::io::Result<Secret> {
        match self {
            SecretSource::Inline(s) => Ok(s.clone()),
            SecretSource::File(p) => std::fs::read_to_string(p).map(|s| Secret::new(s.trim())),
        }
    }
}

/// A Slack integration ready for sending.
#[derive(Debug, Clone)]
pub struct Slack {
    pub config: crate::notify::SlackConfig,
    pub url: SecretSource,
    pub http: HttpConfig,
}

/// A PagerDuty (Events API v2) integration ready for sending.
#[derive(Debug, Clone)]
pub struct Pagerduty {
    pub config: crate::notify::PagerdutyConfig,
    pub url: String,
    pub routing_key: SecretSource,
    pub http: HttpConfig,
}

/// An email integration ready for sending. `headers` hold `From`, `To` and `Subject` too
/// (from the settings or their defaults), all as templates.
#[derive(Debug, Clone)]
pub struct Email {
    pub config: crate::notify::EmailConfig,
    pub headers: BTreeMap<String, String>,
    pub host: String,
    pub port: u16,
    pub hello: Option<String>,
    pub username: Option<String>,
    pub password: Option<SecretSource>,
    pub require_tls: bool,
}

/// A receiver ready for sending: its integrations.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    pub webhooks: Vec<Webhook>,
    pub emails: Vec<Email>,
    pub slacks: Vec<Slack>,
    pub pagerduties: Vec<Pagerduty>,
}

/// Go's canonical MIME header key: `content-type` becomes `Content-Type`.
fn canonical_header(k: &str) -> String {
    k.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Checks a URL of a notifier: it parses and is http or https. The message does not repeat
/// the URL: it may carry a token.
fn check_url(field: &str, url: &str) -> Result<(), AmConfigError> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| invalid(field, format!("invalid URL: {e}")))?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        s => Err(invalid(field, format!("unsupported scheme {s:?} for URL"))),
    }
}

/// Warns about notifier settings whose template text does not parse. Upstream accepts them
/// at load (amtool check-config too) and fails their notifications at send time; refusing the
/// file would break configurations that run upstream, so Strata does the same, and says so at
/// load.
fn check_texts(field: &str, texts: &[(&str, &Option<String>)]) {
    for (key, text) in texts {
        if let Some(Err(e)) = text.as_deref().map(crate::template::check_text) {
            tracing::warn!(
                setting = %format!("{field}.{key}"),
                error = %e,
                "notifier template does not parse; its notifications will fail"
            );
        }
    }
}

fn one_of(
    field: &str,
    (a_key, a): (&str, &Option<Secret>),
    (b_key, b): (&str, &Option<String>),
) -> Result<Option<SecretSource>, AmConfigError> {
    match (a, b) {
        (Some(_), Some(_)) => Err(invalid(
            field,
            format!("at most one of {a_key} & {b_key} must be configured"),
        )),
        (Some(v), None) => Ok(Some(SecretSource::Inline(v.clone()))),
        (None, Some(f)) => Ok(Some(SecretSource::File(f.clone()))),
        (None, None) => Ok(None),
    }
}

impl AmConfig {
    fn compile_slack(
        &self,
        field: &str,
        c: &crate::notify::SlackConfig,
    ) -> Result<Slack, AmConfigError> {
        if c.actions.is_some() {
            return Err(invalid(
                format!("{field}.actions"),
                "Slack actions are not supported by Strata yet",
            ));
        }
        let url = match one_of(
            field,
            ("api_url", &c.api_url),
            ("api_url_file", &c.api_url_file),
        )? {
            Some(u) => u,
            None => one_of(
                "global",
                ("slack_api_url", &self.global.slack_api_url),
                ("slack_api_url_file", &self.global.slack_api_url_file),
            )?
            .ok_or_else(|| invalid(field, "no global Slack API URL set"))?,
        };
        if let SecretSource::Inline(u) = &url {
            check_url(&format!("{field}.api_url"), u.expose())?;
        }
        check_texts(
            field,
            &[
                ("channel", &c.channel),
                ("username", &c.username),
                ("color", &c.color),
                ("title", &c.title),
                ("title_link", &c.title_link),
                ("pretext", &c.pretext),
                ("text", &c.text),
                ("footer", &c.footer),
                ("fallback", &c.fallback),
                ("callback_id", &c.callback_id),
                ("icon_emoji", &c.icon_emoji),
                ("icon_url", &c.icon_url),
                ("image_url", &c.image_url),
                ("thumb_url", &c.thumb_url),
            ],
        );
        for (i, f) in c.fields.iter().enumerate() {
            check_texts(
                &format!("{field}.fields[{i}]"),
                &[
                    ("title", &Some(f.title.clone())),
                    ("value", &Some(f.value.clone())),
                ],
            );
        }
        let http = c
            .http_config
            .clone()
            .unwrap_or_else(|| self.global.http_config.clone());
        http.validate(&format!("{field}.http_config"))?;
        Ok(Slack {
            config: c.clone(),
            url,
            http,
        })
    }

    fn compile_email(
        &self,
        field: &str,
        c: &crate::notify::EmailConfig,
    ) -> Result<Email, AmConfigError> {
        let g = &self.global;
        let to =
            c.to.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
                invalid(format!("{field}.to"), "missing to address in email config")
            })?;
        let mut headers = BTreeMap::new();
        for (k, v) in &c.headers {
            let norm = canonical_header(k);
            if headers.insert(norm.clone(), v.clone()).is_some() {
                return Err(invalid(
                    format!("{field}.headers"),
                    format!("duplicate header {norm:?} in email config"),
                ));
            }
        }
        headers.entry("To".into()).or_insert(to);
        let from = c
            .from
            .clone()
            .or_else(|| g.smtp_from.clone())
            .ok_or_else(|| invalid(format!("{field}.from"), "no global SMTP from set"))?;
        headers.entry("From".into()).or_insert(from);
        headers
            .entry("Subject".into())
            .or_insert_with(|| r#"{{ template "email.default.subject" . }}"#.into());
        let smarthost = c
            .smarthost
            .clone()
            .or_else(|| g.smtp_smarthost.clone())
            .ok_or_else(|| invalid(format!("{field}.smarthost"), "no global SMTP smarthost set"))?;
        let (host, port) = smarthost
            .rsplit_once(':')
            .and_then(|(h, p)| {
                Some((
                    h.trim_matches(|c| c == '[' || c == ']'),
                    p.parse::<u16>().ok()?,
                ))
            })
            .filter(|(h, _)| !h.is_empty())
            .ok_or_else(|| {
                invalid(
                    format!("{field}.smarthost"),
                    format!("address {smarthost:?}: missing or invalid port in address"),
                )
            })?;
        if c.auth_secret.is_some() || g.smtp_auth_secret.is_some() {
            return Err(invalid(
                format!("{field}.auth_secret"),
                "CRAM-MD5 authentication (auth_secret) is not supported by Strata",
            ));
        }
        let username = c
            .auth_username
            .clone()
            .or_else(|| g.smtp_auth_username.clone());
        let password = match one_of(
            field,
            ("auth_password", &c.auth_password),
            ("auth_password_file", &c.auth_password_file),
        )? {
            Some(p) => Some(p),
            None => one_of(
                "global",
                ("smtp_auth_password", &g.smtp_auth_password),
                ("smtp_auth_password_file", &g.smtp_auth_password_file),
            )?,
        };
        let header_texts: Vec<(String, Option<String>)> = headers
            .iter()
            .map(|(k, v)| (format!("headers.{k}"), Some(v.clone())))
            .collect();
        let refs: Vec<(&str, &Option<String>)> =
            header_texts.iter().map(|(k, v)| (k.as_str(), v)).collect();
        check_texts(field, &refs);
        check_texts(field, &[("html", &c.html), ("text", &c.text)]);
        Ok(Email {
            config: c.clone(),
            headers,
            host: host.to_string(),
            port,
            hello: c.hello.clone().or_else(|| g.smtp_hello.clone()),
            username,
            password,
            // Upstream's default: STARTTLS required.
            require_tls: c.require_tls.or(g.smtp_require_tls).unwrap_or(true),
        })
    }

    fn compile_pagerduty(
        &self,
        field: &str,
        c: &crate::notify::PagerdutyConfig,
    ) -> Result<Pagerduty, AmConfigError> {
        if c.service_key.is_some() || c.service_key_file.is_some() {
            return Err(invalid(
                format!("{field}.service_key"),
                "PagerDuty Events API v1 (service_key) is not supported by Strata; use routing_key",
            ));
        }
        let routing_key = one_of(
            field,
            ("routing_key", &c.routing_key),
            ("routing_key_file", &c.routing_key_file),
        )?
        .ok_or_else(|| invalid(field, "missing service or routing key in PagerDuty config"))?;
        let url = c
            .url
            .clone()
            .or_else(|| self.global.pagerduty_url.clone())
            .unwrap_or_else(|| crate::notify::PAGERDUTY_DEFAULT_URL.to_string());
        check_url(&format!("{field}.url"), &url)?;
        check_texts(
            field,
            &[
                ("client", &c.client),
                ("client_url", &c.client_url),
                ("description", &c.description),
                ("severity", &c.severity),
                ("class", &c.class),
                ("component", &c.component),
                ("group", &c.group),
                ("source", &c.source),
            ],
        );
        for (k, v) in c.details.iter().flatten() {
            check_texts(
                &format!("{field}.details"),
                &[(k.as_str(), &Some(v.clone()))],
            );
        }
        let http = c
            .http_config
            .clone()
            .unwrap_or_else(|| self.global.http_config.clone());
        http.validate(&format!("{field}.http_config"))?;
        Ok(Pagerduty {
            config: c.clone(),
            url,
            routing_key,
            http,
        })
    }
}

/// A loaded, validated configuration: the parsed file, its original text and the compiled
/// route tree, receivers and inhibit rules.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The text as loaded, secrets included: never served (see `shown`).
    pub original: Secret,
    /// What `/api/v2/status` (`config.original`) and Mimir's `GET /api/v1/alerts` show: the
    /// text as written when it holds no secret, else its re-serialization with every secret
    /// as `<secret>` (what upstream always shows).
    pub shown: String,
    /// A tenant's own configuration: it names no server file and its notifications pass the
    /// receivers firewall.
    pub sandboxed: bool,
    pub config: AmConfig,
    pub resolve_timeout: Duration,
    pub route: Arc<Route>,
    pub receivers: BTreeMap<String, Arc<Receiver>>,
    pub inhibit_rules: Vec<InhibitRule>,
    /// Named time intervals (`time_intervals` and the deprecated `mute_time_intervals`).
    pub time_intervals: HashMap<String, Vec<TimeInterval>>,
    /// The default templates and those of the `templates:` files.
    pub templates: Arc<crate::template::Templates>,
}

impl LoadedConfig {
    /// Whether a route's notifications are muted at `now` by its time intervals: inside any of
    /// its `mute_time_intervals`, or outside all of its `active_time_intervals` (when it has
    /// some). Names were checked against the defined intervals when the configuration loaded.
    pub fn route_muted(&self, opts: &RouteOpts, now: Timestamp) -> bool {
        let inside_any = |names: &[String]| {
            names.iter().any(|n| {
                self.time_intervals
                    .get(n)
                    .is_some_and(|entries| entries.iter().any(|ti| ti.contains(now)))
            })
        };
        if inside_any(&opts.mute_time_intervals) {
            return true;
        }
        !opts.active_time_intervals.is_empty() && !inside_any(&opts.active_time_intervals)
    }
}

/// Converts legacy `match`/`match_re` maps and new-style `matchers` into one sorted list, like
/// upstream's route and inhibit-rule construction.
fn build_matchers(
    field: &str,
    eq: &Option<BTreeMap<String, String>>,
    re: &Option<BTreeMap<String, String>>,
    new: &Option<Vec<String>>,
    eq_key: &str,
    re_key: &str,
    new_key: &str,
) -> Result<Matchers, AmConfigError> {
    let mut out = Vec::new();
    for (n, v) in eq.iter().flatten() {
        if !is_valid_label_name(n) {
            return Err(invalid(
                format!("{field}.{eq_key}"),
                format!("invalid label name {n:?}"),
            ));
        }
        out.push(
            Matcher::new(MatchOp::Equal, n, v)
                .map_err(|e| invalid(format!("{field}.{eq_key}.{n}"), e.to_string()))?,
        );
    }
    for (n, v) in re.iter().flatten() {
        if !is_valid_label_name(n) {
            return Err(invalid(
                format!("{field}.{re_key}"),
                format!("invalid label name {n:?}"),
            ));
        }
        // Upstream keeps a legacy regex in its anchored form, and that form is what the
        // matcher (and so the route key / group key) carries: `^(?:v)$`.
        out.push(
            Matcher::new(MatchOp::Regex, n, &format!("^(?:{v})$"))
                .map_err(|e| invalid(format!("{field}.{re_key}.{n}"), e.to_string()))?,
        );
    }
    for (i, line) in new.iter().flatten().enumerate() {
        out.extend(
            parse_matchers(line)
                .map_err(|e| invalid(format!("{field}.{new_key}[{i}]"), e.to_string()))?,
        );
    }
    let mut m = Matchers(out);
    m.sort();
    Ok(m)
}

fn check_label_names(field: &str, names: &[String]) -> Result<(), AmConfigError> {
    for n in names {
        if !is_valid_label_name(n) {
            return Err(invalid(field, format!("invalid label name {n:?}")));
        }
    }
    Ok(())
}

impl AmConfig {
    /// Parses and validates a configuration text; `templates:` globs are relative to the
    /// current directory.
    pub fn load(text: &str) -> Result<LoadedConfig, AmConfigError> {
        Self::load_with(text, TemplateSource::Dir(std::path::Path::new(".")))
    }

    /// Parses and validates a configuration text, reading its templates from `templates`.
    pub fn load_with(
        text: &str,
        templates: TemplateSource<'_>,
    ) -> Result<LoadedConfig, AmConfigError> {
        Self::load_inner(text, templates, false)
    }

    /// Parses and validates a tenant's own configuration with the tenant sandbox's rules (see
    /// [`crate::sandbox`]): no setting may name a file on the server, and `templates:` may only
    /// name the tenant's `template_files`, which are all loaded (as Mimir does).
    pub fn load_tenant(
        text: &str,
        template_files: &BTreeMap<String, String>,
    ) -> Result<LoadedConfig, AmConfigError> {
        Self::load_inner(text, TemplateSource::Files(template_files), true)
    }

    fn load_inner(
        text: &str,
        templates: TemplateSource<'_>,
        sandboxed: bool,
    ) -> Result<LoadedConfig, AmConfigError> {
        let config: AmConfig = if text.trim().is_empty() {
            AmConfig::default()
        } else {
            serde_yaml::from_str(text)?
        };
        if sandboxed {
            crate::sandbox::check(text)?;
        }
        // Templates first: a configuration whose templates do not parse is refused whole.
        let templates = match templates {
            TemplateSource::Dir(base) => crate::template::load(base, &config.templates)?,
            TemplateSource::Files(files) => {
                let mut t = crate::template::defaults();
                for (name, text) in files {
                    t.add(name, text)?;
                }
                t
            }
        };
        let shown = crate::shown::shown_text(text, &config)?;
        let mut loaded = config.compile(text.to_string(), Arc::new(templates), sandboxed)?;
        loaded.shown = shown;
        Ok(loaded)
    }

    fn compile(
        self,
        original: String,
        templates: Arc<crate::template::Templates>,
        sandboxed: bool,
    ) -> Result<LoadedConfig, AmConfigError> {
        // Receivers.
        let mut receivers = BTreeMap::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let field = format!("receivers[{i}]");
            if r.name.is_empty() {
                return Err(invalid(format!("{field}.name"), "missing name in receiver"));
            }
            let unsupported = [
                ("opsgenie_configs", r.opsgenie_configs.is_some()),
                ("wechat_configs", r.wechat_configs.is_some()),
                ("pushover_configs", r.pushover_configs.is_some()),
                ("victorops_configs", r.victorops_configs.is_some()),
                ("sns_configs", r.sns_configs.is_some()),
                ("telegram_configs", r.telegram_configs.is_some()),
                ("webex_configs", r.webex_configs.is_some()),
                ("discord_configs", r.discord_configs.is_some()),
                ("msteams_configs", r.msteams_configs.is_some()),
            ];
            if let Some((key, _)) = unsupported.iter().find(|(_, set)| *set) {
                return Err(invalid(
                    format!("{field}.{key}"),
                    "this integration is not supported by Strata yet (webhook_configs, email_configs, slack_configs and pagerduty_configs are)",
                ));
            }
            let mut webhooks = Vec::new();
            for (j, w) in r.webhook_configs.iter().enumerate() {
                let wf = format!("{field}.webhook_configs[{j}]");
                let url = w
                    .url
                    .clone()
                    .ok_or_else(|| invalid(format!("{wf}.url"), "missing URL in webhook config"))?;
                // The message leaves the URL out: it may carry a token.
                let parsed = reqwest::Url::parse(url.expose())
                    .map_err(|e| invalid(format!("{wf}.url"), format!("invalid URL: {e}")))?;
                match parsed.scheme() {
                    "http" | "https" => {}
                    s => {
                        return Err(invalid(
                            format!("{wf}.url"),
                            format!("scheme {s:?} for webhook url is not allowed"),
                        ))
                    }
                }
                let http = w
                    .http_config
                    .clone()
                    .unwrap_or_else(|| self.global.http_config.clone());
                http.validate(&format!("{wf}.http_config"))?;
                webhooks.push(Webhook {
                    url,
                    send_resolved: w.send_resolved,
                    max_alerts: w.max_alerts,
                    http,
                    sandboxed,
                });
            }
            let slacks = r
                .slack_configs
                .iter()
                .enumerate()
                .map(|(j, c)| self.compile_slack(&format!("{field}.slack_configs[{j}]"), c))
                .collect::<Result<Vec<_>, _>>()?;
            let pagerduties = r
                .pagerduty_configs
                .iter()
                .enumerate()
                .map(|(j, c)| self.compile_pagerduty(&format!("{field}.pagerduty_configs[{j}]"), c))
                .collect::<Result<Vec<_>, _>>()?;
            let emails = r
                .email_configs
                .iter()
                .enumerate()
                .map(|(j, c)| self.compile_email(&format!("{field}.email_configs[{j}]"), c))
                .collect::<Result<Vec<_>, _>>()?;
            let rec = Arc::new(Receiver {
                name: r.name.clone(),
                webhooks,
                emails,
                slacks,
                pagerduties,
            });
            if receivers.insert(r.name.clone(), rec).is_some() {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("notification config name {:?} is not unique", r.name),
                ));
            }
        }
        self.global.http_config.validate("global.http_config")?;

        // Time intervals.
        let mut intervals = HashSet::new();
        let mut time_intervals = HashMap::new();
        for (key, list) in [
            ("time_intervals", &self.time_intervals),
            ("mute_time_intervals", &self.mute_time_intervals),
        ] {
            for (i, ti) in list.iter().enumerate() {
                let field = format!("{key}[{i}]");
                if ti.name.is_empty() {
                    return Err(invalid(
                        format!("{field}.name"),
                        "missing name in time interval",
                    ));
                }
                if !intervals.insert(ti.name.clone()) {
                    let what = if key == "time_intervals" {
                        "time interval"
                    } else {
                        "mute time interval"
                    };
                    return Err(invalid(
                        format!("{field}.name"),
                        format!("{what} {:?} is not unique", ti.name),
                    ));
                }
                let compiled = ti
                    .time_intervals
                    .iter()
                    .enumerate()
                    .map(|(j, spec)| {
                        crate::timeinterval::compile(&format!("{field}.time_intervals[{j}]"), spec)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                time_intervals.insert(ti.name.clone(), compiled);
            }
        }

        // Route tree.
        let root = self
            .route
            .as_ref()
            .ok_or_else(|| invalid("route", "no route provided in config"))?;
        if root.receiver.as_deref().unwrap_or("").is_empty() {
            return Err(invalid(
                "route.receiver",
                "root route must specify a default receiver",
            ));
        }
        if root.match_eq.as_ref().is_some_and(|m| !m.is_empty())
            || root.match_re.as_ref().is_some_and(|m| !m.is_empty())
            || root.matchers.as_ref().is_some_and(|m| !m.is_empty())
        {
            return Err(invalid("route", "root route must not have any matchers"));
        }
        if root.continue_ {
            return Err(invalid(
                "route.continue",
                "cannot have continue in root route",
            ));
        }
        if root
            .mute_time_intervals
            .as_ref()
            .is_some_and(|m| !m.is_empty())
        {
            return Err(invalid(
                "route.mute_time_intervals",
                "root route must not have any mute time intervals",
            ));
        }
        if root
            .active_time_intervals
            .as_ref()
            .is_some_and(|m| !m.is_empty())
        {
            return Err(invalid(
                "route.active_time_intervals",
                "root route must not have any active time intervals",
            ));
        }
        check_route_refs("route", root, &receivers, &intervals)?;
        let route = Arc::new(Route::build(root, |field, r| {
            build_matchers(
                field,
                &r.match_eq,
                &r.match_re,
                &r.matchers,
                "match",
                "match_re",
                "matchers",
            )
        })?);

        // Inhibit rules.
        let mut inhibit_rules = Vec::new();
        for (i, r) in self.inhibit_rules.iter().enumerate() {
            let field = format!("inhibit_rules[{i}]");
            let source = build_matchers(
                &field,
                &r.source_match,
                &r.source_match_re,
                &r.source_matchers,
                "source_match",
                "source_match_re",
                "source_matchers",
            )?;
            let target = build_matchers(
                &field,
                &r.target_match,
                &r.target_match_re,
                &r.target_matchers,
                "target_match",
                "target_match_re",
                "target_matchers",
            )?;
            check_label_names(&format!("{field}.equal"), &r.equal)?;
            inhibit_rules.push(InhibitRule {
                source,
                target,
                equal: r.equal.clone(),
            });
        }

        Ok(LoadedConfig {
            original: Secret::new(original),
            shown: String::new(),
            sandboxed,
            resolve_timeout: self.global.resolve_timeout.0,
            config: self,
            route,
            receivers,
            inhibit_rules,
            time_intervals,
            templates,
        })
    }
}

fn check_route_refs(
    field: &str,
    r: &RouteConfig,
    receivers: &BTreeMap<String, Arc<Receiver>>,
    intervals: &HashSet<String>,
) -> Result<(), AmConfigError> {
    if let Some(name) = r.receiver.as_deref().filter(|n| !n.is_empty()) {
        if !receivers.contains_key(name) {
            return Err(invalid(
                format!("{field}.receiver"),
                format!("undefined receiver {name:?} used in route"),
            ));
        }
    }
    for (key, list) in [
        ("mute_time_intervals", &r.mute_time_intervals),
        ("active_time_intervals", &r.active_time_intervals),
    ] {
        for name in list.iter().flatten() {
            if !intervals.contains(name) {
                return Err(invalid(
                    format!("{field}.{key}"),
                    format!("undefined time interval {name:?} used in route"),
                ));
            }
        }
    }
    if let Some(gb) = &r.group_by {
        let all = gb.iter().any(|l| l == "...");
        if all && gb.len() > 1 {
            return Err(invalid(
                format!("{field}.group_by"),
                "cannot have wildcard group_by (`...`) and other other labels at the same time",
            ));
        }
        let mut seen = HashSet::new();
        for l in gb.iter().filter(|l| *l != "...") {
            if !is_valid_label_name(l) {
                return Err(invalid(
                    format!("{field}.group_by"),
                    format!("invalid label name {l:?} in group_by list"),
                ));
            }
            if !seen.insert(l) {
                return Err(invalid(
                    format!("{field}.group_by"),
                    format!("duplicated label {l:?} in group_by"),
                ));
            }
        }
    }
    if r.group_interval.is_some_and(|d| d.0.is_zero()) {
        return Err(invalid(
            format!("{field}.group_interval"),
            "group_interval cannot be zero",
        ));
    }
    if r.repeat_interval.is_some_and(|d| d.0.is_zero()) {
        return Err(invalid(
            format!("{field}.repeat_interval"),
            "repeat_interval cannot be zero",
        ));
    }
    for (i, child) in r.routes.iter().flatten().enumerate() {
        check_route_refs(&format!("{field}.routes[{i}]"), child, receivers, intervals)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = include_str!("../testdata/lab_alertmanager.yml");

    fn err(text: &str) -> String {
        match AmConfig::load(text) {
            Ok(_) => panic!("config unexpectedly valid:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn lab_config_loads() {
        let c = AmConfig::load(LAB).unwrap();
        assert_eq!(c.resolve_timeout, Duration::from_secs(300));
        assert_eq!(c.receivers.len(), 3);
        assert_eq!(c.receivers["truncated"].webhooks[0].max_alerts, 1);
        assert!(!c.receivers["db"].webhooks[0].send_resolved);
        assert!(c.receivers["truncated"].webhooks[0].send_resolved);
        assert_eq!(c.inhibit_rules.len(), 1);
        assert_eq!(
            c.inhibit_rules[0].source.to_string(),
            r#"{severity="critical"}"#
        );
        assert_eq!(c.original.expose(), LAB);
        // Webhook URLs are secrets: the shown form keeps only their addresses.
        assert!(
            c.shown.contains("url: http://127.0.0.1:5001/<secret>"),
            "{}",
            c.shown
        );
        // The lab's `never` interval (1999 only) mutes nothing today.
        assert_eq!(c.time_intervals["never"].len(), 1);
        let mut routes = Vec::new();
        c.route.walk(&mut routes);
        let muted: Vec<&str> = routes
            .iter()
            .filter(|r| !r.opts.mute_time_intervals.is_empty())
            .map(|r| r.key.as_str())
            .collect();
        assert_eq!(muted, vec![r#"{}/{team=~"db|web"}"#]);
        let now = crate::time::parse_rfc3339("2026-06-01T12:00:00Z").unwrap();
        assert!(!c.route_muted(&routes[0].opts, now));
        let mut in_1999 = routes[0].opts.clone();
        in_1999.mute_time_intervals = vec!["never".into()];
        assert!(c.route_muted(
            &in_1999,
            crate::time::parse_rfc3339("1999-03-01T00:00:00Z").unwrap()
        ));
    }

    #[test]
    fn unknown_fields_name_the_field_and_line() {
        let e = err("route:\n  receiver: a\n  group_wiat: 1s\nreceivers: [{name: a}]\n");
        assert!(e.contains("group_wiat"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        let e = err("route: {receiver: a}\nreceivers:\n  - name: a\n    webhook_configs:\n      - url: http://x/\n        sendresolved: true\n");
        assert!(e.contains("sendresolved") && e.contains("line 6"), "{e}");
    }

    #[test]
    fn invalid_values() {
        let base =
            |route: &str| format!("route:\n{route}\nreceivers: [{{name: a}}, {{name: b}}]\n");
        let cases = [
            (
                "  receiver: a\n  group_wait: 5x",
                "not a valid duration string",
            ),
            (
                "  group_by: [x]",
                "root route must specify a default receiver",
            ),
            (
                "  receiver: a\n  matchers: ['x=\"1\"']",
                "root route must not have any matchers",
            ),
            (
                "  receiver: a\n  match: {x: y}",
                "root route must not have any matchers",
            ),
            (
                "  receiver: a\n  continue: true",
                "cannot have continue in root route",
            ),
            (
                "  receiver: a\n  routes: [{receiver: c}]",
                "route.routes[0].receiver: undefined receiver \"c\" used in route",
            ),
            (
                "  receiver: a\n  group_interval: 0s",
                "group_interval cannot be zero",
            ),
            (
                "  receiver: a\n  routes: [{repeat_interval: 0}]",
                "route.routes[0].repeat_interval: repeat_interval cannot be zero",
            ),
            ("  receiver: a\n  group_by: ['...', x]", "wildcard group_by"),
            (
                "  receiver: a\n  group_by: [x, x]",
                "duplicated label \"x\" in group_by",
            ),
            (
                "  receiver: a\n  group_by: [x-y]",
                "invalid label name \"x-y\"",
            ),
            (
                "  receiver: a\n  routes: [{matchers: ['x=~\"(\"']}]",
                "route.routes[0].matchers[0]: invalid regular expression",
            ),
            (
                "  receiver: a\n  routes: [{matchers: ['{x']}]",
                "bad matcher format",
            ),
            (
                "  receiver: a\n  routes: [{mute_time_intervals: [nope]}]",
                "undefined time interval \"nope\" used in route",
            ),
            (
                "  receiver: a\n  mute_time_intervals: [nope]",
                "root route must not have any mute time intervals",
            ),
        ];
        for (route, want) in cases {
            let e = err(&base(route));
            assert!(e.contains(want), "{route}: got {e}");
        }
        assert!(err("receivers: [{name: a}]").contains("no route provided"));
        let e = err("route: {receiver: a}\nreceivers: [{name: a}, {name: a}]");
        assert!(
            e.contains("receivers[1].name: notification config name \"a\" is not unique"),
            "{e}"
        );
        let e = err("route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{send_resolved: true}]}]");
        assert!(
            e.contains("receivers[0].webhook_configs[0].url: missing URL"),
            "{e}"
        );
        let e = err(
            "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: 'ftp://x'}]}]",
        );
        assert!(e.contains("scheme \"ftp\""), "{e}");
        let e = err("route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: 'http://x', http_config: {basic_auth: {username: u}, bearer_token: t}}]}]");
        assert!(e.contains("at most one of basic_auth"), "{e}");
        let e = err("route: {receiver: a}\nreceivers: [{name: a, email_configs: [{}]}]");
        assert!(
            e.contains("receivers[0].email_configs[0].to: missing to address"),
            "{e}"
        );
        let e = err(
            "route: {receiver: a}\nreceivers: [{name: a, email_configs: [{to: a@b, from: c@d}]}]",
        );
        assert!(e.contains("no global SMTP smarthost set"), "{e}");
        let e = err("route: {receiver: a}\nreceivers: [{name: a, email_configs: [{to: a@b, from: c@d, smarthost: nohost}]}]");
        assert!(e.contains("missing or invalid port"), "{e}");
        let e = err("route: {receiver: a}\nreceivers: [{name: a, email_configs: [{to: a@b, from: c@d, smarthost: 'h:25', headers: {subject: x, Subject: y}}]}]");
        assert!(e.contains("duplicate header \"Subject\""), "{e}");
        let e = err("route: {receiver: a}\nreceivers: [{name: a, wechat_configs: [{}]}]");
        assert!(e.contains("receivers[0].wechat_configs"), "{e}");
        let e = err("route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{}]}]");
        assert!(
            e.contains("receivers[0].slack_configs[0]: no global Slack API URL set"),
            "{e}"
        );
        // Like upstream, a notifier template that does not parse loads (with a warning) and
        // fails its notifications instead.
        assert!(AmConfig::load("route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{api_url: 'http://x/', title: '{{ .Status'}]}]").is_ok());
        let e = err("route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{api_url: 'http://x/', chanel: x}]}]");
        assert!(e.contains("chanel"), "{e}");
        let e = err(
            "route: {receiver: a}\nreceivers: [{name: a, pagerduty_configs: [{url: 'http://x/'}]}]",
        );
        assert!(e.contains("missing service or routing key"), "{e}");
        assert!(AmConfig::load("route: {receiver: a}\nreceivers: [{name: a, pagerduty_configs: [{routing_key: k, details: {a: '{{ nofn }}'}}]}]").is_ok());
        let e =
            err("route: {receiver: a}\nreceivers: [{name: a}]\ninhibit_rules: [{equal: ['a b']}]");
        assert!(e.contains("inhibit_rules[0].equal"), "{e}");
        let e = err(
            "route: {receiver: a}\nreceivers: [{name: a}]\ntime_intervals: [{name: x}, {name: x}]",
        );
        assert!(e.contains("time interval \"x\" is not unique"), "{e}");
        let e = err("global: {resolve_timeout: 5}\nroute: {receiver: a}\nreceivers: [{name: a}]");
        assert!(e.contains("not a valid duration string: \"5\""), "{e}");
    }

    #[test]
    fn email_settings_fall_back_to_global_and_headers_are_canonical() {
        let c = AmConfig::load(
            "global: {smtp_from: 'a@x', smtp_smarthost: 'mail.x:587', smtp_auth_username: u, smtp_auth_password: p}\nroute: {receiver: a}\nreceivers:\n- name: a\n  email_configs:\n  - {to: 'b@x', headers: {x-team: db}}\n  - {to: 'c@x', from: 'd@x', smarthost: '[::1]:25', require_tls: false, hello: h}\n",
        )
        .unwrap();
        let e = &c.receivers["a"].emails;
        assert_eq!((e[0].host.as_str(), e[0].port), ("mail.x", 587));
        assert!(e[0].require_tls, "STARTTLS is required by default");
        assert_eq!(e[0].username.as_deref(), Some("u"));
        assert_eq!(e[0].password, Some(SecretSource::Inline("p".into())));
        assert_eq!(e[0].headers["X-Team"], "db");
        assert_eq!(e[0].headers["From"], "a@x");
        assert_eq!(e[0].headers["To"], "b@x");
        assert!(e[0].headers["Subject"].contains("email.default.subject"));
        assert_eq!((e[1].host.as_str(), e[1].port), ("::1", 25));
        assert!(!e[1].require_tls);
        assert_eq!(e[1].headers["From"], "d@x");
        assert_eq!(e[1].hello.as_deref(), Some("h"));
    }

    /// Names of upstream settings that look like secrets but are plain URLs upstream (and in
    /// Strata: integrations not implemented, accepted and ignored).
    const NOT_SECRETS: &[&str] = &[
        "opsgenie_api_url",
        "wechat_api_url",
        "victorops_api_url",
        "telegram_api_url",
        "webex_api_url",
        // OAuth 2.0's token endpoint.
        "token_url",
    ];

    #[test]
    fn every_field_named_like_a_secret_is_a_secret() {
        use strata_model::secret_audit::{leaves, plain_secret_fields, LeafKind};
        let plain = plain_secret_fields::<AmConfig>(NOT_SECRETS);
        assert!(plain.is_empty(), "plain-string secrets: {plain:?}");
        // The walk reaches the nested settings (an empty answer is not a broken walk).
        let all = leaves::<AmConfig>();
        let kind = |p: &str| all.iter().find(|l| l.path == p).map(|l| l.kind);
        for p in [
            "global.smtp_auth_password",
            "global.slack_api_url",
            "global.http_config.basic_auth.password",
            "receivers.webhook_configs.http_config.authorization.credentials",
            "receivers.webhook_configs.http_config.oauth2.client_secret",
            "receivers.webhook_configs.http_config.tls_config.key",
            "receivers.slack_configs.api_url",
            "receivers.pagerduty_configs.routing_key",
            "receivers.email_configs.auth_password",
            "receivers.email_configs.tls_config.key",
        ] {
            assert_eq!(kind(p), Some(LeafKind::Secret), "{p}");
        }
        // A webhook URL is a secret too, shown as its address.
        assert_eq!(
            kind("receivers.webhook_configs.url"),
            Some(LeafKind::Secret)
        );
    }

    #[test]
    fn no_secret_is_serialized_or_printed() {
        const S: &str = "S3NT1NEL";
        // A notifier's client key is checked against its certificate when loaded, so this one
        // is real; a line of its body stands for the sentinel.
        let issued = strata_tls::testing::TestCa::new("ca").issue(&["h.example"]);
        let key_line = issued
            .key_pem
            .lines()
            .find(|l| !l.starts_with("-----"))
            .unwrap()
            .to_owned();
        let indent = |pem: &str| pem.trim_end().replace('\n', "\n          ");
        let (cert, key) = (indent(&issued.cert_pem), indent(&issued.key_pem));
        let text = format!(
            "global:
  smtp_from: a@x
  smtp_smarthost: 'x:25'
  smtp_auth_password: {S}1
  slack_api_url: 'https://s.example/{S}2'
  opsgenie_api_key: {S}3
  victorops_api_key: {S}4
  wechat_api_secret: {S}5
  http_config: {{bearer_token: {S}6}}
route: {{receiver: a}}
receivers:
- name: a
  webhook_configs:
  - url: 'http://h.example/{S}7?t={S}8'
    http_config:
      basic_auth: {{username: u, password: {S}9}}
      tls_config:
        cert: |
          {cert}
        key: |
          {key}
  - url: 'http://h.example/x'
    http_config: {{authorization: {{credentials: {S}11}}}}
  slack_configs: [{{api_url: 'https://s.example/{S}12'}}]
  pagerduty_configs: [{{routing_key: {S}13}}]
  email_configs: [{{to: b@x, auth_password: {S}14, tls_config: {{key: {S}15}}}}]
"
        );
        let c = AmConfig::load(&text).unwrap();
        let yaml = serde_yaml::to_string(&c.config).unwrap();
        let json = serde_json::to_string(&c.config).unwrap();
        let debug = format!("{c:?}");
        for (what, out) in [
            ("yaml", &yaml),
            ("json", &json),
            ("debug", &debug),
            ("shown", &c.shown),
        ] {
            assert!(!out.contains(S), "{what}: {out}");
            assert!(!out.contains(&key_line), "{what}: the client key: {out}");
        }
        assert_eq!(c.shown.matches("<secret>").count(), 15, "{}", c.shown);
        // The values are there for the senders.
        let r = &c.receivers["a"];
        assert_eq!(
            r.webhooks[0].url.expose(),
            format!("http://h.example/{S}7?t={S}8")
        );
        assert_eq!(
            r.webhooks[1].http.auth().unwrap(),
            Auth::Header {
                scheme: "Bearer".into(),
                credentials: format!("{S}11").into()
            }
        );
    }

    #[test]
    fn auth_resolution() {
        let c = AmConfig::load(
            "route: {receiver: a}\nreceivers:\n- name: a\n  webhook_configs:\n  - url: http://x/\n    http_config: {basic_auth: {username: u, password: p}}\n  - url: http://y/\n    http_config: {bearer_token: t}\n  - url: http://z/\n    http_config: {authorization: {credentials: c}}\n",
        )
        .unwrap();
        let w = &c.receivers["a"].webhooks;
        assert_eq!(
            w[0].http.auth().unwrap(),
            Auth::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        assert_eq!(
            w[1].http.auth().unwrap(),
            Auth::Header {
                scheme: "Bearer".into(),
                credentials: "t".into()
            }
        );
        assert_eq!(
            w[2].http.auth().unwrap(),
            Auth::Header {
                scheme: "Bearer".into(),
                credentials: "c".into()
            }
        );
    }
}
