//! [`MetaNode`]: one voter (or learner) of the Raft-replicated meta store.

use crate::config::MetaConfig;
use crate::error::MetaError;
use crate::grpc::Channels;
use crate::kv::{check_key, check_write, KvEntry, KvStore, WatchStream};
use crate::raft::log_store::LogStore;
use crate::raft::network::NetworkFactory;
use crate::raft::state_machine::{SmShared, StateMachine};
use crate::raft::types::{Command, CommandResult, NodeId, Raft};
use crate::remote::{RemoteKv, RemoteKvOptions};
use crate::server::{self, KvServer, RaftServer};
use crate::watch::{self, Change, WatchSource};
use crate::KvError;
use async_trait::async_trait;
use bytes::Bytes;
use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// A leader-only operation's failure.
#[derive(Debug)]
pub(crate) enum Routed {
    /// This node is not the leader; the leader's address if known.
    NotLeader(Option<String>),
    Kv(KvError),
}

/// What watches ask a node: its data, and whether it is in contact with a quorum.
struct NodeSource {
    sm: Arc<SmShared>,
    raft: Raft,
    last_leader_contact: Arc<Mutex<Option<Instant>>>,
    window: Duration,
}

impl WatchSource for NodeSource {
    fn subscribe(&self, prefix: &str) -> (broadcast::Receiver<Change>, u64, Vec<KvEntry>) {
        let (rx, (rev, entries)) = self.sm.subscribe(|d| (d.revision, d.range(prefix)));
        (rx, rev, entries)
    }

    fn snapshot(&self, prefix: &str) -> (u64, Vec<KvEntry>) {
        self.sm.read(|d| (d.revision, d.range(prefix)))
    }

    fn in_contact(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        match m.state {
            // Refreshed by heartbeat replies; metrics are re-published at least every tick.
            ServerState::Leader => m
                .millis_since_quorum_ack
                .is_some_and(|ms| u128::from(ms) <= self.window.as_millis()),
            // Heard from a leader lately. With 3 voters that leader plus this node are a
            // quorum; with 5, a leader cut off with this node alone still looks alive (see
            // docs/meta.md).
            ServerState::Follower | ServerState::Learner => self
                .last_leader_contact
                .lock()
                .is_some_and(|t| t.elapsed() <= self.window),
            ServerState::Candidate | ServerState::Shutdown => false,
        }
    }
}

/// One node of the Raft-replicated meta store: a [`KvStore`] whose writes and reads go through
/// the leader (followers forward), whose watches are served from the local replica.
pub struct MetaNode {
    me: Weak<MetaNode>,
    id: NodeId,
    cfg: MetaConfig,
    raft: Raft,
    sm: Arc<SmShared>,
    source: Arc<NodeSource>,
    last_leader_contact: Arc<Mutex<Option<Instant>>>,
    /// Forwarding to the leader, over the same channels as Raft.
    forward: RemoteKv,
    /// Serializes membership changes (openraft refuses overlapping ones).
    pub(crate) admin: tokio::sync::Mutex<()>,
    closed: tokio::sync::watch::Sender<bool>,
    stopped: AtomicBool,
}

impl std::fmt::Debug for MetaNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaNode")
            .field("id", &self.id)
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

fn raft_config(cfg: &MetaConfig) -> Result<openraft::Config, MetaError> {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let c = openraft::Config {
        cluster_name: "strata-meta".into(),
        heartbeat_interval: ms(cfg.heartbeat_interval),
        election_timeout_min: ms(cfg.election_timeout_min),
        election_timeout_max: ms(cfg.election_timeout_max),
        install_snapshot_timeout: ms(cfg.rpc_timeout),
        snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every),
        max_in_snapshot_log_to_keep: cfg.snapshot_every,
        // Keeps a batch of entries far below the gRPC message limit even with large values.
        max_payload_entries: 64,
        ..Default::default()
    };
    c.validate().map_err(|e| MetaError::RaftConfig(Box::new(e)))
}

impl MetaNode {
    /// Opens the node's files under `data_dir` (`cfg.dir`), starts Raft, and initializes the
    /// cluster if this node's log is empty and it is told to bootstrap (or has no peers: a
    /// single voter is its own cluster). A node with any state is never initialized again.
    pub async fn start(cfg: MetaConfig, data_dir: &Path) -> Result<Arc<MetaNode>, MetaError> {
        Self::start_with_tls(cfg, data_dir, None).await
    }

