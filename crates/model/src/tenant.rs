//! Tenant ids, validated like Mimir's so ids are safe as object-store path segments.

use crate::ModelError;
use std::fmt;
use std::sync::Arc;

/// Maximum tenant id length, as in Cortex/Mimir.
pub const MAX_TENANT_ID_LEN: usize = 150;

/// A validated tenant id. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// Validates an id: 1–150 characters from `[A-Za-z0-9!-_.*'()]`, and not `.` or `..`.
    pub fn new(id: &str) -> Result<Self, ModelError> {
        let bad = |reason| ModelError::InvalidTenant {
            id: id.to_owned(),
            reason,
        };
        if id.is_empty() {
            return Err(bad("tenant id is empty"));
        }
        if id.len() > MAX_TENANT_ID_LEN {
            return Err(bad("tenant id is longer than 150 characters"));
        }
        if id == "." || id == ".." {
            return Err(bad("tenant id must not be '.' or '..'"));
        }
        let ok = id.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'!' | b'-' | b'_' | b'.' | b'*' | b'\'' | b'(' | b')')
        });
        if !ok {
            return Err(bad(
                "tenant id may only contain letters, digits and !-_.*'()",
            ));
        }
        Ok(Self(Arc::from(id)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_tenants_resolve_sorted_and_unique_and_each_is_checked() {
        let header = TenancyConfig {
            mode: TenancyMode::Header,
            ..TenancyConfig::default()
        };
        let ids = |v: Vec<TenantId>| v.iter().map(|t| t.as_str().to_owned()).collect::<Vec<_>>();
        assert_eq!(
            ids(header.resolve_all(Some("b|a|b"), None).unwrap()),
            vec!["a", "b"]
        );
        assert_eq!(ids(header.resolve_all(Some("a"), None).unwrap()), vec!["a"]);
        assert!(header.resolve_all(Some("a||b"), None).is_err());
        assert!(header.resolve_all(Some("a|../b"), None).is_err());
        assert_eq!(
            header.resolve_all(None, None),
            Err(TenantError::MissingHeader)
        );
        // Single-tenant mode ignores the header, `|` or not.
        let single = TenancyConfig::default();
        assert_eq!(
            ids(single.resolve_all(Some("a|b"), None).unwrap()),
            vec!["anonymous"]
        );
    }

    #[test]
    fn validation() {
        assert!(TenantId::new("team-a_1.prod").is_ok());
        assert!(TenantId::new("").is_err());
        assert!(TenantId::new("..").is_err());
        assert!(TenantId::new("a/b").is_err());
        assert!(TenantId::new(&"x".repeat(151)).is_err());
        assert!(TenantId::new(&"x".repeat(150)).is_ok());
    }
}

/// How a request names its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TenancyMode {
    /// Everything belongs to `single_tenant_id`; `X-Scope-OrgID` is ignored.
    Single,
    /// The `X-Scope-OrgID` header is required (Cortex/Mimir convention).
    Header,
    /// The basic-auth user name is the tenant (Prometheus 2.42 sends basic auth but no custom
    /// remote-write headers); `X-Scope-OrgID` wins when both are present.
    BasicAuth,
}

/// Tenancy settings shared by every HTTP-facing component (`tenancy:` in the config file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenancyConfig {
    pub mode: TenancyMode,
    /// The tenant of single-tenant mode.
    pub single_tenant_id: String,
}

impl Default for TenancyConfig {
    fn default() -> Self {
        Self {
            mode: TenancyMode::Single,
            single_tenant_id: "anonymous".into(),
        }
    }
}

/// Why no tenant could be found for a request (HTTP 401).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantError {
    #[error("no org id: send the X-Scope-OrgID header")]
    MissingHeader,
    #[error("no org id: send the X-Scope-OrgID header or basic-auth credentials")]
    MissingAuth,
    #[error("malformed basic-auth Authorization header")]
    BadAuthHeader,
    #[error("{0}")]
    Invalid(String),
}

impl TenancyConfig {
    /// Checks the configured single tenant id; the error names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        TenantId::new(&self.single_tenant_id).map(|_| ())
    }

    /// Resolves the tenant of a request from its `X-Scope-OrgID` and `Authorization` headers.
    pub fn resolve(
        &self,
        org_id: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<TenantId, TenantError> {
        let checked = |id: &str| TenantId::new(id).map_err(|e| TenantError::Invalid(e.to_string()));
        match self.mode {
            TenancyMode::Single => checked(&self.single_tenant_id),
            TenancyMode::Header => checked(org_id.ok_or(TenantError::MissingHeader)?),
            TenancyMode::BasicAuth => {
                if let Some(id) = org_id {
                    return checked(id);
                }
                let auth = authorization.ok_or(TenantError::MissingAuth)?;
                let user = basic_auth_user(auth).ok_or(TenantError::BadAuthHeader)?;
                checked(&user)
            }
        }
    }
}

impl TenancyConfig {
    /// Resolves the tenants of a read that may span several (tenant federation): an
    /// `X-Scope-OrgID` of ids separated by `|`, each checked, sorted and without duplicates.
    /// Without a header (or in single-tenant mode) it is the one tenant [`Self::resolve`]
    /// finds.
    pub fn resolve_all(
        &self,
        org_id: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Vec<TenantId>, TenantError> {
        match (self.mode, org_id) {
            (TenancyMode::Header | TenancyMode::BasicAuth, Some(h)) if h.contains('|') => {
                let mut out = h
                    .split('|')
                    .map(|id| TenantId::new(id).map_err(|e| TenantError::Invalid(e.to_string())))
                    .collect::<Result<Vec<_>, _>>()?;
                out.sort();
                out.dedup();
                Ok(out)
            }
            _ => Ok(vec![self.resolve(org_id, authorization)?]),
        }
    }
}

fn basic_auth_user(header: &str) -> Option<String> {
    use base64::Engine;
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (user, _) = s.split_once(':')?;
    Some(user.to_owned())
}

#[cfg(test)]
mod tenancy_tests {
    use super::*;

    #[test]
    fn modes() {
        let single = TenancyConfig::default();
        assert_eq!(
            single.resolve(Some("x"), None).unwrap().as_str(),
            "anonymous"
        );
        let header = TenancyConfig {
            mode: TenancyMode::Header,
            ..Default::default()
        };
        assert_eq!(header.resolve(None, None), Err(TenantError::MissingHeader));
        assert_eq!(header.resolve(Some("t1"), None).unwrap().as_str(), "t1");
        assert!(matches!(
            header.resolve(Some("a/b"), None),
            Err(TenantError::Invalid(_))
        ));
        let basic = TenancyConfig {
            mode: TenancyMode::BasicAuth,
            ..Default::default()
        };
        // "team1:secret"
        assert_eq!(
            basic
                .resolve(None, Some("Basic dGVhbTE6c2VjcmV0"))
                .unwrap()
                .as_str(),
            "team1"
        );
        assert_eq!(
            basic
                .resolve(Some("t2"), Some("Basic dGVhbTE6c2VjcmV0"))
                .unwrap()
                .as_str(),
            "t2"
        );
        assert_eq!(
            basic.resolve(None, Some("Bearer x")),
            Err(TenantError::BadAuthHeader)
        );
        assert_eq!(basic.resolve(None, None), Err(TenantError::MissingAuth));
    }
}
