//! An ingester in this process behind the same interface as a remote one.

use async_trait::async_trait;
use bytes::Bytes;
use strata_model::{TenantId, WriteBatch};
use strata_proto::decode::decode_write_request_v1;
use strata_storage::{EncodedPusher, PushError, PushOutcome, Pusher};

/// An [`EncodedPusher`] that decodes and pushes to a [`Pusher`] in this process (in-process
/// clusters in tests; the same bytes a remote ingester would decode).
#[derive(Debug, Clone)]
pub struct LocalEncoded<P>(pub P);

#[async_trait]
impl<P> EncodedPusher for LocalEncoded<P>
where
    P: std::ops::Deref + Send + Sync,
    P::Target: Pusher,
{
    async fn push_encoded(
        &self,
        tenant: &TenantId,
        write_request: Bytes,
    ) -> Result<PushOutcome, PushError> {
        let mut batch = WriteBatch::default();
        decode_write_request_v1(&write_request, &mut batch)
            .map_err(|e| PushError::InvalidRequest(Box::new(e)))?;
        self.0.push(tenant, &batch).await
    }
}
