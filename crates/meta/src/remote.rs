//! [`RemoteKv`]: the meta store seen from a process that is not a voter, over the `Kv` gRPC
//! service. Meta nodes use the same client to forward reads and writes to their leader.

use crate::grpc::{self, pb, Channels, LEADER_HEADER, MAX_MESSAGE_BYTES};
use crate::kv::{check_key, check_write, KvEntry, KvStore, WatchEvent, WatchStream};
use crate::KvError;
use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::Channel;

/// Settings of a [`RemoteKv`].
#[derive(Debug, Clone)]
pub struct RemoteKvOptions {
    /// Deadline of one call.
    pub rpc_timeout: Duration,
    /// How long a call is retried while the servers answer "unavailable" (an election, a
    /// restarting voter) before [`KvError::Unavailable`] is returned.
    pub retry_for: Duration,
    pub connect_timeout: Duration,
    /// Local IP for outgoing connections (each chaos-test process owns one 127.0.0.x).
    pub local_address: Option<IpAddr>,
    /// A watch that receives nothing (not even progress) for this long is moved to another
    /// server: the one it had may have lost its quorum while others have not.
    pub watch_idle_timeout: Duration,
    /// Pause between attempts to re-establish a broken watch.
    pub watch_retry_interval: Duration,
    /// Mutual TLS to the voters (`grpc_client.tls`); `None`: plain text.
    pub tls: Option<strata_tls::GrpcClientTls>,
}

impl Default for RemoteKvOptions {
    fn default() -> Self {
        Self {
            rpc_timeout: Duration::from_secs(5),
            retry_for: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(1),
            local_address: None,
            watch_idle_timeout: Duration::from_secs(5),
            watch_retry_interval: Duration::from_millis(500),
            tls: None,
        }
    }
}

#[derive(Debug)]
struct Inner {
    channels: Channels,
    endpoints: RwLock<Vec<String>>,
    next: AtomicUsize,
    /// The last server that answered, or the leader a server named: tried first.
    preferred: Mutex<Option<String>>,
    opts: RemoteKvOptions,
}

/// A [`KvStore`] reached over gRPC at any of the meta voters.
///
/// Calls go to the leader (learned from "not the leader" replies, else found by trying the
/// endpoints in turn) and are retried for [`RemoteKvOptions::retry_for`] on unavailability. A
/// retried write may have been applied by the failed attempt: a CAS then reports a conflict
/// with its own write, which [`crate::cas_update`] resolves by reading again.
#[derive(Debug, Clone)]
pub struct RemoteKv {
    inner: Arc<Inner>,
}

type Client = pb::kv_client::KvClient<Channel>;

fn invalid(s: &tonic::Status) -> KvError {
    KvError::Invalid(match s.message() {
        "empty key" => "empty key",
        "value too large" => "value too large",
        "key too large" => "key too large",
        _ => "rejected by the meta server",
    })
}

impl RemoteKv {
    /// A client of the meta voters at `endpoints` (`host:port` of their gRPC servers).
    pub fn new(endpoints: Vec<String>, opts: RemoteKvOptions) -> Self {
        let channels = Channels::new(opts.local_address, opts.connect_timeout, opts.tls.clone());
        Self::with_channels(channels, endpoints, opts)
    }

