//! The TLS listener and connector on loopback with certificates made in the test: mutual TLS
//! refuses clients without a valid certificate, and replaced files are used by the next
//! connections on both sides.

use futures::StreamExt;
use std::sync::Arc;
use strata_tls::grpc::{incoming, ServerIo};
use strata_tls::testing::TestCa;
use strata_tls::{ClientTlsConfig, GrpcClientTls, GrpcServerTls, ServerTlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Uri;
use tower_service::Service;

struct Setup {
    dir: tempfile::TempDir,
    ca: TestCa,
    server: ServerTlsConfig,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("test CA");
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (c, k) = ca
        .issue(&["127.0.0.1", "localhost"])
        .write(dir.path(), "server");
    let server = ServerTlsConfig {
        cert_file: c.display().to_string(),
        key_file: k.display().to_string(),
        client_ca_file: ca_file.display().to_string(),
    };
    Setup { dir, ca, server }
}

impl Setup {
    fn client(&self, stem: &str, ca: &TestCa) -> ClientTlsConfig {
        let (c, k) = ca.issue(&["client"]).write(self.dir.path(), stem);
        ClientTlsConfig {
            cert_file: c.display().to_string(),
            key_file: k.display().to_string(),
            ca_file: self.dir.path().join("ca.crt").display().to_string(),
            server_name: String::new(),
        }
    }
}

async fn listen(tls: GrpcServerTls) -> (Uri, strata_tls::grpc::Incoming) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri: Uri = format!("http://{}", l.local_addr().unwrap())
        .parse()
        .unwrap();
    (uri, incoming(l, Some(tls)))
}

/// Connects, sends a byte, and returns what the server saw and what the client saw.
async fn exchange(
    client: &GrpcClientTls,
    uri: &Uri,
    inc: &mut strata_tls::grpc::Incoming,
) -> (Vec<u8>, Vec<u8>) {
    let io = client.connector(None).call(uri.clone()).await.unwrap();
    let mut tls = io.into_inner();
    let server_cert = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    tls.write_all(b"x").await.unwrap();
    tls.flush().await.unwrap();
    let Some(Ok(ServerIo::Tls(mut s))) = inc.next().await else {
        panic!("no TLS connection accepted");
    };
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    let client_cert = s.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (server_cert, client_cert)
}

#[tokio::test]
async fn mutual_tls_accepts_valid_clients_and_refuses_others() {
    let s = setup();
    let (uri, mut inc) = listen(GrpcServerTls::new(&s.server).unwrap()).await;
    let good = GrpcClientTls::new(&s.client("good", &s.ca)).unwrap();
    let (_, seen) = exchange(&good, &uri, &mut inc).await;
    assert!(!seen.is_empty());

    // A certificate from another CA: the server ends the handshake with an alert, which the
    // client reads instead of data.
    let other_ca = TestCa::new("other CA");
    let rogue = GrpcClientTls::new(&s.client("rogue", &other_ca)).unwrap();
    let mut tls = rogue
        .connector(None)
        .call(uri.clone())
        .await
        .map(|io| io.into_inner());
    if let Ok(t) = &mut tls {
        let _ = t.write_all(b"x").await;
        let mut b = [0u8; 1];
        let r = t.read(&mut b).await;
        assert!(
            !matches!(r, Ok(1)),
            "a client with a foreign certificate got data: {r:?}"
        );
    }
    // No certificate at all.
    let mut anon_cfg = s.client("anon", &s.ca);
    anon_cfg.cert_file.clear();
    anon_cfg.key_file.clear();
    let anon = GrpcClientTls::new(&anon_cfg).unwrap();
    let mut tls = anon
        .connector(None)
        .call(uri.clone())
        .await
        .map(|io| io.into_inner());
    if let Ok(t) = &mut tls {
        let _ = t.write_all(b"x").await;
        let mut b = [0u8; 1];
        let r = t.read(&mut b).await;
        assert!(
            !matches!(r, Ok(1)),
            "a client without a certificate got data: {r:?}"
        );
    }
    // Plain TCP speaking HTTP/2 gets nowhere either.
    let mut plain = tokio::net::TcpStream::connect(uri.authority().unwrap().as_str())
        .await
        .unwrap();
    let _ = plain.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf).await;
    assert!(
        !buf.starts_with(&[0, 0]),
        "plain HTTP/2 got an HTTP/2 frame back"
    );
    // The valid client still works, and every refused one stayed out of the stream.
    let (_, seen2) = exchange(&good, &uri, &mut inc).await;
    assert_eq!(seen, seen2);
}

#[tokio::test]
async fn a_client_trusting_another_ca_refuses_the_server() {
    let s = setup();
    let (uri, _inc) = listen(GrpcServerTls::new(&s.server).unwrap()).await;
    let mut cfg = s.client("good", &s.ca);
    let other = TestCa::new("other CA");
    let other_file = s.dir.path().join("other.crt");
    std::fs::write(&other_file, &other.pem).unwrap();
    cfg.ca_file = other_file.display().to_string();
    let c = GrpcClientTls::new(&cfg).unwrap();
    let e = c.connector(None).call(uri).await.unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[tokio::test]
async fn certificates_rotate_without_restart_on_both_sides() {
    let s = setup();
    let (uri, mut inc) = listen(GrpcServerTls::new(&s.server).unwrap()).await;
    let client_cfg = s.client("client", &s.ca);
    let client = GrpcClientTls::new(&client_cfg).unwrap();
    let (server1, client1) = exchange(&client, &uri, &mut inc).await;

    // New server certificate and new client certificate, written over the same files.
    let new_server = s.ca.issue(&["127.0.0.1", "localhost"]);
    new_server.write(s.dir.path(), "server");
    let new_client = s.ca.issue(&["client"]);
    new_client.write(s.dir.path(), "client");
    let (server2, client2) = exchange(&client, &uri, &mut inc).await;
    assert_ne!(server1, server2);
    assert_eq!(
        server2, new_server.der,
        "the server presents the new certificate"
    );
    assert_ne!(client1, client2);
    assert_eq!(
        client2, new_client.der,
        "the client presents the new certificate"
    );

    // A broken file keeps the previous certificate in use.
    std::fs::write(&s.server.cert_file, "not a certificate").unwrap();
    let (server3, _) = exchange(&client, &uri, &mut inc).await;
    assert_eq!(server3, new_server.der);
}

#[test]
fn missing_files_are_named() {
    let s = setup();
    let mut bad = s.server.clone();
    bad.key_file = s.dir.path().join("nope.key").display().to_string();
    let e = GrpcServerTls::new(&bad).unwrap_err().to_string();
    assert!(e.contains("nope.key"), "{e}");
    let mut no_ca = s.server.clone();
    no_ca.client_ca_file.clear();
    let e = GrpcServerTls::new(&no_ca).unwrap_err().to_string();
    assert!(e.starts_with("server.grpc_tls.client_ca_file"), "{e}");
    let _ = Arc::new(());
}
