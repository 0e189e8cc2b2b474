//! The gRPC service the other replicas call: forwarded API requests, replication pushes and
//! full-state pulls.

use super::sync::apply_state;
use super::{encode, ownership_digest, pb, FORWARDED_HEADER, MAX_MESSAGE_BYTES};
use crate::Alertmanager;
use pb::alertmanager_peer_server::AlertmanagerPeer;
use std::sync::Arc;

/// The gRPC service peers call.
pub(super) struct PeerService {
    pub(super) am: Arc<Alertmanager>,
    /// The HTTP API, to answer forwarded requests exactly as a direct one.
    pub(super) api: axum::Router,
}

#[tonic::async_trait]
impl AlertmanagerPeer for PeerService {
    async fn forward(
        &self,
        request: tonic::Request<pb::HttpRequest>,
    ) -> Result<tonic::Response<pb::HttpResponse>, tonic::Status> {
        use tower::ServiceExt;
        let r = request.into_inner();
        let mut b = axum::http::Request::builder()
            .method(r.method.as_str())
            .uri(r.path_and_query.as_str());
        for h in &r.headers {
            b = b.header(h.name.as_str(), h.value.as_str());
        }
        let from = if r.from_instance.is_empty() {
            "peer"
        } else {
            r.from_instance.as_str()
        };
        let req = b
            .header(FORWARDED_HEADER, from)
            .body(axum::body::Body::from(r.body))
            .map_err(|e| tonic::Status::invalid_argument(format!("bad forwarded request: {e}")))?;
        let resp = self
            .api
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| tonic::Status::internal(format!("{e}")))?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter(|(n, _)| *n == axum::http::header::CONTENT_TYPE)
            .filter_map(|(n, v)| {
                Some(pb::Header {
                    name: n.as_str().to_string(),
                    value: v.to_str().ok()?.to_string(),
                })
            })
            .collect();
        let body = axum::body::to_bytes(resp.into_body(), MAX_MESSAGE_BYTES)
            .await
            .map_err(|e| tonic::Status::internal(format!("reading the response: {e}")))?;
        Ok(tonic::Response::new(pb::HttpResponse {
            status: u32::from(status),
            headers,
            body: body.to_vec(),
        }))
    }

    async fn replicate(
        &self,
        request: tonic::Request<pb::StateUpdate>,
    ) -> Result<tonic::Response<pb::ReplicateResponse>, tonic::Status> {
        let update = request.into_inner();
        let am = self.am.clone();
        // Merging validates silences (regex compilation): off the async threads.
        tokio::task::spawn_blocking(move || {
            for ts in update.tenants {
                if let Err(e) = apply_state(&am, ts, false) {
                    tracing::warn!(peer = %update.from_instance, error = %e, "replicated state not merged");
                }
            }
        })
        .await
        .map_err(|e| tonic::Status::internal(format!("merge aborted: {e}")))?;
        Ok(tonic::Response::new(pb::ReplicateResponse {}))
    }

    async fn full_state(
        &self,
        request: tonic::Request<pb::FullStateRequest>,
    ) -> Result<tonic::Response<pb::FullStateResponse>, tonic::Status> {
        let req = request.into_inner();
        let Some(cluster) = self.am.cluster() else {
            return Err(tonic::Status::failed_precondition("ring disabled"));
        };
        let ring = cluster.ring();
        // Seeing the ring as this replica does, the caller gets only what it owns; otherwise
        // every tenant (it keeps those it owns in its own view, `apply_state`), so a caller
        // ahead of or behind this replica's view never misses a tenant it has just taken.
        let same_view = req.ring_digest != 0 && req.ring_digest == ownership_digest(&ring);
        let with_alerts = req.include_alerts;
        let tenants = self
            .am
            .tenants()
            .into_iter()
            .filter(|t| {
                !same_view
                    || cluster
                        .owners_in(&ring, t.id())
                        .contains(&req.from_instance)
            })
            .map(|t| {
                let snap = t.snapshot();
                pb::TenantState {
                    tenant: t.id().to_string(),
                    silences: encode(&snap.silences),
                    nflog: encode(&snap.nflog),
                    alerts: if with_alerts {
                        encode(&snap.alerts)
                    } else {
                        Vec::new()
                    },
                    config: t.config_record().map(|r| encode(&r)).unwrap_or_default(),
                }
            })
            .collect();
        if with_alerts {
            cluster.note_full_pull(&req.from_instance, req.ring_revision);
        }
        Ok(tonic::Response::new(pb::FullStateResponse { tenants }))
    }
}
