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

/// A configuration that does not load: either the YAML does not fit the schema (the message
/// names the field and the line) or a value breaks a rule (the message names the field path).
#[derive(Debug, thiserror::Error)]
pub enum AmConfigError {
    #[error("{0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
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
    pub smtp_from: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_hello: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_smarthost: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_username: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_password_file: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_secret: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_auth_identity: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_require_tls: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_api_url: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_api_url_file: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty_url: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_url: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opsgenie_api_key_file: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_url: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_secret: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_api_corp_id: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_url: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_key: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victorops_api_key_file: Opaque,
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
/// supported for now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<serde_yaml::Value>,
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
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
}

/// How a notifier authenticates, resolved from an `http_config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Basic {
        username: String,
        password: String,
    },
    /// `Authorization: <scheme> <credentials>`.
    Header {
        scheme: String,
        credentials: String,
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
        if self.proxy_url.is_some() {
            return Err(invalid(
                format!("{field}.proxy_url"),
                "proxies are not supported by Strata yet",
            ));
        }
        Ok(())
    }

    /// Reads credentials (including `*_file` ones) into an [`Auth`].
    pub fn auth(&self) -> std::io::Result<Auth> {
        let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
        if let Some(b) = &self.basic_auth {
            let password = match (&b.password, &b.password_file) {
                (Some(p), _) => p.clone(),
                (None, Some(f)) => read(f)?,
                (None, None) => String::new(),
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
                (None, None) => String::new(),
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_configs: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty_configs: Opaque,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_configs: Opaque,
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
    #[serde(default)]
    pub url: Option<String>,
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

/// A webhook integration ready for sending.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub send_resolved: bool,
    pub max_alerts: u64,
    pub http: HttpConfig,
}

/// A receiver ready for sending: its integrations.
#[derive(Debug, Clone)]
pub struct Receiver {
    pub name: String,
    pub webhooks: Vec<Webhook>,
}

/// A loaded, validated configuration: the parsed file, its original text and the compiled
/// route tree, receivers and inhibit rules.
#[derive(Debug)]
pub struct LoadedConfig {
    pub original: String,
    pub config: AmConfig,
    pub resolve_timeout: Duration,
    pub route: Arc<Route>,
    pub receivers: BTreeMap<String, Arc<Receiver>>,
    pub inhibit_rules: Vec<InhibitRule>,
    /// Named time intervals (`time_intervals` and the deprecated `mute_time_intervals`).
    pub time_intervals: HashMap<String, Vec<TimeInterval>>,
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
    /// Parses and validates a configuration text.
    pub fn load(text: &str) -> Result<LoadedConfig, AmConfigError> {
        let config: AmConfig = if text.trim().is_empty() {
            AmConfig::default()
        } else {
            serde_yaml::from_str(text)?
        };
        config.compile(text.to_string())
    }

    fn compile(self, original: String) -> Result<LoadedConfig, AmConfigError> {
        // Receivers.
        let mut receivers = BTreeMap::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let field = format!("receivers[{i}]");
            if r.name.is_empty() {
                return Err(invalid(format!("{field}.name"), "missing name in receiver"));
            }
            let unsupported = [
                ("email_configs", r.email_configs.is_some()),
                ("pagerduty_configs", r.pagerduty_configs.is_some()),
                ("slack_configs", r.slack_configs.is_some()),
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
                    "this integration is not supported by Strata yet (only webhook_configs are)",
                ));
            }
            let mut webhooks = Vec::new();
            for (j, w) in r.webhook_configs.iter().enumerate() {
                let wf = format!("{field}.webhook_configs[{j}]");
                let url = w
                    .url
                    .clone()
                    .ok_or_else(|| invalid(format!("{wf}.url"), "missing URL in webhook config"))?;
                let parsed = reqwest::Url::parse(&url).map_err(|e| {
                    invalid(format!("{wf}.url"), format!("invalid URL {url:?}: {e}"))
                })?;
                match parsed.scheme() {
                    "http" => {}
                    "https" => {
                        return Err(invalid(
                            format!("{wf}.url"),
                            "https webhook URLs are not supported by Strata yet",
                        ))
                    }
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
                });
            }
            let rec = Arc::new(Receiver {
                name: r.name.clone(),
                webhooks,
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
            original,
            resolve_timeout: self.global.resolve_timeout.0,
            config: self,
            route,
            receivers,
            inhibit_rules,
            time_intervals,
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
        assert_eq!(c.original, LAB);
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
        let e = err("route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{}]}]");
        assert!(e.contains("receivers[0].slack_configs"), "{e}");
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
