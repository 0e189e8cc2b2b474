//! The users file (`server.auth.users_file`): who may call Strata, with which credential, for
//! which tenants.
//!
//! ```yaml
//! users:
//!   - name: team-a-prometheus          # shown in logs and errors; default: the username
//!     basic_auth:
//!       username: team-a
//!       password_hash: $argon2id$v=19$m=19456,t=2,p=1$...   # or bcrypt: $2b$12$...
//!     tenants: [team-a]
//!   - name: grafana
//!     bearer_token_hash: sha256:9f86d0...  # or an argon2/bcrypt hash of the token
//!     tenants: ["*"]                     # every tenant
//!   - name: ops
//!     basic_auth: {username: ops, password_hash: $2b$12$...}
//!     admin: true                        # /config, ring Forget, shutdown, membership, reload
//! ```

use anyhow::{bail, Context};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use strata_model::{Secret, TenantId};

/// The file's content.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UsersFile {
    users: Vec<UserEntry>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UserEntry {
    name: String,
    basic_auth: Option<BasicAuthEntry>,
    bearer_token_hash: Option<Secret>,
    tenants: Vec<String>,
    admin: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct BasicAuthEntry {
    username: String,
    password_hash: Secret,
}

/// A slow password hash (argon2 or bcrypt) or, for tokens only, a SHA-256 digest.
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialHash {
    /// A PHC string (`$argon2id$...`).
    Argon2(Secret),
    /// `$2a$`, `$2b$`, `$2x$` or `$2y$` (htpasswd -B).
    Bcrypt(Secret),
    /// `sha256:<hex>`: for random tokens only (a fast hash is fine for high-entropy secrets,
    /// and a token is then found without trying every user's hash).
    Sha256([u8; 32]),
}

impl std::fmt::Debug for CredentialHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CredentialHash::Argon2(_) => "argon2(<secret>)",
            CredentialHash::Bcrypt(_) => "bcrypt(<secret>)",
            CredentialHash::Sha256(_) => "sha256(<secret>)",
        })
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl CredentialHash {
    /// Parses a hash; `field` names it in errors (never its value).
    fn parse(s: &Secret, field: &str, allow_sha256: bool) -> anyhow::Result<Self> {
        let v = s.expose().trim();
        if v.starts_with("$argon2") {
            argon2::PasswordHash::new(v)
                .map_err(|e| anyhow::anyhow!("{field}: not a valid argon2 hash ({e})"))?;
            return Ok(Self::Argon2(Secret::new(v)));
        }
        if ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| v.starts_with(p))
        {
            if v.len() != 60 {
                bail!("{field}: not a valid bcrypt hash (60 characters expected)");
            }
            return Ok(Self::Bcrypt(Secret::new(v)));
        }
        if let Some(h) = v.strip_prefix("sha256:") {
            if !allow_sha256 {
                bail!("{field}: sha256 is for bearer tokens only: hash passwords with argon2 or bcrypt (`strata --hash-password`)");
            }
            return hex32(h)
                .map(Self::Sha256)
                .with_context(|| format!("{field}: sha256: must be followed by 64 hex digits"));
        }
        bail!(
            "{field}: unknown hash format: use argon2 ($argon2id$...), bcrypt ($2b$...){}",
            if allow_sha256 { " or sha256:<hex>" } else { "" }
        )
    }

    /// Whether `secret` matches. Slow by design for argon2 and bcrypt: call off the async
    /// threads.
    pub fn verify(&self, secret: &[u8]) -> bool {
        match self {
            CredentialHash::Argon2(h) => {
                use argon2::PasswordVerifier;
                argon2::PasswordHash::new(h.expose()).is_ok_and(|parsed| {
                    argon2::Argon2::default()
                        .verify_password(secret, &parsed)
                        .is_ok()
                })
            }
            CredentialHash::Bcrypt(h) => bcrypt::verify(secret, h.expose()).unwrap_or(false),
            CredentialHash::Sha256(d) => {
                // Equal length digests; the comparison visits every byte.
                sha256(secret)
                    .iter()
                    .zip(d.iter())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
            }
        }
    }
}

/// The tenants a principal may act for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenants {
    /// `"*"`.
    All,
    Some(Vec<TenantId>),
}

/// Someone the users file lets in.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Shown in logs and errors.
    pub name: String,
    /// The basic-auth user name, when the entry has one.
    pub username: Option<String>,
    pub tenants: Tenants,
    pub admin: bool,
    password: Option<CredentialHash>,
    token: Option<CredentialHash>,
}

