//! A meta cluster in one process: every node with its own directory and gRPC server on
//! 127.0.0.1, stopped and restarted at will.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use strata_meta::{MetaConfig, MetaNode, MetaPeer, MetaStatus, RemoteKv, RemoteKvOptions};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Timings for a noisy 2-core machine, shorter than production so tests do not crawl.
pub fn test_config(node_id: u64, peers: Vec<MetaPeer>, bootstrap: bool) -> MetaConfig {
    MetaConfig {
        node_id,
        peers,
        bootstrap,
        heartbeat_interval: Duration::from_millis(200),
        election_timeout_min: Duration::from_millis(1000),
        election_timeout_max: Duration::from_millis(2000),
        rpc_timeout: Duration::from_secs(3),
        snapshot_every: 20,
        progress_interval: Duration::from_millis(300),
        ..MetaConfig::default()
    }
}

/// A running node and its gRPC server.
pub struct TestNode {
    pub node: Arc<MetaNode>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub cfg: MetaConfig,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl TestNode {
    /// Starts a node on `listener` with its data under `data_dir`.
    pub async fn start(cfg: MetaConfig, data_dir: &Path, listener: TcpListener) -> TestNode {
        let addr = listener.local_addr().unwrap();
        let node = MetaNode::start(cfg.clone(), data_dir).await.unwrap();
        let (stop, rx) = oneshot::channel();
        let routes = node.grpc_routes();
        let server = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let r = tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = r {
                eprintln!("meta test server: {e}");
            }
        });
        TestNode {
            node,
            addr,
            data_dir: data_dir.to_owned(),
            cfg,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops Raft and the server; the data directory stays.
    pub async fn stop(&mut self) {
        self.node.shutdown().await;
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            // Graceful shutdown waits for open streams; do not let a stuck one hang the test.
            let abort = h.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), h)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    pub async fn status(&self) -> MetaStatus {
        self.node.status().await
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(h) = &self.server {
            h.abort();
        }
    }
}

pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Three (or `n`) voters bootstrapped together.
pub struct Cluster {
    pub nodes: BTreeMap<u64, TestNode>,
    pub base: tempfile::TempDir,
    pub peers: Vec<MetaPeer>,
}

impl Cluster {
    pub async fn start(n: u64) -> Cluster {
        let base = tempfile::tempdir().unwrap();
        let mut listeners = Vec::new();
        for _ in 0..n {
            listeners.push(listener().await);
        }
        let peers: Vec<MetaPeer> = listeners
            .iter()
            .enumerate()
            .map(|(i, l)| MetaPeer {
                id: i as u64 + 1,
                address: l.local_addr().unwrap().to_string(),
            })
            .collect();
        let mut nodes = BTreeMap::new();
        for (i, l) in listeners.into_iter().enumerate() {
            let id = i as u64 + 1;
            let cfg = test_config(id, peers.clone(), true);
            let dir = base.path().join(format!("node-{id}"));
            nodes.insert(id, TestNode::start(cfg, &dir, l).await);
        }
        let c = Cluster { nodes, base, peers };
        c.wait_for_leader(&c.nodes.keys().copied().collect::<Vec<_>>())
            .await;
        c
    }

    /// Waits until the given running nodes agree on a leader among them; returns its id.
    pub async fn wait_for_leader(&self, among: &[u64]) -> u64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let mut leaders = Vec::new();
            for id in among {
                leaders.push(self.nodes[id].status().await.leader);
            }
            if let Some(Some(l)) = leaders.first() {
                if among.contains(l) && leaders.iter().all(|x| *x == Some(*l)) {
                    return *l;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no agreed leader among {among:?}: {leaders:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn addresses(&self) -> Vec<String> {
        self.peers.iter().map(|p| p.address.clone()).collect()
    }

    pub fn remote(&self) -> RemoteKv {
        RemoteKv::new(
            self.addresses(),
            RemoteKvOptions {
                local_address: Some("127.0.0.1".parse().unwrap()),
                retry_for: Duration::from_secs(30),
                watch_idle_timeout: Duration::from_secs(3),
                ..RemoteKvOptions::default()
            },
        )
    }

    /// Stops node `id`, keeping its files.
    pub async fn stop(&mut self, id: u64) {
        self.nodes.get_mut(&id).unwrap().stop().await;
    }

    /// Starts node `id` again from its files, on its old address.
    pub async fn restart(&mut self, id: u64) {
        let old = self.nodes.remove(&id).unwrap();
        let l = rebind(old.addr).await;
        let n = TestNode::start(old.cfg.clone(), &old.data_dir, l).await;
        self.nodes.insert(id, n);
    }

    pub async fn stop_all(&mut self) {
        for n in self.nodes.values_mut() {
            n.stop().await;
        }
    }
}

/// Binds `addr` again (the old listener of a stopped node may take a moment to go away).
pub async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind {addr} again");
}

/// Polls `f` until it returns `Some`, for at most a minute.
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
