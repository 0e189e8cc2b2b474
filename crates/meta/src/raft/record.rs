//! Record framing shared by the log and snapshot files: a little-endian u32 payload length, the
//! payload's CRC-32 (u32), then the payload. A record cut short by a crash is recognisable (it
//! runs past the end of the file, or its checksum fails and nothing follows it), which is what
//! lets the log cut a torn tail instead of refusing to start.

use crate::error::StoreError;
use std::fs::File;
use std::io::Write;
use std::path::Path;

pub(crate) const HEADER: usize = 8;

/// Appends one framed record to `out`.
pub(crate) fn encode(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("records are far below 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What is at an offset of a file's bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Read<'a> {
    /// A whole record; the next one starts at `next`.
    Record { payload: &'a [u8], next: usize },
    /// Nothing: the offset is the end of the data.
    End,
    /// A record that cannot be whole: a torn write at the end of the file.
    Torn,
    /// A complete record whose checksum fails. At the very end of the file this is a torn write
    /// too (the length was written, the data not); elsewhere it is corruption.
    BadChecksum { at_end: bool },
}

pub(crate) fn read(buf: &[u8], offset: usize) -> Read<'_> {
    let rest = &buf[offset..];
    if rest.is_empty() {
        return Read::End;
    }
    if rest.len() < HEADER {
        return Read::Torn;
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if rest.len() - HEADER < len {
        return Read::Torn;
    }
    let payload = &rest[HEADER..HEADER + len];
    if crc32fast::hash(payload) != crc {
        return Read::BadChecksum {
            at_end: rest.len() == HEADER + len,
        };
    }
    Read::Record {
        payload,
        next: offset + HEADER + len,
    }
}

/// Replaces `path` with `bytes` atomically: a temporary file, fsync, rename, fsync of the
/// directory. `durable == false` skips both fsyncs (for hints such as the committed index, whose
/// loss is harmless).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8], durable: bool) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| StoreError::io("creating", &tmp, e))?;
    f.write_all(bytes)
        .map_err(|e| StoreError::io("writing", &tmp, e))?;
    if durable {
        f.sync_all()
            .map_err(|e| StoreError::io("fsync of", &tmp, e))?;
    }
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| StoreError::io("renaming into", path, e))?;
    if durable {
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync of directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_detects_torn_and_corrupt_records() {
        let mut buf = Vec::new();
        encode(b"one", &mut buf);
        encode(b"two", &mut buf);
        let Read::Record { payload, next } = read(&buf, 0) else {
            panic!("first record")
        };
        assert_eq!(payload, b"one");
        assert!(matches!(
            read(&buf, next),
            Read::Record {
                payload: b"two",
                ..
            }
        ));
        assert_eq!(read(&buf, buf.len()), Read::End);
        assert_eq!(read(&buf[..buf.len() - 1], next), Read::Torn);
        assert_eq!(read(&buf[..next + 3], next), Read::Torn);
        let mut bad = buf.clone();
        bad[HEADER] ^= 1;
        assert_eq!(read(&bad, 0), Read::BadChecksum { at_end: false });
        let last = buf.len() - 1;
        bad = buf.clone();
        bad[last] ^= 1;
        assert_eq!(read(&bad, next), Read::BadChecksum { at_end: true });
    }
}
