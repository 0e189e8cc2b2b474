//! Built-in authentication (`server.auth`): credentials from a users file, verified once and
//! then remembered, and the middleware in front of every route that checks them and the tenant
//! a request acts for.

mod middleware;
mod users;

pub use middleware::authenticate;
pub use users::{hash_password, hash_token, Principal, Users};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use strata_model::{TenancyConfig, TenancyMode};
use tokio::sync::{watch, Semaphore};

/// `server.auth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a credential from the users file on every route but the health checks.
    pub enabled: bool,
    /// The users file (YAML; see docs/security.md). Read again when it changes.
    pub users_file: String,
    /// How often the users file's modification time is checked.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            users_file: String::new(),
            reload_interval: Duration::from_secs(5),
        }
    }
}

impl AuthConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.enabled && self.users_file.trim().is_empty() {
            anyhow::bail!("server.auth.users_file: must be set when server.auth.enabled is true");
        }
        if self.reload_interval < Duration::from_millis(100) {
            anyhow::bail!("server.auth.reload_interval: must be at least 100ms");
        }
        Ok(())
    }
}

/// Remembered verifications per users-file version: at most this many credentials.
const CACHE_ENTRIES: usize = 10_000;

/// One version of the users file with what was verified against it.
#[derive(Debug)]
struct Snapshot {
    users: Users,
    /// SHA-256 of a presented `Authorization` value → the principal it proved, or `None` for
    /// a credential that failed (so a client retrying a wrong password costs no hash either).
    verified: Mutex<HashMap<[u8; 32], Option<usize>>>,
}

/// A credential as presented.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential {
    Basic { username: String, password: String },
    Bearer(String),
}

impl Credential {
    /// Parses an `Authorization` header value.
    pub fn parse(header: &str) -> Option<Self> {
        use base64::Engine;
        let (scheme, rest) = header.trim().split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let s = String::from_utf8(raw).ok()?;
            let (u, p) = s.split_once(':')?;
            Some(Credential::Basic {
                username: u.to_owned(),
                password: p.to_owned(),
            })
        } else if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
            Some(Credential::Bearer(rest.to_owned()))
        } else {
            None
        }
    }
}

/// The authentication state of the process.
#[derive(Debug)]
pub struct Auth {
    pub tenancy: TenancyConfig,
    file: PathBuf,
    current: RwLock<Arc<Snapshot>>,
    /// Slow verifications in flight at once: a flood of unknown credentials queues here
    /// instead of taking every core.
    slots: Semaphore,
}

impl Auth {
    /// Loads the users file (it must be valid at start).
    pub fn load(cfg: &AuthConfig, tenancy: TenancyConfig) -> anyhow::Result<Arc<Self>> {
        let file = PathBuf::from(&cfg.users_file);
        let users = Users::load(&file)?;
        tracing::info!(users = users.principals.len(), file = %file.display(), "authentication is on");
        Ok(Arc::new(Self::with_users(users, tenancy, file)))
    }

    fn with_users(users: Users, tenancy: TenancyConfig, file: PathBuf) -> Self {
        Self {
            tenancy,
            file,
            current: RwLock::new(Arc::new(Snapshot {
                users,
                verified: Mutex::default(),
            })),
            slots: Semaphore::new(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            ),
        }
    }

    fn replace(&self, users: Users) {
        *self.current.write() = Arc::new(Snapshot {
            users,
            verified: Mutex::default(),
        });
    }

    /// The principal an `Authorization` header value proves, if any. A value seen before (with
    /// the same users file) is answered from memory; otherwise the hash is checked off the
    /// async threads.
    pub async fn verify(&self, authorization: &str) -> Option<Principal> {
        let snap = self.current.read().clone();
        let key = users::sha256(authorization.as_bytes());
        if let Some(hit) = snap.verified.lock().get(&key) {
            return hit.map(|i| snap.users.principals[i].clone());
        }
        let cred = Credential::parse(authorization)?;
        let _slot = self.slots.acquire().await.ok()?;
        // Another request may have verified the same credential while this one waited.
        if let Some(hit) = snap.verified.lock().get(&key) {
            return hit.map(|i| snap.users.principals[i].clone());
        }
        let s = snap.clone();
        let found = tokio::task::spawn_blocking(move || match cred {
            Credential::Basic { username, password } => {
                s.users.check_basic(&username, password.as_bytes())
            }
            Credential::Bearer(token) => s.users.check_token(token.as_bytes()),
        })
        .await
        .ok()
        .flatten();
        {
            let mut cache = snap.verified.lock();
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key, found);
        }
        found.map(|i| snap.users.principals[i].clone())
    }

    /// Checks the users file every `interval` and loads it again when it changed; a file that
    /// does not load keeps the previous users (logged once per change).
    pub async fn watch_file(self: Arc<Self>, interval: Duration, mut stop: watch::Receiver<bool>) {
        let stamp = |p: &PathBuf| {
            std::fs::metadata(p).ok().map(|m| {
                (
                    m.modified().ok(),
                    m.len(),
                    std::os::unix::fs::MetadataExt::ino(&m),
                )
            })
        };
        let mut seen = stamp(&self.file);
        let mut tick = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let now = stamp(&self.file);
            if now == seen {
                continue;
            }
            seen = now;
            let file = self.file.clone();
            match tokio::task::spawn_blocking(move || Users::load(&file)).await {
                Ok(Ok(users)) => {
                    tracing::info!(users = users.principals.len(), file = %self.file.display(), "users file reloaded");
                    self.replace(users);
                }
                Ok(Err(e)) => tracing::error!(
                    error = format!("{e:#}"),
                    "users file changed but does not load; keeping the previous users"
                ),
                Err(_) => {}
            }
        }
    }
}

/// Logs how requests are authenticated, once at start.
pub fn log_mode(cfg: &AuthConfig, tenancy: &TenancyConfig) {
    if cfg.enabled {
        return;
    }
    tracing::warn!("authentication is off: any client can act for any tenant");
    if tenancy.mode == TenancyMode::BasicAuth {
        tracing::warn!("tenancy.mode is basic_auth but server.auth is off: the basic-auth user name names the tenant and passwords are not checked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_parse() {
        // "team1:se:cret"
        assert_eq!(
            Credential::parse("Basic dGVhbTE6c2U6Y3JldA=="),
            Some(Credential::Basic {
                username: "team1".into(),
                password: "se:cret".into()
            })
        );
        assert_eq!(
            Credential::parse("bearer abc"),
            Some(Credential::Bearer("abc".into()))
        );
        assert_eq!(Credential::parse("Bearer "), None);
        assert_eq!(Credential::parse("Basic !!!"), None);
        assert_eq!(Credential::parse("Digest x"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verifications_are_remembered_per_users_file() {
        let text = format!(
            "users:\n- name: robot\n  bearer_token_hash: '{}'\n  tenants: [t]\n",
            hash_token(b"tok")
        );
        let auth = Auth::with_users(
            Users::parse(&text).unwrap(),
            TenancyConfig::default(),
            PathBuf::from("/nonexistent"),
        );
        assert_eq!(auth.verify("Bearer tok").await.unwrap().name, "robot");
        assert!(auth.verify("Bearer nope").await.is_none());
        let cached = auth.current.read().verified.lock().len();
        assert_eq!(cached, 2, "a success and a failure remembered");
        assert_eq!(auth.verify("Bearer tok").await.unwrap().name, "robot");
        // A new users file forgets what was verified against the old one.
        auth.replace(Users::parse("users: []\n").unwrap());
        assert!(auth.verify("Bearer tok").await.is_none());
    }
}
