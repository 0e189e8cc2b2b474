//! The meta node's HTTP admin endpoints: status, and membership changes for the procedures in
//! docs/meta.md. Changes go to the leader; they are serialized and each waits until committed.

use crate::error::MetaError;
use crate::node::MetaNode;
use crate::raft::types::NodeId;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn router(node: Arc<MetaNode>) -> Router {
    Router::new()
        .route("/meta/status", get(status))
        .route("/meta/members/add-learner", post(add_learner))
        .route("/meta/members/change-membership", post(change_membership))
        .with_state(node)
}

/// One node of the membership.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: NodeId,
    pub address: String,
}

/// `GET /meta/status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetaStatus {
    pub id: NodeId,
    /// Leader, Follower, Candidate, Learner or Shutdown.
    pub state: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub voters: Vec<MemberStatus>,
    pub learners: Vec<MemberStatus>,
    /// Whether the membership is in a joint (changing) configuration.
    pub joint: bool,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub committed: Option<u64>,
    pub snapshot: Option<u64>,
    /// The store-wide revision of this replica.
    pub revision: u64,
    /// Whether watches on this node report progress (in contact with a quorum).
    pub in_quorum_contact: bool,
}

pub(crate) async fn node_status(node: &MetaNode) -> MetaStatus {
    let m = node.raft().metrics().borrow().clone();
    let committed = node
        .raft()
        .with_raft_state(|st| st.committed.map(|c| c.index))
        .await
        .ok()
        .flatten();
    let membership = m.membership_config.membership();
    let member = |id: NodeId| MemberStatus {
        id,
        address: membership
            .get_node(&id)
            .map(|n| n.addr.clone())
            .unwrap_or_default(),
    };
    MetaStatus {
        id: node.id(),
        state: format!("{:?}", m.state),
        leader: m.current_leader,
        term: m.current_term,
        voters: membership.voter_ids().map(member).collect(),
        learners: membership.learner_ids().map(member).collect(),
        joint: membership.get_joint_config().len() > 1,
        last_log_index: m.last_log_index,
        last_applied: m.last_applied.map(|l| l.index),
        committed,
        snapshot: m.snapshot.map(|l| l.index),
        revision: node.revision(),
        in_quorum_contact: node.in_quorum_contact(),
    }
}

async fn status(State(node): State<Arc<MetaNode>>) -> Json<MetaStatus> {
    Json(node_status(&node).await)
}

/// `POST /meta/members/add-learner`: a node that will receive the log; it votes once made a
/// voter with `change-membership`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddLearner {
    pub id: NodeId,
    /// `host:port` of its gRPC server.
    pub address: String,
}

/// `POST /meta/members/change-membership`: the complete new set of voters. Nodes left out stop
/// being members (or stay learners with `retain`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeMembership {
    pub voters: BTreeSet<NodeId>,
    #[serde(default)]
    pub retain: bool,
}

fn error_response(node: &MetaNode, e: MetaError) -> Response {
    let (code, leader) = match &e {
        MetaError::NotLeader { leader } => (StatusCode::CONFLICT, *leader),
        MetaError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, None),
        MetaError::Membership(m)
            if matches!(
                **m,
                RaftError::APIError(ClientWriteError::ChangeMembershipError(_))
            ) =>
        {
            (StatusCode::BAD_REQUEST, None)
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, None),
    };
    let body = serde_json::json!({
        "error": e.to_string(),
        "node": node.id(),
        "leader": leader,
    });
    (code, Json(body)).into_response()
}

/// How long a membership change may take (a learner catching up included).
fn change_timeout(node: &MetaNode) -> Duration {
    (node.config().rpc_timeout * 6).max(Duration::from_secs(30))
}

impl MetaNode {
    async fn ensure_leader(&self) -> Result<(), MetaError> {
        let leader = self.raft().current_leader().await;
        if leader != Some(self.id()) {
            return Err(MetaError::NotLeader { leader });
        }
        Ok(())
    }

    /// Adds a learner and waits until it has caught up with the log.
    pub async fn add_learner(&self, id: NodeId, address: String) -> Result<(), MetaError> {
        let _serial = self.admin.lock().await;
        self.ensure_leader().await?;
        let t = change_timeout(self);
        tokio::time::timeout(
            t,
            self.raft().add_learner(id, BasicNode::new(address), true),
        )
        .await
        .map_err(|_| MetaError::Timeout(t))??;
        Ok(())
    }

    /// Replaces the voters (joint consensus), waiting until the final configuration is
    /// committed. Voters not yet members must have been added as learners first.
    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        retain: bool,
    ) -> Result<(), MetaError> {
        let _serial = self.admin.lock().await;
        self.ensure_leader().await?;
        let t = change_timeout(self);
        tokio::time::timeout(
            t,
            self.raft()
                .change_membership(ChangeMembers::ReplaceAllVoters(voters), retain),
        )
        .await
        .map_err(|_| MetaError::Timeout(t))??;
        Ok(())
    }

    /// This node's view of the cluster, as served by `GET /meta/status`.
    pub async fn status(&self) -> MetaStatus {
        node_status(self).await
    }
}

async fn add_learner(State(node): State<Arc<MetaNode>>, Json(req): Json<AddLearner>) -> Response {
    match node.add_learner(req.id, req.address).await {
        Ok(()) => Json(node_status(&node).await).into_response(),
        Err(e) => error_response(&node, e),
    }
}

async fn change_membership(
    State(node): State<Arc<MetaNode>>,
    Json(req): Json<ChangeMembership>,
) -> Response {
    if req.voters.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "voters: must not be empty"})),
        )
            .into_response();
    }
    match node.change_membership(req.voters, req.retain).await {
        Ok(()) => Json(node_status(&node).await).into_response(),
        Err(e) => error_response(&node, e),
    }
}
