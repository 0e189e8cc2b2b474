//! openraft's network over the `Raft` gRPC service: requests and replies are serde JSON in
//! `bytes` fields (openraft 0.9 has no protobuf types), snapshot chunks carry their data raw.

use super::types::{NodeId, SnapshotMeta, TypeConfig, Vote};
use crate::grpc::{pb, Channels, MAX_MESSAGE_BYTES};
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RPCTypes};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The snapshot chunk's fields other than its data.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotHeader {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    pub offset: u64,
    pub done: bool,
}

/// Makes a client per target voter; all share the channel cache.
#[derive(Debug, Clone)]
pub(crate) struct NetworkFactory {
    pub id: NodeId,
    pub channels: Channels,
    pub rpc_timeout: Duration,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            id: self.id,
            target,
            address: node.addr.clone(),
            channels: self.channels.clone(),
            rpc_timeout: self.rpc_timeout,
        }
    }
}

#[derive(Debug)]
pub(crate) struct PeerClient {
    id: NodeId,
    target: NodeId,
    address: String,
    channels: Channels,
    rpc_timeout: Duration,
}

type RpcErr<E> = RPCError<NodeId, BasicNode, E>;

impl PeerClient {
    fn client(
        &self,
    ) -> Result<pb::raft_client::RaftClient<tonic::transport::Channel>, Unreachable> {
        let ch = self
            .channels
            .get(&self.address)
            .map_err(|e| Unreachable::new(&e))?;
        Ok(pb::raft_client::RaftClient::new(ch)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    fn deadline(&self, option: &RPCOption) -> Duration {
        self.rpc_timeout.min(option.hard_ttl())
    }

    /// Maps a failed call. Connection failures are `Unreachable`, so that openraft backs off
    /// instead of retrying (and logging) in a tight loop.
    fn error<E: std::error::Error>(
        &self,
        action: RPCTypes,
        timeout: Duration,
        s: tonic::Status,
    ) -> RpcErr<E> {
        tracing::debug!(target = self.target, address = %self.address, ?action, status = %s, "meta raft rpc failed");
        match s.code() {
            // FailedPrecondition: another node answers at that address.
            tonic::Code::Unavailable | tonic::Code::FailedPrecondition => {
                Unreachable::new(&s).into()
            }
            tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => Timeout {
                action,
                id: self.id,
                target: self.target,
                timeout,
            }
            .into(),
            _ => NetworkError::new(&s).into(),
        }
    }

    async fn call<E, T>(
        &self,
        action: RPCTypes,
        option: &RPCOption,
        fut: impl std::future::Future<Output = Result<tonic::Response<pb::RaftReply>, tonic::Status>>,
    ) -> Result<T, RpcErr<RaftError<NodeId, E>>>
    where
        E: std::error::Error + serde::de::DeserializeOwned,
        T: serde::de::DeserializeOwned,
    {
        let timeout = self.deadline(option);
        let reply = match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(s)) => return Err(self.error(action, timeout, s)),
            Err(_) => {
                return Err(Timeout {
                    action,
                    id: self.id,
                    target: self.target,
                    timeout,
                }
                .into())
            }
        };
        let res: Result<T, RaftError<NodeId, E>> =
            serde_json::from_slice(&reply.json).map_err(|e| NetworkError::new(&e))?;
        res.map_err(|e| {
            RemoteError::new_with_node(self.target, BasicNode::new(&self.address), e).into()
        })
    }
}

fn request<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<RaftError<NodeId>>> {
        let json = serde_json::to_vec(&rpc).map_err(|e| NetworkError::new(&e))?;
        if json.len() > MAX_MESSAGE_BYTES - 1024 {
            // openraft splits the batch and retries.
            let hint = (rpc.entries.len() as u64 / 2).max(1);
            return Err(PayloadTooLarge::new_entries_hint(hint).into());
        }
        let mut client = self.client()?;
        let timeout = self.deadline(&option);
        self.call::<openraft::error::Infallible, _>(
            RPCTypes::AppendEntries,
            &option,
            client.append_entries(request(
                pb::RaftRequest {
                    json: json.into(),
                    target: self.target,
                },
                timeout,
            )),
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<RaftError<NodeId, InstallSnapshotError>>>
    {
        let header = SnapshotHeader {
            vote: rpc.vote,
            meta: rpc.meta,
            offset: rpc.offset,
            done: rpc.done,
        };
        let header = serde_json::to_vec(&header).map_err(|e| NetworkError::new(&e))?;
        let mut client = self.client()?;
        let timeout = self.deadline(&option);
        self.call(
            RPCTypes::InstallSnapshot,
            &option,
            client.install_snapshot(request(
                pb::SnapshotChunk {
                    header: header.into(),
                    data: rpc.data.into(),
                    target: self.target,
                },
                timeout,
            )),
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr<RaftError<NodeId>>> {
        let json = serde_json::to_vec(&rpc).map_err(|e| NetworkError::new(&e))?;
        let mut client = self.client()?;
        let timeout = self.deadline(&option);
        self.call::<openraft::error::Infallible, _>(
            RPCTypes::Vote,
            &option,
            client.vote(request(
                pb::RaftRequest {
                    json: json.into(),
                    target: self.target,
                },
                timeout,
            )),
        )
        .await
    }
}
