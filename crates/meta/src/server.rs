//! The gRPC services a meta node serves: `Kv` (clients and forwarding followers) and `Raft`
//! (the other voters).

// tonic::Status is the error type of the generated service traits; boxing it here would only
// move the size around.
#![allow(clippy::result_large_err)]

use crate::grpc::{self, pb, LEADER_HEADER, MAX_MESSAGE_BYTES};
use crate::kv::KvStore;
use crate::node::{MetaNode, Routed};
use crate::raft::network::SnapshotHeader;
use crate::raft::types::{Command, CommandResult, TypeConfig};
use crate::KvError;
use futures::StreamExt;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest};
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The `Kv` service of one node.
#[derive(Debug, Clone)]
pub struct KvService {
    node: Arc<MetaNode>,
}

/// The `Raft` service of one node.
#[derive(Debug, Clone)]
pub struct RaftService {
    node: Arc<MetaNode>,
}

/// The tonic server types a binary adds to its gRPC server.
pub type KvServer = pb::kv_server::KvServer<KvService>;
pub type RaftServer = pb::raft_server::RaftServer<RaftService>;

pub(crate) fn servers(node: Arc<MetaNode>) -> (KvServer, RaftServer) {
    (
        pb::kv_server::KvServer::new(KvService { node: node.clone() })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        pb::raft_server::RaftServer::new(RaftService { node })
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
}

fn routed(r: Routed) -> Status {
    match r {
        Routed::NotLeader(leader) => {
            let mut s = Status::unavailable("not the meta leader");
            if let Some(addr) = leader.and_then(|a| a.parse().ok()) {
                s.metadata_mut().insert(LEADER_HEADER, addr);
            }
            s
        }
        Routed::Kv(e) => grpc::status(&e),
    }
}

#[tonic::async_trait]
impl pb::kv_server::Kv for KvService {
    async fn get(&self, req: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let key = req.into_inner().key;
        let entry = self.node.leader_get(&key).await.map_err(routed)?;
        Ok(Response::new(pb::GetResponse {
            entry: entry.map(Into::into),
        }))
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let prefix = req.into_inner().prefix;
        let entries = self.node.leader_list(&prefix).await.map_err(routed)?;
        Ok(Response::new(pb::ListResponse {
            entries: entries.into_iter().map(Into::into).collect(),
        }))
    }

    async fn cas(&self, req: Request<pb::CasRequest>) -> Result<Response<pb::CasResponse>, Status> {
        let r = req.into_inner();
        let cmd = Command::Cas {
            key: r.key,
            expected: r.expected,
            value: r.value,
        };
        use pb::cas_response::Result as R;
        let result = match self.node.leader_write(cmd).await.map_err(routed)? {
            CommandResult::Written { version } => R::Version(version),
            CommandResult::Conflict { actual } => R::Conflict(pb::Conflict { actual }),
            other => return Err(Status::internal(format!("unexpected result {other:?}"))),
        };
        Ok(Response::new(pb::CasResponse {
            result: Some(result),
        }))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let r = req.into_inner();
        let cmd = Command::Delete {
            key: r.key,
            expected: r.expected,
        };
        use pb::delete_response::Result as R;
        let result = match self.node.leader_write(cmd).await.map_err(routed)? {
            CommandResult::Deleted { existed, .. } => R::Existed(existed),
            CommandResult::Conflict { actual } => R::Conflict(pb::Conflict { actual }),
            other => return Err(Status::internal(format!("unexpected result {other:?}"))),
        };
        Ok(Response::new(pb::DeleteResponse {
            result: Some(result),
        }))
    }

    async fn read_index(
        &self,
        _req: Request<pb::ReadIndexRequest>,
    ) -> Result<Response<pb::ReadIndexResponse>, Status> {
        let index = self.node.leader_read_index().await.map_err(routed)?;
        Ok(Response::new(pb::ReadIndexResponse { index }))
    }

    type WatchStream =
        Pin<Box<dyn futures::Stream<Item = Result<pb::WatchEvent, Status>> + Send + 'static>>;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let prefix = req.into_inner().prefix;
        let stream = self
            .node
            .watch(&prefix)
            .await
            .map_err(|e| grpc::status(&e))?;
        Ok(Response::new(Box::pin(stream.map(|r| match r {
            Ok(ev) => Ok(ev.into()),
            Err(e) => Err(grpc::status(&e)),
        }))))
    }
}

impl RaftService {
    fn check_target(&self, target: u64) -> Result<(), Status> {
        if target != self.node.id() {
            return Err(Status::failed_precondition(format!(
                "this is meta node {}, not {target}",
                self.node.id()
            )));
        }
        Ok(())
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(bytes)
        .map_err(|e| Status::invalid_argument(format!("bad raft message: {e}")))
}

fn reply<T: serde::Serialize>(res: &T) -> Result<Response<pb::RaftReply>, Status> {
    let json = serde_json::to_vec(res).map_err(|e| Status::internal(format!("encoding: {e}")))?;
    Ok(Response::new(pb::RaftReply { json: json.into() }))
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        req: Request<pb::RaftRequest>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let req = req.into_inner();
        self.check_target(req.target)?;
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&req.json)?;
        let res = self.node.raft().append_entries(rpc).await;
        if let Ok(r) = &res {
            if !matches!(r, AppendEntriesResponse::HigherVote(_)) {
                self.node.note_leader_contact();
            }
        }
        reply(&res)
    }

    async fn vote(&self, req: Request<pb::RaftRequest>) -> Result<Response<pb::RaftReply>, Status> {
        let req = req.into_inner();
        self.check_target(req.target)?;
        let rpc = decode(&req.json)?;
        reply(&self.node.raft().vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<pb::SnapshotChunk>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        let chunk = req.into_inner();
        self.check_target(chunk.target)?;
        let h: SnapshotHeader = decode(&chunk.header)?;
        let rpc = InstallSnapshotRequest::<TypeConfig> {
            vote: h.vote,
            meta: h.meta,
            offset: h.offset,
            data: chunk.data.to_vec(),
            done: h.done,
        };
        let res = self.node.raft().install_snapshot(rpc).await;
        if res.is_ok() {
            self.node.note_leader_contact();
        }
        reply(&res)
    }
}

impl From<KvError> for Routed {
    fn from(e: KvError) -> Self {
        Routed::Kv(e)
    }
}
