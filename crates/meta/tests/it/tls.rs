//! Three voters over mutual TLS: Raft, forwarding and clients work with the cluster's
//! certificates; a client without one is refused.

use crate::support::test_config;
use bytes::Bytes;
use std::time::Duration;
use strata_meta::{KvStore, MetaNode, MetaPeer, RemoteKv, RemoteKvOptions};
use strata_tls::testing::TestCa;
use strata_tls::{ClientTlsConfig, GrpcClientTls, GrpcServerTls, ServerTlsConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_and_clients_speak_mutual_tls_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("meta CA");
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (c, k) = ca.issue(&["127.0.0.1"]).write(dir.path(), "node");
    let server = GrpcServerTls::new(&ServerTlsConfig {
        cert_file: c.display().to_string(),
        key_file: k.display().to_string(),
        client_ca_file: ca_file.display().to_string(),
    })
    .unwrap();
    let client_cfg = ClientTlsConfig {
        cert_file: c.display().to_string(),
        key_file: k.display().to_string(),
        ca_file: ca_file.display().to_string(),
        server_name: String::new(),
    };
    let client = GrpcClientTls::new(&client_cfg).unwrap();

    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(crate::support::listener().await);
    }
    let peers: Vec<MetaPeer> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| MetaPeer {
            id: i as u64 + 1,
            address: l.local_addr().unwrap().to_string(),
        })
        .collect();
    let mut nodes = Vec::new();
    let mut stops = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let cfg = test_config(id, peers.clone(), true);
        let node = MetaNode::start_with_tls(
            cfg,
            &dir.path().join(format!("n{id}")),
            Some(client.clone()),
        )
        .await
        .unwrap();
        let routes = node.grpc_routes();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let incoming = strata_tls::grpc::incoming(l, Some(server.clone()));
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = rx.await;
                })
                .await;
        });
        nodes.push(node);
        stops.push(tx);
    }
    let addresses: Vec<String> = peers.iter().map(|p| p.address.clone()).collect();
    let remote = |tls: Option<GrpcClientTls>, retry_for: Duration| {
        RemoteKv::new(
            addresses.clone(),
            RemoteKvOptions {
                retry_for,
                tls,
                ..RemoteKvOptions::default()
            },
        )
    };
    // An election and replication over TLS: the write is acknowledged by a quorum.
    let kv = remote(Some(client.clone()), Duration::from_secs(60));
    let v = kv.cas("k", 0, Bytes::from_static(b"v1")).await.unwrap();
    assert!(v > 0);
    assert_eq!(
        kv.get("k").await.unwrap().unwrap().value,
        Bytes::from_static(b"v1")
    );

    // Plain text, and a certificate from another CA: refused.
    let plain = remote(None, Duration::from_secs(2));
    let e = plain.get("k").await.unwrap_err();
    assert!(
        e.to_string().contains("unavailable") || e.to_string().contains("meta"),
        "{e}"
    );
    let rogue_ca = TestCa::new("rogue");
    let (rc, rk) = rogue_ca.issue(&["client"]).write(dir.path(), "rogue");
    let rogue = GrpcClientTls::new(&ClientTlsConfig {
        cert_file: rc.display().to_string(),
        key_file: rk.display().to_string(),
        ..client_cfg
    })
    .unwrap();
    let e = remote(Some(rogue), Duration::from_secs(2))
        .cas("k", v, Bytes::from_static(b"evil"))
        .await
        .unwrap_err();
    let _ = e;
    assert_eq!(
        kv.get("k").await.unwrap().unwrap().value,
        Bytes::from_static(b"v1"),
        "the refused client changed nothing"
    );
    for n in &nodes {
        n.shutdown().await;
    }
    drop(stops);
}
