//! A memcached client for the results cache shared by query-frontends (text protocol: `get`
//! and `set`, which is all a cache of immutable pieces needs). Written here rather than taken
//! from a crate: the maintained Rust clients are either blocking or pull in a connection-pool
//! framework, and the two commands fit in this file. Any error is a miss: the cache is an
//! optimisation, never a reason for a query to fail.

use bytes::Bytes;
use parking_lot::Mutex;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;
use xxhash_rust::xxh3::xxh3_128;

/// Connections kept idle per server.
const IDLE_PER_SERVER: usize = 16;

type Conn = BufStream<TcpStream>;

/// Errors of one memcached call (turned into misses by the caller).
#[derive(Debug, thiserror::Error)]
pub enum MemcachedError {
    #[error("memcached {addr}: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("memcached {addr}: no answer within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("memcached {addr}: unexpected answer {line:?}")]
    Protocol { addr: String, line: String },
}

struct Server {
    addr: String,
    idle: Mutex<Vec<Conn>>,
}

/// Memcached servers; a key lives on one of them (by its hash).
pub struct Memcached {
    servers: Vec<Server>,
    /// Keeps clusters sharing one memcached apart.
    prefix: String,
    timeout: Duration,
    expiration: Duration,
    max_item_bytes: usize,
}

impl std::fmt::Debug for Memcached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memcached")
            .field(
                "servers",
                &self.servers.iter().map(|s| &s.addr).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Memcached {
    pub fn new(
        addresses: &[String],
        prefix: &str,
        timeout: Duration,
        expiration: Duration,
        max_item_bytes: usize,
    ) -> Self {
        Self {
            servers: addresses
                .iter()
                .map(|a| Server {
                    addr: a.clone(),
                    idle: Mutex::new(Vec::new()),
                })
                .collect(),
            prefix: prefix.to_owned(),
            timeout,
            expiration,
            max_item_bytes,
        }
    }

    /// Memcached keys are at most 250 bytes without spaces: a piece's key (query text
    /// included) is hashed. The hash only places the value; the value carries the whole key,
    /// compared on every read, so two keys that hash alike never read each other's piece.
    fn wire_key(&self, key: &str) -> (String, u128) {
        let h = xxh3_128(key.as_bytes());
        (format!("{}:{h:032x}", self.prefix), h)
    }

    /// The stored form: key length (u32 LE), key, piece.
    fn envelope(key: &str, value: &Bytes) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + key.len() + value.len());
        v.extend_from_slice(&(key.len() as u32).to_le_bytes());
        v.extend_from_slice(key.as_bytes());
        v.extend_from_slice(value);
        v
    }

    /// The piece in a stored envelope, if the envelope is for `key`.
    fn open(key: &str, stored: Bytes) -> Option<Bytes> {
        let len = u32::from_le_bytes(stored.get(..4)?.try_into().ok()?) as usize;
        let k = stored.get(4..4 + len)?;
        (k == key.as_bytes()).then(|| stored.slice(4 + len..))
    }

    fn server(&self, h: u128) -> &Server {
        &self.servers[(h % self.servers.len() as u128) as usize]
    }

    async fn with_conn<T, F, Fut>(&self, s: &Server, f: F) -> Result<T, MemcachedError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: std::future::Future<Output = Result<(T, Conn), std::io::Error>>,
    {
        let io = |source| MemcachedError::Io {
            addr: s.addr.clone(),
            source,
        };
        let run = async {
            // The guard must be gone before the connect's await.
            let pooled = s.idle.lock().pop();
            let conn = match pooled {
                Some(c) => c,
                None => BufStream::new(TcpStream::connect(&s.addr).await.map_err(io)?),
            };
            let (v, conn) = f(conn).await.map_err(io)?;
            let mut idle = s.idle.lock();
            if idle.len() < IDLE_PER_SERVER {
                idle.push(conn);
            }
            Ok(v)
        };
        tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| MemcachedError::Timeout {
                addr: s.addr.clone(),
                timeout: self.timeout,
            })?
    }

    /// The value under `key`, if the server has it.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, MemcachedError> {
        if self.servers.is_empty() {
            return Ok(None);
        }
        let (wire, h) = self.wire_key(key);
        let s = self.server(h);
        let stored = self
            .with_conn(s, |mut c| async move {
                c.write_all(format!("get {wire}\r\n").as_bytes()).await?;
                c.flush().await?;
                let mut line = String::new();
                c.read_line(&mut line).await?;
                // An answer out of step leaves the connection unusable: the error drops it.
                let desync = |line: String| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("unexpected answer {line:?}"),
                    )
                };
                if line == "END\r\n" {
                    return Ok((None, c));
                }
                // VALUE <key> <flags> <bytes>
                let len = line
                    .strip_prefix("VALUE ")
                    .and_then(|rest| rest.trim_end().split(' ').nth(2))
                    .and_then(|n| n.parse::<usize>().ok());
                let Some(len) = len else {
                    return Err(desync(line));
                };
                let mut data = vec![0u8; len + 2];
                c.read_exact(&mut data).await?;
                data.truncate(len);
                let mut end = String::new();
                c.read_line(&mut end).await?;
                if end != "END\r\n" {
                    return Err(desync(end));
                }
                Ok((Some(Bytes::from(data)), c))
            })
            .await?;
        Ok(stored.and_then(|v| Self::open(key, v)))
    }

    /// Stores `value` under `key` for the configured expiration; values over the item size
    /// limit are not sent.
    pub async fn set(&self, key: &str, value: &Bytes) -> Result<(), MemcachedError> {
        let value = Self::envelope(key, value);
        if self.servers.is_empty() || value.len() > self.max_item_bytes {
            return Ok(());
        }
        let (wire, h) = self.wire_key(key);
        let s = self.server(h);
        let addr = s.addr.clone();
        let exp = self.expiration.as_secs();
        let r = self
            .with_conn(s, |mut c| async move {
                c.write_all(format!("set {wire} 0 {exp} {}\r\n", value.len()).as_bytes())
                    .await?;
                c.write_all(&value).await?;
                c.write_all(b"\r\n").await?;
                c.flush().await?;
                let mut line = String::new();
                c.read_line(&mut line).await?;
                Ok((line, c))
            })
            .await?;
        if r == "STORED\r\n" {
            Ok(())
        } else {
            Err(MemcachedError::Protocol { addr, line: r })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_opens_only_for_its_own_key() {
        let v = Bytes::from_static(b"piece");
        let e = Bytes::from(Memcached::envelope("tenant-a\0q", &v));
        assert_eq!(Memcached::open("tenant-a\0q", e.clone()), Some(v));
        assert_eq!(Memcached::open("tenant-b\0q", e.clone()), None);
        assert_eq!(Memcached::open("x", e.slice(..3)), None);
    }
}