    pub(crate) fn with_channels(
        channels: Channels,
        endpoints: Vec<String>,
        opts: RemoteKvOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                channels,
                endpoints: RwLock::new(endpoints),
                next: AtomicUsize::new(0),
                preferred: Mutex::new(None),
                opts,
            }),
        }
    }

    pub(crate) fn set_endpoints(&self, endpoints: Vec<String>) {
        *self.inner.endpoints.write() = endpoints;
    }

    pub(crate) fn prefer(&self, address: String) {
        *self.inner.preferred.lock() = Some(address);
    }

    fn round_robin(&self) -> Option<String> {
        let eps = self.inner.endpoints.read();
        if eps.is_empty() {
            return None;
        }
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % eps.len();
        Some(eps[i].clone())
    }

    fn pick(&self) -> Option<String> {
        let p = self.inner.preferred.lock().clone();
        p.or_else(|| self.round_robin())
    }

    fn client(&self, address: &str) -> Result<Client, KvError> {
        Ok(
            pb::kv_client::KvClient::new(self.inner.channels.get(address)?)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.set_timeout(self.inner.opts.rpc_timeout);
        r
    }

    /// Runs `f` against the leader, following hints and retrying unavailability.
    async fn call<T, F, Fut>(&self, what: &'static str, mut f: F) -> Result<T, KvError>
    where
        F: FnMut(Client) -> Fut + Send,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send,
        T: Send,
    {
        let opts = &self.inner.opts;
        let deadline = Instant::now() + opts.retry_for;
        let mut delay = Duration::from_millis(50);
        let mut hops = 0;
        loop {
            let Some(address) = self.pick() else {
                return Err(KvError::unavailable(format!("{what}: no meta endpoints")));
            };
            let last = match tokio::time::timeout(opts.rpc_timeout, f(self.client(&address)?)).await
            {
                Ok(Ok(r)) => {
                    *self.inner.preferred.lock() = Some(address);
                    return Ok(r.into_inner());
                }
                Ok(Err(s)) if s.code() == tonic::Code::Unavailable => {
                    let hint = s
                        .metadata()
                        .get(LEADER_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    *self.inner.preferred.lock() = hint.clone().filter(|h| *h != address);
                    if hint.is_some_and(|h| h != address) && hops < 3 {
                        hops += 1;
                        continue;
                    }
                    s
                }
                Ok(Err(s)) if s.code() == tonic::Code::InvalidArgument => return Err(invalid(&s)),
                Ok(Err(s)) if s.code() == tonic::Code::DeadlineExceeded => {
                    *self.inner.preferred.lock() = None;
                    s
                }
                Ok(Err(s)) => {
                    return Err(KvError::unavailable_from(
                        format!("{what} at meta server {address}"),
                        s,
                    ))
                }
                Err(_) => {
                    *self.inner.preferred.lock() = None;
                    tonic::Status::deadline_exceeded(format!("no answer from {address}"))
                }
            };
            hops = 0;
            if Instant::now() + delay > deadline {
                return Err(KvError::unavailable_from(
                    format!(
                        "{what}: no meta leader answered within {:?}",
                        opts.retry_for
                    ),
                    last,
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// The leader's read index (see the `ReadIndex` RPC).
    pub(crate) async fn read_index(&self) -> Result<u64, KvError> {
        let r = self
            .call("read index", |mut c| {
                let req = self.request(pb::ReadIndexRequest {});
                async move { c.read_index(req).await }
            })
            .await?;
        Ok(r.index)
    }

    /// Opens a watch stream at the next server in turn.
    async fn open_watch(&self, prefix: &str) -> Result<tonic::Streaming<pb::WatchEvent>, KvError> {
        let Some(address) = self.round_robin() else {
            return Err(KvError::unavailable("watch: no meta endpoints"));
        };
        let mut c = self.client(&address)?;
        // No deadline on the stream itself: only on getting it started.
        let fut = c.watch(tonic::Request::new(pb::WatchRequest {
            prefix: prefix.to_owned(),
        }));
        match tokio::time::timeout(self.inner.opts.rpc_timeout, fut).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(s)) => Err(KvError::unavailable_from(format!("watch at {address}"), s)),
            Err(_) => Err(KvError::unavailable(format!(
                "watch at {address}: no answer"
            ))),
        }
    }
}

#[async_trait]
impl KvStore for RemoteKv {
    async fn get(&self, key: &str) -> Result<Option<KvEntry>, KvError> {
        check_key(key)?;
        let r = self
            .call("get", |mut c| {
                let req = self.request(pb::GetRequest {
                    key: key.to_owned(),
                });
                async move { c.get(req).await }
            })
            .await?;
        Ok(r.entry.map(Into::into))
    }

    async fn cas(&self, key: &str, expected: u64, value: Bytes) -> Result<u64, KvError> {
        check_write(key, &value)?;
        let r = self
            .call("cas", |mut c| {
                let req = self.request(pb::CasRequest {
                    key: key.to_owned(),
                    expected,
                    value: value.clone(),
                });
                async move { c.cas(req).await }
            })
            .await?;
        use pb::cas_response::Result as R;
        match r.result {
            Some(R::Version(v)) => Ok(v),
            Some(R::Conflict(c)) => Err(KvError::Conflict {
                key: key.to_owned(),
                expected,
                actual: c.actual,
            }),
            None => Err(KvError::unavailable("cas: empty reply")),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, KvError> {
        let r = self
            .call("list", |mut c| {
                let req = self.request(pb::ListRequest {
                    prefix: prefix.to_owned(),
                });
                async move { c.list(req).await }
            })
            .await?;
        Ok(r.entries.into_iter().map(Into::into).collect())
    }

    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<bool, KvError> {
        check_key(key)?;
        let r = self
            .call("delete", |mut c| {
                let req = self.request(pb::DeleteRequest {
                    key: key.to_owned(),
                    expected,
                });
                async move { c.delete(req).await }
            })
            .await?;
        use pb::delete_response::Result as R;
        match r.result {
            Some(R::Existed(e)) => Ok(e),
            Some(R::Conflict(c)) => Err(KvError::Conflict {
                key: key.to_owned(),
                expected: expected.unwrap_or(0),
                actual: c.actual,
            }),
            None => Err(KvError::unavailable("delete: empty reply")),
        }
    }

    async fn watch(&self, prefix: &str) -> Result<WatchStream, KvError> {
        let deadline = Instant::now() + self.inner.opts.retry_for;
        let stream = loop {
            match self.open_watch(prefix).await {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(self.inner.opts.watch_retry_interval).await,
            }
        };
        let w = RemoteWatch {
            kv: self.clone(),
            prefix: prefix.to_owned(),
            stream: Some(stream),
            seen: None,
            catch_up: None,
        };
        Ok(Box::pin(futures::stream::unfold(w, |mut w| async move {
            let ev = w.next().await;
            Some((Ok(ev), w))
        })))
    }
}

/// A watch that survives the loss of its server.
struct RemoteWatch {
    kv: RemoteKv,
    prefix: String,
    stream: Option<tonic::Streaming<pb::WatchEvent>>,
    /// Highest revision the consumer's view is known complete at; `None` before the first
    /// snapshot.
    seen: Option<u64>,
    /// After a reconnect to a server behind `seen`: its state, advanced by its events until it
    /// catches up.
    catch_up: Option<(u64, BTreeMap<String, KvEntry>)>,
}

impl RemoteWatch {
    async fn next(&mut self) -> WatchEvent {
        loop {
            let stream = match &mut self.stream {
                Some(s) => s,
                None => match self.kv.open_watch(&self.prefix).await {
                    Ok(s) => self.stream.insert(s),
                    Err(e) => {
                        tracing::debug!(error = %e, "meta watch: reconnect failed");
                        tokio::time::sleep(self.kv.inner.opts.watch_retry_interval).await;
                        continue;
                    }
                },
            };
            let idle = self.kv.inner.opts.watch_idle_timeout;
            let msg = match tokio::time::timeout(idle, stream.message()).await {
                Ok(Ok(Some(m))) => m,
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                    // Broken, ended, or silent (its server may have lost the quorum): move on.
                    self.stream = None;
                    self.catch_up = None;
                    continue;
                }
            };
            let Some(ev) = grpc::watch_event(msg) else {
                continue;
            };
            if let Some(ev) = self.filter(ev) {
                return ev;
            }
        }
    }

    /// What the consumer gets of a server event. A fresh server stream starts with a snapshot:
    /// the consumer gets it only if it is news.
    fn filter(&mut self, ev: WatchEvent) -> Option<WatchEvent> {
        let Some(seen) = self.seen else {
            if let WatchEvent::Snapshot { revision, .. } = &ev {
                self.seen = Some(*revision);
                return Some(ev);
            }
            return None;
        };
        if let Some((rev, view)) = &mut self.catch_up {
            match ev {
                WatchEvent::Snapshot { revision, entries } => {
                    *rev = revision;
                    *view = entries.into_iter().map(|e| (e.key.clone(), e)).collect();
                }
                WatchEvent::Put(e) => {
                    *rev = e.version;
                    view.insert(e.key.clone(), e);
                }
                WatchEvent::Delete { key, revision } => {
                    *rev = revision;
                    view.remove(&key);
                }
                WatchEvent::Progress { revision } => *rev = revision.max(*rev),
            }
            if *rev < seen {
                return None;
            }
            let (revision, view) = self.catch_up.take().expect("in catch-up");
            if revision == seen {
                return None;
            }
            self.seen = Some(revision);
            return Some(WatchEvent::Snapshot {
                revision,
                entries: view.into_values().collect(),
            });
        }
        match ev {
            WatchEvent::Snapshot { revision, entries } => {
                if revision < seen {
                    self.catch_up = Some((
                        revision,
                        entries.into_iter().map(|e| (e.key.clone(), e)).collect(),
                    ));
                    None
                } else if revision == seen {
                    // The consumer already has exactly this.
                    None
                } else {
                    self.seen = Some(revision);
                    Some(WatchEvent::Snapshot { revision, entries })
                }
            }
            WatchEvent::Put(e) => {
                if e.version <= seen {
                    return None;
                }
                self.seen = Some(e.version);
                Some(WatchEvent::Put(e))
            }
            WatchEvent::Delete { key, revision } => {
                if revision <= seen {
                    return None;
                }
                self.seen = Some(revision);
                Some(WatchEvent::Delete { key, revision })
            }
            WatchEvent::Progress { revision } => {
                let revision = revision.max(seen);
                self.seen = Some(revision);
                Some(WatchEvent::Progress { revision })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(k: &str, v: u64) -> KvEntry {
        KvEntry {
            key: k.into(),
            value: Bytes::from_static(b"x"),
            version: v,
        }
    }

    fn watch() -> RemoteWatch {
        RemoteWatch {
            kv: RemoteKv::new(vec![], RemoteKvOptions::default()),
            prefix: "p/".into(),
            stream: None,
            seen: None,
            catch_up: None,
        }
    }

    #[tokio::test]
    async fn a_reconnect_reports_only_news_and_never_goes_back() {
        let mut w = watch();
        let snap = |revision, entries| WatchEvent::Snapshot { revision, entries };
        assert!(w.filter(snap(5, vec![entry("p/a", 5)])).is_some());
        assert!(w.filter(WatchEvent::Put(entry("p/b", 7))).is_some());
        // A new server at the same revision: nothing new for the consumer.
        assert_eq!(
            w.filter(snap(7, vec![entry("p/a", 5), entry("p/b", 7)])),
            None
        );
        assert_eq!(
            w.filter(WatchEvent::Progress { revision: 9 }),
            Some(WatchEvent::Progress { revision: 9 })
        );
        // A server that lags: its snapshot is held back until it has caught up.
        assert_eq!(w.filter(snap(6, vec![entry("p/a", 5)])), None);
        assert_eq!(w.filter(WatchEvent::Put(entry("p/b", 7))), None);
        match w.filter(WatchEvent::Delete {
            key: "p/a".into(),
            revision: 10,
        }) {
            Some(WatchEvent::Snapshot { revision, entries }) => {
                assert_eq!(revision, 10);
                assert_eq!(entries, vec![entry("p/b", 7)]);
            }
            e => panic!("{e:?}"),
        }
        // Duplicates of what was reported are dropped.
        assert_eq!(w.filter(WatchEvent::Put(entry("p/c", 10))), None);
    }
}