    /// [`MetaNode::start`], calling the other voters over mutual TLS with `tls` (its Raft
    /// messages and the reads and writes it forwards to the leader). The node's own services
    /// are served by the process's gRPC server, which has the server side.
    pub async fn start_with_tls(
        cfg: MetaConfig,
        data_dir: &Path,
        tls: Option<strata_tls::GrpcClientTls>,
    ) -> Result<Arc<MetaNode>, MetaError> {
        cfg.validate()?;
        let dir = data_dir.join(&cfg.dir);
        let log = LogStore::open(&dir)?;
        let sm = StateMachine::open(&dir)?;
        let pristine = log.is_pristine() && !sm.has_snapshot();
        let shared = sm.shared();
        let channels = Channels::new(
            cfg.bind_address,
            cfg.rpc_timeout.min(Duration::from_secs(2)),
            tls,
        );
        let network = NetworkFactory {
            id: cfg.node_id,
            channels: channels.clone(),
            rpc_timeout: cfg.rpc_timeout,
        };
        let raft = Raft::new(cfg.node_id, Arc::new(raft_config(&cfg)?), network, log, sm).await?;
        if pristine && (cfg.bootstrap || cfg.peers.is_empty()) {
            let members: BTreeMap<NodeId, BasicNode> = if cfg.peers.is_empty() {
                [(cfg.node_id, BasicNode::new(""))].into()
            } else {
                cfg.peers
                    .iter()
                    .map(|p| (p.id, BasicNode::new(&p.address)))
                    .collect()
            };
            tracing::info!(node = cfg.node_id, voters = ?members.keys().collect::<Vec<_>>(), "meta: initializing a new cluster");
            match raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => {
                    let _ = raft.shutdown().await;
                    return Err(e.into());
                }
            }
        } else if pristine {
            tracing::info!(
                node = cfg.node_id,
                "meta: empty log and no bootstrap: waiting to be added to a cluster"
            );
        }
        let last_leader_contact = Arc::new(Mutex::new(None));
        let source = Arc::new(NodeSource {
            sm: shared.clone(),
            raft: raft.clone(),
            last_leader_contact: last_leader_contact.clone(),
            window: cfg.contact_window(),
        });
        let forward = RemoteKv::with_channels(
            channels,
            Vec::new(),
            RemoteKvOptions {
                rpc_timeout: cfg.rpc_timeout,
                // Short: `routed` re-checks who leads between attempts.
                retry_for: Duration::from_secs(1),
                ..RemoteKvOptions::default()
            },
        );
        Ok(Arc::new_cyclic(|me| MetaNode {
            me: me.clone(),
            id: cfg.node_id,
            cfg,
            raft,
            sm: shared,
            source,
            last_leader_contact,
            forward,
            admin: tokio::sync::Mutex::new(()),
            closed: tokio::sync::watch::channel(false).0,
            stopped: AtomicBool::new(false),
        }))
    }

    /// This node's Raft id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    pub(crate) fn raft(&self) -> &Raft {
        &self.raft
    }

    pub(crate) fn config(&self) -> &MetaConfig {
        &self.cfg
    }

    pub(crate) fn revision(&self) -> u64 {
        self.sm.read(|d| d.revision)
    }

    pub(crate) fn in_quorum_contact(&self) -> bool {
        self.source.in_contact()
    }

    pub(crate) fn note_leader_contact(&self) {
        *self.last_leader_contact.lock() = Some(Instant::now());
    }

    fn arc(&self) -> Arc<MetaNode> {
        self.me
            .upgrade()
            .expect("a MetaNode is always held in an Arc")
    }

    /// The gRPC services to add to the process's server: `Kv` (clients, forwarding) and `Raft`
    /// (the other voters).
    pub fn grpc_services(&self) -> (KvServer, RaftServer) {
        server::servers(self.arc())
    }

    /// The same services as [`tonic::service::Routes`].
    pub fn grpc_routes(&self) -> tonic::service::Routes {
        let (kv, raft) = self.grpc_services();
        tonic::service::Routes::new(kv).add_service(raft)
    }

    /// `GET /meta/status` and the membership endpoints (docs/meta.md).
    pub fn admin_router(&self) -> axum::Router {
        crate::admin::router(self.arc())
    }

    /// Stops Raft and ends every watch. Calls afterwards fail with [`KvError::Closed`].
    pub async fn shutdown(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.closed.send(true);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "meta: raft did not stop cleanly");
        }
    }

    fn check_open(&self) -> Result<(), KvError> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(KvError::Closed);
        }
        Ok(())
    }

    /// The leader's id and address, waiting up to the RPC timeout for an election to end.
    async fn leader(&self) -> Result<(NodeId, String), KvError> {
        let m = self
            .raft
            .wait(Some(self.cfg.rpc_timeout))
            .metrics(|m| m.current_leader.is_some(), "meta leader known")
            .await
            .map_err(|e| KvError::unavailable_from("no meta leader", e))?;
        let leader = m.current_leader.expect("waited for it");
        let addr = m
            .membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
            .unwrap_or_default();
        Ok((leader, addr))
    }

    fn leader_address(
        &self,
        f: &openraft::error::ForwardToLeader<NodeId, BasicNode>,
    ) -> Option<String> {
        f.leader_node
            .as_ref()
            .map(|n| n.addr.clone())
            .filter(|a| !a.is_empty())
    }

    fn unavailable_fatal(&self, e: impl std::error::Error + Send + Sync + 'static) -> KvError {
        if self.stopped.load(Ordering::SeqCst) {
            KvError::Closed
        } else {
            KvError::unavailable_from("meta raft stopped", e)
        }
    }

    /// Waits until a read on this node is linearizable (this node is the leader, confirmed by a
    /// quorum, and has applied everything committed before the call).
    async fn linearizable(&self) -> Result<Option<openraft::LogId<NodeId>>, Routed> {
        self.check_open()?;
        match tokio::time::timeout(self.cfg.rpc_timeout, self.raft.ensure_linearizable()).await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                Err(Routed::NotLeader(self.leader_address(&f)))
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(q)))) => Err(
                Routed::Kv(KvError::unavailable_from("meta leader lost its quorum", q)),
            ),
            Ok(Err(RaftError::Fatal(f))) => Err(Routed::Kv(self.unavailable_fatal(f))),
            Err(_) => Err(Routed::Kv(KvError::unavailable(format!(
                "no meta quorum answered within {:?}",
                self.cfg.rpc_timeout
            )))),
        }
    }

    /// The log index a linearizable read must have applied (this node being the leader).
    pub(crate) async fn leader_read_index(&self) -> Result<u64, Routed> {
        self.linearizable()
            .await
            .map(|id| id.map_or(0, |l| l.index))
    }

    /// Waits until this replica has applied every write completed before the call.
    async fn catch_up(&self) -> Result<(), KvError> {
        let index = self
            .routed(
                || self.leader_read_index(),
                |r| async move { r.read_index().await },
            )
            .await?;
        self.raft
            .wait(Some(self.cfg.rpc_timeout))
            .applied_index_at_least(Some(index), "meta watch catch-up")
            .await
            .map_err(|e| KvError::unavailable_from("meta replica behind", e))?;
        Ok(())
    }

    pub(crate) async fn leader_get(&self, key: &str) -> Result<Option<KvEntry>, Routed> {
        check_key(key)?;
        self.linearizable().await?;
        Ok(self.sm.read(|d| d.get(key)))
    }

    pub(crate) async fn leader_list(&self, prefix: &str) -> Result<Vec<KvEntry>, Routed> {
        self.linearizable().await?;
        Ok(self.sm.read(|d| d.range(prefix)))
    }

    pub(crate) async fn leader_write(&self, cmd: Command) -> Result<CommandResult, Routed> {
        self.check_open()?;
        match &cmd {
            Command::Cas { key, value, .. } => check_write(key, value)?,
            Command::Delete { key, .. } => check_key(key)?,
        }
        match tokio::time::timeout(self.cfg.rpc_timeout, self.raft.client_write(cmd)).await {
            Ok(Ok(r)) => Ok(r.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(Routed::NotLeader(self.leader_address(&f)))
            }
            Ok(Err(RaftError::APIError(e @ ClientWriteError::ChangeMembershipError(_)))) => Err(
                Routed::Kv(KvError::unavailable_from("meta write refused", e)),
            ),
            Ok(Err(RaftError::Fatal(f))) => Err(Routed::Kv(self.unavailable_fatal(f))),
            // The entry may still commit later: the caller sees "unavailable" and may retry.
            Err(_) => Err(Routed::Kv(KvError::unavailable(format!(
                "meta write not committed within {:?}",
                self.cfg.rpc_timeout
            )))),
        }
    }

    /// How long an operation waits for a leader: an election may be under way.
    fn routing_deadline(&self) -> Duration {
        self.cfg.rpc_timeout + self.cfg.election_timeout_max * 2
    }

    /// Runs `local` if this node leads, else hands the operation to the leader over gRPC;
    /// retries while there is no leader, up to [`Self::routing_deadline`].
    async fn routed<T, L, LF, R, RF>(&self, local: L, remote: R) -> Result<T, KvError>
    where
        L: Fn() -> LF,
        LF: std::future::Future<Output = Result<T, Routed>>,
        R: Fn(RemoteKv) -> RF,
        RF: std::future::Future<Output = Result<T, KvError>>,
    {
        let deadline = tokio::time::Instant::now() + self.routing_deadline();
        loop {
            self.check_open()?;
            let (leader, addr) = self.leader().await?;
            let hint = if leader == self.id {
                match local().await {
                    Ok(v) => return Ok(v),
                    Err(Routed::NotLeader(hint)) => hint,
                    Err(Routed::Kv(e)) => {
                        if !e.is_retryable() || tokio::time::Instant::now() >= deadline {
                            return Err(e);
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            } else {
                Some(addr)
            };
            let members: Vec<String> = {
                let m = self.raft.metrics();
                let m = m.borrow();
                m.membership_config
                    .membership()
                    .nodes()
                    .map(|(_, n)| n.addr.clone())
                    .filter(|a| !a.is_empty())
                    .collect()
            };
            self.forward.set_endpoints(members);
            if let Some(h) = hint.filter(|h| !h.is_empty()) {
                self.forward.prefer(h);
            }
            match remote(self.forward.clone()).await {
                Err(e @ KvError::Unavailable { .. }) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "meta: forwarding failed, looking for the leader again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                r => return r,
            }
        }
    }
}

#[async_trait]
impl KvStore for MetaNode {
    async fn get(&self, key: &str) -> Result<Option<KvEntry>, KvError> {
        check_key(key)?;
        self.routed(|| self.leader_get(key), |r| async move { r.get(key).await })
            .await
    }

    async fn cas(&self, key: &str, expected: u64, value: Bytes) -> Result<u64, KvError> {
        check_write(key, &value)?;
        let cmd = Command::Cas {
            key: key.to_owned(),
            expected,
            value: value.clone(),
        };
        let local = || async {
            match self.leader_write(cmd.clone()).await? {
                CommandResult::Written { version } => Ok(version),
                CommandResult::Conflict { actual } => Err(Routed::Kv(KvError::Conflict {
                    key: key.to_owned(),
                    expected,
                    actual,
                })),
                other => Err(Routed::Kv(KvError::unavailable(format!(
                    "unexpected result {other:?}"
                )))),
            }
        };
        self.routed(local, |r| {
            let value = value.clone();
            async move { r.cas(key, expected, value).await }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<KvEntry>, KvError> {
        self.routed(
            || self.leader_list(prefix),
            |r| async move { r.list(prefix).await },
        )
        .await
    }

    async fn delete(&self, key: &str, expected: Option<u64>) -> Result<bool, KvError> {
        check_key(key)?;
        let cmd = Command::Delete {
            key: key.to_owned(),
            expected,
        };
        let local = || async {
            match self.leader_write(cmd.clone()).await? {
                CommandResult::Deleted { existed, .. } => Ok(existed),
                CommandResult::Conflict { actual } => Err(Routed::Kv(KvError::Conflict {
                    key: key.to_owned(),
                    expected: expected.unwrap_or(0),
                    actual,
                })),
                other => Err(Routed::Kv(KvError::unavailable(format!(
                    "unexpected result {other:?}"
                )))),
            }
        };
        self.routed(local, |r| async move { r.delete(key, expected).await })
            .await
    }

    async fn watch(&self, prefix: &str) -> Result<WatchStream, KvError> {
        self.check_open()?;
        // Best effort: without a quorum the watch still starts, from this replica's (stale)
        // state, and reports no progress until the quorum is back.
        // Half the RPC timeout: a RemoteKv waiting for this stream to start must not give up
        // on it first.
        match tokio::time::timeout(self.cfg.rpc_timeout / 2, self.catch_up()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "meta watch starts from a possibly stale replica")
            }
            Err(_) => tracing::debug!("meta watch starts from a possibly stale replica (timeout)"),
        }
        Ok(watch::stream(
            self.source.clone(),
            prefix,
            self.cfg.progress_interval,
            self.closed.subscribe(),
        ))
    }
}