impl Principal {
    /// Whether it may act for `tenant` (in `basic_auth` tenancy its own user name is a tenant
    /// it may always act for: the caller passes `own_username`).
    pub fn may_act_for(&self, tenant: &str, own_username: bool) -> bool {
        if own_username && self.username.as_deref() == Some(tenant) {
            return true;
        }
        match &self.tenants {
            Tenants::All => true,
            Tenants::Some(v) => v.iter().any(|t| t.as_str() == tenant),
        }
    }

    /// The one tenant it may act for, if it has exactly one (and not `*`).
    pub fn only_tenant(&self) -> Option<&TenantId> {
        match &self.tenants {
            Tenants::Some(v) if v.len() == 1 => v.first(),
            _ => None,
        }
    }
}

/// A loaded users file.
#[derive(Debug, Default)]
pub struct Users {
    pub principals: Vec<Principal>,
    by_username: HashMap<String, usize>,
    by_token_digest: HashMap<[u8; 32], usize>,
    /// Principals whose token hash is slow: a token is tried against each.
    slow_tokens: Vec<usize>,
}

impl Users {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read users file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("users file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let f: UsersFile = if text.trim().is_empty() {
            UsersFile::default()
        } else {
            serde_yaml::from_str(text)?
        };
        let mut u = Users::default();
        let mut names = HashMap::new();
        for (i, e) in f.users.into_iter().enumerate() {
            let field = format!("users[{i}]");
            let username = e.basic_auth.as_ref().map(|b| b.username.clone());
            let name = if !e.name.is_empty() {
                e.name.clone()
            } else if let Some(un) = &username {
                un.clone()
            } else {
                bail!("{field}.name: must be set for a user without basic_auth");
            };
            if names.insert(name.clone(), i).is_some() {
                bail!("{field}.name: {name:?} appears twice");
            }
            let password = match &e.basic_auth {
                Some(b) => {
                    if b.username.is_empty() || b.username.contains(':') {
                        bail!("{field}.basic_auth.username: must be set and contain no ':'");
                    }
                    if u.by_username.insert(b.username.clone(), i).is_some() {
                        bail!(
                            "{field}.basic_auth.username: {:?} appears twice",
                            b.username
                        );
                    }
                    Some(CredentialHash::parse(
                        &b.password_hash,
                        &format!("{field}.basic_auth.password_hash"),
                        false,
                    )?)
                }
                None => None,
            };
            let token = match &e.bearer_token_hash {
                Some(h) => {
                    let h = CredentialHash::parse(h, &format!("{field}.bearer_token_hash"), true)?;
                    match &h {
                        CredentialHash::Sha256(d) => {
                            if u.by_token_digest.insert(*d, i).is_some() {
                                bail!(
                                    "{field}.bearer_token_hash: the same token hash appears twice"
                                );
                            }
                        }
                        _ => u.slow_tokens.push(i),
                    }
                    Some(h)
                }
                None => None,
            };
            if password.is_none() && token.is_none() {
                bail!("{field}: needs basic_auth or bearer_token_hash");
            }
            let tenants = if e.tenants.iter().any(|t| t == "*") {
                if e.tenants.len() > 1 {
                    bail!("{field}.tenants: \"*\" stands for every tenant and must be alone");
                }
                Tenants::All
            } else {
                Tenants::Some(
                    e.tenants
                        .iter()
                        .map(|t| {
                            TenantId::new(t)
                                .map_err(|err| anyhow::anyhow!("{field}.tenants: {err}"))
                        })
                        .collect::<anyhow::Result<_>>()?,
                )
            };
            u.principals.push(Principal {
                name,
                username,
                tenants,
                admin: e.admin,
                password,
                token,
            });
        }
        Ok(u)
    }

    /// The principal of a basic-auth user whose password matches (slow).
    pub fn check_basic(&self, username: &str, password: &[u8]) -> Option<usize> {
        let i = *self.by_username.get(username)?;
        self.principals[i]
            .password
            .as_ref()
            .is_some_and(|h| h.verify(password))
            .then_some(i)
    }

    /// The principal of a bearer token (slow when tokens have slow hashes).
    pub fn check_token(&self, token: &[u8]) -> Option<usize> {
        if let Some(i) = self.by_token_digest.get(&sha256(token)) {
            return Some(*i);
        }
        self.slow_tokens.iter().copied().find(|i| {
            self.principals[*i]
                .token
                .as_ref()
                .is_some_and(|h| h.verify(token))
        })
    }
}

