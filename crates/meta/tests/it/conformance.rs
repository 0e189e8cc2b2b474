//! The conformance suite on every backend.

use crate::support::{listener, test_config, Cluster, TestNode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use strata_meta::{conformance, KvStore, MemoryKv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_kv() {
    let kv = MemoryKv::with_progress_interval(Duration::from_millis(200));
    conformance::run_all(move || Arc::new(kv.clone()) as Arc<dyn KvStore>).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = TestNode::start(test_config(1, vec![], false), dir.path(), listener().await).await;
    let node = n.node.clone();
    conformance::run_all(move || node.clone() as Arc<dyn KvStore>).await;
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_through_every_node_and_remote_clients() {
    let mut c = Cluster::start(3).await;
    // Handles alternate between the nodes, so followers forward to the leader while the
    // leader serves directly, and watches run on every replica.
    let nodes: Vec<Arc<dyn KvStore>> = c
        .nodes
        .values()
        .map(|n| n.node.clone() as Arc<dyn KvStore>)
        .collect();
    let next = AtomicUsize::new(0);
    conformance::run_all(move || nodes[next.fetch_add(1, Ordering::Relaxed) % nodes.len()].clone())
        .await;

    let remote = c.remote();
    conformance::run_all(move || Arc::new(remote.clone()) as Arc<dyn KvStore>).await;
    c.stop_all().await;
}
