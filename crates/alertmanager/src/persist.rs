//! What survives a restart, per tenant, under `<state dir>/<tenant>/`:
//!
//! - `snapshot.json`: silences, notification log and alerts ([`SnapshotFile`], versioned);
//! - `config.yaml`: the tenant's own configuration uploaded through the config API
//!   ([`UserConfig`], Mimir's document shape).
//!
//! Both are replaced atomically: written to a temporary file, fsynced, renamed over the old
//! one, and the directory fsynced, so a crash leaves either the old or the new file, never a
//! torn one.

use crate::alert::Alert;
use crate::dispatch::Snapshot;
use crate::error::{SnapshotError, UserConfigError};
use crate::nflog::NflogEntry;
use crate::silence::Silence;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The snapshot format this build writes and reads. Bump it when [`SnapshotFile`] (or a type it
/// contains) changes shape, and keep a fixture of every version under `tests/fixtures/`.
pub const SNAPSHOT_VERSION: u32 = 1;
pub const SNAPSHOT_FILE: &str = "snapshot.json";
pub const USER_CONFIG_FILE: &str = "config.yaml";
pub const CONFIG_META_FILE: &str = "config-meta.json";

/// When a tenant's own configuration was last set or deleted: replicas of the ring keep the
/// latest (last writer wins), so one that missed an upload or a deletion catches up. Stored
/// beside `config.yaml`; a deletion leaves this record as its tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigMeta {
    pub updated_at: Timestamp,
    pub deleted: bool,
}

impl ConfigMeta {
    /// Reads `path`; `Ok(None)` when it does not exist (configurations stored by earlier
    /// builds: they lose to any recorded change).
    pub fn read(path: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::from)?;
        write_atomic(path, &bytes)
    }
}

/// A tenant's configuration as replicas exchange it: the record and, unless deleted, the
/// document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRecord {
    pub meta: ConfigMeta,
    pub config: Option<UserConfig>,
}

/// The on-disk snapshot of one tenant.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotFile {
    pub version: u32,
    pub tenant: String,
    pub taken_at: Timestamp,
    pub silences: Vec<Silence>,
    pub nflog: Vec<NflogEntry>,
    pub alerts: Vec<Arc<Alert>>,
}

/// [`SnapshotFile`] by reference, to write a snapshot without copying the state. Its fields
/// must stay those of [`SnapshotFile`], in the same order (a unit test holds them together).
#[derive(Serialize)]
pub struct SnapshotFileRef<'a> {
    pub version: u32,
    pub tenant: &'a str,
    pub taken_at: Timestamp,
    pub silences: &'a [Silence],
    pub nflog: &'a [NflogEntry],
    pub alerts: &'a [Arc<Alert>],
}

impl<'a> SnapshotFileRef<'a> {
    pub fn new(tenant: &'a str, taken_at: Timestamp, snap: &'a Snapshot) -> Self {
        Self {
            version: SNAPSHOT_VERSION,
            tenant,
            taken_at,
            silences: &snap.silences,
            nflog: &snap.nflog,
            alerts: &snap.alerts,
        }
    }
}

impl SnapshotFile {
    pub fn new(tenant: &str, taken_at: Timestamp, snap: Snapshot) -> Self {
        Self {
            version: SNAPSHOT_VERSION,
            tenant: tenant.to_string(),
            taken_at,
            silences: snap.silences,
            nflog: snap.nflog,
            alerts: snap.alerts,
        }
    }

    pub fn into_snapshot(self) -> Snapshot {
        Snapshot {
            silences: self.silences,
            nflog: self.nflog,
            alerts: self.alerts,
        }
    }

    /// Decodes a snapshot, checking the version before the body so that a file from a newer
    /// build says so instead of failing on some unknown field.
    pub fn decode(bytes: &[u8], tenant: &str) -> Result<Self, SnapshotError> {
        #[derive(Deserialize)]
        struct Version {
            version: u64,
        }
        let v: Version = serde_json::from_slice(bytes).map_err(SnapshotError::Decode)?;
        if v.version != u64::from(SNAPSHOT_VERSION) {
            return Err(SnapshotError::UnsupportedVersion {
                found: v.version,
                supported: SNAPSHOT_VERSION,
            });
        }
        let file: SnapshotFile = serde_json::from_slice(bytes).map_err(SnapshotError::Decode)?;
        if file.tenant != tenant {
            return Err(SnapshotError::WrongTenant {
                found: file.tenant,
                expected: tenant.to_string(),
            });
        }
        Ok(file)
    }

