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

    /// Adds another outcome's counts and rejection.
    pub fn merge(&mut self, other: PushOutcome) {
        self.samples_written += other.samples_written;
        if let Some(r) = other.first_rejection {
            self.reject(other.samples_rejected, || r);
        } else {
            self.samples_rejected += other.samples_rejected;
        }
    }
}

/// Something that stores write batches: an ingester, or a client of a remote one.
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
