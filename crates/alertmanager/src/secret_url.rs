//! Notifier URLs that may carry credentials (a webhook's path token, a Slack hook) and how
//! they are shown: `scheme://host:port/<secret>`.
//!
//! Upstream 0.25 keeps a webhook `url` in clear and `amtool` 0.25 parses the configuration it
//! reads from `/api/v2/status` with a webhook URL type that insists on an http(s) scheme, so the
//! bare `<secret>` later releases write would break `amtool config routes test`. The shown form
//! keeps the scheme and the address (not secret: the receivers firewall and the operator reason
//! about them) and hides the user info, path and query, where tokens live.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use strata_model::{Secret, SECRET_PLACEHOLDER};

/// A URL whose path, query and user info are secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretUrl(Secret);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(Secret::new(url.into()))
    }

    /// The URL, for the request that uses it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// `scheme://host:port/<secret>`, or `<secret>` when the text is not a URL.
    pub fn redacted(&self) -> String {
        redact_url(self.0.expose())
    }
}

impl From<Secret> for SecretUrl {
    fn from(s: Secret) -> Self {
        Self(s)
    }
}

/// What logs and shown configurations say instead of `url`.
pub fn redact_url(url: &str) -> String {
    if url.is_empty() {
        return String::new();
    }
    match reqwest::Url::parse(url) {
        Ok(u) if u.has_host() => {
            let host = u.host_str().unwrap_or_default();
            match u.port() {
                Some(p) => format!("{}://{host}:{p}/{SECRET_PLACEHOLDER}", u.scheme()),
                None => format!("{}://{host}/{SECRET_PLACEHOLDER}", u.scheme()),
            }
        }
        _ => SECRET_PLACEHOLDER.to_string(),
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Secret::deserialize(d)?;
        // The shown form loaded back: refused like a bare placeholder.
        if s.expose().contains(SECRET_PLACEHOLDER) {
            return Err(serde::de::Error::custom(strata_model::PlaceholderError));
        }
        Ok(Self(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_only_scheme_and_address() {
        let u = SecretUrl::new("https://user:pw@hooks.example.com:8443/T0/B1/tok3n?x=1");
        assert_eq!(u.redacted(), "https://hooks.example.com:8443/<secret>");
        assert_eq!(
            SecretUrl::new("http://10.0.0.1/hook").to_string(),
            "http://10.0.0.1/<secret>"
        );
        assert_eq!(redact_url("not a url"), "<secret>");
        assert_eq!(redact_url(""), "");
        let dbg = format!("{u:?}");
        assert!(!dbg.contains("tok3n") && !dbg.contains("pw"), "{dbg}");
        assert_eq!(
            serde_yaml::to_string(&u).unwrap().trim(),
            "https://hooks.example.com:8443/<secret>"
        );
    }

    #[test]
    fn the_shown_form_does_not_load() {
        let ok: SecretUrl = serde_yaml::from_str("http://h/tok").unwrap();
        assert_eq!(ok.expose(), "http://h/tok");
        for shown in ["http://h/<secret>", "<secret>"] {
            let e = serde_yaml::from_str::<SecretUrl>(shown).unwrap_err();
            assert!(e.to_string().contains("placeholder"), "{e}");
        }
    }
}