    /// Reads `path`; `Ok(None)` when it does not exist.
    pub fn read(path: &Path, tenant: &str) -> Result<Option<Self>, SnapshotError> {
        match std::fs::read(path) {
            Ok(bytes) => Self::decode(&bytes, tenant).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A tenant's configuration as Mimir's `/api/v1/alerts` takes it: the `alertmanager.yml` text
/// and the template files it may reference. Its serialization is the stored (and replicated)
/// form and holds the secrets; the API shows [`crate::amconfig::LoadedConfig::shown`] instead,
/// and `{:?}` leaves the text out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    #[serde(default)]
    pub template_files: BTreeMap<String, String>,
    #[serde(default)]
    pub alertmanager_config: String,
}

impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field(
                "template_files",
                &self.template_files.keys().collect::<Vec<_>>(),
            )
            .field("alertmanager_config", &"<secret>")
            .finish()
    }
}

impl UserConfig {
    /// Parses an uploaded document and checks it: a configuration that would not load is
    /// refused here, before anything is stored.
    pub fn parse(text: &str) -> Result<(Self, crate::amconfig::LoadedConfig), UserConfigError> {
        let cfg: UserConfig = serde_yaml::from_str(text)?;
        let loaded = cfg.check()?;
        Ok((cfg, loaded))
    }

    pub fn check(&self) -> Result<crate::amconfig::LoadedConfig, UserConfigError> {
        if self.alertmanager_config.trim().is_empty() {
            return Err(UserConfigError::Empty);
        }
        for name in self.template_files.keys() {
            // Names become file names when templates are rendered; nothing may escape the
            // tenant's directory.
            let plain = !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains('/')
                && !name.contains('\\');
            if !plain {
                return Err(UserConfigError::TemplateName(name.clone()));
            }
        }
        crate::amconfig::AmConfig::load_tenant(&self.alertmanager_config, &self.template_files)
            .map_err(UserConfigError::Invalid)
    }

    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        serde_yaml::to_string(self)
    }
}

/// Replaces `path` with `bytes` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Replaces `path` atomically and durably with what `write` writes, streamed through a buffer
/// (a snapshot of many alerts is never held in memory whole).
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut w = std::io::BufWriter::with_capacity(64 << 10, std::fs::File::create(&tmp)?);
        write(&mut w)?;
        let f = w
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// A writer that only hashes what goes through it (XXH3-128): detects a changed state without
/// holding its serialization.
#[derive(Default)]
pub struct DigestWriter(xxhash_rust::xxh3::Xxh3Default);

impl DigestWriter {
    pub fn finish(&self) -> u128 {
        self.0.digest128()
    }
}

impl Write for DigestWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Removes `path` (if present) durably.
pub fn remove_durably(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A rename or unlink is durable only once the directory entry is on disk.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    #[test]
    fn snapshot_roundtrip_and_refusals() {
        let t = parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
        let file = SnapshotFile::new("team-a", t, Snapshot::default());
        let bytes = serde_json::to_vec(&file).unwrap();
        let back = SnapshotFile::decode(&bytes, "team-a").unwrap();
        assert_eq!(back.taken_at, t);
        assert!(matches!(
            SnapshotFile::decode(&bytes, "team-b"),
            Err(SnapshotError::WrongTenant { .. })
        ));
        let newer = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\"version\":1", "\"version\":2");
        let e = SnapshotFile::decode(newer.as_bytes(), "team-a").unwrap_err();
        assert!(e.to_string().contains("version 2 is not supported"), "{e}");
        let e = SnapshotFile::decode(&bytes[..bytes.len() / 2], "team-a").unwrap_err();
        assert!(matches!(e, SnapshotError::Decode(_)), "{e}");
        let dir = tempfile::tempdir().unwrap();
        assert!(SnapshotFile::read(&dir.path().join("none.json"), "x")
            .unwrap()
            .is_none());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t").join("snapshot.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<String> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["snapshot.json".to_string()]);
        remove_durably(&p).unwrap();
        remove_durably(&p).unwrap();
        assert!(!p.exists());
    }

    #[test]
    fn user_config_checks() {
        let ok = "alertmanager_config: |\n  route: {receiver: a}\n  receivers: [{name: a}]\ntemplate_files:\n  t.tmpl: '{{ define \"x\" }}x{{ end }}'\n";
        let (cfg, loaded) = UserConfig::parse(ok).unwrap();
        assert_eq!(loaded.receivers.len(), 1);
        assert_eq!(UserConfig::parse(&cfg.to_yaml().unwrap()).unwrap().0, cfg);
        for (bad, want) in [
            ("alertmanager_config: ''", "configuration provided is empty"),
            ("alertmanager_confg: x", "unknown field `alertmanager_confg`"),
            (
                "alertmanager_config: 'route: {receiver: nope}'",
                "undefined receiver \"nope\"",
            ),
            (
                "alertmanager_config: |\n  route: {receiver: a}\n  receivers: [{name: a}]\ntemplate_files: {'../x': y}",
                "invalid template file name \"../x\"",
            ),
        ] {
            let e = UserConfig::parse(bad).unwrap_err().to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }
}
