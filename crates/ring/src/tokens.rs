//! Random tokens and the tokens file that keeps them across a lost ring entry.

use crate::RingError;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `n` random tokens that are in neither `taken` nor `own`, added to `own` (kept sorted).
pub(crate) fn add_random(own: &mut Vec<u32>, n: usize, taken: &HashSet<u32>) {
    let mut mine: HashSet<u32> = own.iter().copied().collect();
    let mut added = 0;
    while added < n {
        let t = fastrand::u32(..);
        if !taken.contains(&t) && mine.insert(t) {
            own.push(t);
            added += 1;
        }
    }
    own.sort_unstable();
}

/// Brings `own` to exactly `n` tokens: adds random free ones, or drops random ones (not the
/// smallest, which would skew the instance towards small hashes).
pub(crate) fn fix_count(own: &mut Vec<u32>, n: usize, taken: &HashSet<u32>) {
    if own.len() < n {
        add_random(own, n - own.len(), taken);
    } else if own.len() > n {
        fastrand::shuffle(own);
        own.truncate(n);
        own.sort_unstable();
    }
}

#[derive(Serialize, Deserialize)]
struct TokensFile {
    tokens: Vec<u32>,
}

/// Tokens saved in `path`; empty if the file does not exist.
pub(crate) fn load(path: &Path) -> Result<Vec<u32>, RingError> {
    let err = |source| RingError::TokensFile {
        path: path.to_owned(),
        source,
    };
    let raw = match std::fs::read(path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let f: TokensFile = serde_json::from_slice(&raw)
        .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    let mut t = f.tokens;
    t.sort_unstable();
    t.dedup();
    Ok(t)
}

/// Writes `tokens` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
pub(crate) async fn save(path: PathBuf, tokens: Vec<u32>) -> Result<(), RingError> {
    let p = path.clone();
    let res = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let tmp = p.with_extension("tmp");
        let body = serde_json::to_vec(&TokensFile { tokens })?;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &p)?;
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })
    .await;
    match res {
        Ok(r) => r.map_err(|source| RingError::TokensFile { path, source }),
        Err(join) => Err(RingError::TokensFile {
            path,
            source: std::io::Error::other(join),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_avoid_taken_ones_and_fix_count_trims() {
        let taken: HashSet<u32> = (0..1000).collect();
        let mut own = vec![5_000];
        add_random(&mut own, 100, &taken);
        assert_eq!(own.len(), 101);
        assert!(own.windows(2).all(|w| w[0] < w[1]));
        assert!(own.iter().all(|t| !taken.contains(t)));
        fix_count(&mut own, 10, &taken);
        assert_eq!(own.len(), 10);
        assert!(own.windows(2).all(|w| w[0] < w[1]));
    }

    #[tokio::test]
    async fn save_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens");
        assert!(load(&p).unwrap().is_empty());
        save(p.clone(), vec![3, 1, 2]).await.unwrap();
        assert_eq!(load(&p).unwrap(), vec![1, 2, 3]);
        std::fs::write(&p, b"nope").unwrap();
        assert!(load(&p).is_err());
    }
}
