//! Appending decoded write requests.

use crate::PushError;
use async_trait::async_trait;
use strata_model::{TenantId, WriteBatch};

/// Why samples of a series were not stored. Each kind maps to one HTTP status at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// Bad data the sender must not retry (HTTP 400).
    BadData,
    /// A per-tenant limit; retrying later may succeed (HTTP 429).
    Limit,
}

/// The first rejected sample of a push, described for an operator reading the sender's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub kind: RejectionKind,
    /// Short stable reason id, e.g. `sample-out-of-order` (also a metric label).
    pub reason: &'static str,
    /// Human explanation naming the series and the sample.
    pub message: String,
}

/// What a push stored and what it refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Samples stored (identical duplicates of stored samples count as stored).
    pub samples_written: u64,
    /// Samples refused.
    pub samples_rejected: u64,
    /// The first refusal, if any; further ones are only counted.
    pub first_rejection: Option<Rejection>,
    /// Indices (into the pushed batch's series) of the series with at least one refused
    /// sample, and why. A distributor replicating a batch decides per series whether a quorum
    /// of ingesters stored it.
    pub rejected_series: Vec<(u32, RejectionKind)>,
}

impl PushOutcome {
    /// Records a refusal of `n` samples. Keeps the first message, except that a limit
    /// (retryable) replaces bad data: when any part could succeed later the sender must retry,
    /// and retrying the stored part is harmless because identical duplicates are accepted.
    pub fn reject(&mut self, n: u64, rejection: impl FnOnce() -> Rejection) {
        self.samples_rejected += n;
        match &self.first_rejection {
            None => self.first_rejection = Some(rejection()),
            Some(r) if r.kind == RejectionKind::BadData => {
                let new = rejection();
                if new.kind == RejectionKind::Limit {
                    self.first_rejection = Some(new);
                }
            }
            Some(_) => {}
        }
    }

    /// Adds another outcome (of the same batch) counts, rejection and rejected series.
    pub fn merge(&mut self, other: PushOutcome) {
        self.samples_written += other.samples_written;
        self.rejected_series.extend(other.rejected_series);
        if let Some(r) = other.first_rejection {
            self.reject(other.samples_rejected, || r);
        } else {
            self.samples_rejected += other.samples_rejected;
        }
    }
}

/// Something that stores write batches: an ingester, or a distributor's replication to remote
/// ones.
///
/// `push` returns only after every stored sample is durable (acknowledging earlier would lose
/// data on a crash). Samples of a batch that can be stored are stored even if others are refused.
#[async_trait]
pub trait Pusher: Send + Sync {
    async fn push(
        &self,
        tenant: &TenantId,
        batch: &WriteBatch<'_>,
    ) -> Result<PushOutcome, PushError>;
}

/// Something that stores a batch already encoded as a remote-write 1.0 `WriteRequest`
/// (uncompressed): a gRPC client of an ingester, or an ingester in this process.
/// A distributor encodes each ingester's share of a request once and hands the bytes over, so
/// the call can finish in the background after the push was acknowledged at quorum.
#[async_trait]
pub trait EncodedPusher: Send + Sync {
    /// Like [`Pusher::push`]; `rejected_series` indices refer to the series of `write_request`.
    async fn push_encoded(
        &self,
        tenant: &TenantId,
        write_request: bytes::Bytes,
    ) -> Result<PushOutcome, PushError>;
}
