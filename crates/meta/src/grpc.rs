//! Generated gRPC types, conversions, and the per-peer channel cache.

use crate::kv::{KvEntry, WatchEvent};
use crate::KvError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use strata_tls::GrpcClientTls;
use tonic::transport::{Channel, Endpoint};

#[allow(clippy::all)]
pub(crate) mod pb {
    tonic::include_proto!("strata.meta.v1");
}

/// Largest gRPC message either way: a whole-ring `List`, or a batch of log entries.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Metadata key of a "not the leader" reply that carries the leader's address.
pub(crate) const LEADER_HEADER: &str = "x-meta-leader";

/// One lazily connected [`Channel`] per address, reused by every call to that address.
#[derive(Debug, Clone)]
pub(crate) struct Channels {
    map: Arc<Mutex<HashMap<String, Channel>>>,
    local_address: Option<IpAddr>,
    connect_timeout: Duration,
    /// Mutual TLS to the voters (`grpc_client.tls`).
    tls: Option<GrpcClientTls>,
}

impl Channels {
    pub(crate) fn new(
        local_address: Option<IpAddr>,
        connect_timeout: Duration,
        tls: Option<GrpcClientTls>,
    ) -> Self {
        Self {
            map: Arc::default(),
            local_address,
            connect_timeout,
            tls,
        }
    }

    pub(crate) fn get(&self, address: &str) -> Result<Channel, KvError> {
        if let Some(c) = self.map.lock().get(address) {
            return Ok(c.clone());
        }
        let uri = if address.contains("://") {
            address.to_owned()
        } else {
            format!("http://{address}")
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| KvError::unavailable_from(format!("bad meta address {address:?}"), e))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .local_address(self.local_address);
        let ch = match &self.tls {
            Some(tls) => tls.channel(endpoint, self.local_address),
            None => endpoint.connect_lazy(),
        };
        self.map.lock().insert(address.to_owned(), ch.clone());
        Ok(ch)
    }
}

impl From<KvEntry> for pb::KvEntry {
    fn from(e: KvEntry) -> Self {
        Self {
            key: e.key,
            value: e.value,
            version: e.version,
        }
    }
}

impl From<pb::KvEntry> for KvEntry {
    fn from(e: pb::KvEntry) -> Self {
        Self {
            key: e.key,
            value: e.value,
            version: e.version,
        }
    }
}

impl From<WatchEvent> for pb::WatchEvent {
    fn from(ev: WatchEvent) -> Self {
        use pb::watch_event::Event;
        let event = match ev {
            WatchEvent::Snapshot { revision, entries } => Event::Snapshot(pb::Snapshot {
                revision,
                entries: entries.into_iter().map(Into::into).collect(),
            }),
            WatchEvent::Put(e) => Event::Put(e.into()),
            WatchEvent::Delete { key, revision } => Event::Delete(pb::Deleted { key, revision }),
            WatchEvent::Progress { revision } => Event::Progress(revision),
        };
        Self { event: Some(event) }
    }
}

/// `None` for an event without a body (a newer server's kind).
pub(crate) fn watch_event(ev: pb::WatchEvent) -> Option<WatchEvent> {
    use pb::watch_event::Event;
    Some(match ev.event? {
        Event::Snapshot(s) => WatchEvent::Snapshot {
            revision: s.revision,
            entries: s.entries.into_iter().map(Into::into).collect(),
        },
        Event::Put(e) => WatchEvent::Put(e.into()),
        Event::Delete(d) => WatchEvent::Delete {
            key: d.key,
            revision: d.revision,
        },
        Event::Progress(revision) => WatchEvent::Progress { revision },
    })
}

/// A server-side error as a gRPC status.
pub(crate) fn status(e: &KvError) -> tonic::Status {
    match e {
        KvError::Invalid(what) => tonic::Status::invalid_argument(*what),
        KvError::Conflict { .. } | KvError::TooManyConflicts { .. } => {
            tonic::Status::aborted(e.to_string())
        }
        KvError::Unavailable { .. } | KvError::Closed => tonic::Status::unavailable(e.to_string()),
    }
}
