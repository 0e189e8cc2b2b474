//! Values loaded from files and loaded again when a file changes, checked when used (at every
//! TLS handshake): no timer, and a rotated certificate is in use from the next connection on.

use crate::TlsError;
use parking_lot::Mutex;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// What identifies a version of a file: a replacement by rename (or a Kubernetes secret's
/// symlink swap) changes the inode, an edit in place the time or the size.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(p: &std::path::Path) -> Option<Stamp> {
    let m = std::fs::metadata(p).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

type Loader<T> = Box<dyn Fn() -> Result<T, TlsError> + Send + Sync>;

struct State<T> {
    current: Arc<T>,
    /// The files' versions `current` was loaded from.
    loaded: Vec<Option<Stamp>>,
    /// Versions that failed to load: not tried (nor logged) again until they change.
    failed: Option<Vec<Option<Stamp>>>,
}

/// A value made from `files`, made again when one of them changed since.
pub(crate) struct Reloading<T> {
    what: &'static str,
    files: Vec<PathBuf>,
    load: Loader<T>,
    state: Mutex<State<T>>,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("what", &self.what)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl<T> Reloading<T> {
    /// Loads the value once; the first load must succeed.
    pub(crate) fn new(
        what: &'static str,
        files: Vec<PathBuf>,
        load: impl Fn() -> Result<T, TlsError> + Send + Sync + 'static,
    ) -> Result<Self, TlsError> {
        let loaded = files.iter().map(|f| stamp(f)).collect();
        let current = Arc::new(load()?);
        Ok(Self {
            what,
            files,
            load: Box::new(load),
            state: Mutex::new(State {
                current,
                loaded,
                failed: None,
            }),
        })
    }

    /// The current value, loaded again first if a file changed. A change that does not load
    /// keeps the previous value (logged once per change).
    pub(crate) fn get(&self) -> Arc<T> {
        let now: Vec<Option<Stamp>> = self.files.iter().map(|f| stamp(f)).collect();
        let mut st = self.state.lock();
        if now == st.loaded || st.failed.as_ref() == Some(&now) {
            return st.current.clone();
        }
        match (self.load)() {
            Ok(v) => {
                tracing::info!(what = self.what, files = ?self.files, "TLS files changed: reloaded");
                st.current = Arc::new(v);
                st.loaded = now;
                st.failed = None;
            }
            Err(e) => {
                tracing::warn!(what = self.what, error = %e, "TLS files changed but do not load; keeping the previous ones");
                st.failed = Some(now);
            }
        }
        st.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloads_on_change_and_keeps_the_old_value_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("v");
        std::fs::write(&f, "1").unwrap();
        let g = f.clone();
        let r = Reloading::new("test value", vec![f.clone()], move || {
            let s = std::fs::read_to_string(&g).unwrap();
            s.trim().parse::<u32>().map_err(|e| TlsError::Config {
                field: "v".into(),
                reason: e.to_string(),
            })
        })
        .unwrap();
        assert_eq!(*r.get(), 1);
        // A new file (new inode), as a rotation by rename makes.
        let tmp = dir.path().join("v.tmp");
        std::fs::write(&tmp, "22").unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        assert_eq!(*r.get(), 22);
        std::fs::write(&tmp, "not a number").unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        assert_eq!(*r.get(), 22, "a broken file keeps the previous value");
        assert_eq!(*r.get(), 22);
        std::fs::write(&tmp, "333").unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        assert_eq!(*r.get(), 333, "a fixed file is taken");
    }
}