/// An argon2id hash of `secret` with default parameters and a random salt (what
/// `strata --hash-password` prints).
pub fn hash_password(secret: &[u8]) -> anyhow::Result<String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(secret, &salt)
        .map_err(|e| anyhow::anyhow!("cannot hash: {e}"))?
        .to_string())
}

/// `sha256:<hex>` of a token (what `strata --hash-token` prints).
pub fn hash_token(token: &[u8]) -> String {
    let mut s = String::from("sha256:");
    for b in sha256(token) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cheap argon2 parameters keep the tests fast; the format is the same.
    fn cheap_argon2(pw: &str) -> String {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let params = argon2::Params::new(64, 1, 1, None).unwrap();
        let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        a.hash_password(
            pw.as_bytes(),
            &SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap(),
        )
        .unwrap()
        .to_string()
    }

    #[test]
    fn verifies_argon2_bcrypt_and_sha256() {
        let bc = bcrypt::hash_with_salt("pw-b", 4, [7u8; 16])
            .unwrap()
            .to_string();
        let text = format!(
            "users:\n- basic_auth: {{username: a, password_hash: '{}'}}\n  tenants: [t-a]\n- basic_auth: {{username: b, password_hash: '{bc}'}}\n  tenants: ['*']\n  admin: true\n- name: robot\n  bearer_token_hash: '{}'\n  tenants: [t-c]\n- name: slow-robot\n  bearer_token_hash: '{}'\n  tenants: [t-d]\n",
            cheap_argon2("pw-a"),
            hash_token(b"tok-c"),
            cheap_argon2("tok-d"),
        );
        let u = Users::parse(&text).unwrap();
        assert_eq!(u.check_basic("a", b"pw-a"), Some(0));
        assert_eq!(u.check_basic("a", b"pw-b"), None);
        assert_eq!(u.check_basic("b", b"pw-b"), Some(1));
        assert_eq!(u.check_basic("nobody", b"pw-b"), None);
        assert_eq!(u.check_token(b"tok-c"), Some(2));
        assert_eq!(u.check_token(b"tok-d"), Some(3));
        assert_eq!(u.check_token(b"pw-a"), None);
        let p = &u.principals[0];
        assert_eq!(p.name, "a");
        assert!(p.may_act_for("t-a", false));
        assert!(!p.may_act_for("t-b", false));
        assert!(
            p.may_act_for("a", true),
            "its own user name in basic_auth tenancy"
        );
        assert!(!p.may_act_for("a", false));
        assert!(u.principals[1].may_act_for("anything", false));
        assert!(u.principals[1].admin && !p.admin);
        assert_eq!(u.principals[2].only_tenant().unwrap().as_str(), "t-c");
        // Debug never shows a hash.
        let dbg = format!("{u:?}");
        assert!(!dbg.contains("$argon2") && !dbg.contains("$2b$"), "{dbg}");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("users:\n- tenants: [a]\n", "users[0].name"),
            ("users:\n- name: x\n  tenants: [a]\n", "users[0]: needs"),
            (
                "users:\n- basic_auth: {username: a, password_hash: plain}\n",
                "users[0].basic_auth.password_hash: unknown hash format",
            ),
            (
                "users:\n- basic_auth: {username: a, password_hash: 'sha256:00'}\n",
                "users[0].basic_auth.password_hash: sha256 is for bearer tokens only",
            ),
            (
                "users:\n- name: r\n  bearer_token_hash: 'sha256:zz'\n",
                "users[0].bearer_token_hash: sha256:",
            ),
            (
                "users:\n- name: r\n  bearer_token_hash: 'sha256:0000000000000000000000000000000000000000000000000000000000000000'\n  tenants: ['a/b']\n",
                "users[0].tenants",
            ),
            ("users:\n- name: r\n  bogus: 1\n", "bogus"),
        ];
        for (text, want) in cases {
            let e = format!("{:#}", Users::parse(text).unwrap_err());
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains("plain"), "no secret in errors: {e}");
        }
    }

    #[test]
    fn the_printed_hashes_verify() {
        let h = hash_password(b"s3cret").unwrap();
        let parsed = CredentialHash::parse(&Secret::new(h), "x", false).unwrap();
        assert!(parsed.verify(b"s3cret"));
        assert!(!parsed.verify(b"s3cret!"));
        let t = CredentialHash::parse(&Secret::new(hash_token(b"tok")), "x", true).unwrap();
        assert!(t.verify(b"tok") && !t.verify(b"tok2"));
    }
}
