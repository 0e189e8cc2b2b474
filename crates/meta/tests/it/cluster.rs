//! Failure and recovery of the Raft-replicated store.

use crate::support::{eventually, listener, rebind, test_config, Cluster, TestNode};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use futures::StreamExt;
use std::time::Duration;
use strata_meta::{KvError, KvStore, MetaPeer, MetaStatus, WatchEvent};
use tower::ServiceExt;

fn val(s: impl Into<String>) -> Bytes {
    Bytes::from(s.into())
}

/// Writes `n` keys `<prefix><i>` and returns the last version.
async fn write_keys(kv: &dyn KvStore, prefix: &str, n: usize) -> u64 {
    let mut last = 0;
    for i in 0..n {
        last = kv
            .cas(&format!("{prefix}{i:03}"), 0, val(format!("v{i}")))
            .await
            .unwrap();
    }
    last
}

async fn check_keys(kv: &dyn KvStore, prefix: &str, n: usize) {
    let got = kv.list(prefix).await.unwrap();
    assert_eq!(got.len(), n, "keys under {prefix}");
    for (i, e) in got.iter().enumerate() {
        assert_eq!(e.key, format!("{prefix}{i:03}"));
        assert_eq!(e.value, val(format!("v{i}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_restart_keeps_data_across_snapshots_and_purges() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(1, vec![], false);
    let mut n = TestNode::start(cfg.clone(), dir.path(), listener().await).await;
    // snapshot_every is 20: several snapshots, and the log before them purged.
    let last = write_keys(&*n.node, "a/", 75).await;
    assert!(n.node.delete("a/000", None).await.unwrap());
    let st = n.status().await;
    assert!(st.snapshot.is_some(), "no snapshot after 75 writes: {st:?}");
    n.stop().await;

    let mut n = TestNode::start(cfg, dir.path(), listener().await).await;
    let got = n.node.list("a/").await.unwrap();
    assert_eq!(got.len(), 74);
    assert_eq!(got[0].key, "a/001");
    assert_eq!(got.last().unwrap().version, last);
    // Revisions go on from where they were.
    let v = n.node.cas("a/new", 0, val("x")).await.unwrap();
    assert!(v > last + 1, "revision {v} restarted below {last}");
    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_continue_after_the_leader_stops() {
    let mut c = Cluster::start(3).await;
    let remote = c.remote();
    let v1 = remote.cas("ha/lease", 0, val("r1")).await.unwrap();
    let old = c.wait_for_leader(&[1, 2, 3]).await;
    c.stop(old).await;
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != old).collect();
    // RemoteKv retries while the others elect a new leader.
    let v2 = remote.cas("ha/lease", v1, val("r2")).await.unwrap();
    assert!(v2 > v1);
    let new = c.wait_for_leader(&rest).await;
    assert_ne!(new, old);
    // A surviving node serves it too, and the old value is gone.
    let e = c.nodes[&rest[0]]
        .node
        .get("ha/lease")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e.value, e.version), (val("r2"), v2));

    // The old leader comes back as a follower and catches up.
    c.restart(old).await;
    let n = &c.nodes[&old];
    eventually("old leader catches up", || async {
        (n.status().await.revision >= v2).then_some(())
    })
    .await;
    let mut w = n.node.watch("ha/").await.unwrap();
    match w.next().await.unwrap().unwrap() {
        WatchEvent::Snapshot { entries, .. } => assert_eq!(entries[0].value, val("r2")),
        e => panic!("{e:?}"),
    }
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_voter_keeps_its_data_and_catches_up() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_for_leader(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|i| *i != leader).unwrap();
    write_keys(&*c.nodes[&leader].node, "r/", 30).await;
    eventually("follower applied", || async {
        let st = c.nodes[&follower].status().await;
        (st.revision >= 30).then_some(())
    })
    .await;
    c.stop(follower).await;
    // Enough writes meanwhile that the leader snapshots and purges past the follower's log.
    let last = write_keys(&*c.nodes[&leader].node, "s/", 50).await;
    c.restart(follower).await;
    let n = &c.nodes[&follower];
    eventually("restarted follower catches up", || async {
        (n.status().await.revision >= last).then_some(())
    })
    .await;
    check_keys(&*n.node, "r/", 30).await;
    check_keys(&*n.node, "s/", 50).await;
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_bootstrap_and_with_an_empty_log_forms_no_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let l = listener().await;
    let peers = vec![MetaPeer {
        id: 1,
        address: l.local_addr().unwrap().to_string(),
    }];
    let mut cfg = test_config(1, peers, false);
    cfg.rpc_timeout = Duration::from_millis(500);
    let mut n = TestNode::start(cfg, dir.path(), l).await;
    let r = n.node.cas("k", 0, val("x")).await;
    assert!(matches!(r, Err(KvError::Unavailable { .. })), "{r:?}");
    let st = n.status().await;
    assert_eq!(st.leader, None, "{st:?}");
    assert!(st.voters.is_empty(), "{st:?}");
    assert!(!st.in_quorum_contact);
    n.stop().await;
}

async fn admin(node: &TestNode, path: &str, body: serde_json::Value) -> (StatusCode, String) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = node.node.admin_router().oneshot(req).await.unwrap();
    let code = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (code, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_whose_disk_was_wiped_is_replaced_under_a_new_id() {
    let mut c = Cluster::start(3).await;
    let remote = c.remote();
    // More entries than snapshot_every (20) plus the log kept after it: the new node can only
    // catch up by installing a snapshot.
    write_keys(&remote, "w/", 60).await;
    let leader = c.wait_for_leader(&[1, 2, 3]).await;
    let lost = [1, 2, 3].into_iter().find(|i| *i != leader).unwrap();

    // The lost voter's disk is gone.
    let lost_addr = c.nodes[&lost].addr;
    c.stop(lost).await;
    std::fs::remove_dir_all(&c.nodes[&lost].data_dir).unwrap();
    write_keys(&remote, "x/", 5).await;

    // A new node, id 4, empty disk, no bootstrap, on the same address.
    let dir4 = c.base.path().join("node-4");
    let mut peers = c.peers.clone();
    peers.retain(|p| p.id != lost);
    peers.push(MetaPeer {
        id: 4,
        address: lost_addr.to_string(),
    });
    let n4 = TestNode::start(test_config(4, peers, false), &dir4, rebind(lost_addr).await).await;
    c.nodes.insert(4, n4);
    // A watch on the new node before it joins sees its empty state, then the installed
    // snapshot as a fresh Snapshot event.
    let mut w4 = c.nodes[&4].node.watch("w/").await.unwrap();
    match w4.next().await.unwrap().unwrap() {
        WatchEvent::Snapshot { entries, .. } => assert!(entries.is_empty()),
        e => panic!("{e:?}"),
    }

    // A follower refuses membership changes and names the leader.
    let follower = [1, 2, 3]
        .into_iter()
        .find(|i| *i != leader && *i != lost)
        .unwrap();
    let (code, body) = admin(
        &c.nodes[&follower],
        "/meta/members/add-learner",
        serde_json::json!({"id": 4, "address": lost_addr.to_string()}),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert!(body.contains(&format!("\"leader\":{leader}")), "{body}");

    let (code, body) = admin(
        &c.nodes[&leader],
        "/meta/members/add-learner",
        serde_json::json!({"id": 4, "address": lost_addr.to_string()}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let voters: Vec<u64> = [1, 2, 3, 4].into_iter().filter(|i| *i != lost).collect();
    let (code, body) = admin(
        &c.nodes[&leader],
        "/meta/members/change-membership",
        serde_json::json!({ "voters": voters }),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let st: MetaStatus = serde_json::from_str(&body).unwrap();
    let ids: Vec<u64> = st.voters.iter().map(|m| m.id).collect();
    assert_eq!(ids, voters);
    assert!(st.learners.is_empty(), "{st:?}");
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 60 {
        match tokio::time::timeout(Duration::from_secs(60), w4.next())
            .await
            .expect("new node's watch stalled")
            .unwrap()
            .unwrap()
        {
            WatchEvent::Snapshot { entries, .. } => {
                seen = entries.into_iter().map(|e| e.key).collect();
            }
            WatchEvent::Put(e) => {
                seen.insert(e.key);
            }
            WatchEvent::Delete { key, .. } => {
                seen.remove(&key);
            }
            WatchEvent::Progress { .. } => {}
        }
    }

    // Node 4 has the data, and with the leader gone {follower, 4} are a quorum.
    c.stop(leader).await;
    let n4 = &c.nodes[&4];
    check_keys(&*n4.node, "w/", 60).await;
    check_keys(&*n4.node, "x/", 5).await;
    n4.node.cas("after/replace", 0, val("ok")).await.unwrap();
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_stop_reporting_progress_without_a_quorum() {
    let mut c = Cluster::start(3).await;
    let survivor = 1;
    let mut w = c.nodes[&survivor].node.watch("p/").await.unwrap();
    assert!(matches!(
        w.next().await,
        Some(Ok(WatchEvent::Snapshot { .. }))
    ));
    assert!(matches!(
        w.next().await,
        Some(Ok(WatchEvent::Progress { .. }))
    ));
    c.stop(2).await;
    c.stop(3).await;
    let n = &c.nodes[&survivor];
    eventually("survivor notices it lost the quorum", || async {
        (!n.status().await.in_quorum_contact).then_some(())
    })
    .await;
    // Drain what was sent before; afterwards no progress arrives.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(700), w.next()).await {}
    let r = tokio::time::timeout(Duration::from_secs(2), w.next()).await;
    assert!(r.is_err(), "a watch without quorum reported {r:?}");

    // A client can still start a watch there: it gets the replica's state, and no progress,
    // also across its own reconnects (idle timeout 3s).
    let remote = strata_meta::RemoteKv::new(
        vec![n.addr.to_string()],
        strata_meta::RemoteKvOptions {
            watch_idle_timeout: Duration::from_secs(3),
            ..Default::default()
        },
    );
    let mut rw = remote.watch("p/").await.unwrap();
    assert!(matches!(
        rw.next().await,
        Some(Ok(WatchEvent::Snapshot { .. }))
    ));
    let r = tokio::time::timeout(Duration::from_secs(7), rw.next()).await;
    assert!(r.is_err(), "a remote watch without quorum reported {r:?}");
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_watch_follows_a_rolling_restart() {
    let mut c = Cluster::start(3).await;
    let remote = c.remote();
    let mut w = remote.watch("roll/").await.unwrap();
    let mut view = std::collections::BTreeMap::new();
    let apply = |ev: WatchEvent, view: &mut std::collections::BTreeMap<String, u64>| match ev {
        WatchEvent::Snapshot { entries, .. } => {
            *view = entries.into_iter().map(|e| (e.key, e.version)).collect();
        }
        WatchEvent::Put(e) => {
            view.insert(e.key, e.version);
        }
        WatchEvent::Delete { key, .. } => {
            view.remove(&key);
        }
        WatchEvent::Progress { .. } => {}
    };
    // Whichever node serves the watch goes down once; the watch carries on by itself.
    for id in [1, 2, 3] {
        c.stop(id).await;
        let k = format!("roll/{id}");
        let v = remote.cas(&k, 0, val("x")).await.unwrap();
        while view.get(&k) != Some(&v) {
            let ev = tokio::time::timeout(Duration::from_secs(60), w.next())
                .await
                .expect("watch stalled")
                .expect("watch ended")
                .expect("a RemoteKv watch never yields errors");
            apply(ev, &mut view);
        }
        c.restart(id).await;
        c.wait_for_leader(&[1, 2, 3]).await;
    }
    let listed: std::collections::BTreeMap<String, u64> = remote
        .list("roll/")
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.key, e.version))
        .collect();
    assert_eq!(view, listed);
    c.stop_all().await;
}
