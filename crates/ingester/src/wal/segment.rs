//! Reading segments and checkpoints back, tolerating a torn final write.

use super::record::{read_frame, FrameError, Record};
use crate::error::IngesterError;
use std::path::{Path, PathBuf};

/// The files of a WAL directory.
#[derive(Debug, Default)]
pub struct SegmentFiles {
    /// Newest complete checkpoint: (index, path). It replaces segments below `index`.
    pub checkpoint: Option<(u64, PathBuf)>,
    /// Older checkpoints, safe to delete.
    pub stale_checkpoints: Vec<PathBuf>,
    /// Segments in ascending order.
    pub segments: Vec<(u64, PathBuf)>,
}

/// Lists a WAL directory (missing directory = empty WAL). Unfinished checkpoint temp files are
/// ignored; unknown files are an error so that nothing foreign is silently deleted.
pub fn list(dir: &Path) -> Result<SegmentFiles, IngesterError> {
    let mut out = SegmentFiles::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(IngesterError::io(dir, e)),
    };
    let mut checkpoints = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| IngesterError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if let Some(n) = name.strip_prefix("checkpoint.") {
            if let Ok(i) = n.parse::<u64>() {
                checkpoints.push((i, path));
            } else if n.ends_with(".tmp") {
                let _ = std::fs::remove_file(&path);
            }
        } else if let Ok(i) = name.parse::<u64>() {
            out.segments.push((i, path));
        } else {
            return Err(IngesterError::UnexpectedWalFile(path));
        }
    }
    out.segments.sort();
    checkpoints.sort();
    out.checkpoint = checkpoints.pop();
    out.stale_checkpoints = checkpoints.into_iter().map(|(_, p)| p).collect();
    Ok(out)
}

/// Reads every record of a file and hands it to `f`. If `repair_tail` is set, a torn or corrupt
/// suffix is cut off the file (the only place a crash can leave one); otherwise it is an error.
/// Returns the number of bytes dropped.
pub fn read_segment(
    path: &Path,
    repair_tail: bool,
    mut f: impl FnMut(Record<'_>) -> Result<(), IngesterError>,
) -> Result<u64, IngesterError> {
    let data = std::fs::read(path).map_err(|e| IngesterError::io(path, e))?;
    let mut pos = 0usize;
    while pos < data.len() {
        match read_frame(&data[pos..]) {
            Ok((rec, n)) => {
                f(rec)?;
                pos += n;
            }
            Err(err) => {
                let dropped = (data.len() - pos) as u64;
                if !repair_tail || err == FrameError::Malformed {
                    return Err(IngesterError::CorruptWal {
                        path: path.to_owned(),
                        offset: pos as u64,
                        reason: match err {
                            FrameError::Truncated => "truncated record",
                            FrameError::Checksum => "checksum mismatch",
                            FrameError::Malformed => "record does not parse",
                        },
                    });
                }
                tracing::warn!(
                    path = %path.display(),
                    offset = pos,
                    dropped_bytes = dropped,
                    "WAL ends in a torn record (crash during a write that was never acknowledged); truncating it"
                );
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| IngesterError::io(path, e))?;
                file.set_len(pos as u64)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| IngesterError::io(path, e))?;
                return Ok(dropped);
            }
        }
    }
    Ok(0)
}
